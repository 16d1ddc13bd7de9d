"""A write queue for work that must not be lost when the database is briefly down and must not hold
up the event path: written in order by one task, the head retried with backoff while the store fails."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError

from ctid.core.errors import StoreError

log = structlog.get_logger(__name__)

Write = Callable[[], Awaitable[object]]


@dataclass
class _Pending:
    what: str
    write: Write
    attempts: int = 0


class WriteSpool:
    """`submit` queues a write and returns at once (the bus never waits for the database); `run`
    writes the queue in order, retrying the head while the database fails, so records land in
    the order they happened."""

    def __init__(self, *, retry_min_s: float = 1.0, retry_max_s: float = 60.0) -> None:
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._min = retry_min_s
        self._max = retry_max_s

    @property
    def backlog(self) -> int:
        return len(self._queue)

    async def submit(self, what: str, write: Write) -> None:
        self._queue.append(_Pending(what, write))
        self._wakeup.set()

    async def drain(self) -> None:
        """Write everything queued now (tests and shutdown); a failing head stays queued."""
        while self._queue:
            item = self._queue[0]
            try:
                await item.write()
            except (StoreError, OSError, SQLAlchemyError):
                return
            except Exception:
                log.exception("db_write_dropped", what=item.what)
            self._queue.popleft()

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
                    log.log(
                        30 if item.attempts > 1 else 40,
                        "db_write_retry" if item.attempts > 1 else "db_write_deferred",
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
                    if item.attempts:
                        log.info("db_write_recovered", what=item.what, backlog=self.backlog - 1)
                self._queue.popleft()
                delay = self._min
