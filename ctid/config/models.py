"""ctid's configuration models: frozen pydantic models, one per TOML section, with their per-field
checks (loading and cross-field checks are in `loading` and `checks`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

Tier = Literal["ordinary", "expert"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_INTERFACE = re.compile(r"^[A-Za-z0-9_]+/[A-Za-z0-9_.@/\-]+$")
_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+$")


def _email(value: str) -> str:
    if value and (len(value) > 254 or not _EMAIL.match(value)):
        raise ValueError("is not an e-mail address")
    return value


Email = Annotated[str, AfterValidator(_email)]

ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "CTID_AMI_SECRET": ("ami", "secret"),
    "CTID_DATABASE_URL": ("database", "url"),
    "CTID_SMTP_USERNAME": ("smtp", "username"),
    "CTID_SMTP_PASSWORD": ("smtp", "password"),
    "CTID_WEB_SECRET": ("web", "cookie_secret"),
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _hhmm(value: object) -> time:
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError("must be a time of day written HH:MM")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


HHMM = Annotated[time, Field(description="HH:MM")]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=_SAFE_NAME.pattern)]


class SiteConfig(_Model):
    name: str = "IT Service Desk"
    timezone: str = "Asia/Shanghai"
    language: Literal["zh_CN", "en"] = "zh_CN"
    """The language of pages, mails and CSV for a user whose own choice and browser say nothing."""
    data_dir: Path = Path("./var")
    country_code: str = Field(default="86", pattern=r"^\d{1,3}$")
    area_code: str = Field(default="10", pattern=r"^\d{0,5}$")
    internal_extension_digits: int = Field(default=4, ge=2, le=8)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("is not a known IANA time zone") from exc
        return value


class AmiConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "ctid"
    secret: SecretStr = SecretStr("")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    action_timeout_s: float = Field(default=10.0, gt=0)
    ping_interval_s: float = Field(default=10.0, gt=0)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)


class AsteriskConfig(_Model):
    queue_log: str = ""
    """Asterisk's queue_log file (e.g. /var/log/asterisk/queue_log); empty: not read."""
    queue_log_poll_s: float = Field(default=5.0, gt=0)


class AgiConfig(_Model):
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=4573, ge=0, le=65535)
    header_timeout_s: float = Field(default=5.0, gt=0)
    max_header_bytes: int = Field(default=16384, ge=1024)
    request_deadline_s: float = Field(default=60.0, gt=0)


class WebConfig(_Model):
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    cookie_secret: SecretStr = SecretStr("")
    secure_cookies: bool = False
    """Forced on when `public_url` is https (the browser only ever sees https then)."""
    session_ttl_s: int = Field(default=12 * 3600, ge=60)
    trusted_proxies: tuple[str, ...] = ()
    """Addresses/networks of reverse proxies whose X-Forwarded-For is believed."""

    @field_validator("trusted_proxies")
    @classmethod
    def _nets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _https_means_secure(cls, data: Any) -> Any:
        if isinstance(data, dict) and str(data.get("public_url", "")).startswith("https://"):
            return {**data, "secure_cookies": True}
        return data


class DatabaseConfig(_Model):
    url: str = ""
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_size: int = Field(default=5, ge=1)


class SmtpConfig(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    tls: Literal["none", "starttls", "tls"] = "none"
    from_address: Email = "servicedesk@example.com"
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    retry_base_s: float = Field(default=30.0, gt=0)


class SeatConfig(_Model):
    id: Name
    name: str = Field(min_length=1, max_length=64)
    tier: Tier
    interface: str
    staffed_by: str = ""

    @field_validator("interface")
    @classmethod
    def _iface(cls, value: str) -> str:
        if not _INTERFACE.match(value):
            raise ValueError(
                "must be an Asterisk interface like PJSIP/seat1 or Local/seat1@phones/n"
            )
        return value


class SupervisorConfig(_Model):
    employee_id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=64)
    phone: str
    email: Email = ""

    @field_validator("phone")
    @classmethod
    def _iface(cls, value: str) -> str:
        if not _INTERFACE.match(value):
            raise ValueError("must be an Asterisk interface like PJSIP/sup1")
        return value


class QueueConfig(_Model):
    name: Name
    tiers: dict[Tier, Annotated[int, Field(ge=0, le=100)]] = Field(min_length=1)
    """Which seat tiers are members, with the queue penalty each gets (lower rings first)."""


class HoursConfig(_Model):
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    open: time = time(8, 0)
    close: time = time(17, 30)
    holidays: tuple[date, ...] = ()
    makeup_workdays: tuple[date, ...] = ()
    holidays_file: Path | None = None

    _t = field_validator("open", "close", mode="before")(classmethod(lambda cls, v: _hhmm(v)))


class RingConfig(_Model):
    max_rings: int = Field(default=3, ge=1, le=20)
    ring_cadence_s: float = Field(default=5.0, gt=0, le=30)
    rna_pause_after: int = Field(default=2, ge=1, le=20)

    @property
    def deadline_s(self) -> float:
        return self.max_rings * self.ring_cadence_s


class TalkCapConfig(_Model):
    talk_cap_s: int = Field(default=600, ge=60)
    warn_at_s: tuple[int, ...] = (480, 540)
    action: Literal["hangup", "notify", "transfer_expert"] = "hangup"
    expert_queue: str = "expert"


class LunchGroupConfig(_Model):
    name: Name
    seats: tuple[str, ...] = Field(min_length=1)


class LunchConfig(_Model):
    enabled: bool = True
    start: time = time(12, 0)
    end: time = time(13, 30)
    anchor_week: str = "2026-W01"
    groups: tuple[LunchGroupConfig, ...] = ()
    allow_overflow: bool = False

    _t = field_validator("start", "end", mode="before")(classmethod(lambda cls, v: _hhmm(v)))

    @field_validator("anchor_week")
    @classmethod
    def _week(cls, value: str) -> str:
        m = _ISO_WEEK.match(value)
        if not m or not 1 <= int(m.group(2)) <= 53:
            raise ValueError("must be an ISO week written YYYY-Www")
        try:
            date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        except ValueError as exc:
            raise ValueError("is not a week of that year") from exc
        return value


class IvrOptionConfig(_Model):
    digit: str = Field(pattern=r"^[0-9*#]$")
    action: Literal["queue", "status", "callback"]
    label: str
    queue: str = ""
    request_type: Literal[
        "fault", "service_request", "consultation", "new_requirement", "complaint"
    ] = "fault"


class IvrPromptsConfig(_Model):
    welcome: str = "ctid/welcome"
    menu: str = "ctid/menu"
    invalid: str = "ctid/invalid"
    closed: str = "ctid/closed"
    callback_offer: str = "ctid/callback-offer"
    callback_recorded: str = "ctid/callback-recorded"
    enter_incident: str = "ctid/enter-incident"
    incident_unknown: str = "ctid/incident-unknown"
    incident_status_prefix: str = "ctid/status-"
    lunch_overflow: str = "ctid/lunch-overflow"
    goodbye: str = "ctid/goodbye"
    survey: str = "ctid/survey"
    """After the agent hangs up: "how satisfied were you? press 1 to 5" (keypad survey)."""


ANSWER_MEDIA_S = 0.5
"""Asterisk's Answer() waits up to this long for media before the dialplan runs the AGI."""


class IvrConfig(_Model):
    digit_timeout_s: float = Field(default=5.0, gt=0, le=60)
    silence_replays: int = Field(default=0, ge=0, le=5)
    max_invalid: int = Field(default=2, ge=0, le=5)
    no_input_max_s: float = Field(default=20.0, gt=0, le=300)
    """A caller who presses nothing reaches a queue within this long, prompts included."""
    default_queue: str = "ordinary"
    options: tuple[IvrOptionConfig, ...] = (
        IvrOptionConfig(
            digit="1",
            action="queue",
            label="consultation",
            queue="ordinary",
            request_type="consultation",
        ),
        IvrOptionConfig(
            digit="2", action="queue", label="fault", queue="shared", request_type="fault"
        ),
        IvrOptionConfig(digit="3", action="status", label="incident status"),
        IvrOptionConfig(
            digit="0", action="queue", label="complaint", queue="expert", request_type="complaint"
        ),
    )
    prompts: IvrPromptsConfig = IvrPromptsConfig()

    def no_input_path_s(self, prompt_s: Mapping[str, float], *, overflow: bool = False) -> float:
        """How long a caller who presses nothing takes to reach a queue: Answer(), the welcome,
        the menu and its wait once plus once per silence replay, and the lunch-overflow notice
        when it can play. `prompt_s` maps prompt keys (`welcome`, `menu`, ...) to play lengths;
        a prompt not in it counts as 0 s (missing files are skipped by the IVR)."""
        menu = prompt_s.get("menu", 0.0) + self.digit_timeout_s
        total = ANSWER_MEDIA_S + prompt_s.get("welcome", 0.0) + (self.silence_replays + 1) * menu
        if overflow:
            total += prompt_s.get("lunch_overflow", 0.0)
        return total


class SlaLevelConfig(_Model):
    response_min: int = Field(ge=1)
    resolve_min: int = Field(ge=1)


def _default_sla() -> dict[str, SlaLevelConfig]:
    return {
        "P1": SlaLevelConfig(response_min=15, resolve_min=240),
        "P2": SlaLevelConfig(response_min=30, resolve_min=480),
        "P3": SlaLevelConfig(response_min=120, resolve_min=1440),
        "P4": SlaLevelConfig(response_min=480, resolve_min=4320),
    }


Level = Literal["high", "medium", "low"]


def _default_matrix() -> dict[Level, dict[Level, str]]:
    return {
        "high": {"high": "P1", "medium": "P2", "low": "P3"},
        "medium": {"high": "P2", "medium": "P3", "low": "P4"},
        "low": {"high": "P3", "medium": "P4", "low": "P4"},
    }


class IncidentConfig(_Model):
    number_prefix: str = Field(default="INC", pattern=r"^[A-Z]{2,8}$")
    sla: dict[str, SlaLevelConfig] = Field(default_factory=_default_sla)
    priority_matrix: dict[Level, dict[Level, str]] = Field(default_factory=_default_matrix)
    second_line_groups: dict[str, Email] = Field(default_factory=dict)
    """Group name → email address that receives dispatched incidents."""
    followup_after_close_s: int = Field(default=3600, ge=0)


class ReportsConfig(_Model):
    short_abandon_s: int = Field(default=5, ge=0)
    repeat_call_days: int = Field(default=7, ge=1)


class Config(_Model):
    site: SiteConfig = SiteConfig()
    ami: AmiConfig = AmiConfig()
    asterisk: AsteriskConfig = AsteriskConfig()
    agi: AgiConfig = AgiConfig()
    web: WebConfig = WebConfig()
    database: DatabaseConfig = DatabaseConfig()
    smtp: SmtpConfig = SmtpConfig()
    seats: tuple[SeatConfig, ...] = Field(min_length=1, max_length=64)
    supervisors: tuple[SupervisorConfig, ...] = ()
    queues: tuple[QueueConfig, ...] = (
        QueueConfig(name="ordinary", tiers={"ordinary": 0}),
        QueueConfig(name="expert", tiers={"expert": 0}),
        QueueConfig(name="shared", tiers={"ordinary": 0, "expert": 1}),
    )
    hours: HoursConfig = HoursConfig()
    ring: RingConfig = RingConfig()
    talk_cap: TalkCapConfig = TalkCapConfig()
    lunch: LunchConfig = LunchConfig()
    ivr: IvrConfig = IvrConfig()
    incidents: IncidentConfig = IncidentConfig()
    reports: ReportsConfig = ReportsConfig()

    @property
    def database_url(self) -> str:
        """The configured URL, or a SQLite file under the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.site.data_dir / 'ctid.db').as_posix()}"

    def seat(self, seat_id: str) -> SeatConfig | None:
        return next((s for s in self.seats if s.id == seat_id), None)

    def queue(self, name: str) -> QueueConfig | None:
        return next((q for q in self.queues if q.name == name), None)
