"""What the web edge needs from the rest of ctid, as small Protocols over plain frozen dataclasses
(the composition root wires the real adapters), plus the errors those adapters raise to get a
proper HTTP status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol

from ctid.config import SeatConfig
from ctid.core.errors import CtidError

Role = Literal["agent", "supervisor", "ops"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "ops")

REQUEST_TYPES = ("fault", "service_request", "consultation", "new_requirement", "complaint")
CATEGORIES = ("software", "hardware", "network", "database", "business_application")
LEVELS = ("high", "medium", "low")
SpyMode = Literal["listen", "whisper", "barge"]


class PortError(CtidError):
    """An adapter refused a request; the subclass picks the HTTP status."""


class RejectedError(PortError):
    """The request is malformed or breaks a rule (HTTP 400); the message is shown to the user."""


class NotFoundError(PortError):
    """The thing asked for does not exist (HTTP 404)."""


class ConflictError(PortError):
    """The request clashes with the current state (HTTP 409), e.g. the incident moved on."""


class LinkError(PortError):
    """An e-mailed link's token is malformed or was tampered with (HTTP 400)."""


class LinkExpiredError(LinkError):
    """An e-mailed link's token is genuine but past its expiry (HTTP 410)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The logged-in person a request acts for."""

    employee_id: str
    name: str
    role: Role
    seat_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentDraft:
    """The incident form of the agent desktop, validated for shape (the port checks the rest)."""

    number: str | None
    """The incident opened for this call, if any (update it rather than open another)."""
    call_id: str | None
    caller_id: int | None
    """A directory caller; None with a name/phone means a new caller."""
    caller_name: str
    phone: str
    department: str
    office: str
    request_type: str
    category: str
    impact: str
    urgency: str
    summary: str
    description: str


@dataclass(frozen=True, slots=True)
class SavedIncident:
    number: str
    status: str


class IncidentPort(Protocol):
    async def save(self, draft: IncidentDraft, actor: Actor) -> SavedIncident:
        """Create or update the incident; raise `RejectedError`/`ConflictError` to refuse."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerRow:
    caller_id: int
    name: str
    phones: tuple[str, ...] = ()
    employee_id: str = ""
    department: str = ""
    office: str = ""
    vip: bool = False
    open_incidents: int = 0


class CallerPort(Protocol):
    async def search(self, query: str, limit: int) -> Sequence[CallerRow]:
        """Callers whose name, employee ID or phone matches `query` (at most `limit`)."""
        ...


@dataclass(frozen=True, slots=True)
class SpyStarted:
    seat_id: str
    mode: SpyMode
    detail: str = ""
    session_id: str = ""
    """Names this listen-in for `stop`/`switch` (e.g. the supervisor leg's channel or call id)."""


class SpyPort(Protocol):
    async def spy(self, supervisor: Actor, seat_id: str, mode: SpyMode) -> SpyStarted:
        """Ring the supervisor's phone into the seat's live call (ChanSpy); raise
        `ConflictError` when the seat is not on a call."""
        ...

    async def stop(self, supervisor: Actor, session_id: str) -> None:
        """Hang up the supervisor's listen-in leg; `NotFoundError` when it is already gone."""
        ...

    async def switch(self, supervisor: Actor, session_id: str, mode: SpyMode) -> SpyStarted:
        """Change a running listen-in's mode (ChanSpy's DTMF 4/5/6 on the supervisor leg);
        `NotFoundError` when it is gone."""
        ...


@dataclass(frozen=True, slots=True)
class HealthReport:
    ok: bool
    checks: Mapping[str, str] = field(default_factory=dict)
    """Name → state, e.g. {"ami": "up", "database": "ok"}."""


class HealthPort(Protocol):
    async def health(self) -> HealthReport: ...


class SeatDirectory(Protocol):
    """Which seat a person staffs right now (the roster may move people during the day)."""

    def seat_of(self, employee_id: str) -> str | None: ...

    def seat_ids(self) -> Sequence[str]: ...


class ConfigSeats:
    """The seat binding from config: the seat whose `staffed_by` is the employee ID."""

    def __init__(self, seats: Sequence[SeatConfig]) -> None:
        self._ids = tuple(s.id for s in seats)
        self._by_employee = {s.staffed_by: s.id for s in seats if s.staffed_by}

    def seat_of(self, employee_id: str) -> str | None:
        return self._by_employee.get(employee_id)

    def seat_ids(self) -> Sequence[str]:
        return self._ids


class PushSubscription(Protocol):
    """One desktop's stream of JSON text frames."""

    async def get(self) -> str | None:
        """The next frame; None once closed or dropped."""
        ...

    def close(self) -> None: ...

    @property
    def dropped(self) -> bool: ...


class PushSource(Protocol):
    """The pop hub as the web sees it (`ctid.screenpop.hub.PopHub` fits)."""

    def subscribe(self, seat_id: str) -> PushSubscription: ...

    def subscribe_supervisor(self) -> PushSubscription: ...

    def finish_wrapup(self, seat_id: str, call_id: str, incident_number: str) -> bool: ...


# ------------------------------------------------------------------ incident workflow

INCIDENT_ACTIONS = (
    "start",
    "classify",
    "prioritize",
    "resolve_first_line",
    "hand_to_expert",
    "dispatch",
    "accept",
    "reject",
    "reassign",
    "escalate",
    "suspend",
    "resume",
    "resolve",
    "close",
    "reopen",
    "flag",
    "rate",
)
"""The lifecycle steps the web may ask for (`ctid.tickets.lifecycle.ACTIONS`)."""

INCIDENT_STATUSES = (
    "new",
    "assigned",
    "in_progress",
    "handed_to_expert",
    "escalated",
    "dispatched",
    "accepted",
    "rejected",
    "suspended",
    "resolved",
    "closed",
    "reopened",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentQuery:
    """Filters of the open-incident list; every given filter must match."""

    seat: str | None = None
    group: str | None = None
    employee: str | None = None
    """Owned by this employee ID (`owner_employee`)."""
    statuses: tuple[str, ...] = ()
    """Empty: every status that is not resolved or closed."""
    limit: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentSummary:
    """One line of the incident list."""

    number: str
    status: str
    summary: str
    request_type: str
    category: str | None = None
    priority: str | None = None
    caller_name: str | None = None
    caller_number: str | None = None
    owner_seat: str | None = None
    owner_employee: str | None = None
    owner_group: str | None = None
    created_at: datetime
    updated_at: datetime
    sla_resolve_due: datetime | None = None
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryItem:
    """One step of an incident's history (`incident_history`)."""

    at: datetime
    actor: str
    action: str
    from_status: str | None = None
    to_status: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentDetail:
    """Everything the incident page shows. `allowed_actions` is
    `ctid.tickets.lifecycle.allowed_actions(status)`; `live_call_id` is the call still connected
    for this incident, if any (hand-to-expert then offers to transfer it)."""

    number: str
    status: str
    version: int
    channel: str
    request_type: str
    category: str | None = None
    impact: str | None = None
    urgency: str | None = None
    priority: str | None = None
    summary: str
    description: str | None = None
    caller_id: int | None = None
    caller_name: str | None = None
    caller_number: str | None = None
    caller: CallerRow | None = None
    owner_seat: str | None = None
    owner_employee: str | None = None
    owner_group: str | None = None
    created_at: datetime
    updated_at: datetime
    sla_response_due: datetime | None = None
    sla_resolve_due: datetime | None = None
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    flags: tuple[str, ...] = ()
    satisfaction: int | None = None
    satisfaction_comment: str | None = None
    allowed_actions: tuple[str, ...] = ()
    history: tuple[HistoryItem, ...] = ()
    live_call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult:
    """What a lifecycle step did. `transfer_seat`: the step asks for the live call to be moved
    to this seat (`ApplyResult.transfer`); `mails`: how many mails were queued."""

    number: str
    status: str
    version: int
    transfer_seat: str | None = None
    mails: int = 0


class IncidentWorkflowPort(Protocol):
    """The incident lifecycle (`ctid.tickets.store.IncidentStore`). Errors: `NotFoundError`,
    `RejectedError` (bad argument), `ConflictError` (stale `expected_version` — the message says
    who changed it — or a step the status does not allow)."""

    async def list_open(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """Open incidents matching `query`, newest first."""
        ...

    async def detail(self, number: str) -> IncidentDetail | None:
        """The incident with its history (oldest first); None when there is no such number."""
        ...

    async def apply(
        self,
        number: str,
        action: str,
        actor: Actor,
        *,
        expected_version: int,
        args: Mapping[str, str],
    ) -> ActionResult:
        """Run one lifecycle step (`IncidentStore.apply(number, action, actor.employee_id,
        expected_version=..., **args)`); `args` are the form's text fields."""
        ...


# ------------------------------------------------------------------ call control


@dataclass(frozen=True, slots=True)
class CallMoved:
    call_id: str
    target: str
    """Where the call went (the expert seat or queue)."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DialStarted:
    number: str
    phone: str
    """The phone that rings first (the actor's seat interface or supervisor phone)."""
    detail: str = ""


class CallControlPort(Protocol):
    """Live-call actions the web asks of the PBX (AMI)."""

    async def transfer_to_expert(self, actor: Actor, call_id: str, seat_id: str) -> CallMoved:
        """Hand the live call `call_id` to the expert seat `seat_id` (through the expert queue
        when that seat cannot take it); the call keeps its id. `ConflictError` when the call has
        ended or is not the actor's."""
        ...

    async def click_to_call(self, actor: Actor, number: str) -> DialStarted:
        """Originate: ring the actor's own phone (their seat's interface, or a supervisor's
        configured phone), then dial `number`. `RejectedError` when the actor has no phone,
        `ConflictError` when the PBX refuses."""
        ...


# ------------------------------------------------------------------ callbacks

CALLBACK_REASONS = ("abandoned", "missed", "after_hours", "capped")
CALLBACK_OUTCOMES = ("reached", "no_answer", "wrong_number", "not_needed")
"""`ctid.tickets.store.CALLBACK_OUTCOMES`: reached/not_needed → done, wrong_number → failed,
no_answer → open again (failed after the last attempt)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRow:
    callback_id: int
    number: str
    reason: str
    requested_at: datetime
    status: str
    """open | in_progress | done | failed"""
    attempts: int
    caller_name: str | None = None
    worked_by: str | None = None
    outcome: str | None = None
    call_id: str | None = None
    incident_number: str | None = None


class CallbackPort(Protocol):
    """The callback list (`IncidentStore.list_callbacks/start_callback/finish_callback`)."""

    async def list_open(self) -> Sequence[CallbackRow]:
        """Open and in-progress callbacks, oldest request first."""
        ...

    async def start(self, callback_id: int, actor: Actor) -> CallbackRow:
        """open → in_progress, one more attempt; `ConflictError` when someone works it already."""
        ...

    async def finish(
        self, callback_id: int, outcome: str, actor: Actor, *, incident_number: str | None
    ) -> CallbackRow:
        """Record how the call-back went (one of `CALLBACK_OUTCOMES`)."""
        ...


# ------------------------------------------------------------------ e-mailed links


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchRequest:
    """What the dispatch link's page shows the second-line assignee. `waiting`: the incident is
    still dispatched to the link's group, so accept/reject are possible."""

    number: str
    summary: str
    status: str
    group: str
    expires_at: datetime
    waiting: bool
    description: str | None = None
    priority: str | None = None
    assignee: str | None = None
    caller_name: str | None = None
    caller_phone: str | None = None
    caller_office: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyRequest:
    """What the satisfaction survey page shows the caller."""

    number: str
    summary: str
    expires_at: datetime
    rated: bool


class LinkPort(Protocol):
    """Token-protected pages for people without a login (`IncidentStore.verify_link`,
    `respond_to_dispatch`, `record_rating`). Every method raises `LinkError` for a bad token and
    `LinkExpiredError` for an expired one; a step the incident no longer allows is
    `ConflictError`."""

    async def dispatch_request(self, token: str) -> DispatchRequest: ...

    async def respond(
        self, token: str, decision: Literal["accept", "reject"], reason: str | None
    ) -> DispatchRequest:
        """Accept or reject; returns the request as it is afterwards."""
        ...

    async def survey(self, token: str) -> SurveyRequest: ...

    async def rate(self, token: str, score: int, comment: str | None) -> None:
        """Record the caller's 1–5 rating; `ConflictError` when it was rated already."""
        ...


# ------------------------------------------------------------------ ops roster


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterSeatRow:
    seat_id: str
    name: str
    tier: str
    interface: str
    staffed_by: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatChanges:
    """The seat form; the adapter changes only what differs (`RosterStore.set_name/set_tier/
    set_interface/set_staff/set_active`)."""

    name: str
    tier: str
    interface: str
    staffed_by: str
    """Empty: nobody staffs the seat."""
    active: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LunchOverrideRow:
    kind: Literal["day", "week_swap"]
    key: str
    """`2026-12-03` for a day, `2026-W49` for a week swap (what `remove_override` takes)."""
    group: str
    created_by: str = ""
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterView:
    seats: tuple[RosterSeatRow, ...]
    overrides: tuple[LunchOverrideRow, ...] = ()
    lunch_groups: tuple[str, ...] = ()
    plan_text: str = ""
    """The coming weeks as `ctid roster show --weeks N` prints them (`Rota.render`)."""
    desk: Mapping[str, object] = field(default_factory=dict)
    """`ctid.rotation.desk.state_summary` for now."""
    holidays: tuple[tuple[date, str, str], ...] = ()
    """(day, kind holiday|workday, name) stored in the database, upcoming first."""


@dataclass(frozen=True, slots=True)
class HolidaysImported:
    added: int
    changed: int
    unchanged: int


class RosterPort(Protocol):
    """The roster (`ctid.rotation.roster.RosterStore`). Refusals — including the plan check's
    uncovered-tier message — are `RejectedError` with the store's message."""

    async def view(self, weeks: int) -> RosterView: ...

    async def update_seat(
        self, seat_id: str, changes: SeatChanges, actor: Actor
    ) -> RosterSeatRow: ...

    async def set_day_override(
        self, day: date, group: str, actor: Actor, note: str | None
    ) -> None: ...

    async def set_week_swap(
        self, week: str, group: str, actor: Actor, note: str | None
    ) -> None: ...

    async def remove_override(self, key: str, actor: Actor) -> None: ...

    async def import_holidays(self, text: str, actor: Actor, source: str) -> HolidaysImported: ...


# ------------------------------------------------------------------ reports

KpiKind = Literal["count", "rate", "seconds", "score"]
REPORT_GROUPINGS = ("total", "seat", "tier", "day", "hour")


@dataclass(frozen=True, slots=True)
class KpiColumn:
    name: str
    """`KpiRow` attribute and CSV header."""
    label: str
    kind: KpiKind
    """rate: a fraction 0–1; seconds: a duration; score: an average 1–5."""


@dataclass(frozen=True, slots=True)
class KpiLine:
    key: str
    """The group (seat id, tier, day, hour) or `total`."""
    values: Mapping[str, float | int | None]
    """Column name → value (None: nothing to measure)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiTable:
    start: date
    end: date
    by: str
    timezone: str
    columns: tuple[KpiColumn, ...]
    """`ctid.reports.render.KPI_COLUMNS`."""
    rows: tuple[KpiLine, ...]
    total: KpiLine
    incidents_by_type: tuple[tuple[str, str | None, int], ...] = ()
    """(request type, category or None, count)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMonthLine:
    key: str
    name: str
    incidents_handled: int
    consultations_answered: int
    satisfaction_recorded: int
    callbacks_done: int

    @property
    def followups(self) -> int:
        return self.satisfaction_recorded + self.callbacks_done


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMonthTable:
    month: str
    timezone: str
    seats: tuple[AgentMonthLine, ...]
    staff: tuple[AgentMonthLine, ...]


class ReportsPort(Protocol):
    """KPIs and the monthly review (`ctid.reports.kpi.compute`, `agent_month.compute`,
    `render.report_csv`/`agent_month_csv`). Bad periods are `RejectedError`."""

    async def kpis(self, start: date, end: date, by: str) -> KpiTable: ...

    async def kpis_csv(self, start: date, end: date, by: str) -> str: ...

    async def agent_month(self, month: str) -> AgentMonthTable: ...

    async def agent_month_csv(self, month: str) -> str: ...
