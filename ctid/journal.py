"""The durable write journal: writes that wait for the database are first committed (fsynced) to a
small local SQLite file as an op name + JSON args, then applied in order, exactly once — each
apply records the entry's sequence in the target database in the same transaction."""

from __future__ import annotations

import asyncio
import contextvars
import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from ctid.core.errors import CtidError, StoreError

log = structlog.get_logger(__name__)

ApplyFn = Callable[[Mapping[str, Any]], Awaitable[object]]
"""Applies one journaled write to the database (the registry maps op names to these)."""

MarkFn = Callable[[], Awaitable[None]]
"""Records the current entry as applied when its op wrote nothing (a no-op apply)."""


class AlreadyApplied(CtidError):
    """The target database already holds this entry's effect (a replay after a crash)."""


class UnknownOpError(CtidError):
    """A journal entry names an op this ctid has no apply function for."""


@dataclass
class EntryMark:
    """The entry being applied. The first write unit of its apply claims it: in its own
    transaction it moves the target's mark to `seq` (or raises `AlreadyApplied`)."""

    journal_id: str
    seq: int
    claimed: bool = False


current_entry: contextvars.ContextVar[EntryMark | None] = contextvars.ContextVar(
    "ctid_journal_entry", default=None
)


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    op: str
    args: dict[str, Any]
    what: str


def _encode(value: object) -> object:
    """Datetimes in args are kept as `{"$dt": iso}` (and come back as aware datetimes)."""
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _decode(obj: dict[str, Any]) -> object:
    if set(obj) == {"$dt"}:
        return datetime.fromisoformat(str(obj["$dt"]))
    return obj


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    args TEXT NOT NULL,
    what TEXT NOT NULL
);
"""


class JournalFile:
    """The local file. Synchronous (sqlite3); every commit is fsynced (synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        # FULL: the WAL is fsynced at every commit, so an accepted write survives power loss.
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()
        if row is None:
            self.journal_id = uuid.uuid4().hex
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('journal_id', ?)", (self.journal_id,)
            )
        else:
            self.journal_id = str(row[0])

    def append(self, op: str, args: str, what: str) -> int:
        cur = self._db.execute(
            "INSERT INTO entries (op, args, what) VALUES (?, ?, ?)", (op, args, what)
        )
        return int(cur.lastrowid or 0)

    def head(self) -> Entry | None:
        row = self._db.execute(
            "SELECT seq, op, args, what FROM entries ORDER BY seq LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return Entry(int(row[0]), str(row[1]), json.loads(row[2], object_hook=_decode), str(row[3]))

    def remove(self, seq: int) -> None:
        self._db.execute("DELETE FROM entries WHERE seq = ?", (seq,))

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class WriteJournal:
    """`submit(op, args)` returns once the write is on disk; `run()` applies entries in order,
    retrying the head with backoff while the database fails, and drops (logs) an entry whose
    apply raises anything else. The drop-in for `WriteSpool` with serializable writes."""

    def __init__(
        self,
        path: Path,
        registry: Mapping[str, ApplyFn],
        mark: Callable[[], Awaitable[None]],
        *,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        retry_on: tuple[type[BaseException], ...] = (StoreError, OSError),
    ) -> None:
        self.path = path
        self._file = JournalFile(path)
        self.journal_id = self._file.journal_id
        self._registry = dict(registry)
        self._mark = mark
        self._lock = asyncio.Lock()
        self._applying = asyncio.Lock()
        """One apply at a time (`run` and `drain` may both be going, e.g. at shutdown)."""
        self._wakeup = asyncio.Event()
        self._min, self._max = retry_min_s, retry_max_s
        self._retry_on = retry_on
        self._depth = self._file.depth()
        self.applied = 0
        if self._depth:
            log.warning("journal_replaying", waiting=self._depth, path=str(path))
            self._wakeup.set()

    def register(self, ops: Mapping[str, ApplyFn]) -> None:
        """Add ops (their owners are built after the journal; before `run`)."""
        self._registry.update(ops)

    @property
    def backlog(self) -> int:
        """Entries accepted and not yet applied (for /healthz and the logs)."""
        return self._depth

    async def submit(self, op: str, args: Mapping[str, Any], what: str = "") -> int:
        if op not in self._registry:
            raise UnknownOpError(f"no journal op {op!r}")
        payload = json.dumps(args, ensure_ascii=False, separators=(",", ":"), default=_encode)
        async with self._lock:  # in order, and the fsync off the event loop
            seq = await asyncio.to_thread(self._file.append, op, payload, what or op)
            self._depth += 1
        self._wakeup.set()
        return seq

    async def _apply_head(self) -> bool:
        """Apply the head entry; False when the journal is empty. Raises what the database
        raised (the entry stays)."""
        async with self._applying:
            return await self._apply_head_locked()

    async def _apply_head_locked(self) -> bool:
        async with self._lock:
            entry = await asyncio.to_thread(self._file.head)
        if entry is None:
            return False
        fn = self._registry.get(entry.op)
        mark = EntryMark(self.journal_id, entry.seq)
        token = current_entry.set(mark)
        try:
            if fn is None:
                raise UnknownOpError(f"no journal op {entry.op!r}")
            await fn(entry.args)
            if not mark.claimed:  # the op wrote nothing: still record that it was applied
                await self._mark()
        except AlreadyApplied:
            log.info("journal_entry_already_applied", seq=entry.seq, what=entry.what)
        except self._retry_on:
            raise
        except Exception:  # one entry is the unit of work: a bad one must not block the rest
            log.exception("journal_entry_dropped", seq=entry.seq, what=entry.what)
        finally:
            current_entry.reset(token)
        async with self._lock:
            await asyncio.to_thread(self._file.remove, entry.seq)
            self._depth = max(0, self._depth - 1)
        self.applied += 1
        return True

    async def drain(self) -> None:
        """Apply everything now (tests and shutdown); a failing head stays."""
        try:
            while await self._apply_head():
                pass
        except self._retry_on as exc:
            log.warning("journal_drain_stopped", waiting=self._depth, error=str(exc)[:200])

    async def run(self) -> None:
        delay = self._min
        attempts = 0
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while True:
                try:
                    if not await self._apply_head():
                        break
                except self._retry_on as exc:
                    attempts += 1
                    log.log(
                        30 if attempts > 1 else 40,
                        "journal_write_retry" if attempts > 1 else "journal_write_deferred",
                        attempts=attempts,
                        waiting=self._depth,
                        error=str(exc)[:200],
                        retry_in_s=round(delay, 1),
                    )
                    await asyncio.sleep(delay)
                    delay = min(self._max, delay * 2)
                    continue
                if attempts:
                    log.info("journal_write_recovered", waiting=self._depth)
                attempts, delay = 0, self._min

    def close(self) -> None:
        """On shutdown: the entries not applied stay on disk for the next start; say how many."""
        if self._depth:
            log.warning("journal_kept_for_next_start", waiting=self._depth, path=str(self.path))
        self._file.close()
