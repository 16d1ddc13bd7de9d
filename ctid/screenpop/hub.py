"""The per-seat push hub: delivers each frame to the subscribers of exactly one seat (or of the
supervisor channel), keeps each seat's current pop so a reload gets it at once, and drops a
subscriber whose bounded queue overflows (a slow browser must never slow the daemon)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Literal

import structlog

from ctid.core.frames import (
    AlertFrame,
    AlertsFrame,
    IdleFrame,
    PopFrame,
    SeatFrame,
    SeatStateFrame,
    SupervisorFrame,
    WallboardFrame,
    to_json,
)
from ctid.screenpop.pop import idle_frame

log = structlog.get_logger(__name__)

DEFAULT_QUEUE_FRAMES = 64
"""A desktop gets a handful of frames per call; 64 unsent frames means it is not reading."""

DEFAULT_ALERTS_KEPT = 50

_State = Literal["open", "dropped", "closed"]
PublishObserver = Callable[[str, SeatFrame, int], None]
Sink = Callable[[str], bool]
"""Writes a frame to its desktop at once; False when it cannot (then the frame is queued)."""


class Subscription:
    """One connected desktop's queue of serialised frames. With a sink (`deliver_to`) a frame
    offered while nothing is queued goes straight to the sink: no task woken per desktop."""

    __slots__ = ("_channel", "_items", "_limit", "_sending", "_sink", "_state", "_wake")

    def __init__(self, channel: _Channel, limit: int) -> None:
        self._channel = channel
        self._items: deque[str] = deque()
        self._limit = limit
        self._state: _State = "open"
        self._wake = asyncio.Event()
        self._sink: Sink | None = None
        self._sending = False
        """`get` handed a frame out that the sender has not said `written` of: until then no
        frame may overtake it through the sink."""

    @property
    def dropped(self) -> bool:
        """True when the hub gave up on this subscriber because it fell behind."""
        return self._state == "dropped"

    @property
    def closed(self) -> bool:
        return self._state != "open"

    def pending(self) -> int:
        return len(self._items)

    async def get(self) -> str | None:
        """The next frame as JSON text; None once the subscription is closed or dropped. The
        sender says `written` once it has written it."""
        while True:
            if self._items:
                self._sending = True
                return self._items.popleft()
            if self._state != "open":
                return None
            self._wake.clear()
            await self._wake.wait()

    def written(self) -> None:
        """The frame `get` handed out is written: the sink may take frames again."""
        self._sending = False

    def deliver_to(self, sink: Sink | None) -> None:
        """From now on hand frames to `sink` while the queue is empty (so order is kept: what
        was queued goes first, through `get`); None goes back to queueing everything."""
        self._sink = sink

    def close(self) -> None:
        """Unsubscribe (the desktop went away)."""
        if self._state == "open":
            self._state = "closed"
            self._channel.subs.pop(self, None)
        self._wake.set()

    def _offer(self, data: str) -> bool:
        if self._sink is not None and not self._items and not self._sending and self._sink(data):
            return True
        if len(self._items) >= self._limit:
            self._state = "dropped"
            self._items.clear()
            self._wake.set()
            return False
        self._items.append(data)
        self._wake.set()
        return True


class _Channel:
    __slots__ = ("name", "pop", "snapshot", "subs")

    def __init__(self, name: str) -> None:
        self.name = name
        # A dict keeps subscription order and gives O(1) removal.
        self.subs: dict[Subscription, None] = {}
        self.snapshot: str | None = None
        """The kept frame as sent (the seat's pop, the supervisors' wallboard)."""
        self.pop: PopFrame | None = None


FANOUT_SLICE = 8
"""Desktops written per loop turn for a frame that is not a ringing pop."""


class _Out:
    """One published frame on its way to the desktops that were subscribed when it was
    published (`left[at:]` still to go)."""

    __slots__ = ("at", "ch", "data", "frame", "left", "sent", "state_of")

    def __init__(self, ch: _Channel, data: str, frame: SeatFrame | None) -> None:
        self.ch = ch
        self.data = data
        self.frame = frame
        """The seat frame, for `on_publish` (None on the supervisor channel)."""
        self.state_of = _state_of(frame) if frame is not None else None
        self.left = list(ch.subs)
        self.at = 0
        self.sent = 0


def _state_of(frame: SeatFrame | SupervisorFrame) -> str | None:
    """The seat a seat-state frame is the whole state of (a newer one replaces it unsent)."""
    return frame.seat.seat if isinstance(frame, SeatStateFrame) else None


class PopHub:
    """Per-seat channels plus one supervisor channel.

    `publish` serialises the frame once and hands the same text to every subscriber of that seat
    (O(subscribers of the seat)); a `PopFrame` becomes the seat's snapshot and an `IdleFrame`
    clears it. New subscribers get the snapshot first, so a reload loses no pop.
    The supervisor channel also keeps its last `alerts_kept` alert frames (a ring buffer): a new
    wallboard gets them in one `alerts` frame, so a reload still shows what happened.

    Only a ringing pop is written to its desktops within `publish`. Every other frame is queued
    and written `FANOUT_SLICE` desktops per loop turn, in publish order: each frame costs one
    socket write per desktop (25–50 for a busy seat), and a pop read from AMI meanwhile then waits
    for one slice, not for the seat frames, wrap-up pops, suggestions and wallboards before it.
    A ringing pop first finishes what its own channel has queued (each desktop keeps the order).
    """

    def __init__(
        self,
        *,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        alerts_kept: int = DEFAULT_ALERTS_KEPT,
        on_publish: PublishObserver | None = None,
    ) -> None:
        """`on_publish(seat_id, frame, delivered)` is told of every seat frame once it is queued
        for the seat's sockets (the pop-latency metric listens here)."""
        if queue_frames < 1:
            raise ValueError("queue_frames must be >= 1")
        self._alerts: deque[AlertFrame] = deque(maxlen=max(1, alerts_kept))
        self._limit = queue_frames
        self._on_publish = on_publish
        self._seats: dict[str, _Channel] = {}
        self._supervisor = _Channel("supervisor")
        self._queue: deque[_Out] = deque()
        self._draining = False
        self.published = 0
        self.dropped = 0

    def _seat(self, seat_id: str) -> _Channel:
        ch = self._seats.get(seat_id)
        if ch is None:
            ch = self._seats[seat_id] = _Channel(seat_id)
        return ch

    def publish(self, seat_id: str, frame: SeatFrame) -> int:
        """Deliver `frame` to the desktops of `seat_id` only; returns how many it is for."""
        ch = self._seat(seat_id)
        data = to_json(frame)
        if isinstance(frame, PopFrame):
            ch.snapshot = data
            ch.pop = frame
            if frame.state == "ringing":
                self._finish_channel(ch)
                out = _Out(ch, data, frame)
                self.published += 1
                self._send(out, len(out.left))
                self._done(out)
                return out.sent
        elif isinstance(frame, IdleFrame):
            ch.snapshot = ch.pop = None
        return self._enqueue(_Out(ch, data, frame))

    def publish_supervisor(self, frame: SupervisorFrame) -> int:
        """Deliver `frame` to the supervisors' desktops; a `WallboardFrame` is kept, and so are
        the last `AlertFrame`s."""
        data = to_json(frame)
        if isinstance(frame, WallboardFrame):
            self._supervisor.snapshot = data
        elif isinstance(frame, AlertFrame):
            self._alerts.append(frame)
        out = _Out(self._supervisor, data, None)
        out.state_of = _state_of(frame)
        return self._enqueue(out)

    def _enqueue(self, out: _Out) -> int:
        self.published += 1
        if out.state_of is not None:
            for i, queued in enumerate(self._queue):
                if queued.ch is out.ch and queued.state_of == out.state_of and not queued.at:
                    del self._queue[i]  # not started: the newer state replaces it
                    break
        self._queue.append(out)
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)
        return len(out.left)

    def _drain(self) -> None:
        self._draining = False
        budget = FANOUT_SLICE
        queue = self._queue
        while queue and budget > 0:
            out = queue[0]
            budget -= self._send(out, budget)
            if out.at >= len(out.left):
                queue.popleft()
                self._done(out)
        if queue:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _finish_channel(self, ch: _Channel) -> None:
        """Write what `ch` has queued now (before a ringing pop on it)."""
        if not any(out.ch is ch for out in self._queue):
            return
        mine = [out for out in self._queue if out.ch is ch]
        self._queue = deque(out for out in self._queue if out.ch is not ch)
        for out in mine:
            self._send(out, len(out.left))
            self._done(out)

    def _send(self, out: _Out, limit: int) -> int:
        """Offer the frame to up to `limit` more of its desktops; returns how many were tried."""
        start = out.at
        end = min(len(out.left), start + limit)
        for sub in out.left[start:end]:
            if sub.closed:  # gone since the frame was published
                continue
            if sub._offer(out.data):
                out.sent += 1
            else:
                out.ch.subs.pop(sub, None)
                self.dropped += 1
                log.warning("push_subscriber_dropped", channel=out.ch.name, queued=self._limit)
        out.at = end
        return end - start

    def _done(self, out: _Out) -> None:
        if out.frame is not None and self._on_publish is not None:
            self._on_publish(out.ch.name, out.frame, out.sent)

    def subscribe(self, seat_id: str) -> Subscription:
        """A new desktop for `seat_id`. Its first frame is always the seat's state: the current
        pop, or an `idle` frame with reason `none`, so a reconnect knows what to show at once."""
        ch = self._seat(seat_id)
        first = ch.snapshot or to_json(idle_frame(seat_id=seat_id, reason="none"))
        return self._subscribe(ch, first)

    def subscribe_supervisor(self) -> Subscription:
        """A new supervisor desktop; its first frames are the last wallboard frame, if any, and
        an `AlertsFrame` with the kept alerts, oldest first."""
        kept = to_json(AlertsFrame(tuple(self._alerts)))
        return self._subscribe(self._supervisor, self._supervisor.snapshot, kept)

    def alerts(self) -> tuple[AlertFrame, ...]:
        """The kept alerts, oldest first."""
        return tuple(self._alerts)

    def _subscribe(self, ch: _Channel, *first: str | None) -> Subscription:
        sub = Subscription(ch, self._limit)
        for frame in first:
            if frame is not None:
                sub._offer(frame)
        ch.subs[sub] = None
        return sub

    def snapshot(self, seat_id: str) -> PopFrame | None:
        """The seat's current pop frame, or None when the seat shows no call."""
        ch = self._seats.get(seat_id)
        return None if ch is None else ch.pop

    def subscribers(self, seat_id: str) -> int:
        ch = self._seats.get(seat_id)
        return len(ch.subs) if ch else 0

    def supervisor_subscribers(self) -> int:
        return len(self._supervisor.subs)

    def finish_wrapup(self, seat_id: str, call_id: str, incident_number: str) -> bool:
        """The agent saved the incident of `call_id`: if that call is the seat's wrap-up pop,
        clear it (an `idle` frame with reason `saved`). Returns whether it did."""
        pop = self._seats[seat_id].pop if seat_id in self._seats else None
        if pop is None or pop.state != "wrapup" or pop.call_id != call_id:
            return False
        self.publish(
            seat_id,
            idle_frame(
                seat_id=seat_id, reason="saved", call_id=call_id, incident_number=incident_number
            ),
        )
        return True

    def close(self) -> None:
        """Close every subscription (shutdown): their `get` returns None."""
        self._queue.clear()
        for ch in (*self._seats.values(), self._supervisor):
            for sub in list(ch.subs):
                sub.close()
