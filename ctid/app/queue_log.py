"""Wiring of the queue_log witness: the log's calls (ctid.calls.queue_log) as the tickets
reconciler's inputs (member names → seat ids), by hand (`ctid reconcile`) and as the daemon's
background loop that follows the file (on start, after each AMI reconnect, every poll)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from datetime import UTC, date, datetime, time

import structlog

from ctid.calls.queue_log import LoggedCall, LogPosition, ReadResult, read_calls
from ctid.config import Config
from ctid.metrics import QueueLogReading
from ctid.tickets.facts import RingAttemptIn
from ctid.tickets.reconcile import (
    CallReconciler,
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


async def reconcile_file(
    cfg: Config,
    reconciler: CallReconciler,
    path: str,
    *,
    since: datetime | None = None,
) -> ReconcileReport:
    """The whole file, by hand: the read position is neither used nor moved."""
    result = await asyncio.to_thread(read_calls, path, None, since_epoch=_since_epoch(since))
    calls: Iterable[LoggedCall] = result.calls
    report = await reconciler.reconcile(to_call_in(c, cfg) for c in calls)
    log.info(
        "queue_log_file_reconciled",
        path=path,
        lines=result.lines,
        bad_lines=result.bad_lines,
        added=len(report.added),
        completed=len(report.completed),
    )
    return report


class QueueLogReconcile:
    """The daemon's follower: `reconcile_now()` reads what was added since the kept position
    and reconciles it (one at a time); `run()` does so every `poll_s` and whenever `poke()` is
    called (the composition root pokes after each AMI reconnect)."""

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

    def poke(self) -> None:
        self._wake.set()

    async def reconcile_now(self) -> ReconcileReport:
        async with self._lock:
            began = asyncio.get_running_loop().time()
            if self._first_began is None:
                self._first_began = began
            kept = await self._ledger.load(self.path)
            pos = None if kept is None else LogPosition(kept.inode, kept.offset)
            read, result = await asyncio.to_thread(_stat_and_read, self.path, pos)
            report = await self._reconciler.reconcile(
                to_call_in(c, self._cfg) for c in result.calls
            )
            # Saved after the calls are applied: a crash in between re-reads them, and the
            # ledger makes the second pass a no-op.
            await self._ledger.save(self.path, result.position)
            self.position, self._read, self._pass_began = result.position, read, began
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
            except Exception:  # one pass is the unit of work: log it, try again next poll
                log.exception("queue_log_reconcile_failed", path=self.path)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
            self._wake.clear()


def _stat_and_read(path: str, pos: LogPosition | None) -> tuple[tuple[int, int], ReadResult]:
    """The file's (inode, size) before reading, then the read: every byte below that size is
    read by the time this returns (read_calls reads to the end)."""
    st = os.stat(path)
    return (st.st_ino, st.st_size), read_calls(path, pos)


def since_day(day: str, cfg: Config) -> datetime:
    """`--since YYYY-MM-DD` as the start of that day in the site's zone."""
    from zoneinfo import ZoneInfo

    return datetime.combine(date.fromisoformat(day), time(), tzinfo=ZoneInfo(cfg.site.timezone))


async def run_reconcile(cfg: Config, path: str, since: datetime | None) -> ReconcileReport:
    """`ctid reconcile`: the file against the configured, migrated database."""
    import hashlib
    import hmac

    from ctid.app.secrets import site_secret
    from ctid.core.clock import SystemClock
    from ctid.db import check_schema, create_engine, session_factory
    from ctid.tickets.writes import CallWriter

    engine = create_engine(
        cfg.database_url, sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms
    )
    try:
        await check_schema(engine)
        sessions = session_factory(engine)
        clock = SystemClock(cfg.site.timezone)
        secret = hmac.new(site_secret(cfg), b"ctid-tickets-links", hashlib.sha256).digest()
        store = CallWriter.build(sessions, clock, cfg, link_secret=secret)
        reconciler = CallReconciler(store, QueueLogLedger(sessions, clock))
        return await reconcile_file(cfg, reconciler, path, since=since)
    finally:
        await engine.dispose()
