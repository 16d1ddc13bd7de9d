"""What the screens show: the screen-pop pushed to exactly the ringing seat, enriched with the
caller's record off the event path, and the wallboard snapshot for supervisors.

The first pop frame goes out before any database lookup (the pop budget is 20 ms from the PBX's
`AgentCalled`); the directory match and the caller's incidents follow as an updated frame from a
task this object owns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import structlog

from ctid.calls.tracker import (
    CallAnswered,
    CallRecord,
    CallTracker,
    SeatRingEnded,
    SeatRingStarted,
    SeatStateChanged,
)
from ctid.config import Config
from ctid.core.clock import Clock
from ctid.core.effects import AlertSupervisors, NotifySeat
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
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.incidents import IncidentStore

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


@dataclass
class Screens:
    """Implements the desk's `PopSink` over the push hub."""

    cfg: Config
    hub: PopHub
    clock: Clock
    directory: CallerDirectory
    incidents: IncidentStore
    tracker: Callable[[], CallTracker]
    desk_summary: Callable[[], Mapping[str, object]]
    ami_health: Callable[[], Mapping[str, object]]
    kpis_today: Callable[[date], Any]
    pops: dict[str, Pop] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _kpis: dict[str, object] = field(default_factory=dict)
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)

    # ------------------------------------------------------------------ seat pops

    async def ringing(self, notice: SeatRingStarted, tracker: CallTracker) -> None:
        call = tracker.call(notice.call_id)
        options = {o.digit: o for o in self.cfg.ivr.options}
        ivr = None
        if notice.ivr_choice and notice.ivr_choice in options:
            opt = options[notice.ivr_choice]
            ivr = IvrChoice(digit=opt.digit, label=opt.label, request_type=opt.request_type)
        ring = RingInput(
            call_id=notice.call_id,
            seat_id=notice.seat,
            number=notice.caller_num,
            cid_name=notice.caller_name,
            queue=notice.queue,
            ivr=ivr,
            entered_at=call.started_at if call else None,
            rang_at=notice.at,
            ring_deadline_at=notice.at + self.cfg.ring.deadline_s,
        )
        pop = ringing(ring)
        self.pops[notice.seat] = pop
        self.hub.publish(notice.seat, to_frame(pop))
        self._spawn(self._enrich(notice.seat, ring))
        self._dirty.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _enrich(self, seat: str, ring: RingInput) -> None:
        """Directory matches, open incidents and recent contacts, pushed as an updated pop."""
        try:
            callers = await self.directory.match(ring.number) if ring.number else []
            matches = []
            for caller in callers[:10]:
                history = await self.incidents.for_caller(caller.id, limit=15)
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
        except Exception as exc:  # the pop is already on screen; the record is a bonus
            log.warning("pop_enrich_failed", seat=seat, call_id=ring.call_id, error=str(exc)[:200])
            return
        current = self.pops.get(seat)
        if not matches or current is None or current.ring.call_id != ring.call_id:
            return
        pop = replace(current, ring=replace(current.ring, matches=tuple(matches)))
        self.pops[seat] = pop
        self.hub.publish(seat, to_frame(pop))

    async def ring_ended(self, notice: SeatRingEnded) -> None:
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

    async def answered(self, notice: CallAnswered, tracker: CallTracker, incident: str) -> None:
        pop = self.pops.get(notice.seat)
        if pop is None or pop.ring.call_id != notice.call_id:
            return
        pop = answered(
            pop, at=notice.at, talk_cap=self.cfg.talk_cap, incident_number=incident or None
        )
        self.pops[notice.seat] = pop
        self.hub.publish(notice.seat, to_frame(pop))
        self._dirty.set()

    async def incident_opened(self, call_id: str, number: str) -> None:
        """The call's incident now exists: the pop shows its number (the form saves into it)."""
        for seat, pop in list(self.pops.items()):
            if pop.ring.call_id == call_id and pop.state == "talking":
                pop = replace(pop, incident_number=number)
                self.pops[seat] = pop
                self.hub.publish(seat, to_frame(pop))

    async def ended(self, record: CallRecord, incident: str) -> None:
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

    async def seat_changed(self, notice: SeatStateChanged) -> None:
        self._dirty.set()

    async def alert(self, effect: AlertSupervisors) -> None:
        self.hub.publish_supervisor(
            {
                "v": 1,
                "type": "alert",
                "kind": effect.kind,
                "message": effect.message,
                "seat": effect.seat,
                "call_id": effect.call_id,
                "at": self.clock.utcnow().timestamp(),
            }
        )

    async def notify(self, effect: NotifySeat) -> None:
        if effect.kind in ("cap_warning", "cap_reached"):
            pop = self.pops.get(effect.seat)
            cap_at = pop.talk.cap_at if pop is not None and pop.talk is not None else 0.0
            now = self.clock.utcnow().timestamp()
            self.hub.publish(
                effect.seat,
                cap_warning_frame(
                    seat_id=effect.seat,
                    call_id=str(effect.data.get("call_id", "")),
                    at=now,
                    cap_at=cap_at or now + float(effect.data.get("remaining_s", 0) or 0),
                    action=str(effect.data.get("action", self.cfg.talk_cap.action)),
                ),
            )

    # ------------------------------------------------------------------ wallboard

    def wallboard(self) -> dict[str, Any]:
        tracker = self.tracker()
        names = {s.id: s for s in self.cfg.seats}
        seats = []
        calls = {c.call_id: c for c in tracker.calls()}
        for state in tracker.seats():
            call = calls.get(state.call_id) if state.call_id else None
            status = {"idle": "available", "unavailable": "offline"}.get(state.status, state.status)
            ring = (
                next(
                    (a for a in call.ring_attempts if a.seat == state.seat_id and a.end is None),
                    None,
                )
                if call
                else None
            )
            cfg_seat = names.get(state.seat_id)
            seats.append(
                {
                    "seat_id": state.seat_id,
                    "name": cfg_seat.name if cfg_seat else state.seat_id,
                    "tier": cfg_seat.tier if cfg_seat else "",
                    "status": status,
                    "pause_reason": state.pause_reason if state.paused else "",
                    "ring_started_at": ring.start if ring else None,
                    "ring_deadline_at": ring.start + self.cfg.ring.deadline_s if ring else None,
                    "talk_started_at": call.answered_at
                    if call and state.activity == "on_call"
                    else None,
                    "cap_at": call.answered_at + self.cfg.talk_cap.talk_cap_s
                    if call and call.answered_at and state.activity == "on_call"
                    else None,
                    "caller": (call.caller_name or call.caller_num) if call else "",
                    "call_id": state.call_id or "",
                    "channel": (call.seat_channel or "") if call else "",
                }
            )
        queues: dict[str, list[dict[str, Any]]] = {q.name: [] for q in self.cfg.queues}
        for call in calls.values():
            if call.phase in ("queued", "ringing") and call.queue:
                queues.setdefault(call.queue, []).append(
                    {
                        "caller": call.caller_name or call.caller_num,
                        "since": call.queued_at or call.started_at,
                    }
                )
        return {
            "v": 1,
            "type": "wallboard",
            "at": self.clock.utcnow().timestamp(),
            "seats": seats,
            "queues": [{"name": n, "waiting": w} for n, w in queues.items()],
            "kpis": dict(self._kpis),
            "desk": dict(self.desk_summary()),
            "ami": dict(self.ami_health()),
        }

    async def _refresh_kpis(self) -> None:
        try:
            row = await self.kpis_today(self.clock.now().date())
        except Exception as exc:
            log.warning("wallboard_kpis_failed", error=str(exc)[:200])
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
            for task in list(self._tasks):
                task.cancel()
