"""The call service: feeds events to the tracker, turns what happened into policy decisions, and
carries the effects out through ports (the PBX over AMI; the desk — pops, alerts, records — through
`DeskSink`). Everything runs in bus order; timers come back through the bus too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, assert_never

import structlog

from ctid.calls.policy import RingPolicy, TalkCapPolicy
from ctid.calls.seats import seat_refs
from ctid.calls.timers import Timers
from ctid.calls.tracker import (
    CallAnswered,
    CallEnded,
    CallTracker,
    Notice,
    SeatRingEnded,
    SeatRingStarted,
    SeatStateChanged,
)
from ctid.config import Config
from ctid.core.effects import (
    AlertSupervisors,
    CancelTimer,
    CutRingingLeg,
    Effect,
    FlagCall,
    HangupChannel,
    NotifySeat,
    PauseSeat,
    RecordAnswer,
    RecordRingMiss,
    RedirectToQueue,
    RequestCallback,
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

CAUSE_NO_ANSWER = 19
CAUSE_NORMAL = 16


class PbxControl(Protocol):
    async def hangup(self, channel: str, cause: int = CAUSE_NORMAL) -> None: ...

    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None: ...

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None: ...


class DeskSink(Protocol):
    """Where the desk-facing effects and the tracker's notices go (pops, wallboard, records)."""

    async def effect(
        self,
        effect: AlertSupervisors
        | NotifySeat
        | RecordRingMiss
        | RecordAnswer
        | FlagCall
        | RequestCallback,
    ) -> None: ...

    async def notice(self, notice: Notice, tracker: CallTracker) -> None: ...


@dataclass(frozen=True, slots=True)
class TimerFired:
    key: TimerKey


@dataclass(frozen=True, slots=True)
class Resync:
    """A fresh snapshot after an AMI login; applied in bus order like any event."""

    channels: tuple[ChannelSnapshot, ...]
    members: tuple[QueueMemberSnapshot, ...]
    entries: tuple[QueueEntrySnapshot, ...] = ()


BusItem = Event | TimerFired | Resync


class CallService:
    """One instance per daemon. `handle` is the bus handler; `resync` runs after each AMI login."""

    def __init__(
        self,
        cfg: Config,
        pbx: PbxControl,
        desk: DeskSink,
        publish: Callable[[BusItem], None],
        *,
        wall_epoch: Callable[[], float],
    ) -> None:
        self._cfg = cfg
        self._pbx = pbx
        self._desk = desk
        self._publish = publish
        self._wall_epoch = wall_epoch
        self.tracker = CallTracker(seat_refs(cfg.seats))
        self.ring = RingPolicy(cfg.ring)
        self.cap = TalkCapPolicy(cfg.talk_cap)
        self.timers = Timers(lambda key: publish(TimerFired(key)))
        self._offset: float | None = None  # events' clock minus loop time
        self._tiers = {s.id: s.tier for s in cfg.seats}
        self._interfaces = {s.id: s.interface for s in cfg.seats}

    # ------------------------------------------------------------------ clocks

    def events_now(self) -> float:
        """Now on the events' clock (the PBX's Timestamp epoch)."""
        loop_now = asyncio.get_running_loop().time()
        if self._offset is None:
            return self._wall_epoch()
        return loop_now + self._offset

    def _track_clock(self, at: float) -> None:
        if at > 1e9:  # a PBX Timestamp, not a loop-time fallback
            self._offset = at - asyncio.get_running_loop().time()

    # ------------------------------------------------------------------ input

    async def handle(self, item: BusItem) -> None:
        if isinstance(item, TimerFired):
            await self._run(self._on_timer(item.key))
            return
        if isinstance(item, Resync):
            await self.resync(item.channels, item.members, item.entries)
            return
        self._track_clock(item.at)
        for notice in self.tracker.apply(item):
            await self._notice(notice)

    async def resync(
        self,
        channels: Sequence[ChannelSnapshot],
        members: Sequence[QueueMemberSnapshot],
        entries: Sequence[QueueEntrySnapshot] = (),
    ) -> None:
        notices = self.tracker.resync(channels, members, self.events_now(), entries)
        log.info("calls_resynced", calls=len(self.tracker.calls()), notices=len(notices))
        for notice in notices:
            await self._notice(notice)

    # ------------------------------------------------------------------ decisions

    async def _notice(self, notice: Notice) -> None:
        effects: list[Effect] = []
        now = self.events_now()
        if isinstance(notice, SeatRingStarted):
            effects = self.ring.ring_started(
                notice.call_id, notice.seat, notice.seat_channel, max(0.0, now - notice.at)
            )
        elif isinstance(notice, SeatRingEnded):
            effects = self.ring.ring_ended(notice.seat_channel, notice.reason, notice.ring_s)
        elif isinstance(notice, CallAnswered):
            call = self.tracker.call(notice.call_id)
            if call is not None and call.caller_channel is not None:
                effects = self.cap.answered(
                    notice.call_id,
                    notice.seat,
                    self._tiers.get(notice.seat, "ordinary"),
                    call.caller_channel,
                    call.caller_num,
                    talked_s=max(0.0, now - notice.at),
                )
        elif isinstance(notice, CallEnded):
            effects = self.cap.ended(notice.record.call_id)
        elif isinstance(notice, SeatStateChanged) and notice.old.paused and not notice.new.paused:
            effects = self.ring.seat_unpaused(notice.seat)
        await self._run(effects)
        try:
            await self._desk.notice(notice, self.tracker)
        except CtidError as exc:
            log.error("desk_notice_failed", notice=type(notice).__name__, error=str(exc))

    def _on_timer(self, key: TimerKey) -> list[Effect]:
        if key[0] == "ring":
            channel = Channel(key[1])
            return self.ring.deadline_reached(channel, self._still_ringing(channel))
        return self.cap.timer(key)

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

    async def _apply(self, effect: Effect) -> None:
        match effect:
            case StartTimer(key=key, delay_s=delay):
                self.timers.start(key, delay)
            case CancelTimer(key=key):
                self.timers.cancel(key)
            case CutRingingLeg(channel=channel, seat=seat, call_id=call_id):
                # The note goes on the bus before the Hangup is sent, so the tracker reads it
                # before the queue's AgentRingNoAnswer that the Hangup causes.
                self._publish(RingingLegCut(at=self.events_now(), channel=channel))
                try:
                    await self._pbx.hangup(channel, CAUSE_NO_ANSWER)
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
                await self._pbx.hangup(channel, CAUSE_NORMAL)
                log.info("call_hung_up_by_ctid", call_id=call_id, why=why)
            case RedirectToQueue(channel=channel, queue=queue, call_id=call_id, why=why):
                await self._pbx.redirect(channel, TRANSFER_CONTEXT, queue)
                log.info("call_redirected", call_id=call_id, queue=queue, why=why)
            case (
                AlertSupervisors()
                | NotifySeat()
                | RecordRingMiss()
                | RecordAnswer()
                | FlagCall()
                | RequestCallback()
            ):
                await self._desk.effect(effect)
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

    def close(self) -> None:
        self.timers.close()
