"""The event bus: one ordered queue and one dispatcher, so every handler sees items in wire order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog
from structlog.contextvars import bind_contextvars, unbind_contextvars

log = structlog.get_logger(__name__)

T = TypeVar("T")
U = TypeVar("U")
Handler = Callable[[T], Awaitable[None] | None]


class EventBus(Generic[T]):
    """Library callbacks `publish` (cheap, synchronous); `run` hands each item to its handlers.

    Handlers run one item at a time, in subscription order; `subscribe(handler, SomeType, ...)`
    sees only items of those types. What a handler tells the others about the item it is handling
    (`publish_next`: the tracker's notices) is dispatched right after it, before the next queued
    item, so the story keeps its order. A handler that raises is logged with the item and its
    traceback and the rest carry on: one item is the unit of work. While an item is dispatched its
    `call_id` (or `linkedid`) is bound to the log context.
    """

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._next: deque[T] = deque()
        self._wakeup = asyncio.Event()
        self._subs: list[tuple[Handler[Any], tuple[type, ...]]] = []
        self._routes: dict[type, tuple[Handler[Any], ...]] = {}
        self.published = 0
        self.dispatched = 0

    def subscribe(self, handler: Handler[U], *types: type[U]) -> None:
        """`handler` gets every item, or only those of `types` (which must be items of `T`)."""
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

    @property
    def backlog(self) -> int:
        return len(self._items) + len(self._next)

    def _handlers_for(self, kind: type) -> tuple[Handler[Any], ...]:
        found = self._routes.get(kind)
        if found is None:
            found = tuple(h for h, types in self._subs if not types or issubclass(kind, types))
            self._routes[kind] = found
        return found

    async def drain(self) -> None:
        """Dispatch everything published so far (tests and shutdown)."""
        await self._dispatch_all()

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._dispatch_all()

    async def _dispatch_all(self) -> None:
        # One loop for every item queued (one batch per socket read, as a rule): no coroutine of
        # its own per item, and the log context changes only when the next item's call does.
        routes, first, queued = self._routes, self._next, self._items
        bound: object = None
        try:
            while True:
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
                kind = type(item)
                handlers = routes.get(kind)
                if handlers is None:
                    handlers = self._handlers_for(kind)
                for handler in handlers:
                    try:
                        result = handler(item)
                        if result is not None:
                            await result
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception(
                            "bus_handler_failed", handler=_name(handler), item=repr(item)[:300]
                        )
                self.dispatched += 1
        finally:
            if bound:
                unbind_contextvars("call_id")


def _name(handler: object) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
