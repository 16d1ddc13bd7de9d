"""Intake of calls into tickets: every answered call becomes an incident, every ended call a call
record, every unserved caller a callback (each journaled first, applied by the journal's ops
here); also the IVR's status lookup and callback requests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, assert_never

import structlog

from ctid.config import Config
from ctid.core.calls import (
    CallAnswered,
    CallAnswerRecalled,
    CallEnded,
    CallQueued,
    CallRecord,
    CallStarted,
    CallTransferred,
    IncidentOpened,
    SeatLegEnded,
    SeatRingEnded,
    SeatRingStarted,
    SeatsResynced,
    SeatStateChanged,
)
from ctid.core.effects import (
    AlertSupervisors,
    FlagCall,
    NotifySeat,
    RecordAnswer,
    RecordRingMiss,
    RequestCallback,
)
from ctid.core.errors import CtidError
from ctid.core.ids import CallId, SeatId
from ctid.journal import ApplyFn
from ctid.tickets.errors import InvalidInputError
from ctid.tickets.facts import CallFacts, CallRecordIn, RingAttemptIn
from ctid.tickets.journal_ops import (
    call_facts_args,
    call_record_args,
    facts_from_args,
    record_from_args,
)
from ctid.tickets.views import ApplyResult, CallbackView, IncidentView

log = structlog.get_logger(__name__)

CALLBACK_FOR_OUTCOME = {
    "abandoned_in_queue": "abandoned",
    "unanswered_timeout": "missed",
}
"""Outcomes whose caller was not served: they go on the callback list."""

IntakeItem = (
    CallStarted
    | CallQueued
    | SeatRingStarted
    | SeatRingEnded
    | CallAnswered
    | CallTransferred
    | SeatLegEnded
    | CallEnded
    | SeatStateChanged
    | SeatsResynced
    | AlertSupervisors
    | NotifySeat
    | RecordRingMiss
    | RecordAnswer
    | FlagCall
    | RequestCallback
)
"""The bus items the intake reads: the call story and the desk effects."""


class IncidentIntake(Protocol):
    """Where answered calls become incidents (the incident store fits)."""

    async def create_from_call(self, facts: CallFacts) -> IncidentView: ...

    async def incident_for_call(self, call_id: str) -> IncidentView | None: ...

    async def stored_answer(self, call_id: str) -> tuple[datetime, str] | None: ...

    async def apply(
        self,
        number: str,
        action: str,
        actor: str,
        *,
        expected_version: int | None = None,
        **args: object,
    ) -> ApplyResult: ...

    async def status_for_ivr(self, entered: str) -> tuple[str, str | None] | None: ...


class AttachedCalls(Protocol):
    """Calls the agent attached to an open incident from the pop (`IncidentTimeline` fits)."""

    async def attached_incident(self, call_id: str) -> str | None: ...

    async def attach_call(self, call_id: str, number: str, actor: str) -> object: ...


class CallRecords(Protocol):
    """Where ended calls are recorded (the call-fact store fits)."""

    async def record_call(self, rec: CallRecordIn) -> None: ...


class CallbackQueue(Protocol):
    """The callback list (the callback store fits)."""

    async def add_callback_for(
        self, number: str, reason: str, call_id: str | None = None
    ) -> CallbackView: ...

    async def close_callbacks_got_through(self, number: str, call_id: str) -> list[int]: ...


class WriteJournal(Protocol):
    """Where writes wait for the database: on local disk before `submit` returns, applied in
    order, exactly once, by the ops `CallIntake.journal_ops()` names (`ctid.journal` fits)."""

    async def submit(self, op: str, args: Mapping[str, Any], what: str = "") -> int: ...


@dataclass(frozen=True, slots=True)
class IvrIncident:
    """An incident's status and owner, for the IVR's status lookup."""

    status: str
    owner_seat: str | None


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _opt(epoch: float | None) -> datetime | None:
    return None if epoch is None else utc(epoch)


class CallIntake:
    """The bus handler `on_item` and the IVR's two ports (`incident_status`, `ivr_callback`).
    Writes go through the journal: accepted once on local disk, so the event path never waits
    for the database and a write survives a crash or an outage."""

    def __init__(
        self,
        cfg: Config,
        incidents: IncidentIntake,
        records: CallRecords,
        callbacks: CallbackQueue,
        journal: WriteJournal,
        tell: Callable[[IncidentOpened | CallAnswerRecalled], None],
        attached: AttachedCalls | None = None,
    ) -> None:
        """`tell` announces `IncidentOpened` on the bus (the pop shows the number), and
        `CallAnswerRecalled` for a call found answered after a restart whose answer was stored;
        `attached` says which calls belong to an incident already (no new one is opened)."""
        self._cfg = cfg
        self._incidents = incidents
        self._records = records
        self._callbacks = callbacks
        self._journal = journal
        self._tell = tell
        self._answers: dict[str, RecordAnswer] = {}
        self._numbers: dict[str, str] = {}
        """call id → the caller's number, from the first ring to the end of the call."""
        self._flags: dict[str, set[str]] = {}
        self._live: set[str] = set()
        self._attached = attached
        self._attached_to: dict[str, str] = {}
        self.incidents: dict[str, str] = {}
        """call id → incident number, for the calls still live."""

    def journal_ops(self) -> dict[str, ApplyFn]:
        """The ops this intake journals, by their stable names (entries on disk name them)."""
        return {
            "call_incident": self._op_incident,
            "call_record": self._op_record,
            "call_callback": self._op_callback,
            "call_flag": self._op_flag,
            "callbacks_got_through": self._op_got_through,
            "call_attach": self._op_attach,
        }

    async def _op_incident(self, args: Mapping[str, Any]) -> None:
        await self._create_incident(facts_from_args(args), bool(args.get("recall", False)))

    async def _op_record(self, args: Mapping[str, Any]) -> None:
        await self._records.record_call(record_from_args(args))

    async def _op_callback(self, args: Mapping[str, Any]) -> None:
        call_id = args.get("call_id")
        await self._add_callback(
            str(args["number"]), str(args["reason"]), None if call_id is None else str(call_id)
        )

    async def _op_flag(self, args: Mapping[str, Any]) -> None:
        await self._flag(str(args["call_id"]), str(args["flag"]))

    async def _op_attach(self, args: Mapping[str, Any]) -> None:
        if self._attached is not None:
            await self._attached.attach_call(str(args["call_id"]), str(args["number"]), "system")

    async def _op_got_through(self, args: Mapping[str, Any]) -> None:
        number, call_id = str(args["number"]), str(args["call_id"])
        try:
            await self._callbacks.close_callbacks_got_through(number, call_id)
        except InvalidInputError as exc:
            log.warning("callback_close_failed", call_id=call_id, error=str(exc))

    def live_incidents(self) -> dict[str, str]:
        """call id → incident number, for the calls still live."""
        return self.incidents

    async def on_item(self, item: IntakeItem) -> None:
        match item:
            case CallStarted():
                log.info("call_started", caller=item.caller_num)
            case SeatRingStarted():
                self._numbers[item.call_id] = item.caller_num
                log.info("seat_ringing", seat=item.seat, queue=item.queue)
            case SeatRingEnded():
                log.info(
                    "seat_ring_ended",
                    seat=item.seat,
                    reason=item.reason,
                    ring_s=round(item.ring_s, 2),
                )
            case CallAnswered():
                log.info(
                    "call_answered",
                    seat=item.seat,
                    ring_s=None if item.ring_s is None else round(item.ring_s, 2),
                    answer_source=item.answer_source,
                    transfer=item.transfer,
                )
                if not item.transfer:
                    await self._open_incident(item)
                    if item.caller_num:
                        await self._got_through(item.caller_num, item.call_id)
            case SeatLegEnded():
                log.info("seat_leg_ended", seat=item.seat, talk_s=round(item.talk_s, 1))
            case CallEnded():
                await self._ended(item.record)
            case AlertSupervisors():
                log.warning(
                    "supervisor_alert",
                    kind=item.kind,
                    text=item.message,
                    seat=item.seat,
                    call_id=item.call_id,
                )
            case RecordRingMiss():
                log.warning("ring_deadline_missed", seat=item.seat, consecutive=item.consecutive)
            case RecordAnswer():
                self._answers[item.call_id] = item
            case FlagCall():
                self._flags.setdefault(item.call_id, set()).add(item.flag)
                # Journaled behind the incident's creation, so it finds the incident.
                await self._journal.submit(
                    "call_flag",
                    {"call_id": item.call_id, "flag": item.flag},
                    f"flag {item.flag} {item.call_id}",
                )
            case RequestCallback():
                await self._callback(item.number, item.reason, item.call_id)
            case (
                CallQueued()
                | CallTransferred()
                | SeatStateChanged()
                | SeatsResynced()
                | NotifySeat()
            ):
                pass  # not the tickets' business
            case _:
                assert_never(item)

    async def _open_incident(self, notice: CallAnswered) -> None:
        """Every answered call becomes an incident, with no click (idempotent per call)."""
        seat = self._cfg.seat(notice.seat)
        facts = CallFacts(
            call_id=notice.call_id,
            answered_at=utc(notice.at),
            answered_by_seat=notice.seat,
            answered_by_employee=(seat.staffed_by or None) if seat else None,
            caller_number=notice.caller_num,
            caller_name=notice.caller_name,
            started_at=utc(notice.started_at),
            queue=notice.queue,
            ivr_digit=notice.ivr_choice or None,
            category=notice.category or None,
        )
        self._live.add(notice.call_id)
        recall = notice.answer_source == "seat_leg_start"
        # Applied by the journal's task: the pop gets the number when it lands (a few ms later,
        # or after a database outage).
        await self._journal.submit(
            "call_incident",
            {**call_facts_args(facts), "recall": recall},
            f"incident for call {notice.call_id}",
        )

    async def _create_incident(self, facts: CallFacts, recall: bool = False) -> None:
        if recall:
            # Found answered after a restart: the answer ctid stored live before is the best
            # time there is (read before the incident's row is written with the estimate).
            stored = await self._incidents.stored_answer(facts.call_id)
            if stored is not None and stored[1] == facts.answered_by_seat:
                at = stored[0]
                self._tell(
                    CallAnswerRecalled(
                        CallId(facts.call_id), SeatId(facts.answered_by_seat), at.timestamp()
                    )
                )
                facts = replace(facts, answered_at=at)
        if self._attached is not None:
            # Attached from the ringing pop: the call is a contact on that incident already.
            number = await self._attached.attached_incident(facts.call_id)
            if number is not None:
                self.note_attached(facts.call_id, number)
                self._tell(IncidentOpened(CallId(facts.call_id), number))
                return
        view = await self._incidents.create_from_call(facts)
        log.info("incident_opened", call_id=facts.call_id, incident=view.number)
        if facts.call_id in self._live:
            self.incidents[facts.call_id] = view.number
            self._tell(IncidentOpened(CallId(facts.call_id), view.number))

    async def _ended(self, rec: CallRecord) -> None:
        answer = self._answers.pop(rec.call_id, None)
        self._numbers.pop(rec.call_id, None)
        flags = self._flags.pop(rec.call_id, set())
        number = self.incidents.pop(rec.call_id, "")
        self._live.discard(rec.call_id)
        log.info(
            "call_ended",
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
            category=rec.category or None,
            queued_at=_opt(rec.queued_at),
            answered_at=_opt(rec.answered_at),
            ended_at=utc(rec.ended_at),
            answered_by_seat=rec.answered_by,
            answer_ring=answer.ring_number if answer else None,
            within_rings=answer.within_rule if answer else None,
            outcome=rec.outcome,
            talk_s=rec.talk_s,
            capped="capped" in flags or rec.ended_by == "talk_cap",
            transferred_to=rec.transferred_to,
            ring_attempts=tuple(
                RingAttemptIn(
                    seat_id=a.seat,
                    started_at=utc(a.start),
                    ended_at=_opt(a.end),
                    outcome=a.outcome,
                    ring_s=a.ring_s,
                    talk_s=a.talk_s,
                )
                for a in rec.ring_attempts
            ),
        )
        await self._journal.submit("call_record", call_record_args(record), f"call {rec.call_id}")
        attached = self._attached_to.pop(rec.call_id, None)
        if attached is not None and self._attached is not None:
            # The call row exists now: link it to the incident it was attached to while ringing.
            await self._journal.submit(
                "call_attach",
                {"call_id": rec.call_id, "number": attached},
                f"link call {rec.call_id}",
            )
        reason = CALLBACK_FOR_OUTCOME.get(rec.outcome)
        if reason and rec.caller_num:
            await self._callback(rec.caller_num, reason, rec.call_id)

    async def _callback(self, number: str, reason: str, call_id: str | None) -> None:
        await self._journal.submit(
            "call_callback",
            {"number": number, "reason": reason, "call_id": call_id},
            f"callback {reason} {call_id}",
        )

    async def _add_callback(self, number: str, reason: str, call_id: str | None) -> None:
        try:
            view = await self._callbacks.add_callback_for(number, reason, call_id)
        except (
            InvalidInputError
        ) as exc:  # not a callable number (hostile caller ID, say): say so, go on
            log.warning("callback_not_recorded", call_id=call_id, reason=reason, error=str(exc))
            return
        log.info("callback_listed", callback_id=view.id, reason=reason, call_id=call_id)

    async def _got_through(self, number: str, call_id: str) -> None:
        """The number's open callbacks are done: the caller reached a seat on this call."""
        await self._journal.submit(
            "callbacks_got_through",
            {"number": number, "call_id": call_id},
            f"callbacks got through {call_id}",
        )

    async def _flag(self, call_id: str, flag: str) -> None:
        incident = await self._incidents.incident_for_call(call_id)
        if incident is None:
            log.warning("flag_without_incident", call_id=call_id, flag=flag)
            return
        await self._incidents.apply(incident.number, "flag", "system", name=flag)

    def caller_number(self, call_id: str) -> str | None:
        """The number a live (ringing or answered) call comes from, if ctid saw it ring."""
        return self._numbers.get(call_id)

    def note_attached(self, call_id: str, number: str) -> None:
        """The agent attached the call to `number`: the live call's incident is that one now."""
        self._attached_to[call_id] = number
        if call_id in self._live:
            self.incidents[call_id] = number

    # ------------------------------------------------------------------ for the IVR

    async def incident_status(self, entered: str) -> IvrIncident | None:
        """The status and owner of the incident the caller keyed in, or None."""
        try:
            found = await self._incidents.status_for_ivr(entered)
        except CtidError as exc:
            log.warning("ivr_status_lookup_failed", error=str(exc))
            return None
        return None if found is None else IvrIncident(found[0], found[1])

    async def ivr_callback(self, number: str, reason: str) -> None:
        await self._callback(number, reason, None)
