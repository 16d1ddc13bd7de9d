"""Adapters from the web edge's ports to the stores and services (wiring, so it lives here):
incident form and workflow, callbacks and e-mailed links, live-call control, listen-in (spy),
roster, reports and health; each maps its feature's errors onto the web's (HTTP status)."""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.app.spool import WriteSpool
from ctid.asterisk.actions import AmiPbxControl
from ctid.asterisk.ami import AmiConnection
from ctid.calls.service import CallService
from ctid.calls.spy import (
    BadSpyModeError,
    NotSupervisorError,
    SeatNotOnCallError,
    SpyRequestFailedError,
    SpyService,
    SpySession,
    SpySessionEndedError,
    UnknownSpySessionError,
    UnsafeSpyTargetError,
)
from ctid.config import Config
from ctid.core.clock import Clock
from ctid.core.errors import AmiError, ConfigError, CtidError, TransitionError
from ctid.core.events import OriginateResponded
from ctid.core.ids import CallId, SeatId
from ctid.reports import agent_month as agent_month_report
from ctid.reports import kpi
from ctid.reports.period import ReportError
from ctid.reports.render import KPI_COLUMNS, agent_month_csv, report_csv
from ctid.rotation.calendar import CalendarError
from ctid.rotation.desk import state_summary
from ctid.rotation.enforcer import RotaEnforcer
from ctid.rotation.lunch import IsoWeek, RotationError
from ctid.rotation.roster import RosterError, RosterSeat, RosterStore
from ctid.tickets.directory import CallerDirectory, phone_plan
from ctid.tickets.errors import ConflictError as TicketConflict
from ctid.tickets.errors import InvalidInputError, TokenError, TokenExpiredError
from ctid.tickets.errors import NotFoundError as TicketNotFound
from ctid.tickets.lifecycle import allowed_actions
from ctid.tickets.phones import PhonePlan, normalize_phone
from ctid.tickets.store import IncidentStore
from ctid.tickets.views import CallbackView, CallerView, IncidentView
from ctid.web.ports import (
    ActionResult,
    Actor,
    AgentMonthLine,
    AgentMonthTable,
    CallbackRow,
    CallerRow,
    CallMoved,
    ConflictError,
    DialStarted,
    DispatchRequest,
    HealthReport,
    HistoryItem,
    HolidaysImported,
    IncidentDetail,
    IncidentDraft,
    IncidentQuery,
    IncidentSummary,
    KpiColumn,
    KpiLine,
    KpiTable,
    LinkError,
    LinkExpiredError,
    LunchOverrideRow,
    NotFoundError,
    RejectedError,
    RosterSeatRow,
    RosterView,
    SavedIncident,
    SeatChanges,
    SpyMode,
    SpyStarted,
    SurveyRequest,
)

log = structlog.get_logger(__name__)


def _port_error(exc: CtidError) -> CtidError:
    """The tickets' errors as the web's (each picks an HTTP status)."""
    if isinstance(exc, TicketNotFound):
        return NotFoundError(str(exc))
    if isinstance(exc, TicketConflict | TransitionError):
        return ConflictError(str(exc))
    if isinstance(exc, InvalidInputError):
        return RejectedError(str(exc))
    if isinstance(exc, TokenExpiredError):
        return LinkExpiredError(str(exc))
    if isinstance(exc, TokenError):
        return LinkError(str(exc))
    return exc


@dataclass
class IncidentForms:
    """The desktop's incident form: create, or describe + classify + prioritize the call's one;
    corrections to a directory caller's department or office made in the pop go to the
    directory (audited there)."""

    store: IncidentStore
    directory: CallerDirectory | None = None

    async def _correct_caller(self, draft: IncidentDraft, who: str) -> None:
        if self.directory is None or draft.caller_id is None:
            return
        caller = await self.directory.get(draft.caller_id)
        if caller is None:
            return
        changes: dict[str, object] = {}
        if draft.department and draft.department != (caller.department or ""):
            changes["department"] = draft.department
        if draft.office and draft.office != (caller.office_location or ""):
            changes["office_location"] = draft.office
        if changes:
            await self.directory.update(draft.caller_id, changes, who)

    async def save(self, draft: IncidentDraft, actor: Actor) -> SavedIncident:
        who = actor.employee_id
        try:
            await self._correct_caller(draft, who)
            number = draft.number
            if not number and draft.call_id:
                found = await self.store.incident_for_call(draft.call_id)
                number = found.number if found else None
            if not number:
                view = await self.store.create(
                    actor=who,
                    summary=draft.summary,
                    request_type=draft.request_type,
                    description=draft.description,
                    category=draft.category or None,
                    impact=draft.impact or None,
                    urgency=draft.urgency or None,
                    caller_id=draft.caller_id,
                    caller_number=draft.phone or None,
                    caller_name=draft.caller_name or None,
                    owner_seat=actor.seat_id,
                    owner_employee=who,
                )
                return SavedIncident(view.number, view.status)
            await self.store.describe(
                number,
                who,
                summary=draft.summary,
                description=draft.description,
                caller_id=draft.caller_id,
                caller_name=draft.caller_name or None,
            )
            await self.store.apply(
                number,
                "classify",
                who,
                request_type=draft.request_type,
                category=draft.category or None,
            )
            result = await self.store.apply(
                number, "prioritize", who, impact=draft.impact, urgency=draft.urgency
            )
            return SavedIncident(result.incident.number, result.incident.status)
        except CtidError as exc:
            raise _port_error(exc) from exc


@dataclass
class CallerSearch:
    directory: CallerDirectory
    store: IncidentStore

    async def search(self, query: str, limit: int) -> Sequence[CallerRow]:
        rows = []
        for c in await self.directory.search(query, limit=limit):
            rows.append(
                CallerRow(
                    caller_id=c.id,
                    name=c.name,
                    phones=tuple(p.raw for p in c.phones),
                    employee_id=c.employee_id or "",
                    department=c.department or "",
                    office=c.office_location or "",
                    vip=c.vip,
                )
            )
        return rows


@dataclass
class DaemonHealth:
    ami: AmiConnection
    sessions: async_sessionmaker[AsyncSession]
    spool: WriteSpool
    loop_time: Callable[[], float]

    async def health(self) -> HealthReport:
        h = self.ami.health()
        checks = {
            "ami": "logged in" if h.logged_in else f"down ({h.last_error or 'connecting'})",
            "ami_reconnects": str(h.reconnects),
            "ami_events_per_s": f"{h.events_per_s:.1f}",
        }
        ok = h.logged_in
        try:
            async with self.sessions() as s:
                await s.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # a health check reports, it never raises
            checks["database"] = f"down ({type(exc).__name__})"
            ok = False
        checks["db_writes_waiting"] = str(self.spool.backlog)
        if self.spool.backlog:
            ok = False
        return HealthReport(ok=ok, checks=checks)


# ------------------------------------------------------------------ incident workflow

_RESERVED_ARGS = frozenset({"number", "action", "actor", "expected_version"})
"""`IncidentStore.apply`'s own parameters: a form field with one of these names is refused."""


def _summary(v: IncidentView) -> IncidentSummary:
    return IncidentSummary(
        number=v.number,
        status=v.status,
        summary=v.summary,
        request_type=v.request_type,
        category=v.category,
        priority=v.priority,
        caller_name=v.caller_name,
        caller_number=v.caller_number,
        owner_seat=v.owner_seat,
        owner_employee=v.owner_employee,
        owner_group=v.owner_group,
        created_at=v.created_at,
        updated_at=v.updated_at,
        sla_resolve_due=v.sla_resolve_due,
        version=v.version,
    )


def _caller_row(c: CallerView, open_incidents: int = 0) -> CallerRow:
    return CallerRow(
        caller_id=c.id,
        name=c.name,
        phones=tuple(p.raw for p in c.phones),
        employee_id=c.employee_id or "",
        department=c.department or "",
        office=c.office_location or "",
        vip=c.vip,
        open_incidents=open_incidents,
    )


@dataclass
class IncidentWorkflow:
    """`IncidentWorkflowPort` over `IncidentStore`. `live_calls()` maps the call id of every call
    still connected to its incident number (`DeskEvents.incidents`)."""

    store: IncidentStore
    directory: CallerDirectory
    live_calls: Callable[[], Mapping[str, str]]

    async def list_open(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        try:
            views = await self.store.list_open(
                owner_seat=query.seat,
                owner_group=query.group,
                statuses=query.statuses or None,
                # The store cannot filter by owner employee: read more, filter here.
                limit=1000 if query.employee else query.limit,
            )
        except CtidError as exc:
            raise _port_error(exc) from exc
        if query.employee:
            views = [v for v in views if v.owner_employee == query.employee][: query.limit]
        return [_summary(v) for v in views]

    async def detail(self, number: str) -> IncidentDetail | None:
        v = await self.store.get(number)
        if v is None:
            return None
        history = await self.store.history(v.number)
        caller = None
        if v.caller_id is not None:
            found = await self.directory.get(v.caller_id)
            caller = _caller_row(found) if found is not None else None
        live = next((cid for cid, n in self.live_calls().items() if n == v.number), None)
        return IncidentDetail(
            number=v.number,
            status=v.status,
            version=v.version,
            channel=v.channel,
            request_type=v.request_type,
            category=v.category,
            impact=v.impact,
            urgency=v.urgency,
            priority=v.priority,
            summary=v.summary,
            description=v.description,
            caller_id=v.caller_id,
            caller_name=v.caller_name,
            caller_number=v.caller_number,
            caller=caller,
            owner_seat=v.owner_seat,
            owner_employee=v.owner_employee,
            owner_group=v.owner_group,
            created_at=v.created_at,
            updated_at=v.updated_at,
            sla_response_due=v.sla_response_due,
            sla_resolve_due=v.sla_resolve_due,
            responded_at=v.responded_at,
            resolved_at=v.resolved_at,
            closed_at=v.closed_at,
            flags=v.flags,
            satisfaction=v.satisfaction,
            satisfaction_comment=v.satisfaction_comment,
            allowed_actions=allowed_actions(v.status),  # type: ignore[arg-type]
            history=tuple(
                HistoryItem(
                    at=h.at,
                    actor=h.actor,
                    action=h.action,
                    from_status=h.from_status,
                    to_status=h.to_status,
                    detail=h.detail,
                )
                for h in history
            ),
            live_call_id=live,
        )

    async def apply(
        self,
        number: str,
        action: str,
        actor: Actor,
        *,
        expected_version: int,
        args: Mapping[str, str],
    ) -> ActionResult:
        bad = sorted(_RESERVED_ARGS.intersection(args))
        if bad:
            raise RejectedError(f"unexpected field {bad[0]!r}")
        try:
            result = await self.store.apply(
                number, action, actor.employee_id, expected_version=expected_version, **args
            )
        except CtidError as exc:
            raise _port_error(exc) from exc
        return ActionResult(
            number=result.incident.number,
            status=result.incident.status,
            version=result.incident.version,
            transfer_seat=result.transfer.seat if result.transfer is not None else None,
            mails=len(result.mails),
        )


# ------------------------------------------------------------------ callbacks


@dataclass
class Callbacks:
    """`CallbackPort` over the store's callback list. `incident_number` is only known for a row
    this adapter just finished with one (the list view carries the incident's id, not number)."""

    store: IncidentStore
    directory: CallerDirectory

    async def _row(
        self, v: CallbackView, names: dict[int, str | None], incident_number: str | None = None
    ) -> CallbackRow:
        name: str | None = None
        if v.caller_id is not None:
            if v.caller_id not in names:
                found = await self.directory.get(v.caller_id)
                names[v.caller_id] = found.name if found is not None else None
            name = names[v.caller_id]
        return CallbackRow(
            callback_id=v.id,
            number=v.caller_number,
            reason=v.reason,
            requested_at=v.requested_at,
            status=v.status,
            attempts=v.attempts,
            caller_name=name,
            worked_by=v.worked_by,
            outcome=v.outcome,
            call_id=v.call_id,
            incident_number=incident_number,
        )

    async def list_open(self) -> Sequence[CallbackRow]:
        names: dict[int, str | None] = {}
        return [await self._row(v, names) for v in await self.store.list_callbacks()]

    async def start(self, callback_id: int, actor: Actor) -> CallbackRow:
        try:
            v = await self.store.start_callback(callback_id, actor.employee_id)
        except CtidError as exc:
            raise _port_error(exc) from exc
        return await self._row(v, {})

    async def finish(
        self, callback_id: int, outcome: str, actor: Actor, *, incident_number: str | None
    ) -> CallbackRow:
        try:
            v = await self.store.finish_callback(
                callback_id,
                outcome,
                worked_by=actor.employee_id,
                incident_number=incident_number,
            )
        except CtidError as exc:
            raise _port_error(exc) from exc
        return await self._row(v, {}, incident_number)


# ------------------------------------------------------------------ e-mailed links


@dataclass
class Links:
    """`LinkPort`: the dispatch accept/reject page and the satisfaction survey."""

    store: IncidentStore
    directory: CallerDirectory

    async def dispatch_request(self, token: str) -> DispatchRequest:
        try:
            claims = self.store.verify_link(token, "dispatch")
        except CtidError as exc:
            raise _port_error(exc) from exc
        v = await self.store.get(claims.number)
        if v is None:
            raise NotFoundError(f"no incident {claims.number}")
        office = None
        if v.caller_id is not None:
            found = await self.directory.get(v.caller_id)
            office = found.office_location if found is not None else None
        return DispatchRequest(
            number=v.number,
            summary=v.summary,
            status=v.status,
            group=claims.group or "",
            expires_at=claims.expires_at,
            waiting=v.status == "dispatched" and v.owner_group == claims.group,
            description=v.description,
            priority=v.priority,
            assignee=claims.assignee,
            caller_name=v.caller_name,
            caller_phone=v.caller_number,
            caller_office=office,
        )

    async def respond(
        self, token: str, decision: Literal["accept", "reject"], reason: str | None
    ) -> DispatchRequest:
        try:
            await self.store.respond_to_dispatch(token, decision, reason)
        except CtidError as exc:
            raise _port_error(exc) from exc
        return await self.dispatch_request(token)

    async def survey(self, token: str) -> SurveyRequest:
        try:
            claims = self.store.verify_link(token, "survey")
        except CtidError as exc:
            raise _port_error(exc) from exc
        v = await self.store.get(claims.number)
        if v is None:
            raise NotFoundError(f"no incident {claims.number}")
        return SurveyRequest(
            number=v.number,
            summary=v.summary,
            expires_at=claims.expires_at,
            rated=v.satisfaction is not None,
        )

    async def rate(self, token: str, score: int, comment: str | None) -> None:
        if (await self.survey(token)).rated:
            raise ConflictError("this incident has already been rated, thank you")
        try:
            await self.store.record_rating(token, score, comment)
        except CtidError as exc:
            raise _port_error(exc) from exc


# ------------------------------------------------------------------ live-call control

CALLBACK_CONTEXT = "ctid-callback"
"""The dialplan context click-to-call originates into (`contrib/asterisk/extensions.conf`)."""
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_DIGITS = re.compile(r"^\d{2,20}$")


def dial_string(number: str, plan: PhonePlan) -> str | None:
    """The digits the PBX dials for a stored number, or None when it is not callable.

    `ext:NNNN` → `NNNN`; a home-country mobile (`+8613800138000`) → `13800138000`; a home-country
    landline (`+861012345678`) → national format with the trunk prefix, `01012345678`; any other
    country → `00` + country code + number (China's international prefix). An extension behind a
    switchboard (`… ext 123`) is dropped: the agent asks the operator for it."""
    norm = normalize_phone(number, plan)
    if norm is None:
        return None
    n = norm.number
    if n.startswith("ext:"):
        digits = n.removeprefix("ext:")
    elif n.startswith("+" + plan.country_code):
        national = n.removeprefix("+" + plan.country_code)
        digits = national if _MOBILE.match(national) else "0" + national
    else:
        digits = "00" + n.removeprefix("+")
    return digits if _DIGITS.match(digits) else None


class OriginateWatch:
    """Follows `OriginateResponse` on the bus, so click-to-call can tell within a moment whether
    the PBX could ring the phone at all. Responses that come before anyone waits for them are
    kept (the bus may deliver the event before the Originate's reply has been handed back)."""

    def __init__(self, keep: int = 64) -> None:
        self._keep = keep
        self._waiting: dict[str, asyncio.Future[OriginateResponded]] = {}
        self._early: OrderedDict[str, OriginateResponded] = OrderedDict()

    async def on_event(self, item: object) -> None:
        if not isinstance(item, OriginateResponded) or not item.action_id:
            return
        waiter = self._waiting.pop(item.action_id, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(item)
            return
        self._early[item.action_id] = item
        while len(self._early) > self._keep:
            self._early.popitem(last=False)

    async def wait(self, action_id: str, timeout_s: float) -> OriginateResponded | None:
        """The response to `action_id`, or None when none came within `timeout_s`."""
        early = self._early.pop(action_id, None)
        if early is not None:
            return early
        waiter: asyncio.Future[OriginateResponded] = asyncio.get_running_loop().create_future()
        self._waiting[action_id] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(action_id, None)


@dataclass
class CallControl:
    """`CallControlPort`: hand a live call to the expert queue, and click-to-call.

    Click-to-call originates the actor's own phone (their seat's interface from the roster, else
    a supervisor's configured phone) into `exten@ctid-callback`. It waits up to `confirm_s` for
    the `OriginateResponse`: an immediate Failure (unknown or unreachable phone) is reported as
    `ConflictError`; no answer within that time means the phone is ringing."""

    cfg: Config
    calls: CallService
    pbx: AmiPbxControl
    rota: RotaEnforcer
    originates: OriginateWatch
    confirm_s: float = 2.0

    async def transfer_to_expert(self, actor: Actor, call_id: str, seat_id: str) -> CallMoved:
        call = self.calls.tracker.call(CallId(call_id))
        if call is None or call.caller_channel is None:
            raise ConflictError(f"call {call_id} has ended")
        if actor.role == "agent" and call.answered_by != actor.seat_id:
            raise ConflictError(f"call {call_id} is not on your seat")
        queue = self.cfg.talk_cap.expert_queue
        # Always through the expert queue: the queue rings the free expert seats with ctid's
        # ring rules, instead of ctid picking a seat that may be busy or at lunch.
        try:
            await self.calls.transfer_to_queue(
                CallId(call_id), queue, SeatId(actor.seat_id) if actor.seat_id else None
            )
        except CtidError as exc:
            raise ConflictError(f"the call was not transferred: {exc}") from exc
        log.info("web_call_transferred", call_id=call_id, queue=queue, seat=seat_id)
        return CallMoved(call_id, queue, f"to the {queue} queue (asked for {seat_id})")

    def _phone(self, actor: Actor) -> str | None:
        if actor.seat_id:
            seat: RosterSeat | None = self.rota.current.rota.seat(actor.seat_id)
            if seat is not None:
                return seat.interface
            cfg_seat = self.cfg.seat(actor.seat_id)
            if cfg_seat is not None:
                return cfg_seat.interface
        sup = next((s for s in self.cfg.supervisors if s.employee_id == actor.employee_id), None)
        return sup.phone if sup is not None else None

    async def click_to_call(self, actor: Actor, number: str) -> DialStarted:
        phone = self._phone(actor)
        if phone is None:
            raise RejectedError("you have no phone to ring: no seat and no supervisor phone")
        digits = dial_string(number, phone_plan(self.cfg.site))
        if digits is None:
            raise RejectedError(f"{number[:40]!r} is not a number the PBX can dial")
        try:
            action_id = await self.pbx.originate_exten(
                channel=phone,
                context=CALLBACK_CONTEXT,
                exten=digits,
                caller_id=f'"Call back {digits}" <{digits}>',
            )
        except AmiError as exc:
            raise ConflictError(f"the PBX did not take the call: {exc}") from exc
        log.info("click_to_call", phone=phone, exten=digits, by=actor.employee_id)
        response = await self.originates.wait(action_id, self.confirm_s) if action_id else None
        if response is not None and response.response.lower() != "success":
            log.warning("click_to_call_failed", phone=phone, reason=response.reason)
            raise ConflictError(
                f"the PBX could not ring {phone} (OriginateResponse {response.response}, "
                f"reason {response.reason})"
            )
        return DialStarted(number, phone, f"ringing {phone}, then dialling {digits}")


# ------------------------------------------------------------------ listen-in


def _spy_error(exc: CtidError) -> CtidError:
    if isinstance(exc, SeatNotOnCallError | SpyRequestFailedError):
        return ConflictError(str(exc))
    if isinstance(exc, UnknownSpySessionError | SpySessionEndedError):
        return NotFoundError(str(exc))
    if isinstance(exc, NotSupervisorError | BadSpyModeError | UnsafeSpyTargetError):
        return RejectedError(str(exc))
    return exc


def _spy_started(s: SpySession) -> SpyStarted:
    return SpyStarted(
        s.seat_id,
        s.mode,
        f"your phone rings to {s.mode} to {s.seat_id} (call {s.call_id})",
        str(s.session_id),
    )


def _spy_session_id(session_id: str) -> int:
    if not session_id.isdigit() or len(session_id) > 18:
        raise NotFoundError(f"no spy session {session_id[:40]!r}")
    return int(session_id)


@dataclass
class SpyControl:
    """`SpyPort` over `SpyService`; the web's session ids are the service's, as text."""

    service: SpyService

    async def spy(self, supervisor: Actor, seat_id: str, mode: SpyMode) -> SpyStarted:
        try:
            return _spy_started(await self.service.start(supervisor.employee_id, seat_id, mode))
        except CtidError as exc:
            raise _spy_error(exc) from exc

    async def stop(self, supervisor: Actor, session_id: str) -> None:
        sid = _spy_session_id(session_id)
        known = self.service.session(sid)
        if known is not None and known.state in ("stopped", "failed"):
            raise NotFoundError(f"spy session {sid} has already ended")
        try:
            await self.service.stop(sid, supervisor.employee_id)
        except CtidError as exc:
            raise _spy_error(exc) from exc

    async def switch(self, supervisor: Actor, session_id: str, mode: SpyMode) -> SpyStarted:
        sid = _spy_session_id(session_id)
        try:
            return _spy_started(await self.service.switch(sid, mode, supervisor.employee_id))
        except CtidError as exc:
            raise _spy_error(exc) from exc


# ------------------------------------------------------------------ roster

_ROSTER_ERRORS = (RosterError, RotationError, CalendarError, ConfigError)
"""Refusals of the roster (PlanRejectedError is a RosterError, HolidayFileError a ConfigError)."""


@dataclass
class RosterAdmin:
    """`RosterPort` over `RosterStore`; after every change the rota enforcer reloads and applies
    it (pauses, queue memberships)."""

    store: RosterStore
    rota: RotaEnforcer
    clock: Clock

    async def _changed(self) -> None:
        # The change is committed; a PBX hiccup applying it must not turn it into an error
        # (the enforcer's next transition or resync applies it again).
        try:
            await self.rota.roster_changed()
        except CtidError as exc:
            log.warning("roster_apply_failed", error=str(exc))

    async def view(self, weeks: int) -> RosterView:
        if not 1 <= weeks <= 104:
            raise RejectedError("weeks must be between 1 and 104")
        today = self.clock.now().date()
        seats = await self.store.seats()
        overrides = await self.store.override_list()
        holidays = await self.store.holidays()
        current = self.rota.current
        return RosterView(
            seats=tuple(
                RosterSeatRow(
                    seat_id=s.id,
                    name=s.name,
                    tier=s.tier,
                    interface=s.interface,
                    staffed_by=s.staffed_by,
                    active=s.active,
                )
                for s in seats
            ),
            overrides=tuple(
                LunchOverrideRow(
                    kind=o.kind,
                    key=o.key,
                    group=o.group,
                    created_by=o.created_by,
                    note=o.note,
                )
                for o in overrides
                if (o.day if o.day is not None else _week_end(o.key)) >= today
            ),
            lunch_groups=tuple(g.name for g in current.rota.rotation.groups),
            plan_text=current.rota.render(today, weeks),
            desk=state_summary(current),
            holidays=tuple(sorted((h.day, h.kind, h.name) for h in holidays if h.day >= today)),
        )

    async def update_seat(self, seat_id: str, changes: SeatChanges, actor: Actor) -> RosterSeatRow:
        who = actor.employee_id
        try:
            seat = await self.store.seat(seat_id)
            if changes.name != seat.name:
                seat = await self.store.set_name(seat_id, changes.name, who)
            if changes.tier != seat.tier:
                seat = await self.store.set_tier(seat_id, changes.tier, who)
            if changes.interface != seat.interface:
                seat = await self.store.set_interface(seat_id, changes.interface, who)
            if (changes.staffed_by or None) != seat.staffed_by:
                seat = await self.store.set_staff(seat_id, changes.staffed_by or None, who)
            if changes.active != seat.active:
                seat = await self.store.set_active(seat_id, changes.active, who)
        except _ROSTER_ERRORS as exc:
            raise RejectedError(str(exc)) from exc
        finally:
            await self._changed()
        return RosterSeatRow(
            seat_id=seat.id,
            name=seat.name,
            tier=seat.tier,
            interface=seat.interface,
            staffed_by=seat.staffed_by,
            active=seat.active,
        )

    async def set_day_override(self, day: date, group: str, actor: Actor, note: str | None) -> None:
        try:
            await self.store.add_day_override(day, group, actor.employee_id, note)
        except _ROSTER_ERRORS as exc:
            raise RejectedError(str(exc)) from exc
        await self._changed()

    async def set_week_swap(self, week: str, group: str, actor: Actor, note: str | None) -> None:
        try:
            await self.store.add_week_swap(week, group, actor.employee_id, note)
        except _ROSTER_ERRORS as exc:
            raise RejectedError(str(exc)) from exc
        await self._changed()

    async def remove_override(self, key: str, actor: Actor) -> None:
        try:
            await self.store.remove_override(key, actor.employee_id)
        except _ROSTER_ERRORS as exc:
            raise RejectedError(str(exc)) from exc
        await self._changed()

    async def import_holidays(self, text: str, actor: Actor, source: str) -> HolidaysImported:
        try:
            done = await self.store.import_holidays(text, actor.employee_id, source)
        except _ROSTER_ERRORS as exc:
            raise RejectedError(str(exc)) from exc
        await self._changed()
        return HolidaysImported(done.added, done.changed, done.unchanged)


def _week_end(key: str) -> date:
    """The Sunday of ISO week `key` (`2026-W49`), so a week swap shows until its week is over."""
    week = IsoWeek.parse(key)
    return date.fromisocalendar(week.year, week.week, 7)


# ------------------------------------------------------------------ reports


@dataclass
class Reports:
    """`ReportsPort` over `ctid.reports`; a bad period or grouping is `RejectedError`."""

    sessions: async_sessionmaker[AsyncSession]
    cfg: Config

    async def _report(self, start: date, end: date, by: str) -> kpi.Report:
        grouping = next((g for g in kpi.GROUPINGS if g == by), None)
        if grouping is None:
            raise RejectedError(f"by must be one of {', '.join(kpi.GROUPINGS)}")
        try:
            return await kpi.compute(self.sessions, self.cfg, start, end, grouping)
        except ReportError as exc:
            raise RejectedError(str(exc)) from exc

    async def kpis(self, start: date, end: date, by: str) -> KpiTable:
        report = await self._report(start, end, by)
        columns = tuple(KpiColumn(c.name, c.label, c.kind) for c in KPI_COLUMNS if c.kind != "text")

        def line(row: kpi.KpiRow) -> KpiLine:
            return KpiLine(row.key, {c.name: getattr(row, c.name) for c in columns})

        return KpiTable(
            start=report.start,
            end=report.end,
            by=report.by,
            timezone=report.timezone,
            columns=columns,
            rows=tuple(line(r) for r in report.rows),
            total=line(report.total),
            incidents_by_type=tuple(
                (i.request_type, i.category, i.count) for i in report.incidents_by_type
            ),
        )

    async def kpis_csv(self, start: date, end: date, by: str) -> str:
        return report_csv(await self._report(start, end, by))

    async def _month(self, month: str) -> agent_month_report.AgentMonth:
        try:
            return await agent_month_report.compute(self.sessions, self.cfg, month)
        except ReportError as exc:
            raise RejectedError(str(exc)) from exc

    async def agent_month(self, month: str) -> AgentMonthTable:
        review = await self._month(month)

        def line(r: agent_month_report.AgentMonthRow) -> AgentMonthLine:
            return AgentMonthLine(
                key=r.key,
                name=r.name,
                incidents_handled=r.incidents_handled,
                consultations_answered=r.consultations_answered,
                satisfaction_recorded=r.satisfaction_recorded,
                callbacks_done=r.callbacks_done,
            )

        return AgentMonthTable(
            month=review.month,
            timezone=review.timezone,
            seats=tuple(line(r) for r in review.seats),
            staff=tuple(line(r) for r in review.staff),
        )

    async def agent_month_csv(self, month: str) -> str:
        return agent_month_csv(await self._month(month))


# ------------------------------------------------------------------ seats


@dataclass
class RosterSeats:
    """`SeatDirectory` from the roster as the rota enforcer last loaded it, so a staffing change
    made on the ops page applies at the person's next request. Before the rota is loaded (while
    the daemon is being built) it answers from config."""

    rota: RotaEnforcer
    cfg: Config

    def _seats(self) -> Sequence[RosterSeat]:
        try:
            return self.rota.current.rota.seats
        except CtidError:  # not loaded yet
            return [RosterSeat.from_config(s) for s in self.cfg.seats]

    def seat_of(self, employee_id: str) -> str | None:
        seats = self._seats()
        return next((s.id for s in seats if s.active and s.staffed_by == employee_id), None)

    def seat_ids(self) -> Sequence[str]:
        return tuple(s.id for s in self._seats())
