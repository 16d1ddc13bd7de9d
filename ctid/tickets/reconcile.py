"""Completes the call records from Asterisk's queue_log, exactly once: a call ctid never saw is
added, an open one completed, its incident (answered) or callback (not served) made; the log's
read position and the calls already reconciled are kept in the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

import structlog
from sqlalchemy import String, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.core.clock import Clock
from ctid.core.errors import CtidError
from ctid.db.schema import Call, Callback, CallbackCall, QueueLogCall, QueueLogPosition, RingAttempt
from ctid.tickets._db import write_unit
from ctid.tickets.facts import CallFacts, CallRecordIn, RingAttemptIn
from ctid.tickets.views import CallbackView, IncidentView

log = structlog.get_logger(__name__)

RECOVERED_FLAG = "recovered"
"""Set on an incident made from the log: nobody saw the call live, its times come from Asterisk."""

CHUNK_CALLS = 500
"""Calls reconciled per transaction: big enough that the per-transaction cost vanishes, small
enough that a repeated chunk (after a crash or a conflict) is cheap."""

SAME_CALL_WINDOW_S = 3600
"""A stored call with the log's callid is the same call only if it started this close to the
log's ENTERQUEUE; otherwise (a PBX restart reused the Uniqueid) the log's call gets its own id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedCallIn:
    """One call as the queue_log tells it, seats already mapped to config seat ids."""

    key: str
    callid: str
    started_at: datetime
    queued_at: datetime
    ended_at: datetime | None
    outcome: str
    caller_number: str | None = None
    queue: str | None = None
    answered_at: datetime | None = None
    answered_by_seat: str | None = None
    answered_by_employee: str | None = None
    talk_s: float | None = None
    transferred_to: str | None = None
    ring_attempts: tuple[RingAttemptIn, ...] = ()
    callback_reason: str | None = None


class CallWrites(Protocol):
    """The tickets stores' writes the reconciler needs: one call at a time (each its own
    transaction), and many in the reconciler's transaction (`CallWriter` has both)."""

    async def record_calls(
        self,
        s: AsyncSession,
        recs: Sequence[CallRecordIn],
        incident_ids: Mapping[str, int] | None = None,
    ) -> None: ...

    async def create_from_calls(
        self, s: AsyncSession, calls: Sequence[CallFacts], *, flag: str | None = None
    ) -> Mapping[str, IncidentView]: ...

    async def add_callbacks(
        self, s: AsyncSession, wanted: Sequence[tuple[str, str, str | None]]
    ) -> Sequence[CallbackView | None]: ...

    async def record_call(self, rec: CallRecordIn) -> None: ...

    async def create_from_call(self, facts: CallFacts) -> object: ...

    async def add_callback_for(
        self, number: str, reason: str, call_id: str | None = None
    ) -> object: ...

    async def apply(
        self,
        number: str,
        action: str,
        actor: str,
        *,
        expected_version: int | None = None,
        **args: object,
    ) -> object: ...


Action = Literal["added", "completed", "matched"]


@dataclass
class ReconcileReport:
    added: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    matched: int = 0
    already: int = 0
    incidents: list[str] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)
    failed: int = 0

    def merge(self, other: ReconcileReport) -> None:
        self.added += other.added
        self.completed += other.completed
        self.matched += other.matched
        self.already += other.already
        self.incidents += other.incidents
        self.callbacks += other.callbacks
        self.failed += other.failed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.completed or self.incidents or self.callbacks)


@dataclass(frozen=True, slots=True)
class _Stored:
    call_id: str
    started_at: datetime
    complete: bool
    incident_id: int | None
    ivr_choice: str | None
    category: str | None
    caller_name: str | None
    capped: bool
    answer_ring: int | None
    within_rings: bool | None
    rings: tuple[RingAttemptIn, ...]


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


class QueueLogLedger:
    """The reconciler's own tables: read positions (implements the follower's `PositionStore`)
    and the log keys already applied."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def load(self, path: str) -> _Position | None:
        async with self._sessions() as s:
            row = await s.get(QueueLogPosition, path)
            return None if row is None else _Position(row.inode, row.offset)

    async def save(self, path: str, pos: _PositionLike) -> None:
        async with write_unit(self._sessions, lock=f"queue_log:{path}") as s:
            row = await s.get(QueueLogPosition, path)
            if row is None:
                row = QueueLogPosition(path=path)
                s.add(row)
            row.inode, row.offset = pos.inode, pos.offset
            row.updated_at = self._clock.utcnow()

    async def done(self, key: str) -> bool:
        async with self._sessions() as s:
            return await s.get(QueueLogCall, key) is not None

    async def mark(self, key: str, call_id: str, outcome: str, action: Action) -> None:
        try:
            async with write_unit(self._sessions, lock=f"qlog:{key}") as s:
                if await s.get(QueueLogCall, key) is None:
                    s.add(
                        QueueLogCall(
                            log_key=key,
                            call_id=call_id,
                            outcome=outcome,
                            action=action,
                            reconciled_at=self._clock.utcnow(),
                        )
                    )
        except IntegrityError:  # a concurrent reconcile marked it first: same outcome
            pass

    async def stored(self, call_id: str) -> _Stored | None:
        async with self._sessions() as s:
            return (await self.stored_many(s, [call_id])).get(call_id)

    @staticmethod
    async def stored_many(s: AsyncSession, call_ids: Sequence[str]) -> dict[str, _Stored]:
        """The stored calls among `call_ids`, with their ring attempts, in two queries."""
        if not call_ids:
            return {}
        calls = (await s.scalars(select(Call).where(Call.call_id.in_(call_ids)))).all()
        if not calls:
            return {}
        rings: dict[str, list[RingAttemptIn]] = {}
        for r in await s.scalars(
            select(RingAttempt)
            .where(RingAttempt.call_id.in_([c.call_id for c in calls]))
            .order_by(RingAttempt.started_at, RingAttempt.id)
        ):
            rings.setdefault(r.call_id, []).append(
                RingAttemptIn(
                    seat_id=r.seat_id,
                    started_at=_aware(r.started_at),
                    ended_at=_aware(r.ended_at) if r.ended_at else None,
                    outcome=r.outcome,
                    ring_s=r.ring_s,
                )
            )
        return {
            row.call_id: _Stored(
                call_id=row.call_id,
                started_at=_aware(row.started_at),
                complete=row.outcome is not None,
                incident_id=row.incident_id,
                ivr_choice=row.ivr_choice,
                category=row.category,
                caller_name=row.caller_name,
                capped=row.capped,
                answer_ring=row.answer_ring,
                within_rings=row.within_rings,
                rings=tuple(rings.get(row.call_id, ())),
            )
            for row in calls
        }

    @staticmethod
    async def done_many(s: AsyncSession, keys: Sequence[str]) -> set[str]:
        found = await s.scalars(select(QueueLogCall.log_key).where(QueueLogCall.log_key.in_(keys)))
        return set(found)

    @staticmethod
    async def with_callback(s: AsyncSession, call_ids: Sequence[str]) -> set[str]:
        """The calls among `call_ids` a callback already names (as its first call, or as one
        more call that fed it)."""
        first = await s.scalars(select(Callback.call_id).where(Callback.call_id.in_(call_ids)))
        more = await s.scalars(
            select(CallbackCall.call_id).where(CallbackCall.call_id.in_(call_ids))
        )
        return {c for c in (*first, *more) if c is not None}

    async def mark_many(
        self, s: AsyncSession, marks: Sequence[tuple[str, str, str, Action]]
    ) -> None:
        if not marks:
            return
        now = self._clock.utcnow()
        await s.execute(
            insert(QueueLogCall),
            [
                {
                    "log_key": key,
                    "call_id": call_id,
                    "outcome": outcome,
                    "action": action,
                    "reconciled_at": now,
                }
                for key, call_id, outcome, action in marks
            ],
        )

    @asynccontextmanager
    async def chunk_unit(self, locks: Iterable[str]) -> AsyncIterator[AsyncSession]:
        """One transaction for a chunk of calls. PostgreSQL: the advisory locks the per-call
        writes take (`call:<id>`, `qlog:<key>`), all of them, in one sorted order (so two
        reconcilers never deadlock), before anything is read."""
        async with write_unit(self._sessions) as s:
            if s.get_bind().dialect.name == "postgresql":
                await s.execute(
                    text(
                        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                        "FROM (SELECT DISTINCT unnest(:keys) AS k ORDER BY 1) AS wanted"
                    ).bindparams(bindparam("keys", type_=ARRAY(String))),
                    {"keys": sorted(set(locks))},
                )
            yield s

    async def has_callback(self, call_id: str) -> bool:
        async with self._sessions() as s:
            return bool(await self.with_callback(s, [call_id]))


@dataclass(frozen=True, slots=True)
class _Position:
    inode: int
    offset: int


class _PositionLike(Protocol):
    @property
    def inode(self) -> int: ...

    @property
    def offset(self) -> int: ...


class CallReconciler:
    """Applies logged calls. Every step is idempotent and the log key is marked last, so a crash
    half-way re-does the call whole and nothing twice."""

    def __init__(self, store: CallWrites, ledger: QueueLogLedger) -> None:
        self._store = store
        self._ledger = ledger

    async def reconcile(
        self, calls: Iterable[LoggedCallIn], *, chunk: int = CHUNK_CALLS
    ) -> ReconcileReport:
        """Apply the calls in chunks: each chunk in one transaction with its ledger marks, so a
        crash repeats the chunk whole and writes nothing twice. A chunk the bulk path cannot
        write (a bad value, a concurrent writer) is done again one call at a time."""
        report = ReconcileReport()
        batch: list[LoggedCallIn] = []
        ids: set[str] = set()
        for call in calls:
            # Every call of a chunk has its own callid: the plan reads the stored calls once.
            if call.callid in ids or len(batch) >= chunk:
                report.merge(await self._chunk(batch))
                batch, ids = [], set()
            batch.append(call)
            ids.add(call.callid)
        if batch:
            report.merge(await self._chunk(batch))
        return report

    async def _chunk(self, calls: list[LoggedCallIn]) -> ReconcileReport:
        report = ReconcileReport()
        locks = [f"qlog:{c.key}" for c in calls]
        locks += [f"call:{i}" for c in calls for i in (c.callid, _other_id(c))]
        try:
            async with self._ledger.chunk_unit(locks) as s:
                await self._bulk(s, calls, report)
        except (CtidError, SQLAlchemyError) as exc:
            log.warning("queue_log_chunk_one_by_one", calls=len(calls), error=str(exc)[:200])
            report = ReconcileReport()
            for call in calls:
                try:
                    await self._one(call, report)
                except CtidError as err:  # one call is the unit of work: say so, go on
                    report.failed += 1
                    log.warning("queue_log_call_not_reconciled", key=call.key, error=str(err))
        return report

    async def _bulk(
        self, s: AsyncSession, calls: list[LoggedCallIn], report: ReconcileReport
    ) -> None:
        """`_one` for a chunk, in the chunk's transaction: the same decisions from a few
        reads, the same writes in a few statements."""
        done = await self._ledger.done_many(s, [c.key for c in calls])
        stored = await self._ledger.stored_many(
            s, [i for c in calls for i in (c.callid, _other_id(c))]
        )
        with_callback = await self._ledger.with_callback(
            s, [i for c in calls for i in (c.callid, _other_id(c))]
        )
        records: list[CallRecordIn] = []
        incidents: list[CallFacts] = []
        callbacks: list[tuple[str, str, str | None]] = []
        marks: list[tuple[str, str, str, Action]] = []
        for call in calls:
            if call.key in done:
                report.already += 1
                continue
            call_id = call.callid
            known = stored.get(call_id)
            if known is not None and not _same_call(known, call):
                call_id = _other_id(call)
                known = stored.get(call_id)
            action: Action
            if known is not None and known.complete:
                action = "matched"
                report.matched += 1
            else:
                action = "added" if known is None else "completed"
                records.append(_record(call, call_id, known))
                (report.added if action == "added" else report.completed).append(call_id)
            if (
                call.answered_at is not None
                and call.answered_by_seat is not None
                and (known is None or known.incident_id is None)
            ):
                incidents.append(_facts(call, call_id, known))
            if call.callback_reason and call.caller_number and call_id not in with_callback:
                callbacks.append((call.caller_number, call.callback_reason, call_id))
            marks.append((call.key, call_id, call.outcome, action))
        made = await self._store.create_from_calls(s, incidents, flag=RECOVERED_FLAG)
        report.incidents += [view.number for view in made.values()]
        await self._store.record_calls(s, records, {k: v.id for k, v in made.items()})
        # An incident for a call the chunk does not rewrite (matched) is linked here.
        rewritten = {r.call_id for r in records}
        for call_id, view in made.items():
            if call_id not in rewritten:
                await s.execute(
                    update(Call).where(Call.call_id == call_id).values(incident_id=view.id)
                )
        added = await self._store.add_callbacks(s, callbacks)
        report.callbacks += [
            str(call_id) for (_, _, call_id), view in zip(callbacks, added, strict=True) if view
        ]
        await self._ledger.mark_many(s, marks)
        for key, call_id, outcome, action in marks:
            log.info(
                "queue_log_call_reconciled",
                key=key,
                call_id=call_id,
                outcome=outcome,
                action=action,
            )

    async def _one(self, call: LoggedCallIn, report: ReconcileReport) -> None:
        if await self._ledger.done(call.key):
            report.already += 1
            return
        stored = await self._ledger.stored(call.callid)
        call_id = call.callid
        if stored is not None and not _same_call(stored, call):
            call_id = _other_id(call)
            stored = await self._ledger.stored(call_id)
        action: Action
        if stored is not None and stored.complete:
            action = "matched"
            report.matched += 1
        else:
            action = "added" if stored is None else "completed"
            await self._store.record_call(_record(call, call_id, stored))
            (report.added if action == "added" else report.completed).append(call_id)
        if call.answered_at is not None and call.answered_by_seat is not None:
            had_incident = stored is not None and stored.incident_id is not None
            view = await self._store.create_from_call(_facts(call, call_id, stored))
            number = getattr(view, "number", None)
            flags = getattr(view, "flags", ())
            if not had_incident and isinstance(number, str):
                if RECOVERED_FLAG not in flags:
                    await self._store.apply(number, "flag", "system", name=RECOVERED_FLAG)
                report.incidents.append(number)
        if (
            call.callback_reason
            and call.caller_number
            and not await self._ledger.has_callback(call_id)
        ):
            try:
                await self._store.add_callback_for(
                    call.caller_number, call.callback_reason, call_id
                )
                report.callbacks.append(call_id)
            except CtidError as exc:  # not a callable number: the call is still recorded
                log.warning("callback_not_recorded", call_id=call_id, error=str(exc))
        await self._ledger.mark(call.key, call_id, call.outcome, action)
        log.info(
            "queue_log_call_reconciled",
            key=call.key,
            call_id=call_id,
            outcome=call.outcome,
            action=action,
        )


def _other_id(call: LoggedCallIn) -> str:
    """The id of a logged call whose Uniqueid a stored call of another time already has."""
    return f"{call.callid}@{int(call.queued_at.timestamp())}"


def _facts(call: LoggedCallIn, call_id: str, stored: _Stored | None) -> CallFacts:
    assert call.answered_at is not None and call.answered_by_seat is not None
    return CallFacts(
        call_id=call_id,
        answered_at=call.answered_at,
        answered_by_seat=call.answered_by_seat,
        answered_by_employee=call.answered_by_employee,
        caller_number=call.caller_number,
        started_at=call.started_at,
        queue=call.queue,
        ivr_digit=stored.ivr_choice if stored else None,
        category=stored.category if stored else None,
    )


def _same_call(stored: _Stored, call: LoggedCallIn) -> bool:
    return abs((stored.started_at - call.queued_at).total_seconds()) <= SAME_CALL_WINDOW_S


def _record(call: LoggedCallIn, call_id: str, stored: _Stored | None) -> CallRecordIn:
    """The log's facts, keeping what only the live view knew (IVR choice, category, name, the
    ring attempts it saw, the cap flag)."""
    rings = call.ring_attempts
    if stored is not None and stored.rings:
        end = call.answered_at or call.ended_at
        rings = tuple(
            r
            if r.ended_at is not None or end is None
            else replace(
                r,
                ended_at=end,
                outcome="answered" if r.seat_id == call.answered_by_seat else "other",
                ring_s=max(0.0, (end - r.started_at).total_seconds()),
            )
            for r in stored.rings
        )
    started = call.started_at
    if stored is not None and stored.started_at < started:
        started = stored.started_at
    return CallRecordIn(
        call_id=call_id,
        started_at=started,
        caller_number=call.caller_number,
        caller_name=stored.caller_name if stored else None,
        queue=call.queue,
        ivr_choice=stored.ivr_choice if stored else None,
        category=stored.category if stored else None,
        queued_at=call.queued_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        answered_by_seat=call.answered_by_seat,
        answer_ring=stored.answer_ring if stored else None,
        within_rings=stored.within_rings if stored else None,
        outcome=call.outcome,
        talk_s=call.talk_s,
        capped=stored.capped if stored else False,
        transferred_to=call.transferred_to,
        ring_attempts=rings,
    )
