"""What the web edge needs from the rest of ctid, as small Protocols over plain frozen dataclasses
(the composition root wires the real adapters), plus the errors those adapters raise to get a
proper HTTP status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


class SpyPort(Protocol):
    async def spy(self, supervisor: Actor, seat_id: str, mode: SpyMode) -> SpyStarted:
        """Ring the supervisor's phone into the seat's live call (ChanSpy); raise
        `ConflictError` when the seat is not on a call."""
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
