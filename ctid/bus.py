"""The event bus: one ordered queue and one dispatcher, so every handler sees events in wire order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")
Handler = Callable[[T], Awaitable[None] | None]


class EventBus(Generic[T]):
    """Library callbacks `publish` (cheap, synchronous); `run` hands each item to every handler.

    Handlers run one item at a time, in subscription order. A handler that raises is logged with the
    item and the rest carry on: one event is the unit of work.
    """

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._wakeup = asyncio.Event()
        self._handlers: list[Handler[T]] = []
        self.published = 0
        self.dispatched = 0

    def subscribe(self, handler: Handler[T]) -> None:
        self._handlers.append(handler)

    def publish(self, item: T) -> None:
        self._items.append(item)
        self.published += 1
        if not self._wakeup.is_set():
            self._wakeup.set()

    @property
    def backlog(self) -> int:
        return len(self._items)

    async def dispatch_one(self, item: T) -> None:
        for handler in self._handlers:
            try:
                result = handler(item)
                if result is not None:
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bus_handler_failed", handler=_name(handler), item=repr(item)[:300])
        self.dispatched += 1

    async def drain(self) -> None:
        """Dispatch everything published so far (tests and shutdown)."""
        while self._items:
            await self.dispatch_one(self._items.popleft())

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._items:
                await self.dispatch_one(self._items.popleft())


def _name(handler: object) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
