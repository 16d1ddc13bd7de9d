"""Web fixtures: a migrated SQLite database, four users, hand-written recording fakes for the
ports, a `WebServer` on a loopback port, and `Browser`-like HTTP clients that log in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ctid.accounts.sessions import Authenticator
from ctid.accounts.users import add_user, make_hasher
from ctid.calls.control import (
    CallMoved,
    DialStarted,
)
from ctid.calls.seat_desk import SeatToday, SeatView
from ctid.calls.seat_state import SeatState as SeatStateWord
from ctid.calls.spy_control import (
    ListenInStarted,
)
from ctid.calls.spy_types import SpyMode
from ctid.config import (
    Config,
    IncidentConfig,
    LunchConfig,
    LunchGroupConfig,
    SeatConfig,
    SiteConfig,
    WebConfig,
)
from ctid.core.actor import (
    Actor,
)
from ctid.core.clock import FakeClock
from ctid.core.errors import (
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
)
from ctid.db import create_engine, session_factory, upgrade
from ctid.i18n import Translator
from ctid.reports.render import GROUP_WORDS, KPI_COLUMNS
from ctid.reports.tables import (
    AgentMonthLine,
    AgentMonthTable,
    KpiColumn,
    KpiLine,
    KpiTable,
)
from ctid.rotation.admin import (
    HolidaysImported,
    LunchOverrideRow,
    LunchWeekRow,
    RosterSeatRow,
    RosterView,
    SeatChanges,
)
from ctid.screenpop.hub import PopHub
from ctid.tickets.callback_list import (
    CallbackRow,
)
from ctid.tickets.forms import (
    CallerRow,
    IncidentDraft,
    SavedIncident,
)
from ctid.tickets.lifecycle import (
    allowed_actions,
)
from ctid.tickets.links import (
    DispatchRequest,
    SurveyRequest,
)
from ctid.tickets.tokens import LinkClaims, sign, verify
from ctid.tickets.views import HistoryView, IncidentPage, IncidentRow, IncidentView
from ctid.tickets.workflow import (
    ActionResult,
    IncidentDetail,
    IncidentQuery,
)
from ctid.web.ports import (
    HealthReport,
)
from ctid.web.server import WebPorts, WebServer

PASSWORD = "correct horse battery"
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Monday

USERS = {
    "E1001": ("Li Wei", "agent"),  # staffs seat1
    "E1002": ("Zhang Min", "agent"),  # staffs seat2
    "E1003": ("Wang Fang", "agent"),  # on no seat
    "S9001": ("Chen Jing", "supervisor"),
    "O7001": ("Zhao Lei", "ops"),
}


def make_config(tmp_path: Path, language: Literal["zh_CN", "en"] = "en", **web: Any) -> Config:
    """The tests' config; pages speak English unless a test asks for the site default zh_CN."""
    return Config(
        site=SiteConfig(name="IT Service Desk", data_dir=tmp_path, language=language),
        web=WebConfig(
            listen_host="127.0.0.1",
            listen_port=0,
            public_url="http://127.0.0.1:0",
            session_ttl_s=3600,
            **web,
        ),
        seats=(
            SeatConfig(
                id="seat1", name="Seat 1", tier="ordinary", interface="PJSIP/s1", staffed_by="E1001"
            ),
            SeatConfig(
                id="seat2", name="Seat 2", tier="ordinary", interface="PJSIP/s2", staffed_by="E1002"
            ),
            SeatConfig(id="seat3", name="Seat 3", tier="expert", interface="PJSIP/s3"),
            SeatConfig(id="seat4", name="Seat 4", tier="expert", interface="PJSIP/s4"),
        ),
        incidents=IncidentConfig(
            second_line_groups={"network": "net@example.com", "desktop": "pc@example.com"}
        ),
        lunch=LunchConfig(
            groups=(
                LunchGroupConfig(name="A", seats=("seat1", "seat3")),
                LunchGroupConfig(name="B", seats=("seat2", "seat4")),
            )
        ),
    )


# ------------------------------------------------------------------------------ port fakes


@dataclass
class RecordingIncidents:
    """IncidentPort fake: records every save; `fail` makes the next save raise."""

    saved: list[tuple[IncidentDraft, Actor]] = field(default_factory=list)
    fail: Exception | None = None

    async def save(self, draft: IncidentDraft, actor: Actor) -> SavedIncident:
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc
        self.saved.append((draft, actor))
        return SavedIncident(draft.number or f"INC-20261123-{len(self.saved):04d}", "recorded")


@dataclass
class FakeCallers:
    rows: list[CallerRow] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    async def search(self, query: str, limit: int) -> Sequence[CallerRow]:
        self.queries.append(query)
        q = query.casefold()
        return [
            r
            for r in self.rows
            if q in r.name.casefold()
            or q in r.employee_id.casefold()
            or any(q in p for p in r.phones)
        ][:limit]


@dataclass
class FakeHealth:
    report: HealthReport = field(
        default_factory=lambda: HealthReport(True, {"ami": "up", "database": "ok"})
    )

    async def health(self) -> HealthReport:
        return self.report


@dataclass
class RecordingSpy:
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    stops: list[tuple[str, str]] = field(default_factory=list)
    switches: list[tuple[str, str, str]] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)
    """session id → seat, while listening."""
    busy: bool = False

    async def spy(self, supervisor: Actor, seat_id: str, mode: SpyMode) -> ListenInStarted:
        if self.busy:
            raise StateConflictError(f"{seat_id} is not on a call")
        self.calls.append((supervisor.employee_id, seat_id, mode))
        session = f"spy-{len(self.calls)}"
        self.sessions[session] = seat_id
        return ListenInStarted(seat_id, mode, "PJSIP/sup1", session)

    async def stop(self, supervisor: Actor, session_id: str) -> None:
        if session_id not in self.sessions:
            raise RecordMissingError(f"listen-in {session_id} has ended")
        del self.sessions[session_id]
        self.stops.append((supervisor.employee_id, session_id))

    async def switch(self, supervisor: Actor, session_id: str, mode: SpyMode) -> ListenInStarted:
        if session_id not in self.sessions:
            raise RecordMissingError(f"listen-in {session_id} has ended")
        self.switches.append((supervisor.employee_id, session_id, mode))
        return ListenInStarted(self.sessions[session_id], mode, "PJSIP/sup1", session_id)


_NEXT_STATUS = {
    "start": "in_progress",
    "resolve_first_line": "resolved",
    "hand_to_expert": "handed_to_expert",
    "dispatch": "dispatched",
    "accept": "accepted",
    "reject": "rejected",
    "reassign": "assigned",
    "escalate": "escalated",
    "suspend": "suspended",
    "resume": "in_progress",
    "resolve": "resolved",
    "close": "closed",
    "reopen": "reopened",
}


_DETAIL_ONLY = ("caller", "history", "allowed_actions", "live_call_id")


def make_incident(number: str, **kw: Any) -> IncidentDetail:
    """An incident as the workflow port returns it; `kw` sets incident fields and the detail's
    own (`caller`, `history`, `allowed_actions`, `live_call_id`)."""
    status = kw.pop("status", "in_progress")
    extra = {k: kw.pop(k) for k in _DETAIL_ONLY if k in kw}
    incident: dict[str, Any] = {
        "id": 1,
        "number": number,
        "status": status,
        "channel": "phone",
        "request_type": "fault",
        "category": None,
        "impact": None,
        "urgency": None,
        "priority": None,
        "summary": "Printer on 12F jams",
        "description": None,
        "caller_id": None,
        "caller_number": "+8613800138000",
        "caller_name": "Wang Xiaoming",
        "owner_seat": "seat1",
        "owner_employee": "E1001",
        "owner_group": None,
        "sla_response_due": None,
        "sla_resolve_due": None,
        "responded_at": None,
        "resolved_at": None,
        "closed_at": None,
        "flags": (),
        "satisfaction": None,
        "satisfaction_comment": None,
        "created_at": START - timedelta(hours=2),
        "updated_at": START - timedelta(hours=1),
        "version": 3,
    }
    incident.update(kw)
    detail: dict[str, Any] = {
        "allowed_actions": allowed_actions(status),
        "history": (
            HistoryView(
                at=START - timedelta(hours=2),
                actor="seat1",
                action="create",
                from_status=None,
                to_status="in_progress",
                detail={"channel": "phone"},
            ),
        ),
    }
    detail.update(extra)
    return IncidentDetail(incident=IncidentView(**incident), **detail)


@dataclass
class FakeWorkflow:
    """IncidentWorkflowPort fake: incidents in a dict, the lifecycle's own `allowed_actions`,
    optimistic versions; records every query and step."""

    clock: FakeClock
    incidents: dict[str, IncidentDetail] = field(default_factory=dict)
    queries: list[IncidentQuery] = field(default_factory=list)
    newer: str | None = None
    """The `newer`/`older` cursors every list page answers with."""
    older: str | None = None
    applied: list[tuple[str, str, str, int, dict[str, str]]] = field(default_factory=list)

    def add(self, detail: IncidentDetail) -> IncidentDetail:
        self.incidents[detail.incident.number] = detail
        return detail

    async def list_open(self, query: IncidentQuery) -> IncidentPage:
        self.queries.append(query)
        rows = [
            IncidentRow(**{f.name: getattr(d.incident, f.name) for f in fields(IncidentRow)})
            for d in self.incidents.values()
            if d.incident.status not in ("resolved", "closed")
        ]
        return IncidentPage(rows=tuple(rows), newer=self.newer, older=self.older)

    async def detail(self, number: str) -> IncidentDetail | None:
        return self.incidents.get(number)

    async def apply(
        self,
        number: str,
        action: str,
        actor: Actor,
        *,
        expected_version: int,
        args: Mapping[str, str],
    ) -> ActionResult:
        d = self.incidents.get(number)
        if d is None:
            raise RecordMissingError(f"no incident {number}")
        if d.incident.version != expected_version:
            last = d.history[-1]
            raise StateConflictError(
                f"{number} was changed by {last.actor} ({last.action}) since you opened it; "
                "reload it and try again"
            )
        if action not in d.allowed_actions:
            raise StateConflictError(f"cannot {action} {number}: it is {d.incident.status}")
        if args.get("reason", "x") == "boom":
            raise RequestRefusedError("reason must not be boom")
        self.applied.append((number, action, actor.employee_id, expected_version, dict(args)))
        status = _NEXT_STATUS.get(action, d.incident.status)
        entry = HistoryView(
            at=self.clock.utcnow(),
            actor=actor.employee_id,
            action=action,
            from_status=d.incident.status,
            to_status=status,
            detail=dict(args),
        )
        self.incidents[number] = replace(
            d,
            incident=replace(
                d.incident,
                status=status,
                version=d.incident.version + 1,
                updated_at=self.clock.utcnow(),
            ),
            allowed_actions=allowed_actions(status),
            history=(*d.history, entry),
        )
        transfer = (
            args.get("seat")
            if action == "hand_to_expert" and args.get("call_live") == "true"
            else None
        )
        return ActionResult(
            number=number, status=status, version=d.incident.version + 1, transfer_seat=transfer
        )


@dataclass
class FakeCalls:
    transfers: list[tuple[str, str, str]] = field(default_factory=list)
    dials: list[tuple[str, str]] = field(default_factory=list)
    fail: Exception | None = None

    async def transfer_to_expert(self, actor: Actor, call_id: str, seat_id: str) -> CallMoved:
        if self.fail is not None:
            raise self.fail
        self.transfers.append((actor.employee_id, call_id, seat_id))
        return CallMoved(call_id, seat_id)

    async def click_to_call(self, actor: Actor, number: str) -> DialStarted:
        if self.fail is not None:
            raise self.fail
        self.dials.append((actor.employee_id, number))
        return DialStarted(number, f"PJSIP/{actor.seat_id}")


@dataclass
class FakeCallbacks:
    rows: dict[int, CallbackRow] = field(default_factory=dict)
    finished: list[tuple[int, str, str, str | None]] = field(default_factory=list)

    def add(self, callback_id: int, number: str, reason: str = "abandoned", **kw: Any) -> None:
        self.rows[callback_id] = CallbackRow(
            callback_id=callback_id,
            number=number,
            reason=reason,
            requested_at=START - timedelta(minutes=30),
            status=kw.pop("status", "open"),
            attempts=kw.pop("attempts", 0),
            **kw,
        )

    async def list_open(self) -> Sequence[CallbackRow]:
        return [r for r in self.rows.values() if r.status in ("open", "in_progress")]

    async def start(self, callback_id: int, actor: Actor) -> CallbackRow:
        row = self.rows.get(callback_id)
        if row is None:
            raise RecordMissingError(f"no callback {callback_id}")
        if row.status != "open":
            raise StateConflictError(f"callback {callback_id} is being worked by {row.worked_by}")
        row = replace(
            row, status="in_progress", attempts=row.attempts + 1, worked_by=actor.employee_id
        )
        self.rows[callback_id] = row
        return row

    async def finish(
        self, callback_id: int, outcome: str, actor: Actor, *, incident_number: str | None
    ) -> CallbackRow:
        row = self.rows[callback_id]
        if row.status != "in_progress":
            raise StateConflictError(f"cannot finish callback {callback_id}: it is {row.status}")
        self.finished.append((callback_id, outcome, actor.employee_id, incident_number))
        row = replace(row, status="open" if outcome == "no_answer" else "done", outcome=outcome)
        self.rows[callback_id] = row
        return row


LINK_SECRET = b"link-secret-0123456789abcdef"


@dataclass
class FakeLinks:
    """LinkPort fake over the real signed tokens of ctid.tickets (so tampering and expiry are
    the real thing); the incidents are plain dicts."""

    clock: FakeClock
    dispatched: dict[str, DispatchRequest] = field(default_factory=dict)
    surveys: dict[str, SurveyRequest] = field(default_factory=dict)
    responses: list[tuple[str, str, str | None]] = field(default_factory=list)
    ratings: list[tuple[str, int, str | None]] = field(default_factory=list)

    def dispatch_token(self, number: str, summary: str = "VPN down", group: str = "network") -> str:
        expires = self.clock.utcnow() + timedelta(days=7)
        self.dispatched[number] = DispatchRequest(
            number=number,
            summary=summary,
            status="dispatched",
            group=group,
            expires_at=expires,
            waiting=True,
            description="Home office; since Friday.",
            priority="P2",
            caller_name="Wang Xiaoming",
        )
        return sign(
            LINK_SECRET,
            LinkClaims(purpose="dispatch", number=number, expires_at=expires, group=group),
        )

    def survey_token(self, number: str, summary: str = "Printer fixed") -> str:
        expires = self.clock.utcnow() + timedelta(days=14)
        self.surveys[number] = SurveyRequest(
            number=number, summary=summary, expires_at=expires, rated=False
        )
        return sign(LINK_SECRET, LinkClaims(purpose="survey", number=number, expires_at=expires))

    def _claims(self, token: str, purpose: Literal["dispatch", "survey"]) -> LinkClaims:
        return verify(LINK_SECRET, token, purpose, self.clock.utcnow())

    async def dispatch_request(self, token: str) -> DispatchRequest:
        return self.dispatched[self._claims(token, "dispatch").number]

    async def respond(
        self, token: str, decision: Literal["accept", "reject"], reason: str | None
    ) -> DispatchRequest:
        req = self.dispatched[self._claims(token, "dispatch").number]
        if not req.waiting:
            raise StateConflictError(
                f"cannot {decision} {req.number}: it is no longer waiting for {req.group} "
                f"(it is {req.status})"
            )
        self.responses.append((req.number, decision, reason))
        req = replace(req, status=f"{decision}ed", waiting=False)
        self.dispatched[req.number] = req
        return req

    async def survey(self, token: str) -> SurveyRequest:
        return self.surveys[self._claims(token, "survey").number]

    async def rate(self, token: str, score: int, comment: str | None) -> None:
        req = self.surveys[self._claims(token, "survey").number]
        if req.rated:
            raise StateConflictError(f"cannot rate {req.number}: it was rated already")
        self.ratings.append((req.number, score, comment))
        self.surveys[req.number] = replace(req, rated=True)


@dataclass
class FakeRoster:
    seats: list[RosterSeatRow] = field(
        default_factory=lambda: [
            RosterSeatRow(
                seat_id="seat1",
                name="Seat 1",
                tier="ordinary",
                interface="PJSIP/s1",
                staffed_by="E1001",
            ),
            RosterSeatRow(
                seat_id="seat2",
                name="Seat 2",
                tier="ordinary",
                interface="PJSIP/s2",
                staffed_by="E1002",
            ),
            RosterSeatRow(seat_id="seat3", name="Seat 3", tier="expert", interface="PJSIP/s3"),
            RosterSeatRow(seat_id="seat4", name="Seat 4", tier="expert", interface="PJSIP/s4"),
        ]
    )
    overrides: list[LunchOverrideRow] = field(default_factory=list)
    changes: list[tuple[str, SeatChanges, str]] = field(default_factory=list)
    days: list[tuple[date, str, str | None]] = field(default_factory=list)
    weeks: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    imports: list[tuple[str, str]] = field(default_factory=list)
    refuse: str | None = None
    """The next change is refused with this message (as the plan check would)."""
    plans: list[tuple[list[RosterSeatRow], dict[str, str | None], str]] = field(
        default_factory=list
    )
    week_groups: dict[str, str] = field(default_factory=dict)

    def _maybe_refuse(self) -> None:
        if self.refuse is not None:
            msg, self.refuse = self.refuse, None
            raise RequestRefusedError(msg)

    async def view(self, weeks: int) -> RosterView:
        return RosterView(
            seats=tuple(self.seats),
            overrides=tuple(self.overrides),
            lunch_groups=("A", "B"),
            plan_text="week      dates          on duty at lunch\n2026-W48  11-23 – 11-27  A: seat1, seat3\n",
            staff=(("E1001", "Li Wei"), ("E1003", "Wang Fang"), ("E1002", "Zhang Min")),
            weeks=tuple(
                LunchWeekRow(
                    week=f"2026-W{48 + i}",
                    monday=date(2026, 11, 23) + timedelta(days=7 * i),
                    friday=date(2026, 11, 27) + timedelta(days=7 * i),
                    scheduled="AB"[i % 2],
                    on_duty=self.week_groups.get(f"2026-W{48 + i}", "AB"[i % 2]),
                )
                for i in range(weeks)
            ),
            group_seats=(("A", ("seat1", "seat3")), ("B", ("seat2", "seat4"))),
            desk={
                "mode": "open",
                "lunch_group": None,
                "next_mode": "lunch",
                "next_transition": "2026-11-23T12:00:00+08:00",
            },
        )

    async def update_seat(self, seat_id: str, changes: SeatChanges, actor: Actor) -> RosterSeatRow:
        self._maybe_refuse()
        self.changes.append((seat_id, changes, actor.employee_id))
        row = RosterSeatRow(
            seat_id=seat_id,
            name=changes.name,
            tier=changes.tier,
            interface=changes.interface,
            staffed_by=changes.staffed_by or None,
            active=changes.active,
        )
        self.seats = [row if s.seat_id == seat_id else s for s in self.seats]
        return row

    async def set_day_override(self, day: date, group: str, actor: Actor, note: str | None) -> None:
        self._maybe_refuse()
        self.days.append((day, group, note))
        self.overrides.append(
            LunchOverrideRow(kind="day", key=day.isoformat(), group=group, note=note)
        )

    async def set_week_swap(self, week: str, group: str, actor: Actor, note: str | None) -> None:
        self._maybe_refuse()
        self.weeks.append((week, group))

    async def remove_override(self, key: str, actor: Actor) -> None:
        self._maybe_refuse()
        self.removed.append(key)

    async def save_plan(
        self, seats: Sequence[RosterSeatRow], weeks: Mapping[str, str | None], actor: Actor
    ) -> None:
        self._maybe_refuse()
        self.plans.append((list(seats), dict(weeks), actor.employee_id))
        self.seats = list(seats)
        for week, group in weeks.items():
            if group:
                self.week_groups[week] = group

    async def import_holidays(self, text: str, actor: Actor, source: str) -> HolidaysImported:
        self._maybe_refuse()
        self.imports.append((text, source))
        return HolidaysImported(text.count("\n") + 1, 0, 0)


@dataclass
class FakeSeatStates:
    """SeatStatePort fake: seat views in a dict; records every change; supervisors may end any
    pause, agents not an `rna` one (as `SeatDesk` decides)."""

    clock: FakeClock
    views_by_seat: dict[str, SeatView] = field(default_factory=dict)
    changes: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    def add(self, seat: str, state: str, reason: str | None = None, **kw: Any) -> SeatView:
        view = SeatView(
            seat=seat,
            name=kw.pop("name", f"Seat {seat[-1]}"),
            tier=kw.pop("tier", "expert" if seat in ("seat3", "seat4") else "ordinary"),
            employee_id=kw.pop("employee_id", None),
            agent_name=kw.pop("agent_name", None),
            state=SeatStateWord(state),
            reason=reason,
            since=kw.pop("since", self.now()),
            wrapup_ends_at=None,
            wrapup_extended=False,
            call_id=None,
            today=kw.pop("today", SeatToday()),
        )
        self.views_by_seat[seat] = view
        return view

    def now(self) -> float:
        return self.clock.utcnow().timestamp()

    async def views(self, seat_ids: Sequence[str]) -> Sequence[SeatView]:
        return [self.views_by_seat[s] for s in seat_ids if s in self.views_by_seat]

    async def set_state(
        self, actor: Actor, seat_id: str, state: str, reason: str | None
    ) -> SeatView:
        view = self.views_by_seat.get(seat_id)
        if view is None:
            raise RecordMissingError(f"no seat {seat_id}")
        if view.reason == "rna" and actor.role != "supervisor":
            raise StateConflictError("only a supervisor puts a seat paused for missed calls back")
        self.changes.append((actor.employee_id, seat_id, state, reason))
        view = replace(
            view,
            state=SeatStateWord(state),
            reason=reason if state == "paused" else None,
            since=self.now(),
        )
        self.views_by_seat[seat_id] = view
        return view

    async def wrapup(self, actor: Actor, seat_id: str, action: str) -> SeatView:
        raise StateConflictError(f"{seat_id} is not in wrap-up")


def kpi_line(key: str, **values: float | int | None) -> KpiLine:
    base: dict[str, float | int | None] = {c.name: 0 for c in KPI_COLUMNS}
    base.update(values)
    return KpiLine(key, base)


@dataclass
class FakeReports:
    asked: list[tuple[str, date, date, str]] = field(default_factory=list)
    rows: tuple[KpiLine, ...] = ()

    async def kpis(self, start: date, end: date, by: str) -> KpiTable:
        self.asked.append(("kpis", start, end, by))
        rows = self.rows or (
            kpi_line(
                "seat1", offered=10, answered=9, loss_rate=0.1, within_rings_rate=0.8, asa_s=6.5
            ),
            kpi_line(
                "seat2", offered=4, answered=4, loss_rate=0.0, within_rings_rate=1.0, asa_s=None
            ),
        )
        return KpiTable(
            start=start,
            end=end,
            by=by,
            timezone="Asia/Shanghai",
            columns=tuple(KpiColumn(c.name, c.label, c.kind) for c in KPI_COLUMNS),
            rows=rows,
            total=kpi_line("total", offered=14, answered=13, loss_rate=1 / 14),
            incidents_by_type=(("fault", "hardware", 5), ("consultation", None, 2)),
        )

    async def kpis_csv(self, start: date, end: date, by: str, t: Translator | None = None) -> str:
        self.asked.append(("csv", start, end, by))
        head = f"{t.gettext(GROUP_WORDS[by])},{t.gettext('offered')}" if t else f"{by},offered"
        return f"{head}\nseat1,10\ntotal,14\n"

    async def agent_month(self, month: str) -> AgentMonthTable:
        self.asked.append(
            ("month", date.fromisoformat(month + "-01"), date.fromisoformat(month + "-01"), "")
        )
        line = AgentMonthLine(
            key="E1001",
            name="Li Wei",
            incidents_handled=42,
            consultations_answered=7,
            satisfaction_recorded=3,
            callbacks_done=2,
        )
        return AgentMonthTable(month=month, timezone="Asia/Shanghai", seats=(), staff=(line,))

    async def agent_month_csv(self, month: str, t: Translator | None = None) -> str:
        return "key,name,incidents_handled\nE1001,Li Wei,42\n"


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def hasher() -> PasswordHasher:
    # Cheap parameters: the tests exercise the flow, not Argon2's cost.
    return make_hasher(time_cost=1, memory_cost_kib=8, parallelism=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}")
    await upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def sessions(
    engine: AsyncEngine, hasher: PasswordHasher, clock: FakeClock
) -> async_sessionmaker[AsyncSession]:
    factory = session_factory(engine)
    for emp, (name, role) in USERS.items():
        await add_user(factory, emp, name, role, PASSWORD, clock=clock, hasher=hasher)
    return factory


@dataclass(kw_only=True)
class Env:
    server: WebServer
    hub: PopHub
    clock: FakeClock
    incidents: RecordingIncidents
    callers: FakeCallers
    health: FakeHealth
    spy: RecordingSpy
    sessions: async_sessionmaker[AsyncSession]
    workflow: FakeWorkflow
    calls: FakeCalls
    callbacks: FakeCallbacks
    links: FakeLinks
    roster: FakeRoster
    reports: FakeReports
    seat_states: FakeSeatStates

    @property
    def base(self) -> str:
        return str(self.server.public_url).rstrip("/")

    @property
    def origin(self) -> str:
        return self.base


@pytest.fixture
def hub() -> PopHub:
    return PopHub()


@pytest.fixture
def make_env(
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    hasher: PasswordHasher,
    hub: PopHub,
) -> Callable[..., Any]:
    """`async with make_env(**web_config) as env:` — a running WebServer with fresh fakes."""

    def _make(language: Literal["zh_CN", "en"] = "en", **web: Any) -> _EnvContext:
        return _EnvContext(
            make_config(tmp_path, language, **web),
            sessions=sessions,
            clock=clock,
            hasher=hasher,
            hub=hub,
        )

    return _make


class _EnvContext:
    def __init__(
        self,
        config: Config,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: FakeClock,
        hasher: PasswordHasher,
        hub: PopHub,
    ) -> None:
        self.incidents = RecordingIncidents()
        self.callers = FakeCallers()
        self.health = FakeHealth()
        self.spy = RecordingSpy()
        self.workflow = FakeWorkflow(clock)
        self.calls = FakeCalls()
        self.callbacks = FakeCallbacks()
        self.links = FakeLinks(clock)
        self.roster = FakeRoster()
        self.reports = FakeReports()
        self.seat_states = FakeSeatStates(clock)
        self.hub = hub
        self.sessions = sessions
        self.clock = clock
        self.server = WebServer(
            config,
            WebPorts(
                hub=hub,
                incidents=self.incidents,
                callers=self.callers,
                health=self.health,
                spy=self.spy,
                workflow=self.workflow,
                calls=self.calls,
                callbacks=self.callbacks,
                links=self.links,
                roster=self.roster,
                reports=self.reports,
                seat_states=self.seat_states,
            ),
            auth=Authenticator(sessions, clock, ttl_s=config.web.session_ttl_s, hasher=hasher),
            clock=clock,
            secret=b"test-secret-0123456789abcdef",
        )

    async def __aenter__(self) -> Env:
        await self.server.__aenter__()
        return Env(
            server=self.server,
            hub=self.hub,
            clock=self.clock,
            incidents=self.incidents,
            callers=self.callers,
            health=self.health,
            spy=self.spy,
            sessions=self.sessions,
            workflow=self.workflow,
            calls=self.calls,
            callbacks=self.callbacks,
            links=self.links,
            roster=self.roster,
            reports=self.reports,
            seat_states=self.seat_states,
        )

    async def __aexit__(self, *exc: object) -> None:
        await self.server.__aexit__(None, None, None)


@pytest.fixture
async def env(make_env: Callable[..., _EnvContext]) -> AsyncIterator[Env]:
    async with make_env() as running:
        yield running


# ------------------------------------------------------------------------------ HTTP client

_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_DATA_CSRF = re.compile(r'data-csrf="([^"]+)"')


class Client:
    """A browser-ish HTTP client over loopback: keeps cookies, sends our Origin on writes."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        self.csrf = ""

    async def close(self) -> None:
        await self.http.close()

    def url(self, path: str) -> str:
        return self.env.base + path

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.get(self.url(path), allow_redirects=False, **kw)

    async def login_form_token(self) -> str:
        async with await self.get("/login") as resp:
            assert resp.status == 200
            match = _FORM_TOKEN.search(await resp.text())
            assert match
            return match.group(1)

    async def login(
        self, employee_id: str, password: str = PASSWORD, *, origin: str | None = None
    ) -> aiohttp.ClientResponse:
        token = await self.login_form_token()
        resp = await self.http.post(
            self.url("/login"),
            data={"csrf_token": token, "employee_id": employee_id, "password": password},
            headers={"Origin": origin or self.env.origin},
            allow_redirects=False,
        )
        await resp.read()
        if resp.status == 303:
            async with await self.get("/desk") as desk:
                match = _DATA_CSRF.search(await desk.text())
                if match is None:  # a page without the desktop (no seat): take the logout form
                    match = _FORM_TOKEN.search(await desk.text())
                assert match
                self.csrf = match.group(1)
        return resp

    async def post_json(
        self,
        path: str,
        data: object,
        *,
        csrf: str | None = None,
        origin: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        h = {"Content-Type": "application/json"}
        if origin == "":
            h["Origin"] = self.env.origin
        elif origin is not None:
            h["Origin"] = origin
        token = self.csrf if csrf is None else csrf
        if token:
            h["X-CSRF-Token"] = token
        h.update(headers or {})
        resp = await self.http.post(self.url(path), json=data, headers=h, allow_redirects=False)
        await resp.read()
        return resp

    async def post_form(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        csrf: str | None = None,
        origin: str | None = "",
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """A plain HTML form post: the CSRF token goes in the `csrf_token` field."""
        h = dict(headers or {})
        if origin == "":
            h["Origin"] = self.env.origin
        elif origin is not None:
            h["Origin"] = origin
        fields = dict(data)
        token = self.csrf if csrf is None else csrf
        if token:
            fields["csrf_token"] = token
        resp = await self.http.post(self.url(path), data=fields, headers=h, allow_redirects=False)
        await resp.read()
        return resp

    async def ws(
        self, path: str = "/ws/seat", *, origin: str | None = "", compress: int = 0
    ) -> aiohttp.ClientWebSocketResponse:
        headers = {}
        if origin == "":
            headers["Origin"] = self.env.origin
        elif origin is not None:
            headers["Origin"] = origin
        ws_url = self.url(path).replace("http://", "ws://", 1)
        return await self.http.ws_connect(ws_url, headers=headers, autoping=True, compress=compress)


@pytest.fixture
async def clients(env: Env) -> AsyncIterator[Callable[[], Client]]:
    made: list[Client] = []

    def _new() -> Client:
        client = Client(env)
        made.append(client)
        return client

    yield _new
    for client in made:
        await client.close()
