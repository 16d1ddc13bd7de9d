"""What the screens show, from the call story on the bus: the pop pushed to exactly the ringing
seat (first before any lookup, then enriched with the caller's record by a task it owns), alerts,
and the wallboard for supervisors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol, assert_never

import structlog

from ctid.config import Config
from ctid.core.calls import (
    CallAnswered,
    CallAnswerRecalled,
    CallEnded,
    CallLeftQueue,
    CallQueued,
    CallStarted,
    CallTransferred,
    IncidentOpened,
    SeatLegEnded,
    SeatRingEnded,
    SeatRingStarted,
    SeatsResynced,
    SeatStateChanged,
)
from ctid.core.clock import Clock
from ctid.core.effects import (
    AlertSupervisors,
    FlagCall,
    NotifySeat,
    RecordAnswer,
    RecordRingMiss,
    RequestCallback,
)
from ctid.core.frames import (
    AlertFrame,
    ArticlePart,
    SolvedPart,
    SuggestionsFrame,
    WallboardFrame,
)
from ctid.core.ids import SeatId
from ctid.screenpop.board import LiveBoard
from ctid.screenpop.hub import PopHub
from ctid.screenpop.pop import (
    CallerCard,
    CallerMatch,
    ContactLine,
    IncidentLine,
    IvrChoice,
    Pop,
    RingInput,
    answered,
    cap_warning_frame,
    hung_up,
    idle_frame,
    ringing,
    to_frame,
)

log = structlog.get_logger(__name__)

OPEN_STATUSES = frozenset(
    {
        "new",
        "assigned",
        "in_progress",
        "handed_to_expert",
        "escalated",
        "dispatched",
        "accepted",
        "suspended",
        "reopened",
        "rejected",
    }
)
WALLBOARD_EVERY_S = 5.0
KPI_EVERY_S = 30.0

ScreenItem = (
    CallStarted
    | CallQueued
    | CallLeftQueue
    | SeatRingStarted
    | SeatRingEnded
    | CallAnswered
    | CallTransferred
    | SeatLegEnded
    | CallEnded
    | SeatStateChanged
    | SeatsResynced
    | IncidentOpened
    | CallAnswerRecalled
    | AlertSupervisors
    | NotifySeat
    | RecordRingMiss
    | RecordAnswer
    | FlagCall
    | RequestCallback
)
"""The bus items the screens read: the call story, the desk effects and opened incidents."""


SHUTDOWN_WAIT_S = 5.0
"""How long `run` waits for its pop lookups to end once cancelled."""

HINTS_KEPT_S = 60.0
"""How long the suggestions for one IVR choice are reused: every call with that choice gets the
same articles (until one is written) and the same solved incidents (at most this old), and the
loop that pushes the next pop does not run the two queries again for each ring."""


@dataclass(frozen=True, slots=True)
class _Hints:
    generation: int
    until: float
    articles: tuple[ArticlePart, ...]
    solved: tuple[SolvedPart, ...]


class CallerPhone(Protocol):
    @property
    def raw(self) -> str: ...


class CallerRow(Protocol):
    """A directory entry as the pop shows it (the tickets' `CallerView` fits)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def phones(self) -> Sequence[CallerPhone]: ...
    @property
    def employee_id(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def office_location(self) -> str | None: ...
    @property
    def vip(self) -> bool: ...


class IncidentRow(Protocol):
    """One of the caller's incidents as the pop shows it (the tickets' `IncidentView` fits)."""

    @property
    def number(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def priority(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def channel(self) -> str: ...


class CallerDirectory(Protocol):
    """Who calls from a number (the tickets' caller directory fits)."""

    async def match(self, number: str) -> Sequence[CallerRow]: ...


class CallerHistory(Protocol):
    """A caller's incidents, newest first (the incident store fits)."""

    async def for_caller(self, caller_id: int, limit: int = 10) -> Sequence[IncidentRow]: ...


class ArticleHint(Protocol):
    """A knowledge article as the pop suggests it (the tickets' `ArticleView` fits)."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def category(self) -> str | None: ...


class SolvedHint(Protocol):
    """A resolved incident like this one (the tickets' `SolvedBefore` fits)."""

    @property
    def number(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def resolution(self) -> str | None: ...


class KnowledgeHints(Protocol):
    """Articles and earlier solutions for a ringing call (the knowledge base fits);
    `generation` changes whenever an article is written."""

    @property
    def generation(self) -> int: ...

    async def suggest(
        self, *, request_type: str | None = None, category: str | None = None, limit: int = 5
    ) -> Sequence[ArticleHint]: ...

    async def solved_before(
        self, *, category: str | None, text_hint: str, limit: int = 5
    ) -> Sequence[SolvedHint]: ...


@dataclass
class SeatScreens:
    """The bus handler `on_item` and the wallboard loop `run`, over the push hub. The wallboard
    is drawn from `board`, the read model the same notices keep."""

    cfg: Config
    hub: PopHub
    clock: Clock
    directory: CallerDirectory
    history: CallerHistory
    desk_summary: Callable[[], Mapping[str, object]]
    ami_health: Callable[[], Mapping[str, object]]
    kpis_today: Callable[[date], Awaitable[Any]]
    kb: KnowledgeHints | None = None
    """Suggests articles for a ringing call, in a frame of its own after the pop."""
    pops: dict[str, Pop] = field(default_factory=dict)
    _incidents: dict[str, str] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _kpis: dict[str, object] = field(default_factory=dict)
    _hints: dict[tuple[str | None, str], _Hints] = field(default_factory=dict)
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    board: LiveBoard = field(init=False)

    def __post_init__(self) -> None:
        self.board = LiveBoard(SeatId(s.id) for s in self.cfg.seats)

    def on_item(self, item: ScreenItem) -> None:
        match item:  # the wallboard's read model first: the wallboard is drawn from it
            case (
                CallStarted()
                | CallQueued()
                | CallLeftQueue()
                | SeatRingStarted()
                | SeatRingEnded()
                | CallAnswered()
                | CallAnswerRecalled()
                | CallEnded()
                | SeatStateChanged()
                | SeatsResynced()
            ):
                self.board.apply(item)
            case _:
                pass
        match item:
            case SeatRingStarted():
                self.ringing(item)
            case SeatRingEnded():
                self.ring_ended(item)
            case CallAnswered():
                self.answered(item)
            case SeatLegEnded():
                self.leg_ended(item)
            case CallAnswerRecalled():
                self.answer_recalled(item)
            case IncidentOpened():
                self.incident_opened(item)
            case CallEnded():
                self.ended(item)
            case SeatStateChanged() | SeatsResynced() | CallQueued() | CallLeftQueue():
                self._dirty.set()
            case AlertSupervisors():
                self.alert(item)
            case NotifySeat():
                self.notify(item)
            case (
                CallStarted()
                | CallTransferred()
                | RecordRingMiss()
                | RecordAnswer()
                | FlagCall()
                | RequestCallback()
            ):
                pass  # nothing on screen changes
            case _:
                assert_never(item)

    # ------------------------------------------------------------------ seat pops

    def ringing(self, notice: SeatRingStarted) -> None:
        ring = self._ring_input(
            notice.call_id,
            notice.seat,
            notice.caller_num,
            notice.caller_name,
            notice.queue,
            notice.ivr_choice,
            notice.started_at,
            notice.at,
        )
        pop = ringing(ring)
        self.pops[notice.seat] = pop
        self.hub.publish(notice.seat, to_frame(pop))
        self._spawn(self._enrich(notice.seat, ring), f"pop-enrich-{notice.seat}")
        if self.kb is not None:
            self._spawn(self._suggest(notice.seat, ring), f"pop-suggest-{notice.seat}")
        self._dirty.set()

    def _ring_input(
        self,
        call_id: str,
        seat: str,
        number: str,
        name: str,
        queue: str | None,
        ivr_choice: str,
        started_at: float,
        rang_at: float,
    ) -> RingInput:
        options = {o.digit: o for o in self.cfg.ivr.options}
        ivr = None
        if ivr_choice and ivr_choice in options:
            opt = options[ivr_choice]
            ivr = IvrChoice(digit=opt.digit, label=opt.label, request_type=opt.request_type)
        return RingInput(
            call_id=call_id,
            seat_id=seat,
            number=number,
            cid_name=name,
            queue=queue or "",
            ivr=ivr,
            entered_at=started_at,
            rang_at=rang_at,
            ring_deadline_at=rang_at + self.cfg.ring.deadline_s,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _enrich(self, seat: str, ring: RingInput) -> None:
        """Directory matches, open incidents and recent contacts, pushed as an updated pop."""
        try:
            callers = await self.directory.match(ring.number) if ring.number else []
            matches = []
            for caller in callers[:10]:
                history = await self.history.for_caller(caller.id, limit=15)
                matches.append(
                    CallerMatch(
                        card=CallerCard(
                            caller_id=caller.id,
                            name=caller.name,
                            phone=caller.phones[0].raw if caller.phones else ring.number,
                            employee_id=caller.employee_id or "",
                            department=caller.department or "",
                            office=caller.office_location or "",
                            vip=caller.vip,
                        ),
                        open_incidents=tuple(
                            IncidentLine(
                                number=i.number,
                                summary=i.summary,
                                status=i.status,
                                priority=i.priority or "",
                                opened_at=i.created_at.timestamp(),
                            )
                            for i in history
                            if i.status in OPEN_STATUSES
                        ),
                        recent_contacts=tuple(
                            ContactLine(
                                at=i.created_at.timestamp(),
                                channel=i.channel,
                                summary=i.summary,
                                incident_number=i.number,
                            )
                            for i in history[:5]
                        ),
                    )
                )
        except Exception:  # the pop is already on screen; the record is a bonus
            log.exception("pop_enrich_failed", seat=seat, call_id=ring.call_id)
            return
        current = self.pops.get(seat)
        if not matches or current is None or current.ring.call_id != ring.call_id:
            return
        pop = replace(current, ring=replace(current.ring, matches=tuple(matches)))
        self.pops[seat] = pop
        self.hub.publish(seat, to_frame(pop))

    async def _suggest(self, seat: str, ring: RingInput) -> None:
        """Articles fitting the IVR choice, and incidents solved before, as a `suggestions`
        frame: the ringing frame is out already and never waits for these."""
        request_type = ring.ivr.request_type if ring.ivr else None
        try:
            hints = await self._hints_for(request_type, ring.ivr.label if ring.ivr else "")
        except Exception:  # a hint, not the pop: say so in the log and show none
            log.exception("pop_suggest_failed", seat=seat, call_id=ring.call_id)
            return
        current = self.pops.get(seat)
        if current is None or current.ring.call_id != ring.call_id:
            return
        self.hub.publish(
            seat,
            SuggestionsFrame(
                seat=seat,
                call_id=ring.call_id,
                request_type=request_type,
                articles=hints.articles,
                solved_before=hints.solved,
            ),
        )

    async def _hints_for(self, request_type: str | None, hint: str) -> _Hints:
        """The suggestions for one IVR choice, kept `HINTS_KEPT_S` or until an article changes."""
        assert self.kb is not None
        key, now = (request_type, hint), asyncio.get_running_loop().time()
        kept = self._hints.get(key)
        if kept is not None and kept.until > now and kept.generation == self.kb.generation:
            return kept
        generation = self.kb.generation
        articles = await self.kb.suggest(request_type=request_type, limit=5)
        solved = await self.kb.solved_before(category=None, text_hint=hint, limit=3) if hint else []
        fresh = _Hints(
            generation,
            now + HINTS_KEPT_S,
            tuple(ArticlePart(a.id, a.title, a.category) for a in articles),
            tuple(SolvedPart(i.number, i.summary, i.resolution or "") for i in solved),
        )
        self._hints[key] = fresh
        return fresh

    def ring_ended(self, notice: SeatRingEnded) -> None:
        if notice.reason == "answered":
            return
        pop = self.pops.get(notice.seat)
        if pop is not None and pop.ring.call_id == notice.call_id and pop.state == "ringing":
            del self.pops[notice.seat]
            self.hub.publish(
                notice.seat,
                idle_frame(
                    seat_id=notice.seat,
                    reason="missed",
                    call_id=notice.call_id,
                    caller=pop.ring.cid_name or pop.ring.number,
                ),
            )
        self._dirty.set()

    def answered(self, notice: CallAnswered) -> None:
        incident = self._incidents.get(notice.call_id, "")
        pop = self.pops.get(notice.seat)
        fresh = pop is None or pop.ring.call_id != notice.call_id
        if pop is None or pop.ring.call_id != notice.call_id:
            # No ring was shown for this answer: ctid (re)started or reconnected while the seat
            # was already talking. The seat still gets its talking pop and incident form.
            ring = self._ring_input(
                notice.call_id,
                notice.seat,
                notice.caller_num,
                notice.caller_name,
                notice.queue,
                notice.ivr_choice,
                notice.started_at,
                notice.at,
            )
            pop = ringing(ring)
        pop = answered(
            pop,
            at=notice.at,
            talk_cap=self.cfg.talk_cap,
            incident_number=incident or None,
            cap_from=notice.first_answered_at,
        )
        self.pops[notice.seat] = pop
        self.hub.publish(notice.seat, to_frame(pop))
        if fresh:
            self._spawn(self._enrich(notice.seat, pop.ring), f"pop-enrich-{notice.seat}")
        self._dirty.set()

    def answer_recalled(self, notice: CallAnswerRecalled) -> None:
        """After a restart the stored answer time is known: the talk timer and cap count from it."""
        pop = self.pops.get(notice.seat)
        if pop is None or pop.ring.call_id != notice.call_id or pop.state != "talking":
            return
        pop = answered(pop, at=notice.at, talk_cap=self.cfg.talk_cap)
        self.pops[notice.seat] = pop
        self.hub.publish(notice.seat, to_frame(pop))

    def leg_ended(self, notice: SeatLegEnded) -> None:
        """The seat's own leg hung up (the call may go on with another seat): wrap-up now."""
        pop = self.pops.get(notice.seat)
        if pop is None or pop.ring.call_id != notice.call_id or pop.state != "talking":
            return
        incident = self._incidents.get(notice.call_id, "")
        pop = hung_up(pop, at=notice.at, incident_number=incident or None)
        del self.pops[notice.seat]  # the hub keeps the wrap-up pop as the seat's snapshot
        self.hub.publish(notice.seat, to_frame(pop))
        self._dirty.set()

    def incident_opened(self, notice: IncidentOpened) -> None:
        """The call's incident now exists: the pop shows its number (the form saves into it)."""
        call_id, number = notice.call_id, notice.number
        self._incidents[call_id] = number
        for seat, pop in list(self.pops.items()):
            if pop.ring.call_id == call_id and pop.state == "talking":
                pop = replace(pop, incident_number=number)
                self.pops[seat] = pop
                self.hub.publish(seat, to_frame(pop))

    def ended(self, notice: CallEnded) -> None:
        record = notice.record
        incident = self._incidents.pop(record.call_id, "")
        for seat, pop in list(self.pops.items()):
            if pop.ring.call_id != record.call_id:
                continue
            if pop.state == "ringing":
                del self.pops[seat]
                self.hub.publish(
                    seat, idle_frame(seat_id=seat, reason="missed", call_id=record.call_id)
                )
                continue
            pop = hung_up(pop, at=record.ended_at, incident_number=incident or None)
            del self.pops[seat]  # the hub keeps the wrap-up pop as the seat's snapshot
            self.hub.publish(seat, to_frame(pop))
        self._dirty.set()

    def alert(self, effect: AlertSupervisors) -> None:
        self.hub.publish_supervisor(
            AlertFrame(
                kind=effect.kind,
                message=effect.message,
                seat=effect.seat,
                call_id=effect.call_id,
                at=self.clock.utcnow().timestamp(),
            )
        )

    def notify(self, effect: NotifySeat) -> None:
        pop = self.pops.get(effect.seat)
        cap_at = pop.talk.cap_at if pop is not None and pop.talk is not None else 0.0
        now = self.clock.utcnow().timestamp()
        self.hub.publish(
            effect.seat,
            cap_warning_frame(
                seat_id=effect.seat,
                call_id=effect.call_id,
                at=now,
                cap_at=cap_at or now + effect.remaining_s,
                action=effect.action or self.cfg.talk_cap.action,
            ),
        )

    # ------------------------------------------------------------------ wallboard

    def wallboard(self) -> WallboardFrame:
        return WallboardFrame(
            at=self.clock.utcnow().timestamp(),
            seats=self.board.tiles(self.cfg),
            queues=self.board.queues(self.cfg),
            kpis=dict(self._kpis),
            desk=dict(self.desk_summary()),
            ami=dict(self.ami_health()),
        )

    async def _refresh_kpis(self) -> None:
        try:
            row = await self.kpis_today(self.clock.now().date())
        except Exception:  # one refresh is the unit of work: the wallboard shows the last figures
            log.exception("wallboard_kpis_failed")
            return
        self._kpis = {
            "offered": row.offered,
            "answered": row.answered,
            "abandoned": row.abandoned,
            "loss_rate": row.loss_rate,
            "within_rings_pct": None
            if row.within_rings_rate is None
            else row.within_rings_rate * 100,
            "asa_s": row.asa_s,
            "aht_s": row.aht_s,
            "over_cap": row.over_cap,
        }

    async def run(self) -> None:
        """Publish the wallboard when something changed (at most every 0.5 s) and every few
        seconds anyway (timers on screens count from the data, not from the frames)."""
        loop = asyncio.get_running_loop()
        next_kpis = 0.0
        try:
            while True:
                if loop.time() >= next_kpis:
                    await self._refresh_kpis()
                    next_kpis = loop.time() + KPI_EVERY_S
                self.hub.publish_supervisor(self.wallboard())
                self._dirty.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                # arrives as the wait ends, and this loop would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(WALLBOARD_EVERY_S):
                        await self._dirty.wait()
                await asyncio.sleep(0.5)
        finally:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            if pending:
                # Wait for them (bounded): a lookup cancelled mid-query still closes its database
                # connection, which must happen before the composition root disposes the engine —
                # a connection closed after that never finishes and the loop cannot shut down.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SHUTDOWN_WAIT_S):
                        await asyncio.gather(*pending, return_exceptions=True)
