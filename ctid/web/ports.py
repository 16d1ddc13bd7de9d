"""The narrow Protocols the web edge needs from the features (their public services fit them; the
composition root wires them), in the features' own view types, plus the health report type."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol

from ctid.calls.control import CallMoved, DialStarted
from ctid.calls.seat_desk import SeatView
from ctid.calls.spy_control import ListenInStarted
from ctid.calls.spy_types import SpyMode
from ctid.config import SeatConfig
from ctid.core.actor import Actor
from ctid.i18n import Translator
from ctid.reports.tables import AgentMonthTable, KpiTable
from ctid.rotation.admin import HolidaysImported, RosterSeatRow, RosterView, SeatChanges
from ctid.tickets.callback_list import CallbackRow
from ctid.tickets.drafts import DraftView
from ctid.tickets.forms import CallerRow, IncidentDraft, SavedIncident
from ctid.tickets.links import DispatchRequest, SurveyRequest
from ctid.tickets.views import IncidentPage
from ctid.tickets.workflow import ActionResult, IncidentDetail, IncidentQuery


class IncidentPort(Protocol):
    async def save(self, draft: IncidentDraft, actor: Actor) -> SavedIncident:
        """Create or update the incident; raise `RequestRefusedError`/`StateConflictError` to refuse."""
        ...


class CallerPort(Protocol):
    async def search(self, query: str, limit: int) -> Sequence[CallerRow]:
        """Callers whose name, employee ID or phone matches `query` (at most `limit`)."""
        ...


class SpyPort(Protocol):
    async def spy(self, supervisor: Actor, seat_id: str, mode: SpyMode) -> ListenInStarted:
        """Ring the supervisor's phone into the seat's live call (ChanSpy); raise
        `StateConflictError` when the seat is not on a call."""
        ...

    async def stop(self, supervisor: Actor, session_id: str) -> None:
        """Hang up the supervisor's listen-in leg; `RecordMissingError` when it is already gone."""
        ...

    async def switch(self, supervisor: Actor, session_id: str, mode: SpyMode) -> ListenInStarted:
        """Change a running listen-in's mode (ChanSpy's DTMF 4/5/6 on the supervisor leg);
        `RecordMissingError` when it is gone."""
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

    def written(self) -> None:
        """The frame `get` handed out is written (frames may take the sink again)."""
        ...

    def deliver_to(self, sink: Callable[[str], bool] | None) -> None:
        """Hand frames to `sink` (False: queue it instead) while nothing is queued."""
        ...

    @property
    def dropped(self) -> bool: ...


class PushSource(Protocol):
    """The pop hub as the web sees it (`ctid.screenpop.hub.PopHub` fits)."""

    def subscribe(self, seat_id: str) -> PushSubscription: ...

    def subscribe_supervisor(self) -> PushSubscription: ...

    def finish_wrapup(self, seat_id: str, call_id: str, incident_number: str) -> bool: ...


class IncidentWorkflowPort(Protocol):
    """The incident lifecycle (`ctid.tickets.workflow.IncidentWorkflow`). Errors: `RecordMissingError`,
    `RequestRefusedError` (bad argument), `StateConflictError` (stale `expected_version` — the message says
    who changed it — or a step the status does not allow)."""

    async def list_open(self, query: IncidentQuery) -> IncidentPage:
        """The page of open incidents matching `query`, newest first."""
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


class CallControlPort(Protocol):
    """Live-call actions the web asks of the PBX (AMI)."""

    async def transfer_to_expert(self, actor: Actor, call_id: str, seat_id: str) -> CallMoved:
        """Hand the live call `call_id` to the expert seat `seat_id` (through the expert queue
        when that seat cannot take it); the call keeps its id. `StateConflictError` when the call has
        ended or is not the actor's."""
        ...

    async def hang_up(self, actor: Actor, call_id: str) -> None:
        """End the live call; `StateConflictError` when it has ended or is not the actor's."""
        ...

    async def transfer_to_seat(self, actor: Actor, call_id: str, seat_id: str) -> CallMoved:
        """Blind-transfer the live call to a named seat; `RequestRefusedError` for no such seat
        (or the actor's own), `StateConflictError` when that seat cannot take it now."""
        ...

    async def click_to_call(self, actor: Actor, number: str) -> DialStarted:
        """Originate: ring the actor's own phone (their seat's interface, or a supervisor's
        configured phone), then dial `number`. `RequestRefusedError` when the actor has no phone,
        `StateConflictError` when the PBX refuses."""
        ...


class CallbackPort(Protocol):
    """The callback list (`IncidentStore.list_callbacks/start_callback/finish_callback`)."""

    async def list_open(self) -> Sequence[CallbackRow]:
        """Open and in-progress callbacks, oldest request first."""
        ...

    async def start(self, callback_id: int, actor: Actor) -> CallbackRow:
        """open → in_progress, one more attempt; `StateConflictError` when someone works it already."""
        ...

    async def finish(
        self, callback_id: int, outcome: str, actor: Actor, *, incident_number: str | None
    ) -> CallbackRow:
        """Record how the call-back went (one of `CALLBACK_OUTCOMES`)."""
        ...


class LinkPort(Protocol):
    """Token-protected pages for people without a login (`IncidentStore.verify_link`,
    `respond_to_dispatch`, `record_rating`). Every method raises `TokenError` for a bad token and
    `TokenExpiredError` for an expired one; a step the incident no longer allows is
    `StateConflictError`."""

    async def dispatch_request(self, token: str) -> DispatchRequest: ...

    async def respond(
        self, token: str, decision: Literal["accept", "reject"], reason: str | None
    ) -> DispatchRequest:
        """Accept or reject; returns the request as it is afterwards."""
        ...

    async def survey(self, token: str) -> SurveyRequest: ...

    async def rate(self, token: str, score: int, comment: str | None) -> None:
        """Record the caller's 1–5 rating; `StateConflictError` when it was rated already."""
        ...


class RosterPort(Protocol):
    """The roster (`ctid.rotation.roster.RosterStore`). Refusals — including the plan check's
    uncovered-tier message — are `RequestRefusedError` with the store's message."""

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

    async def save_plan(
        self, seats: Sequence[RosterSeatRow], weeks: Mapping[str, str | None], actor: Actor
    ) -> None:
        """Every seat and each ISO week's lunch group at once (None: the rotation's own)."""
        ...


class ReportsPort(Protocol):
    """KPIs and the monthly review (`ctid.reports.kpi.compute`, `agent_month.compute`,
    `render.report_csv`/`agent_month_csv`). Bad periods are `RequestRefusedError`."""

    async def kpis(self, start: date, end: date, by: str) -> KpiTable: ...

    async def kpis_csv(
        self, start: date, end: date, by: str, t: Translator | None = None
    ) -> str: ...

    async def agent_month(self, month: str) -> AgentMonthTable: ...

    async def agent_month_csv(self, month: str, t: Translator | None = None) -> str: ...


class SeatStatePort(Protocol):
    """Seat state owned by ctid (`ctid.calls.seat_desk.SeatDesk`). Errors: `RecordMissingError`
    (no such seat), `RequestRefusedError` (a reason the agent may not choose),
    `StateConflictError` (nobody logged in, a pause only a supervisor or the rota ends, the PBX
    refused, not in wrap-up, extended already)."""

    def now(self) -> float:
        """Now on the clock of `SeatView` times (epoch seconds)."""
        ...

    async def views(self, seat_ids: Sequence[str]) -> Sequence[SeatView]: ...

    async def set_state(
        self, actor: Actor, seat_id: str, state: str, reason: str | None
    ) -> SeatView: ...

    async def wrapup(self, actor: Actor, seat_id: str, action: str) -> SeatView: ...


class DraftPort(Protocol):
    """The desk's incident drafts, one per call (`ctid.tickets.drafts.DeskDrafts`)."""

    async def put(
        self, actor: Actor, seat_id: str, call_id: str, fields: Mapping[str, object]
    ) -> DraftView: ...

    async def for_seat(self, seat_id: str) -> Sequence[DraftView]: ...

    async def saved(self, call_id: str, number: str) -> None: ...

    async def discard(self, seat_id: str, call_id: str) -> None: ...
