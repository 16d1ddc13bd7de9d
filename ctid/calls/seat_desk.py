"""Seat state owned by ctid (`SeatDesk`): ready, ringing, talking, wrap-up, paused with a reason,
logged out — derived from the call story, changed by agents and supervisors (the PBX follows with
QueuePause), wrap-up after each answered call, today's counts, and every change logged."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, assert_never

import structlog

from ctid.calls.seat_state import SYSTEM_PAUSE_REASONS, SeatState, pause_words
from ctid.config import Config
from ctid.core.actor import Actor
from ctid.core.calls import (
    CallAnswered,
    CallEnded,
    SeatsResynced,
    SeatStateChanged,
)
from ctid.core.calls import SeatState as LiveSeat
from ctid.core.clock import Clock
from ctid.core.effects import RecordRingMiss
from ctid.core.errors import (
    CtidError,
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
)
from ctid.core.frames import (
    AgentPart,
    SeatFrame,
    SeatPart,
    SeatStateFrame,
    SupervisorFrame,
    TodayPart,
)
from ctid.i18n import Translator, translator
from ctid.spool import WriteSpool

log = structlog.get_logger(__name__)

DeskItem = SeatStateChanged | SeatsResynced | CallAnswered | CallEnded | RecordRingMiss
"""The bus items the seat desk reads."""

WRAPUP = "wrapup"
RNA = "rna"
MISSED_RINGS = ("no_answer", "cut")
"""Stored ring outcomes that count as a seat's missed call (the queue's timeout, ctid's cut)."""
ROTA_REASONS = frozenset({"lunch", "closed"})


class SeatPauses(Protocol):
    """QueuePause on a seat's interface in every queue (`AmiPbxControl` fits)."""

    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None: ...


class SeatRoster(Protocol):
    """Who staffs a seat and its phone right now (`ctid.rotation.admin.RosterSeats` fits)."""

    def staffed_by(self, seat_id: str) -> str | None: ...

    def interface(self, seat_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SeatChange:
    """One row of the seat-state log (and its audit entry): `by` is an employee ID, `ctid`
    (wrap-up, missed calls, the rota) or `pbx` (a pause made on the phone or by another tool)."""

    seat: str
    state: SeatState
    reason: str | None
    at: float
    """Events' clock (epoch seconds)."""
    by: str


class SeatLog(Protocol):
    """Where seat changes go (`ctid.calls.seat_log_store.SqlSeatLog`)."""

    async def record(self, change: SeatChange) -> None: ...

    async def names(self, employee_ids: Sequence[str]) -> Mapping[str, str]:
        """Employee ID → name for those that have a login."""
        ...

    async def today(self, lo: datetime, hi: datetime) -> TodaySoFar:
        """What is stored of the seats' day between the two instants (see `TodaySoFar`)."""
        ...


@dataclass(frozen=True, slots=True)
class TodaySoFar:
    """The seats' day as stored, read at start-up so a restart does not zero the counts."""

    answered: frozenset[tuple[str, str]]
    """(call ID, seat) of every answer."""
    talk_s: Mapping[str, float]
    """Seat → talk seconds of the calls it answered that have ended."""
    missed: Mapping[str, int]
    """Seat → rings it let run out."""


class SeatPush(Protocol):
    """Frames to a seat's desktops and to the supervisors (`PopHub` fits)."""

    def publish(self, seat_id: str, frame: SeatFrame) -> int: ...

    def publish_supervisor(self, frame: SupervisorFrame) -> int: ...


@dataclass(frozen=True, slots=True)
class SeatToday:
    answered: int = 0
    missed: int = 0
    talk_s: float = 0.0

    @property
    def avg_talk_s(self) -> int:
        return round(self.talk_s / self.answered) if self.answered else 0


@dataclass(frozen=True, slots=True)
class SeatView:
    """A seat as the desk and the wallboard show it. Times are on the events' clock."""

    seat: str
    name: str
    tier: str
    employee_id: str | None
    agent_name: str | None
    state: SeatState
    reason: str | None
    since: float
    wrapup_ends_at: float | None
    wrapup_extended: bool
    call_id: str | None
    today: SeatToday


@dataclass
class _Wrap:
    ends_at: float
    extended: bool = False
    handle: asyncio.TimerHandle | None = None
    confirmed: bool = False
    """The PBX said the seat is paused with reason wrapup."""


@dataclass
class _Seat:
    seat: str
    name: str
    tier: str
    live: LiveSeat | None = None
    state: SeatState = SeatState.LOGGED_OUT
    reason: str | None = None
    since: float = 0.0
    wrap: _Wrap | None = None
    today: SeatToday = field(default_factory=SeatToday)
    expect_by: tuple[str, SeatState, str | None] | None = None
    """Who asked for the next change (employee ID, state, reason), so the log names them."""


def derive(
    live: LiveSeat | None, staffed: bool, wrap: _Wrap | None
) -> tuple[SeatState, str | None]:
    """The one state a seat is in: a call beats a pause; a pause beats ready; no staff or no
    phone is logged out; a wrap-up not yet confirmed by the PBX already counts as wrap-up."""
    if live is None or not staffed or not live.available:
        return SeatState.LOGGED_OUT, None
    if live.activity == "ringing":
        return SeatState.RINGING, None
    if live.activity == "on_call":
        return SeatState.TALKING, None
    if live.paused:
        if live.pause_reason == WRAPUP:
            return SeatState.WRAPUP, WRAPUP
        return SeatState.PAUSED, live.pause_reason or None
    if wrap is not None and not wrap.confirmed:
        return SeatState.WRAPUP, WRAPUP
    return SeatState.READY, None


Work = Callable[[], Awaitable[None]]


class SeatDesk:
    """Bus handler `on_item` (the call story), loop `run` (PBX pauses the event path must not
    wait for), and the service the web calls: `views`, `set_state`, `wrapup`."""

    def __init__(
        self,
        cfg: Config,
        pbx: SeatPauses,
        roster: SeatRoster,
        seat_log: SeatLog,
        push: SeatPush,
        clock: Clock,
        *,
        now: Callable[[], float],
    ) -> None:
        """`now` is the events' clock. The log rows go through the desk's own write spool (kept
        apart from the daemon's, whose backlog /healthz reports: a handful of seat rows after
        each resync must not read as "database writes waiting")."""
        self._cfg = cfg
        self._pbx = pbx
        self._roster = roster
        self._log = seat_log
        self._push = push
        self._clock = clock
        self._now = now
        self.log_spool = WriteSpool()
        self._seats = {s.id: _Seat(s.id, s.name, s.tier) for s in cfg.seats}
        self._work: asyncio.Queue[tuple[str, Work]] = asyncio.Queue()
        self._day: date | None = None
        self._answered: set[tuple[str, str]] = set()
        """(call ID, seat) counted in today's `answered`: a call found answered again after a
        restart (the resync tells its answer) is not counted twice."""
        self._names: dict[str, str] = {}
        self._t = translator(cfg.site.language, cfg.site.timezone)

    # ------------------------------------------------------------------ reading

    def view(self, seat_id: str) -> SeatView:
        s = self._seats.get(seat_id)
        if s is None:
            raise RecordMissingError(f"no seat {seat_id}")
        self._roll_day()
        emp = self._roster.staffed_by(seat_id)
        return SeatView(
            seat=s.seat,
            name=s.name,
            tier=s.tier,
            employee_id=emp,
            agent_name=self._names.get(emp, emp) if emp else None,
            state=s.state,
            reason=s.reason,
            since=s.since,
            wrapup_ends_at=s.wrap.ends_at if s.wrap and s.state == SeatState.WRAPUP else None,
            wrapup_extended=bool(s.wrap and s.wrap.extended),
            call_id=str(s.live.call_id) if s.live and s.live.call_id else None,
            today=s.today,
        )

    async def views(self, seat_ids: Sequence[str] | None = None) -> list[SeatView]:
        ids = list(seat_ids) if seat_ids is not None else list(self._seats)
        wanted = [e for sid in ids if (e := self._roster.staffed_by(sid)) and e not in self._names]
        if wanted:
            try:
                self._names.update(await self._log.names(wanted))
            except CtidError as exc:  # names are a nicety; the states still count
                log.warning("seat_names_unavailable", error=str(exc))
        return [self.view(sid) for sid in ids if sid in self._seats]

    def now(self) -> float:
        return self._now()

    # ------------------------------------------------------------------ the call story

    def on_item(self, item: DeskItem) -> None:
        match item:
            case SeatsResynced():
                for live in item.seats:
                    s = self._seats.get(live.seat_id)
                    if s is None:
                        continue
                    s.live = live
                    if live.paused and live.pause_reason == WRAPUP and s.wrap is None:
                        # A wrap-up from before a restart: give it a fresh countdown, then end it.
                        self._start_wrap(s, self._wrapup_s(s.tier) or 1)
                    self._settle(s, item.at)
            case SeatStateChanged():
                s = self._seats.get(item.seat)
                if s is None:
                    return
                s.live = item.new
                if s.wrap is not None:
                    if item.new.paused and item.new.pause_reason == WRAPUP:
                        s.wrap.confirmed = True
                    elif s.wrap.confirmed or (item.new.paused and item.new.pause_reason):
                        self._cancel_wrap(s)  # unpaused, or paused for something else
                self._settle(s, item.at)
            case CallAnswered():
                s = self._seats.get(item.seat)
                if s is not None:
                    self._roll_day()
                    key = (str(item.call_id), s.seat)
                    if key not in self._answered:
                        self._answered.add(key)
                        s.today = replace(s.today, answered=s.today.answered + 1)
            case RecordRingMiss():
                s = self._seats.get(item.seat)
                if s is not None:
                    self._roll_day()
                    s.today = replace(s.today, missed=s.today.missed + 1)
                    self._publish(s)
            case CallEnded():
                rec = item.record
                seat = rec.answered_by
                s = self._seats.get(seat) if seat else None
                if s is None:
                    return
                self._roll_day()
                s.today = replace(s.today, talk_s=s.today.talk_s + (rec.talk_s or 0.0))
                wrap_s = self._wrapup_s(s.tier)
                seen = s.live
                if wrap_s <= 0 or seen is None or seen.paused or s.state == SeatState.LOGGED_OUT:
                    self._publish(s)
                    return
                self._start_wrap(s, wrap_s)
                self._queue("wrapup pause", self._pause_wrapup(s.seat))
                self._settle(s, rec.ended_at)
            case _:
                assert_never(item)

    def _wrapup_s(self, tier: str) -> int:
        return next((int(v) for k, v in self._cfg.desk.wrapup_s.items() if k == tier), 0)

    def _start_wrap(self, s: _Seat, seconds: float) -> None:
        self._cancel_wrap(s)
        s.wrap = _Wrap(ends_at=self._now() + seconds)
        s.wrap.handle = asyncio.get_running_loop().call_later(
            seconds, self._wrap_due, s.seat, s.wrap
        )

    def _cancel_wrap(self, s: _Seat) -> None:
        if s.wrap is not None and s.wrap.handle is not None:
            s.wrap.handle.cancel()
        s.wrap = None

    def _wrap_due(self, seat: str, wrap: _Wrap) -> None:
        s = self._seats[seat]
        if s.wrap is not wrap:
            return
        self._work.put_nowait((f"wrap-up over {seat}", self._end_wrapup(seat, "ctid")))

    def _pause_wrapup(self, seat: str) -> Work:
        async def work() -> None:
            iface = self._roster.interface(seat)
            if iface is not None and self._seats[seat].wrap is not None:
                await self._pbx.queue_pause(iface, True, WRAPUP)

        return work

    def _end_wrapup(self, seat: str, by: str) -> Work:
        async def work() -> None:
            s = self._seats[seat]
            live = s.live
            self._cancel_wrap(s)
            if live is not None and live.paused and live.pause_reason == WRAPUP:
                s.expect_by = (by, SeatState.READY, None)
                iface = self._roster.interface(seat)
                if iface is not None:
                    await self._pbx.queue_pause(iface, False, WRAPUP)
            self._settle(s, self._now())

        return work

    def _queue(self, what: str, work: Work) -> None:
        self._work.put_nowait((what, work))

    async def run(self) -> None:
        """Carry out queued PBX pauses in order and write the log, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.log_spool.run(), name="ctid-seat-log")
            tasks.create_task(self._work_loop(), name="ctid-seat-work")

    async def _work_loop(self) -> None:
        while True:
            what, work = await self._work.get()
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:  # one pause is the unit of work
                log.exception("seat_work_failed", what=what)

    # ------------------------------------------------------------------ state changes

    def _settle(self, s: _Seat, at: float) -> None:
        staffed = bool(self._roster.staffed_by(s.seat))
        state, reason = derive(s.live, staffed, s.wrap)
        if (state, reason) == (s.state, s.reason) and s.since:
            self._publish(s)
            return
        by = "pbx" if state == SeatState.PAUSED else "ctid"
        if s.expect_by is not None and s.expect_by[1:] == (state, reason):
            by = s.expect_by[0]
            s.expect_by = None
        elif state == SeatState.PAUSED and reason in SYSTEM_PAUSE_REASONS:
            by = "ctid"
        s.state, s.reason, s.since = state, reason, at or self._now()
        change = SeatChange(s.seat, state, reason, s.since, by)
        log.info("seat_desk_state", seat=s.seat, state=state.value, reason=reason, by=by)
        self._submit(change)
        self._publish(s)

    def _submit(self, change: SeatChange) -> None:
        self._work.put_nowait(
            (
                "seat log",
                lambda: self.log_spool.submit(
                    f"seat state {change.seat}", lambda: self._log.record(change)
                ),
            )
        )

    def _publish(self, s: _Seat) -> None:
        frame = seat_frame(self.view(s.seat), self._now(), self._t)
        self._push.publish(s.seat, frame)
        self._push.publish_supervisor(frame)

    def _roll_day(self) -> None:
        today = self._clock.now().date()
        if self._day != today:
            if self._day is not None:
                for s in self._seats.values():
                    s.today = SeatToday()
                self._answered.clear()
            self._day = today

    async def restore_today(self) -> None:
        """Today's counts from the database (before the first event: `Daemon` calls it at
        start), so a restart does not zero what the agents and the shift leader see. A
        database that cannot answer leaves them at zero, said in the log."""
        day = self._clock.now().date()
        tz = self._clock.tz
        lo = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        try:
            stored = await self._log.today(lo, hi)
        except CtidError as exc:
            log.warning("seat_today_not_restored", error=str(exc))
            return
        self._roll_day()
        counted: dict[str, int] = {}
        for call_id, seat in stored.answered:
            if seat in self._seats and (call_id, seat) not in self._answered:
                self._answered.add((call_id, seat))
                counted[seat] = counted.get(seat, 0) + 1
        for s in self._seats.values():
            s.today = SeatToday(
                answered=s.today.answered + counted.get(s.seat, 0),
                missed=s.today.missed + stored.missed.get(s.seat, 0),
                talk_s=s.today.talk_s + stored.talk_s.get(s.seat, 0.0),
            )
        log.info(
            "seat_today_restored",
            answered=sum(counted.values()),
            missed=sum(stored.missed.values()),
        )

    # ------------------------------------------------------------------ asked for by people

    async def set_state(
        self, actor: Actor, seat_id: str, state: str, reason: str | None
    ) -> SeatView:
        """Ready or paused (with one of the agent reasons). Agents may not end a pause for missed
        calls (`rna`): a supervisor puts the seat back. Nobody ends the rota's lunch/closed here."""
        s = self._seats.get(seat_id)
        if s is None:
            raise RecordMissingError(f"no seat {seat_id}")
        iface = self._roster.interface(seat_id)
        if s.state == SeatState.LOGGED_OUT or iface is None:
            raise StateConflictError(
                "nobody is logged in at this seat (or its phone is off), so it takes no calls"
            )
        live = s.live
        match state:
            case "paused":
                if reason not in self._cfg.desk.pause_reasons:
                    raise RequestRefusedError(
                        "choose a reason: " + ", ".join(self._cfg.desk.pause_reasons)
                    )
                if s.state == SeatState.PAUSED and s.reason in SYSTEM_PAUSE_REASONS:
                    raise StateConflictError(
                        f"the seat is already paused by ctid ({s.reason}); "
                        "end that first or wait for it"
                    )
                self._cancel_wrap(s)
                s.expect_by = (actor.employee_id, SeatState.PAUSED, reason)
                await self._pause(iface, True, reason)
            case "ready":
                if s.state == SeatState.WRAPUP:
                    await self._end_wrapup(seat_id, actor.employee_id)()
                elif live is not None and live.paused:
                    why = live.pause_reason
                    if why in ROTA_REASONS:
                        raise StateConflictError(
                            "the rota pauses this seat ("
                            + ("lunch duty" if why == "lunch" else "the desk is closed")
                            + "); it comes back by itself when that ends"
                        )
                    if why == RNA and actor.role != "supervisor":
                        raise StateConflictError(
                            "this seat was paused after missed calls: ask the shift leader to "
                            "put it back in service"
                        )
                    s.expect_by = (actor.employee_id, SeatState.READY, None)
                    await self._pause(iface, False, why)
            case _:
                raise RequestRefusedError("state must be ready or paused")
        log.info(
            "seat_state_requested",
            seat=seat_id,
            state=state,
            reason=reason,
            employee_id=actor.employee_id,
        )
        return self.view(seat_id)

    async def wrapup(self, actor: Actor, seat_id: str, action: str) -> SeatView:
        """End the wrap-up now, or extend it once by `desk.wrapup_extend_s`."""
        s = self._seats.get(seat_id)
        if s is None:
            raise RecordMissingError(f"no seat {seat_id}")
        if s.state != SeatState.WRAPUP or s.wrap is None:
            raise StateConflictError("the seat is not in wrap-up")
        match action:
            case "end":
                await self._end_wrapup(seat_id, actor.employee_id)()
            case "extend":
                if s.wrap.extended:
                    raise StateConflictError("a wrap-up can be extended only once")
                wrap = s.wrap
                remaining = max(0.0, wrap.ends_at - self._now())
                if wrap.handle is not None:
                    wrap.handle.cancel()
                extra = self._cfg.desk.wrapup_extend_s
                wrap.ends_at += extra
                wrap.extended = True
                wrap.handle = asyncio.get_running_loop().call_later(
                    remaining + extra, self._wrap_due, seat_id, wrap
                )
                self._publish(s)
            case _:
                raise RequestRefusedError("action must be end or extend")
        log.info("seat_wrapup", seat=seat_id, action=action, employee_id=actor.employee_id)
        return self.view(seat_id)

    async def _pause(self, iface: str, paused: bool, reason: str | None) -> None:
        try:
            await self._pbx.queue_pause(iface, paused, reason or "")
        except CtidError as exc:
            raise StateConflictError(f"the PBX did not take the change: {exc}") from exc

    def close(self) -> None:
        for s in self._seats.values():
            self._cancel_wrap(s)


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


def seat_part(v: SeatView, now: float, t: Translator) -> SeatPart:
    """The documented shape of one seat (`GET /api/seats`, the `seat_state` frame)."""
    return SeatPart(
        seat=v.seat,
        name=v.name,
        agent=AgentPart(v.employee_id, v.agent_name or v.employee_id) if v.employee_id else None,
        tier=v.tier,
        state=v.state.value,
        reason=v.reason,
        reason_words=pause_words(t, v.reason) if v.reason else None,
        since=_iso(v.since),
        in_state_s=max(0, int(now - v.since)) if v.since else 0,
        wrapup_ends_at=_iso(v.wrapup_ends_at),
        wrapup_extended=v.wrapup_extended,
        call_id=v.call_id,
        today=TodayPart(v.today.answered, v.today.missed, v.today.avg_talk_s),
    )


def seat_json(v: SeatView, now: float, t: Translator) -> dict[str, Any]:
    """`seat_part` as JSON-ready data (`GET /api/seats`)."""
    return seat_part(v, now, t).to_wire()


def seat_frame(v: SeatView, now: float, t: Translator) -> SeatStateFrame:
    """The push frame of a seat change (to the seat's desktops and to the supervisors); its
    `reason_words` are in the site's language (pages translate `reason` themselves)."""
    return SeatStateFrame(now, seat_part(v, now, t))
