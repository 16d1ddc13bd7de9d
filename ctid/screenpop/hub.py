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


class PopHub:
    """Per-seat channels plus one supervisor channel.

    `publish` serialises the frame once and hands the same text to every subscriber of that seat
    (O(subscribers of the seat)); a `PopFrame` becomes the seat's snapshot and an `IdleFrame`
    clears it. New subscribers get the snapshot first, so a reload loses no pop.
    The supervisor channel also keeps its last `alerts_kept` alert frames (a ring buffer): a new
    wallboard gets them in one `alerts` frame, so a reload still shows what happened.
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
        self.published = 0
        self.dropped = 0

    def _seat(self, seat_id: str) -> _Channel:
        ch = self._seats.get(seat_id)
        if ch is None:
            ch = self._seats[seat_id] = _Channel(seat_id)
        return ch

    def publish(self, seat_id: str, frame: SeatFrame) -> int:
        """Deliver `frame` to the desktops of `seat_id` only; returns how many got it."""
        ch = self._seat(seat_id)
        data = to_json(frame)
        if isinstance(frame, PopFrame):
            ch.snapshot = data
            ch.pop = frame
        elif isinstance(frame, IdleFrame):
            ch.snapshot = ch.pop = None
        sent = self._fan_out(ch, data)
        if self._on_publish is not None:
            self._on_publish(seat_id, frame, sent)
        return sent

    def publish_supervisor(self, frame: SupervisorFrame) -> int:
        """Deliver `frame` to the supervisors' desktops; a `WallboardFrame` is kept, and so are
        the last `AlertFrame`s."""
        data = to_json(frame)
        if isinstance(frame, WallboardFrame):
            self._supervisor.snapshot = data
        elif isinstance(frame, AlertFrame):
            self._alerts.append(frame)
        return self._fan_out(self._supervisor, data)

    def _fan_out(self, ch: _Channel, data: str) -> int:
        self.published += 1
        if not ch.subs:
            return 0
        sent = 0
        slow: list[Subscription] = []
        for sub in ch.subs:
            if sub._offer(data):
                sent += 1
            else:
                slow.append(sub)
        for sub in slow:
            del ch.subs[sub]
            self.dropped += 1
            log.warning("push_subscriber_dropped", channel=ch.name, queued=self._limit)
        return sent

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
        for ch in (*self._seats.values(), self._supervisor):
            for sub in list(ch.subs):
                sub.close()
