"""The event bus: one ordered queue and one dispatcher, so every handler sees items in wire order;
a handler that waits for a disk or a database reads its items in a lane of its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from structlog.contextvars import bind_contextvars, unbind_contextvars

log = structlog.get_logger(__name__)

T = TypeVar("T")
U = TypeVar("U")
Handler = Callable[[T], Awaitable[None] | None]


class EventBus(Generic[T]):
    """Library callbacks `publish` (cheap, synchronous); the bus hands each item to its handlers.

    Handlers run one item at a time, in subscription order; `subscribe(handler, SomeType, ...)`
    sees only items of those types. What a handler tells the others about the item it is handling
    (`publish_next`: the tracker's notices) is dispatched right after it, before the next queued
    item, so the story keeps its order. A handler that raises is logged with the item and its
    traceback and the rest carry on: one item is the unit of work. While an item is dispatched its
    `call_id` (or `linkedid`) is bound to the log context.

    `flush` dispatches what is queued at once, in the caller's callback (the AMI reader calls it
    after each read, so a ringing call's pop does not wait behind the loop's other ready
    callbacks); `run`, the bus's task, dispatches the rest. A handler returns None when it is done
    with the item, or an awaitable: then the bus's task awaits it before the item's next handler
    and the items after it.

    A handler subscribed `apart` gets its items in a lane: its own queue and task, in the same
    order, one at a time, so what it waits for (the journal's fsync, a database, Asterisk's
    answer) never holds the bus — nor the pop of the next call. Readers that tell the story
    (`publish_next`) stay on the bus.
    """

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._next: deque[T] = deque()
        self._wakeup = asyncio.Event()
        self._subs: list[tuple[Handler[Any], tuple[type, ...]]] = []
        self._routes: dict[type, tuple[Handler[Any], ...]] = {}
        self._lanes: list[_Lane] = []
        self._held: _Held | None = None
        """The item whose handler returned an awaitable, and what is left of it."""
        self._pumping = False
        self._dispatching = asyncio.Lock()
        self.published = 0
        self.dispatched = 0

    def subscribe(self, handler: Handler[U], *types: type[U], apart: bool = False) -> None:
        """`handler` gets every item, or only those of `types` (which must be items of `T`);
        `apart`: in a lane of its own (see the class)."""
        if apart:
            lane = _Lane(handler)
            self._lanes.append(lane)
            handler = lane.put
        self._subs.append((handler, types))
        self._routes.clear()

    def publish(self, item: T) -> None:
        self._items.append(item)
        self.published += 1
        if not self._wakeup.is_set():
            self._wakeup.set()

    def publish_next(self, item: T) -> None:
        """Dispatch `item` after the item being handled now, ahead of everything queued."""
        self._next.append(item)
        self.published += 1
        if not self._wakeup.is_set():
            self._wakeup.set()

    def flush(self) -> None:
        """Dispatch what is queued now, in this callback, unless a dispatch is under way (a
        handler calling this, or an awaitable in hand: then the bus's task goes on)."""
        if not self._pumping and self._held is None and (self._items or self._next):
            self._pump()

    @property
    def backlog(self) -> int:
        return len(self._items) + len(self._next) + sum(len(lane.items) for lane in self._lanes)

    def _handlers_for(self, kind: type) -> tuple[Handler[Any], ...]:
        found = self._routes.get(kind)
        if found is None:
            found = tuple(h for h, types in self._subs if not types or issubclass(kind, types))
            self._routes[kind] = found
        return found

    async def drain(self) -> None:
        """Dispatch everything published so far, lanes included, and what that publishes in
        turn (tests and shutdown)."""
        while True:
            await self._dispatch_all()
            busy = [lane for lane in self._lanes if lane.pending]
            if not busy and not self._items and not self._next:
                return
            for lane in busy:
                await lane.idle.wait()

    async def run(self) -> None:
        """Dispatch until cancelled; then what was read already is handed over, lanes included
        (bounded by `STOP_DRAIN_S`), before the lanes stop."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                await self._dispatch_all()
        finally:
            try:
                async with asyncio.timeout(STOP_DRAIN_S):
                    await self.drain()
            except TimeoutError:
                log.warning("bus_stop_drain_timed_out", waiting=self.backlog)
            finally:
                for lane in self._lanes:
                    await lane.stop()

    async def _dispatch_all(self) -> None:
        async with self._dispatching:
            while True:
                held = self._held
                if held is not None:
                    if held.call_id:
                        bind_contextvars(call_id=held.call_id)
                    self._pumping = True  # no `flush` while the item's handlers go on
                    try:
                        try:
                            await held.result
                        except asyncio.CancelledError:
                            # Stopping: the drain after goes on with the item's next handler.
                            done = asyncio.get_running_loop().create_future()
                            done.set_result(None)
                            held.result = done
                            raise
                        except Exception:
                            log.exception(
                                "bus_handler_failed",
                                handler=_name(held.handlers[held.at - 1]),
                                item=repr(held.item)[:300],
                            )
                        self._held = None
                        self._handle(held.item, held.handlers, held.at, held.call_id)
                    finally:
                        self._pumping = False
                        if held.call_id:
                            unbind_contextvars("call_id")
                    if self._held is not None:
                        continue
                if not self._items and not self._next:
                    return
                self._pump()

    def _pump(self) -> None:
        # One loop for every item queued: no coroutine of its own per item, and the log context
        # changes only when the next item's call does. Stops at a handler's awaitable (`_held`).
        routes, first, queued = self._routes, self._next, self._items
        bound: object = None
        self._pumping = True
        try:
            while self._held is None:
                if first:  # what the handler before said (`publish_next`) goes first
                    item = first.popleft()
                elif queued:
                    item = queued.popleft()
                else:
                    break
                call_id = getattr(item, "call_id", None) or getattr(item, "linkedid", None)
                if call_id != bound:
                    if call_id:
                        bind_contextvars(call_id=call_id)
                    else:
                        unbind_contextvars("call_id")
                    bound = call_id
                handlers = routes.get(type(item))
                if handlers is None:
                    handlers = self._handlers_for(type(item))
                self._handle(item, handlers, 0, call_id)
        finally:
            self._pumping = False
            if bound:
                unbind_contextvars("call_id")
        if self._held is not None and not self._wakeup.is_set():
            self._wakeup.set()  # the bus's task awaits it and goes on

    def _handle(
        self, item: object, handlers: tuple[Handler[Any], ...], start: int, call_id: object
    ) -> None:
        """`item`'s handlers from `start`, until one returns an awaitable (kept in `_held`)."""
        for i in range(start, len(handlers)):
            handler = handlers[i]
            try:
                result = handler(item)
            except Exception:
                log.exception("bus_handler_failed", handler=_name(handler), item=repr(item)[:300])
                continue
            if result is not None:
                self._held = _Held(item, handlers, i + 1, result, str(call_id or ""))
                return
        self.dispatched += 1


@dataclass(slots=True)
class _Held:
    """An item whose handler `at - 1` returned `result`: the bus's task awaits it and goes on
    with the handlers from `at`."""

    item: object
    handlers: tuple[Handler[Any], ...]
    at: int
    result: Awaitable[None]
    call_id: str


STOP_DRAIN_S = 3.0
"""On stop, how long the bus may go on handing over what was read before it."""


class _Lane:
    """One `apart` handler's queue and task (started with the first item): items in order, one
    at a time; a handler that raises is logged and its lane carries on."""

    def __init__(self, handler: Handler[Any]) -> None:
        self.handler = handler
        self.name = _name(handler)
        self.items: deque[Any] = deque()
        self.pending = 0
        """Items put and not yet handled to the end (the one in hand included)."""
        self.idle = asyncio.Event()
        self.idle.set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, item: object) -> None:
        self.items.append(item)
        self.pending += 1
        self.idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"ctid-bus-lane-{self.name}"
            )
        if not self._wakeup.is_set():
            self._wakeup.set()

    async def _run(self) -> None:
        items, handler = self.items, self.handler
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while items:
                item = items.popleft()
                call_id = getattr(item, "call_id", None) or getattr(item, "linkedid", None)
                if call_id:
                    bind_contextvars(call_id=call_id)
                else:  # the task's context was copied from the bus's, mid-item maybe
                    unbind_contextvars("call_id")
                try:
                    result = handler(item)
                    if result is not None:
                        await result
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("bus_handler_failed", handler=self.name, item=repr(item)[:300])
                finally:
                    self.pending -= 1
                    if not self.pending:
                        self.idle.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _name(handler: object) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
