"""Writes that must not be lost when the database is briefly down: tried at once, and if the
store fails, kept in order and retried with backoff until they succeed (or ctid stops)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError

from ctid.core.errors import StoreError

log = structlog.get_logger(__name__)

Write = Callable[[], Awaitable[None]]


@dataclass
class _Pending:
    what: str
    write: Write
    attempts: int = 0


class WriteSpool:
    """`submit` runs a write now; if the database fails it is queued and
    `run` retries the queue in order, so records land in the order they happened."""

    def __init__(self, *, retry_min_s: float = 1.0, retry_max_s: float = 60.0) -> None:
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._min = retry_min_s
        self._max = retry_max_s

    @property
    def backlog(self) -> int:
        return len(self._queue)

    async def submit(self, what: str, write: Write) -> None:
        if self._queue:  # keep order behind what is already waiting
            self._queue.append(_Pending(what, write))
            return
        try:
            await write()
        except (StoreError, OSError, SQLAlchemyError) as exc:
            self._queue.append(_Pending(what, write, 1))
            self._wakeup.set()
            log.error("db_write_deferred", what=what, error=str(exc)[:300], backlog=self.backlog)

    async def run(self) -> None:
        delay = self._min
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                item = self._queue[0]
                try:
                    await item.write()
                except asyncio.CancelledError:
                    raise
                except (StoreError, OSError, SQLAlchemyError) as exc:
                    item.attempts += 1
                    log.warning(
                        "db_write_retry",
                        what=item.what,
                        attempts=item.attempts,
                        error=str(exc)[:200],
                        backlog=self.backlog,
                        retry_in_s=round(delay, 1),
                    )
                    await asyncio.sleep(delay)
                    delay = min(self._max, delay * 2)
                    continue
                except Exception:  # one write is the unit of work: a bad one must not block
                    log.exception("db_write_dropped", what=item.what)
                else:
                    log.info("db_write_recovered", what=item.what, backlog=self.backlog - 1)
                self._queue.popleft()
                delay = self._min
