"""The queue_log witness at work: the log's calls (`ctid.tickets.queue_log`) as the reconciler's
inputs (member names → seat ids), streamed in chunks by hand (`ctid reconcile`) and by the
daemon's follower (on start, after each AMI reconnect, every poll)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import Clock
from ctid.metrics import QueueLogReading
from ctid.tickets.facts import RingAttemptIn
from ctid.tickets.journal_ops import RETRY_ON
from ctid.tickets.queue_log import LoggedCall, LogPosition, QueueLogReader
from ctid.tickets.reconcile import (
    CHUNK_CALLS,
    CallReconciler,
    CallWrites,
    LoggedCallIn,
    QueueLogLedger,
    ReconcileReport,
)

log = structlog.get_logger(__name__)

CALLBACK_FOR = {
    "abandoned_in_queue": "abandoned",
    "unanswered_timeout": "missed",
}


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def seat_for(cfg: Config, agent: str) -> str:
    """The config seat of a queue_log member name ("Seat 1", as queues.conf names it), or of
    its interface; an unknown member keeps its own name (history survives roster edits)."""
    for seat in cfg.seats:
        if agent in (seat.name, seat.interface, seat.id):
            return seat.id
    return agent


def to_call_in(call: LoggedCall, cfg: Config) -> LoggedCallIn:
    first = call.answered
    seat = seat_for(cfg, first.agent) if first else None
    conf = cfg.seat(seat) if seat else None
    talk: float | None = None
    transferred = None
    if first is not None and call.outcome == "answered":
        talk = first.talk_s
        if len(call.legs) > 1:
            nxt = call.legs[1]
            transferred = seat_for(cfg, nxt.agent)
            # app_queue counts the first member's talk time to the end of the whole call; its
            # own leg ended when the caller re-entered a queue (CONNECT time − hold time).
            if nxt.hold_s is not None:
                talk = max(0, nxt.connected_at - nxt.hold_s - first.connected_at)
    # The Uniqueid's integer part is the channel's creation time: the call started there
    # (before the IVR), not at ENTERQUEUE.
    head = call.callid.split(".", 1)[0]
    started = call.entered_at
    if head.isdigit() and call.entered_at - 3600 <= int(head) <= call.entered_at:
        started = int(head)
    rings: list[RingAttemptIn] = []
    answered_epochs = {leg.connected_at for leg in call.legs}
    for ring in call.rings:
        ring_s = None if ring.ring_ms is None else ring.ring_ms / 1000
        outcome = ring.outcome
        if outcome == "caller_left" and ring.ended_at in answered_epochs:
            outcome_s = "other_answered"
        else:
            outcome_s = outcome
        rings.append(
            RingAttemptIn(
                seat_id=seat_for(cfg, ring.agent),
                started_at=_utc(ring.ended_at - (ring_s or 0)),
                ended_at=_utc(ring.ended_at),
                outcome=outcome_s,
                ring_s=ring_s,
            )
        )
    for leg in call.legs:
        rings.append(
            RingAttemptIn(
                seat_id=seat_for(cfg, leg.agent),
                started_at=_utc(leg.connected_at - (leg.ring_s or 0)),
                ended_at=_utc(leg.connected_at),
                outcome="answered",
                ring_s=None if leg.ring_s is None else float(leg.ring_s),
            )
        )
    rings.sort(key=lambda r: r.started_at)
    reason = CALLBACK_FOR.get(call.outcome)
    if call.outcome == "lost_by_pbx" and first is None:
        reason = "missed"
    return LoggedCallIn(
        key=call.key,
        callid=call.callid,
        started_at=_utc(started),
        queued_at=_utc(call.entered_at),
        ended_at=None if call.outcome == "lost_by_pbx" else _utc(call.ended_at),
        outcome=call.outcome,
        caller_number=call.caller_number or None,
        queue=call.queue,
        answered_at=_utc(first.connected_at) if first else None,
        answered_by_seat=seat,
        answered_by_employee=(conf.staffed_by or None) if conf else None,
        talk_s=None if talk is None else float(talk),
        transferred_to=transferred,
        ring_attempts=tuple(rings),
        callback_reason=reason,
    )


def _since_epoch(since: datetime | None) -> int:
    return 0 if since is None else int(since.timestamp())


async def _reconcile_stream(
    cfg: Config, reconciler: CallReconciler, reader: QueueLogReader
) -> ReconcileReport:
    """Read the file a chunk of calls at a time (in a worker thread) and reconcile each before
    reading on, so memory holds one chunk and the calls still open, never the whole file."""
    report = ReconcileReport()
    while calls := await asyncio.to_thread(reader.take, CHUNK_CALLS):
        report.merge(await reconciler.reconcile([to_call_in(c, cfg) for c in calls]))
    return report


async def reconcile_file(
    cfg: Config,
    reconciler: CallReconciler,
    path: str,
    *,
    since: datetime | None = None,
) -> ReconcileReport:
    """The whole file, by hand: the read position is neither used nor moved."""
    reader = QueueLogReader(path, None, since_epoch=_since_epoch(since))
    report = await _reconcile_stream(cfg, reconciler, reader)
    log.info(
        "queue_log_file_reconciled",
        path=path,
        lines=reader.lines,
        bad_lines=reader.bad_lines,
        added=len(report.added),
        completed=len(report.completed),
    )
    return report


class QueueLogFollower:
    """The daemon's follower: `reconcile_now()` reads what was added since the kept position
    and reconciles it; `run()` does so every `poll_s` and whenever `poke()` is called (the
    composition root pokes after each AMI reconnect)."""

    def __init__(
        self,
        cfg: Config,
        ledger: QueueLogLedger,
        reconciler: CallReconciler,
        *,
        path: str | None = None,
        poll_s: float | None = None,
    ) -> None:
        self._cfg = cfg
        self._ledger = ledger
        self._reconciler = reconciler
        self.path = path if path is not None else cfg.asterisk.queue_log
        self._poll_s = poll_s if poll_s is not None else cfg.asterisk.queue_log_poll_s
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.runs = 0
        self.last = ReconcileReport()
        # For the metrics: where reading resumes, how much of which file the last pass had
        # certainly read (its size when the pass began) and when that pass began (loop time).
        self.position: LogPosition | None = None
        self._read: tuple[int, int] | None = None
        self._pass_began: float | None = None
        self._first_began: float | None = None

    @classmethod
    def build(
        cls,
        cfg: Config,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        store: CallWrites,
    ) -> QueueLogFollower:
        ledger = QueueLogLedger(sessions, clock)
        return cls(cfg, ledger, CallReconciler(store, ledger))

    def poke(self) -> None:
        self._wake.set()

    async def reconcile_now(self) -> ReconcileReport:
        async with self._lock:
            began = asyncio.get_running_loop().time()
            if self._first_began is None:
                self._first_began = began
            kept = await self._ledger.load(self.path)
            pos = None if kept is None else LogPosition(kept.inode, kept.offset)
            read = await asyncio.to_thread(_stat, self.path)
            reader = QueueLogReader(self.path, pos)
            report = await _reconcile_stream(self._cfg, self._reconciler, reader)
            assert reader.position is not None  # the stream ran to its end
            # Saved after the calls are applied: a crash in between re-reads them, and the
            # ledger makes the second pass a no-op.
            await self._ledger.save(self.path, reader.position)
            self.position, self._read, self._pass_began = reader.position, read, began
            self.runs += 1
            self.last = report
            if report.changed:
                log.info(
                    "queue_log_reconciled",
                    added=len(report.added),
                    completed=len(report.completed),
                    incidents=len(report.incidents),
                    callbacks=len(report.callbacks),
                )
            return report

    def reading(self, now: float) -> QueueLogReading:
        """How far behind the file the follower is at loop time `now` (stats the file: call it
        off the loop). Unread bytes were all written after the last pass began."""
        try:
            st = os.stat(self.path)
            size, inode = st.st_size, st.st_ino
        except OSError:
            size, inode = 0, None
        behind = size
        if self._read is not None and self._read[0] == inode:
            behind = max(0, size - self._read[1])
        since = self._pass_began if self._pass_began is not None else self._first_began
        lag = 0.0 if behind == 0 or since is None else max(0.0, now - since)
        return QueueLogReading(
            position_bytes=self.position.offset if self.position is not None else 0,
            behind_bytes=behind,
            lag_s=lag,
            passes=self.runs,
        )

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile_now()
            except asyncio.CancelledError:
                raise
            except FileNotFoundError:
                log.warning("queue_log_missing", path=self.path)
            except RETRY_ON as exc:  # the database is away: the next poll reads the same again
                log.warning("queue_log_reconcile_deferred", path=self.path, error=str(exc)[:200])
            except Exception:  # one pass is the unit of work: log it, try again next poll
                log.exception("queue_log_reconcile_failed", path=self.path)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
            self._wake.clear()


def _stat(path: str) -> tuple[int, int] | None:
    """The file's (inode, size) before a pass reads it: every byte below that size is read by
    the time the pass ends (the reader reads to the end). None when there is no file yet."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size


def since_day(day: str, cfg: Config) -> datetime:
    """`--since YYYY-MM-DD` as the start of that day in the site's zone."""
    return datetime.combine(date.fromisoformat(day), time(), tzinfo=ZoneInfo(cfg.site.timezone))


async def run_reconcile(
    cfg: Config,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    store: CallWrites,
    path: str,
    since: datetime | None,
) -> ReconcileReport:
    """`ctid reconcile`: the file against the database behind `sessions`."""
    reconciler = CallReconciler(store, QueueLogLedger(sessions, clock))
    return await reconcile_file(cfg, reconciler, path, since=since)
