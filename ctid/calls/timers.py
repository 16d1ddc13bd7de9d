"""Keyed timers on the event loop: policies ask for them as `StartTimer`/`CancelTimer` effects and
get called back with the key. Durations use loop time, so tests run them on fake time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ctid.core.effects import TimerKey


class Timers:
    """Owns every policy timer; `close()` cancels them all (no timer outlives the daemon)."""

    def __init__(self, fire: Callable[[TimerKey], None]) -> None:
        self._fire = fire
        self._handles: dict[TimerKey, asyncio.TimerHandle] = {}

    def start(self, key: TimerKey, delay_s: float) -> None:
        self.cancel(key)
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_later(max(0.0, delay_s), self._expire, key)

    def cancel(self, key: TimerKey) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def pending(self) -> list[TimerKey]:
        return list(self._handles)

    def _expire(self, key: TimerKey) -> None:
        self._handles.pop(key, None)
        self._fire(key)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
