"""The call service: feeds events to the tracker, turns what happened into policy decisions, carries
the PBX effects out and tells the rest of ctid the call story (notices and desk effects) on the bus.
Everything runs in bus order; timers come back through the bus too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, assert_never, get_args

import structlog

from ctid.calls.policy import RingPolicy, TalkCapPolicy
from ctid.calls.seats import seat_refs
from ctid.calls.timers import Timers
from ctid.calls.tracker import CallTracker
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
    Notice,
    SeatLegEnded,
    SeatRingEnded,
    SeatRingStarted,
    SeatsResynced,
    SeatStateChanged,
)
from ctid.core.effects import (
    AlertSupervisors,
    CancelTimer,
    CapDue,
    CapWarningDue,
    CutRingingLeg,
    DeskEffect,
    Effect,
    FlagCall,
    HangupChannel,
    NotifySeat,
    PauseSeat,
    PbxEffect,
    RecordAnswer,
    RecordRingMiss,
    RedirectToQueue,
    RequestCallback,
    RingDeadlineDue,
    StartTimer,
    TimerKey,
    UnpauseSeat,
)
from ctid.core.errors import AmiActionError, CtidError
from ctid.core.events import (
    ChannelSnapshot,
    Event,
    QueueEntrySnapshot,
    QueueMemberSnapshot,
    RingingLegCut,
)
from ctid.core.ids import CallId, Channel, QueueName, SeatId

log = structlog.get_logger(__name__)

TRANSFER_CONTEXT = "ctid-transfer"
"""The dialplan context whose extensions are queue names (contrib/asterisk/extensions.conf)."""


class PbxControl(Protocol):
    """The PBX actions the call rules take (`ctid.asterisk.actions.AmiPbxControl` fits); how
    Asterisk spells them (hangup causes, headers) is the adapter's business."""

    async def cut_ringing_leg(self, channel: str) -> None: ...

    async def hang_up(self, channel: str) -> None: ...

    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None: ...

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None: ...


@dataclass(frozen=True, slots=True)
class TimerFired:
    key: TimerKey


@dataclass(frozen=True, slots=True)
class Resync:
    """A fresh snapshot after an AMI login; applied in bus order like any event."""

    channels: tuple[ChannelSnapshot, ...]
    members: tuple[QueueMemberSnapshot, ...]
    entries: tuple[QueueEntrySnapshot, ...] = ()


BusItem = (
    Event
    | TimerFired
    | Resync
    | Notice
    | IncidentOpened
    | CallAnswerRecalled
    | DeskEffect
    | PbxEffect
)
"""Everything on the bus: what the PBX said, timers, resyncs, the call story told on it, and the
PBX actions it calls for."""
CALL_INPUT: tuple[type, ...] = (*get_args(Event), TimerFired, Resync, CallAnswerRecalled)
"""The bus items the call service handles (subscribe `handle` to these)."""
PBX_EFFECTS: tuple[type, ...] = get_args(PbxEffect)
"""The bus items `CallService.carry_out` handles (subscribe it to these, apart)."""


class CallService:
    """One instance per daemon. `handle` is the bus handler; `resync` runs after each AMI login."""

    def __init__(
        self,
        cfg: Config,
        pbx: PbxControl,
        publish: Callable[[BusItem], None],
        tell: Callable[[BusItem], None],
        *,
        wall_epoch: Callable[[], float],
    ) -> None:
        """`publish` queues an item on the bus (timers, ctid's own facts); `tell` dispatches the
        call story right after the item being handled (`EventBus.publish_next`)."""
        self._cfg = cfg
        self._pbx = pbx
        self._publish = publish
        self._tell = tell
        self._wall_epoch = wall_epoch
        self.tracker = CallTracker(seat_refs(cfg.seats))
        self.ring = RingPolicy(cfg.ring)
        self.cap = TalkCapPolicy(cfg.talk_cap)
        self.timers = Timers(lambda key: publish(TimerFired(key)))
        self._offset: float | None = None  # events' clock minus loop time
        self._loop: asyncio.AbstractEventLoop | None = None  # kept: read on every event
        self._tiers = {s.id: s.tier for s in cfg.seats}
        self._interfaces = {s.id: s.interface for s in cfg.seats}

    # ------------------------------------------------------------------ clocks

    def _loop_time(self) -> float:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.time()

    def events_now(self) -> float:
        """Now on the events' clock (the PBX's Timestamp epoch)."""
        if self._offset is None:
            return self._wall_epoch()
        return self._loop_time() + self._offset

    def _track_clock(self, at: float) -> None:
        # Every event's `at` is on the events' clock (see `ctid.core.events`), so the offset to
        # loop time lets ctid stamp its own facts on that clock between events.
        self._offset = at - self._loop_time()

    # ------------------------------------------------------------------ input

    def handle(
        self, item: Event | TimerFired | Resync | CallAnswerRecalled
    ) -> Awaitable[None] | None:
        """The bus handler. None when the item is handled already (all but a resync and a
        recalled answer, which wait for the PBX): an effect that waits for the PBX is told on the
        bus and carried out by `carry_out`, in its own lane."""
        if isinstance(item, TimerFired):
            for effect in self._on_timer(item.key):
                self._apply_now(effect)
            return None
        if isinstance(item, Resync):
            return self.resync(item.channels, item.members, item.entries)
        if isinstance(item, CallAnswerRecalled):
            return self._recalled(item)
        self._track_clock(item.at)
        notices = self.tracker.apply(item)
        for notice in notices:  # each notice's effects, then the notice told: in order
            for effect in self._decide(notice):
                self._apply_now(effect)
            self._tell(notice)
        return None

    async def resync(
        self,
        channels: Sequence[ChannelSnapshot],
        members: Sequence[QueueMemberSnapshot],
        entries: Sequence[QueueEntrySnapshot] = (),
    ) -> None:
        now = self.events_now()
        notices = self.tracker.resync(channels, members, now, entries)
        log.info("calls_resynced", calls=len(self.tracker.calls()), notices=len(notices))
        for notice in notices:
            await self._notice(notice)
        live = tuple(c.call_id for c in self.tracker.calls())
        await self._notice(SeatsResynced(now, self.tracker.seats(), live))

    async def _recalled(self, item: CallAnswerRecalled) -> None:
        """The stored answer time of a call found answered after a restart: the talk cap counts
        from it (a call that talked 8 minutes before the restart is capped 2 minutes after)."""
        if not self.tracker.recall_answer(item.call_id, item.seat, item.at):
            return
        call = self.tracker.call(item.call_id)
        if call is None or call.caller_channel is None or not self.cap.talking(item.call_id):
            return
        log.info("call_answer_recalled", seat=item.seat, answered_at=item.at)
        # Re-armed from the better time: the timers set from the estimate are cancelled first.
        await self._run(self.cap.ended(item.call_id))
        await self._run(
            self.cap.answered(
                item.call_id,
                item.seat,
                self._tiers.get(item.seat, "ordinary"),
                call.caller_channel,
                call.caller_num,
                talked_s=max(0.0, self.events_now() - item.at),
            )
        )
        self._tell(item)

    # ------------------------------------------------------------------ decisions

    async def _notice(self, notice: Notice) -> None:
        effects = self._decide(notice)
        if effects:
            await self._run(effects)
        self._tell(notice)

    def _decide(self, notice: Notice) -> list[Effect]:
        now = self.events_now()
        match notice:
            case SeatRingStarted():
                return self.ring.ring_started(
                    notice.call_id, notice.seat, notice.seat_channel, max(0.0, now - notice.at)
                )
            case SeatRingEnded():
                return self.ring.ring_ended(notice.seat_channel, notice.reason, notice.ring_s)
            case CallAnswered():
                if notice.caller_channel is None:
                    return []
                tier = self._tiers.get(notice.seat, "ordinary")
                if notice.transfer and self.cap.talking(notice.call_id):
                    # The cap counts the caller's whole conversation, from the first answer.
                    self.cap.moved(notice.call_id, notice.seat, tier)
                    return []
                return self.cap.answered(
                    notice.call_id,
                    notice.seat,
                    tier,
                    notice.caller_channel,
                    notice.caller_num,
                    talked_s=max(0.0, now - notice.at),
                )
            case CallEnded():
                return self.cap.ended(notice.record.call_id)
            case SeatStateChanged():
                if notice.old.paused and not notice.new.paused:
                    return self.ring.seat_unpaused(notice.seat)
                return []
            case (
                CallStarted()
                | CallQueued()
                | CallLeftQueue()
                | CallTransferred()
                | SeatLegEnded()
                | SeatsResynced()
            ):
                return []
            case _:
                assert_never(notice)

    def _on_timer(self, key: TimerKey) -> list[Effect]:
        match key:
            case RingDeadlineDue(channel=channel):
                return self.ring.deadline_reached(channel, self._still_ringing(channel))
            case CapWarningDue() | CapDue():
                return self.cap.timer(key)
            case _:
                assert_never(key)

    def _still_ringing(self, channel: Channel) -> bool:
        call_id = self.tracker.call_of_channel(channel)
        call = self.tracker.call(call_id) if call_id is not None else None
        if call is None:
            return False
        return any(a.channel == channel and a.end is None for a in call.ring_attempts)

    # ------------------------------------------------------------------ effects

    async def _run(self, effects: Sequence[Effect]) -> None:
        for effect in effects:
            try:
                await self._apply(effect)
            except CtidError as exc:
                # One effect failing (AMI down, say) must not stop the others.
                log.error("effect_failed", effect=type(effect).__name__, error=str(exc))

    def _apply_now(self, effect: Effect) -> None:
        """Apply an effect without waiting: timers and the desk's news at once; what waits for
        the PBX is told on the bus for `carry_out` (a cut's note first, see `_note_cut`)."""
        match effect:
            case StartTimer(key=key, delay_s=delay):
                self.timers.start(key, delay)
            case CancelTimer(key=key):
                self.timers.cancel(key)
            case (
                AlertSupervisors()
                | NotifySeat()
                | RecordRingMiss()
                | RecordAnswer()
                | FlagCall()
                | RequestCallback()
            ):
                self._tell(effect)
            case CutRingingLeg():
                self._note_cut(effect)
                self._tell(effect)
            case PauseSeat() | UnpauseSeat() | HangupChannel() | RedirectToQueue():
                self._tell(effect)
            case _:
                assert_never(effect)

    def _note_cut(self, effect: CutRingingLeg) -> None:
        # The note goes on the bus before the Hangup is sent, so the tracker reads it before the
        # queue's AgentRingNoAnswer that the Hangup causes.
        self._publish(RingingLegCut(at=self.events_now(), channel=effect.channel))

    async def carry_out(self, effect: PbxEffect) -> None:
        """The bus handler (apart) for the effects that wait for the PBX, in the order told."""
        try:
            await self._pbx_action(effect)
        except CtidError as exc:
            # One effect failing (AMI down, say) must not stop the others.
            log.error("effect_failed", effect=type(effect).__name__, error=str(exc))

    async def _apply(self, effect: Effect) -> None:
        """Apply an effect and wait for the PBX's answer (resyncs, requests from the desk)."""
        match effect:
            case CutRingingLeg():
                self._note_cut(effect)
                await self._pbx_action(effect)
            case PauseSeat() | UnpauseSeat() | HangupChannel() | RedirectToQueue():
                await self._pbx_action(effect)
            case _:
                self._apply_now(effect)

    async def _pbx_action(self, effect: PbxEffect) -> None:
        match effect:
            case CutRingingLeg(channel=channel, seat=seat, call_id=call_id):
                try:
                    await self._pbx.cut_ringing_leg(channel)
                except AmiActionError as exc:
                    # The queue's own ring timeout (or an answer) ended the leg in the same instant.
                    log.info("ring_leg_already_gone", call_id=call_id, seat=seat, error=exc.message)
                    return
                log.info("ring_deadline_cut", call_id=call_id, seat=seat, channel=channel)
            case PauseSeat(seat=seat, reason=reason):
                await self._pbx.queue_pause(self._interfaces[seat], True, reason)
                log.warning("seat_paused", seat=seat, reason=reason)
            case UnpauseSeat(seat=seat, reason=reason):
                await self._pbx.queue_pause(self._interfaces[seat], False, reason)
            case HangupChannel(channel=channel, call_id=call_id, why=why):
                await self._pbx.hang_up(channel)
                log.info("call_hung_up_by_ctid", call_id=call_id, why=why)
            case RedirectToQueue(channel=channel, queue=queue, call_id=call_id, why=why):
                await self._pbx.redirect(channel, TRANSFER_CONTEXT, queue)
                log.info("call_redirected", call_id=call_id, queue=queue, why=why)
            case _:
                assert_never(effect)

    async def transfer_to_queue(self, call_id: CallId, queue: str, by: SeatId | None) -> None:
        """Hand a live call to another queue (ordinary → expert), keeping the call id (and so its
        incident) the same: the caller's channel is redirected, the seat leg drops."""
        call = self.tracker.call(call_id)
        if call is None or call.caller_channel is None:
            raise CtidError(f"call {call_id} is not live")
        if self._cfg.queue(queue) is None:
            raise CtidError(f"queue {queue!r} is not configured")
        await self._apply(
            RedirectToQueue(call_id, call.caller_channel, QueueName(queue), f"transfer by {by}")
        )

    async def redirect_call(self, call_id: CallId, context: str, exten: str, why: str) -> None:
        """Send a live call's caller to `exten@context` (a transfer to a named seat); the seat
        leg drops and the call keeps its id."""
        call = self.tracker.call(call_id)
        if call is None or call.caller_channel is None:
            raise CtidError(f"call {call_id} is not live")
        await self._pbx.redirect(call.caller_channel, context, exten)
        log.info("call_redirected", call_id=call_id, context=context, exten=exten, why=why)

    async def hang_up_call(self, call_id: CallId, why: str) -> None:
        """End a live call from the desk: the caller's channel is hung up."""
        call = self.tracker.call(call_id)
        if call is None or call.caller_channel is None:
            raise CtidError(f"call {call_id} is not live")
        await self._apply(HangupChannel(call_id, call.caller_channel, why))

    def close(self) -> None:
        self.timers.close()
