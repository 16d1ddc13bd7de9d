"""The desk side of the call service: turns the tracker's notices and the policies' desk effects
into incidents, call records and callbacks (tickets), pops and alerts (the push hub) and logs.

This is wiring between feature packages, so it lives in the composition root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog

from ctid.app.spool import WriteSpool
from ctid.calls.ivr import IncidentStatus
from ctid.calls.tracker import (
    CallAnswered,
    CallEnded,
    CallRecord,
    CallStarted,
    CallTracker,
    Notice,
    SeatRingEnded,
    SeatRingStarted,
    SeatStateChanged,
)
from ctid.config import Config
from ctid.core.effects import (
    AlertSupervisors,
    FlagCall,
    NotifySeat,
    RecordAnswer,
    RecordRingMiss,
    RequestCallback,
)
from ctid.core.errors import CtidError
from ctid.tickets.call_facts import CallFactStore
from ctid.tickets.callbacks import CallbackStore
from ctid.tickets.facts import CallFacts, CallRecordIn, RingAttemptIn
from ctid.tickets.incidents import IncidentStore

log = structlog.get_logger(__name__)

# Outcomes whose caller was not served: they go on the callback list.
CALLBACK_FOR_OUTCOME = {
    "abandoned_in_queue": "abandoned",
    "unanswered_timeout": "missed",
}


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _opt(epoch: float | None) -> datetime | None:
    return None if epoch is None else utc(epoch)


class PopSink(Protocol):
    """What the desk pushes to screens (the screen-pop hub and the wallboard)."""

    async def ringing(self, notice: SeatRingStarted, tracker: CallTracker) -> None: ...

    async def ring_ended(self, notice: SeatRingEnded) -> None: ...

    async def answered(self, notice: CallAnswered, tracker: CallTracker, incident: str) -> None: ...

    async def ended(self, record: CallRecord, incident: str) -> None: ...

    async def incident_opened(self, call_id: str, number: str) -> None: ...

    async def seat_changed(self, notice: SeatStateChanged) -> None: ...

    async def alert(self, effect: AlertSupervisors) -> None: ...

    async def notify(self, effect: NotifySeat) -> None: ...


class NoScreens:
    """No screens attached (tests of the call side alone)."""

    async def ringing(self, notice: SeatRingStarted, tracker: CallTracker) -> None: ...

    async def ring_ended(self, notice: SeatRingEnded) -> None: ...

    async def answered(self, notice: CallAnswered, tracker: CallTracker, incident: str) -> None: ...

    async def ended(self, record: CallRecord, incident: str) -> None: ...

    async def incident_opened(self, call_id: str, number: str) -> None: ...

    async def seat_changed(self, notice: SeatStateChanged) -> None: ...

    async def alert(self, effect: AlertSupervisors) -> None: ...

    async def notify(self, effect: NotifySeat) -> None: ...


async def _nothing(*_args: str) -> None:
    return None


@dataclass
class DeskEvents:
    """Implements the call service's `DeskSink`."""

    cfg: Config
    store: IncidentStore
    callbacks: CallbackStore
    call_facts: CallFactStore
    spool: WriteSpool
    screens: PopSink = field(default_factory=NoScreens)
    on_seat_free: Callable[[str], Awaitable[None]] = _nothing
    """A seat's call ended (the rota pauses a seat whose lunch started during the call)."""
    on_pause_changed: Callable[[str], Awaitable[None]] = _nothing
    on_auto_pause: Callable[[str, str], Awaitable[None]] = _nothing
    answers: dict[str, RecordAnswer] = field(default_factory=dict)
    flags: dict[str, set[str]] = field(default_factory=dict)
    incidents: dict[str, str] = field(default_factory=dict)
    """call id → incident number, for the calls still live."""
    _live: set[str] = field(default_factory=set)

    async def notice(self, notice: Notice, tracker: CallTracker) -> None:
        match notice:
            case CallStarted():
                log.info("call_started", call_id=notice.call_id, caller=notice.caller_num)
            case SeatRingStarted():
                log.info(
                    "seat_ringing", call_id=notice.call_id, seat=notice.seat, queue=notice.queue
                )
                await self.screens.ringing(notice, tracker)
            case SeatRingEnded():
                log.info(
                    "seat_ring_ended",
                    call_id=notice.call_id,
                    seat=notice.seat,
                    reason=notice.reason,
                    ring_s=round(notice.ring_s, 2),
                )
                await self.screens.ring_ended(notice)
            case CallAnswered():
                log.info(
                    "call_answered",
                    call_id=notice.call_id,
                    seat=notice.seat,
                    ring_s=round(notice.ring_s, 2),
                )
                number = await self._open_incident(notice, tracker)
                await self.screens.answered(notice, tracker, number)
            case CallEnded():
                await self._ended(notice.record)
            case SeatStateChanged():
                log.info(
                    "seat_state", seat=notice.seat, status=notice.new.status, why=notice.reason
                )
                await self.screens.seat_changed(notice)
                if notice.old.activity != "idle" and notice.new.activity == "idle":
                    await self.on_seat_free(notice.seat)
                if (notice.old.paused, notice.old.pause_reason) != (
                    notice.new.paused,
                    notice.new.pause_reason,
                ):
                    await self.on_pause_changed(notice.seat)
            case _:
                pass

    async def _open_incident(self, notice: CallAnswered, tracker: CallTracker) -> str:
        """Every answered call becomes an incident, with no click (idempotent per call)."""
        call = tracker.call(notice.call_id)
        seat = self.cfg.seat(notice.seat)
        facts = CallFacts(
            call_id=notice.call_id,
            answered_at=utc(notice.at),
            answered_by_seat=notice.seat,
            answered_by_employee=(seat.staffed_by or None) if seat else None,
            caller_number=call.caller_num if call else None,
            caller_name=call.caller_name if call else None,
            started_at=utc(call.started_at) if call else None,
            queue=call.queue if call else None,
            ivr_digit=(call.ivr_choice or None) if call else None,
        )
        self._live.add(notice.call_id)
        # Written by the spool's task: the event path never waits for the database. The pop
        # gets the incident number when it exists (a few milliseconds later).
        await self.spool.submit(
            f"incident for call {notice.call_id}", lambda: self._create_incident(facts)
        )
        return self.incidents.get(notice.call_id, "")

    async def _create_incident(self, facts: CallFacts) -> None:
        view = await self.store.create_from_call(facts)
        log.info("incident_opened", call_id=facts.call_id, incident=view.number)
        if facts.call_id in self._live:
            self.incidents[facts.call_id] = view.number
            await self.screens.incident_opened(facts.call_id, view.number)

    async def _ended(self, rec: CallRecord) -> None:
        answer = self.answers.pop(rec.call_id, None)
        flags = self.flags.pop(rec.call_id, set())
        number = self.incidents.pop(rec.call_id, "")
        self._live.discard(rec.call_id)
        log.info(
            "call_ended",
            call_id=rec.call_id,
            outcome=rec.outcome,
            answered_by=rec.answered_by,
            rings=len(rec.ring_attempts),
            talk_s=None if rec.talk_s is None else round(rec.talk_s, 1),
            incident=number or None,
        )
        record = CallRecordIn(
            call_id=rec.call_id,
            started_at=utc(rec.started_at),
            caller_number=rec.caller_num or None,
            caller_name=rec.caller_name or None,
            queue=rec.queue,
            ivr_choice=rec.ivr_choice or None,
            queued_at=_opt(rec.queued_at),
            answered_at=_opt(rec.answered_at),
            ended_at=utc(rec.ended_at),
            answered_by_seat=rec.answered_by,
            answer_ring=answer.ring_number if answer else None,
            within_rings=answer.within_rule if answer else None,
            outcome=rec.outcome,
            talk_s=rec.talk_s,
            capped="capped" in flags or rec.ended_by == "talk_cap",
            transferred_to=None,
            ring_attempts=tuple(
                RingAttemptIn(
                    seat_id=a.seat,
                    started_at=utc(a.start),
                    ended_at=_opt(a.end),
                    outcome=a.outcome,
                    ring_s=a.ring_s,
                )
                for a in rec.ring_attempts
            ),
        )
        await self.spool.submit(f"call {rec.call_id}", lambda: self.call_facts.record_call(record))
        reason = CALLBACK_FOR_OUTCOME.get(rec.outcome)
        if reason and rec.caller_num:
            await self._callback(rec.caller_num, reason, rec.call_id)
        await self.screens.ended(rec, number)

    async def _callback(self, number: str, reason: str, call_id: str | None) -> None:
        try:
            await self.spool.submit(
                f"callback {reason} {call_id}", lambda: self._add_callback(number, reason, call_id)
            )
        except CtidError as exc:  # not a callable number (hostile caller ID, say): say so, go on
            log.warning("callback_not_recorded", call_id=call_id, reason=reason, error=str(exc))

    async def _add_callback(self, number: str, reason: str, call_id: str | None) -> None:
        view = await self.callbacks.add_callback(number, reason, call_id)
        log.info("callback_listed", callback_id=view.id, reason=reason, call_id=call_id)

    async def effect(
        self,
        effect: AlertSupervisors
        | NotifySeat
        | RecordRingMiss
        | RecordAnswer
        | FlagCall
        | RequestCallback,
    ) -> None:
        match effect:
            case AlertSupervisors():
                log.warning(
                    "supervisor_alert",
                    kind=effect.kind,
                    text=effect.message,
                    seat=effect.seat,
                    call_id=effect.call_id,
                )
                await self.screens.alert(effect)
                if effect.kind == "auto_pause" and effect.seat:
                    await self.on_auto_pause(effect.seat, effect.message)
            case NotifySeat():
                await self.screens.notify(effect)
            case RecordRingMiss():
                log.warning(
                    "ring_deadline_missed",
                    call_id=effect.call_id,
                    seat=effect.seat,
                    consecutive=effect.consecutive,
                )
            case RecordAnswer():
                self.answers[effect.call_id] = effect
            case FlagCall():
                self.flags.setdefault(effect.call_id, set()).add(effect.flag)
                # Queued behind the incident's creation, so it finds the incident.
                await self.spool.submit(
                    f"flag {effect.flag} {effect.call_id}",
                    lambda: self._flag(effect.call_id, effect.flag),
                )
            case RequestCallback():
                await self._callback(effect.number, effect.reason, effect.call_id)

    async def _flag(self, call_id: str, flag: str) -> None:
        incident = await self.store.incident_for_call(call_id)
        if incident is None:
            log.warning("flag_without_incident", call_id=call_id, flag=flag)
            return
        await self.store.apply(incident.number, "flag", "system", name=flag)

    # ------------------------------------------------------------------ for the IVR

    async def incident_status(self, entered: str) -> IncidentStatus | None:
        try:
            found = await self.store.status_for_ivr(entered)
        except CtidError as exc:
            log.warning("ivr_status_lookup_failed", error=str(exc))
            return None
        return None if found is None else IncidentStatus(found[0], found[1])

    async def ivr_callback(self, number: str, reason: str) -> None:
        await self._callback(number, reason, None)
