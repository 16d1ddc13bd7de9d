"""The wallboard's read model: live calls and seats as the call story on the bus tells them (the
tracker is never read back), and the seat tiles and waiting lists drawn from it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias, assert_never

from ctid.config import Config
from ctid.core.calls import (
    CallAnswered,
    CallAnswerRecalled,
    CallEnded,
    CallLeftQueue,
    CallQueued,
    CallStarted,
    SeatRingEnded,
    SeatRingStarted,
    SeatsResynced,
    SeatState,
    SeatStateChanged,
)
from ctid.core.frames import BoardQueue, BoardSeat, WaitingCaller
from ctid.core.ids import CallId, Channel, SeatId

BoardItem: TypeAlias = (
    CallStarted
    | CallQueued
    | CallLeftQueue
    | SeatRingStarted
    | SeatRingEnded
    | CallAnswered
    | CallAnswerRecalled
    | CallEnded
    | SeatStateChanged
    | SeatsResynced
)
"""The notices the board follows."""

_STATUS_WORDS = {"idle": "available", "unavailable": "offline"}


@dataclass(slots=True)
class _Call:
    caller_num: str
    caller_name: str
    started_at: float
    queue: str | None = None
    queued_at: float | None = None
    waiting: bool = False
    """In a queue (joined and neither answered nor left)."""
    answered_at: float | None = None
    """The first answer (a transferred call's cap counts from it)."""
    answered_by: SeatId | None = None
    recallable: bool = False
    """The answer time is the seat leg's age (a resync): a stored answer may replace it."""
    seat_channel: Channel | None = None
    """The channel of the seat that answered last."""
    rings: dict[Channel, tuple[SeatId, float]] = field(default_factory=dict)
    """Seat legs ringing now: leg → (seat, ring start)."""

    @property
    def caller(self) -> str:
        return self.caller_name or self.caller_num

    @property
    def queued_or_ringing(self) -> bool:
        return self.answered_at is None and (bool(self.rings) or self.waiting)


class LiveBoard:
    """Every seat's state and every live call, kept from the notices by `apply`. A resync's
    notices repair it (ends, answers, rings, queue joins and leaves found by the snapshot), and
    its `SeatsResynced` replaces every seat and drops any call the tracker no longer has."""

    def __init__(self, seat_ids: Iterable[SeatId]) -> None:
        self._seats: dict[SeatId, SeatState] = {sid: SeatState(seat_id=sid) for sid in seat_ids}
        self._calls: dict[CallId, _Call] = {}

    def seats(self) -> tuple[SeatState, ...]:
        return tuple(self._seats.values())

    def call_ids(self) -> tuple[CallId, ...]:
        return tuple(self._calls)

    def apply(self, item: BoardItem) -> None:
        match item:
            case CallStarted():
                if item.call_id not in self._calls:
                    self._calls[item.call_id] = _Call(item.caller_num, item.caller_name, item.at)
            case CallQueued():
                call = self._calls.get(item.call_id)
                if call is not None:
                    call.queue = item.queue
                    if call.queued_at is None:
                        call.queued_at = item.at
                    call.waiting = True
            case CallLeftQueue():
                call = self._calls.get(item.call_id)
                if call is not None:
                    call.waiting = False
            case SeatRingStarted():
                call = self._told(item.call_id, item.caller_num, item.caller_name, item.started_at)
                if call.queue is None:
                    call.queue = item.queue
                call.rings[item.seat_channel] = (item.seat, item.at)
            case SeatRingEnded():
                call = self._calls.get(item.call_id)
                if call is not None:
                    call.rings.pop(item.seat_channel, None)
            case CallAnswered():
                self._answered(item)
            case CallAnswerRecalled():
                call = self._calls.get(item.call_id)
                if (
                    call is not None
                    and call.recallable
                    and call.answered_by == item.seat
                    and call.answered_at is not None
                    and item.at >= call.answered_at - 1.0  # as the tracker takes it
                ):
                    call.answered_at = item.at
                    call.recallable = False
            case CallEnded():
                self._calls.pop(item.record.call_id, None)
            case SeatStateChanged():
                if item.seat in self._seats:
                    self._seats[item.seat] = item.new
            case SeatsResynced():
                for seat in item.seats:
                    if seat.seat_id in self._seats:
                        self._seats[seat.seat_id] = seat
                live = set(item.calls)
                for gone in [cid for cid in self._calls if cid not in live]:
                    del self._calls[gone]
            case _:
                assert_never(item)

    def _told(self, call_id: CallId, num: str, name: str, started_at: float) -> _Call:
        """The call, created if its start was not seen; the caller as the newest notice says."""
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call(num, name, started_at)
        else:
            call.caller_num, call.caller_name = num, name
            call.started_at = min(call.started_at, started_at)
        return call

    def _answered(self, item: CallAnswered) -> None:
        call = self._told(item.call_id, item.caller_num, item.caller_name, item.started_at)
        call.rings.pop(item.seat_channel, None)
        call.waiting = False
        if call.queue is None and item.queue:
            call.queue = item.queue
        if call.answered_at is None:
            call.answered_at = item.at if item.first_answered_at is None else item.first_answered_at
            call.answered_by = item.seat
            call.recallable = item.answer_source == "seat_leg_start"
        call.seat_channel = item.seat_channel

    # ------------------------------------------------------------------ what the wallboard shows

    def tiles(self, cfg: Config) -> tuple[BoardSeat, ...]:
        """One tile per seat: its state, ring or talk timers, caller and channel."""
        names = {s.id: s for s in cfg.seats}
        tiles = []
        for state in self._seats.values():
            call = self._calls.get(state.call_id) if state.call_id else None
            ring_start = (
                next((at for seat, at in call.rings.values() if seat == state.seat_id), None)
                if call
                else None
            )
            talking = call is not None and state.activity == "on_call"
            answered_at = call.answered_at if call is not None and talking else None
            seat_cfg = names.get(state.seat_id)
            tiles.append(
                BoardSeat(
                    seat_id=state.seat_id,
                    name=seat_cfg.name if seat_cfg else state.seat_id,
                    tier=seat_cfg.tier if seat_cfg else "",
                    status=_STATUS_WORDS.get(state.status, state.status),
                    pause_reason=state.pause_reason if state.paused else "",
                    ring_started_at=ring_start,
                    ring_deadline_at=(
                        ring_start + cfg.ring.deadline_s if ring_start is not None else None
                    ),
                    talk_started_at=answered_at,
                    cap_at=answered_at + cfg.talk_cap.talk_cap_s if answered_at else None,
                    caller=call.caller if call else "",
                    call_id=state.call_id or "",
                    channel=(call.seat_channel or "") if call else "",
                )
            )
        return tuple(tiles)

    def queues(self, cfg: Config) -> tuple[BoardQueue, ...]:
        """Each configured queue (and any other a call waits in) with its callers waiting or
        ringing a seat, in the order they became calls."""
        waiting: dict[str, list[WaitingCaller]] = {q.name: [] for q in cfg.queues}
        for call in self._calls.values():
            if call.queued_or_ringing and call.queue:
                since = call.queued_at or call.started_at
                waiting.setdefault(call.queue, []).append(WaitingCaller(call.caller, since))
        return tuple(BoardQueue(name, tuple(w)) for name, w in waiting.items())
