"""ctid's configuration: frozen pydantic models loaded from one TOML file by `load_config` (secrets
may come from CTID_* variables) and the cross-field checks; how problems are told is in
`config_messages`. May pass ~700 lines: the models and every check on them are one unit."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
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
    ValidationError,
    field_validator,
    model_validator,
)

from ctid.config_messages import field_lines, lenient, renumber, short
from ctid.core.errors import ConfigError

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
    "CTID_METRICS_TOKEN": ("metrics", "token"),
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


class MetricsConfig(_Model):
    """`/metrics` for Prometheus: a scrape is let in when its client address (X-Forwarded-For
    believed only from `web.trusted_proxies`) is in `allow`, or when it sends the bearer `token`."""

    enabled: bool = True
    allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    token: SecretStr = SecretStr("")
    loop_lag_interval_s: float = Field(default=0.5, gt=0, le=60)
    """How often the event-loop lag probe wakes (its lag is how late it wakes)."""

    @field_validator("allow")
    @classmethod
    def _nets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value


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


class SopStepConfig(_Model):
    key: Name
    label: str = Field(min_length=1, max_length=64)
    budget_s: int = Field(ge=1)
    prompt: str = ""


def _default_wrapup() -> dict[Tier, int]:
    return {"ordinary": 30, "expert": 60}


def _default_sop() -> tuple[SopStepConfig, ...]:
    # DOMAIN.md's script: greet 10 s, confirm 1 min, diagnose 3 min, dispatch 2 min. Its guided
    # fix (10 min) alone fills the cap, so it gets what is left (4 min): 10 min in all.
    return (
        SopStepConfig(
            key="greet",
            label="Greet",
            budget_s=10,
            prompt="Hello, customer center. How can I help you? "
            "(您好,客户中心。请问有什么可以帮您的吗?)",
        ),
        SopStepConfig(
            key="confirm_caller",
            label="Confirm caller",
            budget_s=60,
            prompt="Ask name, phone and office location.",
        ),
        SopStepConfig(
            key="diagnose",
            label="Diagnose",
            budget_s=180,
            prompt="Alarms or noises? The error message? Cables and indicator lights? "
            "(with consent)",
        ),
        SopStepConfig(
            key="guided_fix",
            label="Guided fix",
            budget_s=230,
            prompt="Walk the caller through the steps (generally discouraged).",
        ),
        SopStepConfig(
            key="dispatch",
            label="Dispatch",
            budget_s=120,
            prompt="Promise an engineer; re-check name, phone, address; describe the fault in "
            "professional terms.",
        ),
    )


AGENT_PAUSE_REASONS_DEFAULT = ("break", "meal", "training", "admin")
SYSTEM_PAUSE_REASONS = ("rna", "lunch", "closed", "wrapup")


class DeskConfig(_Model):
    """The agent desk: wrap-up after each call, the agent's own pause reasons, the call script."""

    wrapup_s: dict[Tier, Annotated[int, Field(ge=0, le=3600)]] = Field(
        default_factory=_default_wrapup
    )
    """Seconds of wrap-up per tier after each answered call (0: none). ctid pauses the seat with
    reason `wrapup` rather than using app_queue's wrapuptime, so the desk can show the countdown,
    end it early and extend it."""
    wrapup_extend_s: int = Field(default=60, ge=0, le=3600)
    pause_reasons: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], ...] = (
        AGENT_PAUSE_REASONS_DEFAULT
    )
    sop: tuple[SopStepConfig, ...] = Field(default_factory=_default_sop)


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


class WallboardConfig(_Model):
    """What the wallboard colours: green at or past the target, amber short of it, red past the
    red line. Rates are fractions (0.9 = 90 %)."""

    service_level_target: float = Field(default=0.90, gt=0, le=1)
    """Share of answered calls picked up within `ring.max_rings` rings: green at or above."""
    service_level_red_below: float = Field(default=0.80, ge=0, le=1)
    """Red below this; amber between it and the target."""
    loss_rate_amber: float = Field(default=0.05, ge=0, le=1)
    """Loss rate (calls offered, not answered) above this: amber."""
    loss_rate_red: float = Field(default=0.10, ge=0, le=1)
    """Loss rate above this: red."""
    longest_wait_amber_s: int = Field(default=10, ge=1)
    longest_wait_red_s: int = Field(default=15, ge=1)
    alerts_kept: int = Field(default=50, ge=1, le=500)
    """The server keeps the last this many alerts, so a reloaded wallboard shows them."""

    @model_validator(mode="after")
    def _ordered(self) -> WallboardConfig:
        if self.service_level_red_below >= self.service_level_target:
            raise ValueError(
                "service_level_red_below must be below service_level_target "
                f"(got {self.service_level_red_below} >= {self.service_level_target})"
            )
        if self.loss_rate_amber >= self.loss_rate_red:
            raise ValueError(
                "loss_rate_amber must be below loss_rate_red "
                f"(got {self.loss_rate_amber} >= {self.loss_rate_red})"
            )
        if self.longest_wait_amber_s >= self.longest_wait_red_s:
            raise ValueError(
                "longest_wait_amber_s must be below longest_wait_red_s "
                f"(got {self.longest_wait_amber_s} >= {self.longest_wait_red_s})"
            )
        return self


class Config(_Model):
    site: SiteConfig = SiteConfig()
    ami: AmiConfig = AmiConfig()
    asterisk: AsteriskConfig = AsteriskConfig()
    agi: AgiConfig = AgiConfig()
    web: WebConfig = WebConfig()
    metrics: MetricsConfig = MetricsConfig()
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
    wallboard: WallboardConfig = WallboardConfig()
    desk: DeskConfig = DeskConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_script_fits_the_cap(cls, data: Any) -> Any:
        """The default call script is sized for the 10-minute cap; under a shorter cap (a demo,
        a test desk) its steps shrink in proportion, so only a script ops wrote can overflow."""
        if not isinstance(data, dict):
            return data
        desk = data.get("desk", {})
        cap_cfg = data.get("talk_cap", {})
        if not isinstance(desk, dict) or "sop" in desk or not isinstance(cap_cfg, dict):
            return data
        cap = cap_cfg.get("talk_cap_s", 600)
        steps = _default_sop()
        total = sum(step.budget_s for step in steps)
        if not isinstance(cap, int) or cap >= total or cap < 1:
            return data
        scaled = [
            step.model_copy(update={"budget_s": max(1, step.budget_s * cap // total)})
            for step in steps
        ]
        return {**data, "desk": {**desk, "sop": [s.model_dump() for s in scaled]}}

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


# --------------------------------------------------------------------------- loading


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, path in ENV_OVERRIDES.items():
        if var in env and env[var] != "":
            node = raw
            for key in path[:-1]:
                existing = node.get(key)
                if not isinstance(existing, dict):
                    existing = {}
                    node[key] = existing
                node = existing
            node[path[-1]] = env[var]


def _cross_checks(cfg: Config) -> list[tuple[str, str, object]]:
    """Checks that span several keys; each is (key.path, what is wrong, got)."""
    problems: list[tuple[str, str, object]] = []
    seat_ids = [s.id for s in cfg.seats]
    for i, seat in enumerate(cfg.seats):
        if seat_ids.count(seat.id) > 1 and seat_ids.index(seat.id) != i:
            problems.append((f"seats[{i}].id", "is used by another seat", seat.id))
    ifaces = [s.interface for s in cfg.seats]
    for i, seat in enumerate(cfg.seats):
        if ifaces.index(seat.interface) != i:
            problems.append((f"seats[{i}].interface", "is used by another seat", seat.interface))
    staff = [s.staffed_by for s in cfg.seats]
    for i, seat in enumerate(cfg.seats):
        if seat.staffed_by and staff.index(seat.staffed_by) != i:
            first = cfg.seats[staff.index(seat.staffed_by)].id
            problems.append(
                (f"seats[{i}].staffed_by", f"already staffs seat {first!r}", seat.staffed_by)
            )
    served = {tier for q in cfg.queues for tier in q.tiers}
    for i, seat in enumerate(cfg.seats):
        if seat.tier not in served:
            problems.append((f"seats[{i}].tier", "is not served by any queue", seat.tier))
    queue_names = [q.name for q in cfg.queues]
    for i, q in enumerate(cfg.queues):
        if queue_names.index(q.name) != i:
            problems.append((f"queues[{i}].name", "is used by another queue", q.name))
    if cfg.ivr.default_queue not in queue_names:
        problems.append(("ivr.default_queue", "names no configured queue", cfg.ivr.default_queue))
    digits = [o.digit for o in cfg.ivr.options]
    for i, opt in enumerate(cfg.ivr.options):
        if digits.index(opt.digit) != i:
            problems.append((f"ivr.options[{i}].digit", "is used by another option", opt.digit))
        if opt.action == "queue" and opt.queue not in queue_names:
            problems.append((f"ivr.options[{i}].queue", "names no configured queue", opt.queue))
    waits = cfg.ivr.no_input_path_s({})
    if waits > cfg.ivr.no_input_max_s:
        problems.append(
            (
                "ivr.digit_timeout_s",
                f"a caller who presses nothing waits {waits:g} s before any prompt plays "
                f"((silence_replays + 1) x digit_timeout_s + {ANSWER_MEDIA_S:g} s Answer), over "
                f"ivr.no_input_max_s = {cfg.ivr.no_input_max_s:g}",
                cfg.ivr.digit_timeout_s,
            )
        )
    if cfg.talk_cap.action == "transfer_expert" and cfg.talk_cap.expert_queue not in queue_names:
        problems.append(
            ("talk_cap.expert_queue", "names no configured queue", cfg.talk_cap.expert_queue)
        )
    for i, point in enumerate(cfg.talk_cap.warn_at_s):
        if point >= cfg.talk_cap.talk_cap_s:
            problems.append(
                (f"talk_cap.warn_at_s[{i}]", "warns at or after the cap (talk_cap_s)", point)
            )
    if list(cfg.talk_cap.warn_at_s) != sorted(set(cfg.talk_cap.warn_at_s)):
        problems.append(("talk_cap.warn_at_s", "must be increasing", cfg.talk_cap.warn_at_s))
    sop_total = sum(step.budget_s for step in cfg.desk.sop)
    if sop_total > cfg.talk_cap.talk_cap_s:
        problems.append(
            (
                "desk.sop",
                f"the steps' budgets add up to {sop_total} s, more than talk_cap.talk_cap_s "
                f"({cfg.talk_cap.talk_cap_s} s)",
                [step.budget_s for step in cfg.desk.sop],
            )
        )
    for i, reason in enumerate(cfg.desk.pause_reasons):
        if reason in SYSTEM_PAUSE_REASONS:
            problems.append(
                (f"desk.pause_reasons[{i}]", "is a reason ctid keeps for itself", reason)
            )
    if cfg.hours.close <= cfg.hours.open:
        problems.append(("hours.close", "must be after hours.open", cfg.hours.close))
    both = set(cfg.hours.holidays) & set(cfg.hours.makeup_workdays)
    if both:
        problems.append(
            ("hours.makeup_workdays", "lists days that are also holidays", sorted(both))
        )
    if cfg.ami.reconnect_max_s < cfg.ami.reconnect_min_s:
        problems.append(
            ("ami.reconnect_max_s", "must be >= ami.reconnect_min_s", cfg.ami.reconnect_max_s)
        )
    for i, sup in enumerate(cfg.supervisors):
        if [s.employee_id for s in cfg.supervisors].index(sup.employee_id) != i:
            problems.append(
                (f"supervisors[{i}].employee_id", "is used by another supervisor", sup.employee_id)
            )
    for impact, row in cfg.incidents.priority_matrix.items():
        for urgency, prio in row.items():
            if prio not in cfg.incidents.sla:
                problems.append(
                    (
                        f"incidents.priority_matrix.{impact}.{urgency}",
                        "names a priority with no incidents.sla entry",
                        prio,
                    )
                )
    token = cfg.metrics.token.get_secret_value()
    if token and (len(token) < 16 or any(c.isspace() or not c.isprintable() for c in token)):
        # The token itself is never echoed: config errors end up in logs and terminals.
        problems.append(
            (
                "metrics.token",
                "must be at least 16 printable characters without spaces",
                f"{len(token)} characters",
            )
        )
    if cfg.metrics.enabled and not cfg.metrics.allow and not token:
        problems.append(
            (
                "metrics.allow",
                "is empty and metrics.token is not set, so nobody may scrape /metrics "
                "(list networks, set a token, or set metrics.enabled = false)",
                [],
            )
        )
    lunch = cfg.lunch
    if lunch.enabled and lunch.groups:
        if lunch.end <= lunch.start:
            problems.append(("lunch.end", "must be after lunch.start", lunch.end))
        elif not (cfg.hours.open <= lunch.start and lunch.end <= cfg.hours.close):
            problems.append(("lunch.start", "lunch must lie within service hours", lunch.start))
        seen: dict[str, str] = {}
        for gi, group in enumerate(lunch.groups):
            for si, sid in enumerate(group.seats):
                if sid not in seat_ids:
                    problems.append((f"lunch.groups[{gi}].seats[{si}]", "names no seat", sid))
                elif sid in seen:
                    problems.append(
                        (
                            f"lunch.groups[{gi}].seats[{si}]",
                            f"is already in lunch group {seen[sid]!r}",
                            sid,
                        )
                    )
                else:
                    seen[sid] = group.name
        if not lunch.allow_overflow:
            tiers = {s.tier for s in cfg.seats}
            by_id = {s.id: s for s in cfg.seats}
            for gi, group in enumerate(lunch.groups):
                have = {by_id[s].tier for s in group.seats if s in by_id}
                for tier in sorted(tiers - have):
                    problems.append(
                        (
                            f"lunch.groups[{gi}].seats",
                            f"leaves the {tier} tier with nobody on the phones when group "
                            f"{group.name!r} is on lunch duty (add a {tier} seat or set "
                            "lunch.allow_overflow = true)",
                            list(group.seats),
                        )
                    )
    return problems


def check_config(raw: dict[str, Any], source: str = "config") -> tuple[Config | None, list[str]]:
    """Every problem at once: field problems, then the cross-field ones of what did validate
    (the failing keys are dropped and their defaults used, so one mistake hides no other)."""
    removed: dict[str, list[int]] = {}
    lines: list[str] = []
    try:
        cfg: Config | None = Config.model_validate(raw)
    except ValidationError as exc:
        lines = field_lines(Config, exc, source)
        cfg = lenient(Config, raw, removed)
    if cfg is None:
        return None, lines
    lines += [
        f"{source}: {renumber(k, removed)}: {what} (got {short(got)})"
        for k, what, got in _cross_checks(cfg)
    ]
    return (cfg if not lines else None), lines


def parse_config(raw: dict[str, Any], source: str = "config") -> Config:
    """Validate an already-parsed TOML document. Raises `ConfigError` with every problem."""
    cfg, lines = check_config(raw, source)
    if cfg is None:
        raise ConfigError(lines)
    return cfg


def deployment_problems(
    cfg: Config, source: str, env: Mapping[str, str] | None = None
) -> list[str]:
    """What `ctid run` needs beyond a valid document: secrets that are set (here or in their
    environment variable) and referenced files that exist and can be read."""
    env = os.environ if env is None else env
    problems: list[str] = []
    if not cfg.ami.secret.get_secret_value():
        problems.append(f"{source}: ami.secret: is empty (set it here or in CTID_AMI_SECRET)")
    if cfg.smtp.enabled and cfg.smtp.username and not cfg.smtp.password.get_secret_value():
        problems.append(
            f"{source}: smtp.password: is empty while smtp.username is set "
            "(set it here or in CTID_SMTP_PASSWORD)"
        )
    file = cfg.hours.holidays_file
    if file is not None:
        if not file.is_file():
            problems.append(f"{source}: hours.holidays_file: {file} does not exist")
        elif not os.access(file, os.R_OK):
            problems.append(f"{source}: hours.holidays_file: {file} cannot be read")
    return problems


def load_config(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    *,
    deployment: bool = False,
) -> Config:
    """Read, override from the environment, and validate the TOML file at `path`. Relative
    paths in it (data_dir, holidays_file) are relative to the file. `deployment=True` adds what
    running needs (`deployment_problems`), reported together with every other problem."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{source}: (file): does not exist"]) from None
    except OSError as exc:
        raise ConfigError([f"{source}: (file): cannot be read ({exc.strerror})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: (syntax): not valid TOML ({exc})"]) from None
    env = os.environ if env is None else env
    _apply_env(raw, env)
    cfg, problems = check_config(raw, source)
    if cfg is None and not deployment:
        raise ConfigError(problems)
    if cfg is None:
        # Still say what running would need, from the parts that did validate.
        lenient_cfg = lenient(Config, raw)
        if lenient_cfg is not None:
            problems += deployment_problems(_relative_to(lenient_cfg, source), source, env)
        raise ConfigError(problems)
    cfg = _relative_to(cfg, source)
    if deployment:
        late = deployment_problems(cfg, source, env)
        if late:
            raise ConfigError(late)
    return cfg


def _relative_to(cfg: Config, source: str) -> Config:
    base = Path(source).resolve().parent
    site, hours = cfg.site, cfg.hours
    if not site.data_dir.is_absolute():
        site = site.model_copy(update={"data_dir": base / site.data_dir})
    if hours.holidays_file is not None and not hours.holidays_file.is_absolute():
        hours = hours.model_copy(update={"holidays_file": base / hours.holidays_file})
    return cfg.model_copy(update={"site": site, "hours": hours})
