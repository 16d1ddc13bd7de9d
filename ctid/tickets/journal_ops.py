"""The tickets side of the write journal: the ops it can replay (call records, incidents from calls,
callbacks, flags, audit rows) as JSON-serializable descriptions, and the "applied" mark for an op
that wrote nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.core.clock import Clock
from ctid.core.errors import StoreError
from ctid.db.schema import AuditLog
from ctid.journal import ApplyFn
from ctid.tickets._db import write_unit
from ctid.tickets.errors import InvalidInputError
from ctid.tickets.facts import CallFacts, CallRecordIn, RingAttemptIn

log = structlog.get_logger(__name__)

RETRY_ON: tuple[type[BaseException], ...] = (
    StoreError,
    OSError,
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
)
"""The database is down or unreachable: keep the entry and try again (anything else is a bad
entry, logged and dropped so it cannot block the rest)."""


class JournalStore(Protocol):
    async def record_call(self, rec: CallRecordIn) -> None: ...

    async def create_from_call(self, facts: CallFacts) -> object: ...

    async def add_callback(
        self, number: str, reason: str, call_id: str | None = None
    ) -> object: ...

    async def incident_for_call(self, call_id: str) -> object | None: ...

    async def apply(
        self,
        number: str,
        action: str,
        actor: str,
        *,
        expected_version: int | None = None,
        **args: object,
    ) -> object: ...


def _json(value: object) -> object:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _unjson(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$dt"}:
            return datetime.fromisoformat(str(value["$dt"]))
        return {k: _unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    return value


def call_record_args(rec: CallRecordIn) -> dict[str, Any]:
    out = _json(asdict(rec))
    assert isinstance(out, dict)
    return out


def call_facts_args(facts: CallFacts) -> dict[str, Any]:
    out = _json(asdict(facts))
    assert isinstance(out, dict)
    return out


def record_from_args(args: Mapping[str, Any]) -> CallRecordIn:
    raw = _unjson(dict(args))
    assert isinstance(raw, dict)
    names = {f.name for f in fields(CallRecordIn)}
    raw = {k: v for k, v in raw.items() if k in names}
    raw["ring_attempts"] = tuple(RingAttemptIn(**r) for r in raw.get("ring_attempts", []))
    return CallRecordIn(**raw)


def facts_from_args(args: Mapping[str, Any]) -> CallFacts:
    raw = _unjson(dict(args))
    assert isinstance(raw, dict)
    names = {f.name for f in fields(CallFacts)}
    return CallFacts(**{k: v for k, v in raw.items() if k in names})


def registry(
    store: JournalStore, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> dict[str, ApplyFn]:
    """Op name → apply function. Each apply's first write unit carries the entry's mark."""

    async def record_call(args: Mapping[str, Any]) -> object:
        await store.record_call(record_from_args(args))
        return None

    async def incident_from_call(args: Mapping[str, Any]) -> object:
        return await store.create_from_call(facts_from_args(args))

    async def add_callback(args: Mapping[str, Any]) -> object:
        try:
            return await store.add_callback(
                str(args["number"]), str(args["reason"]), args.get("call_id")
            )
        except InvalidInputError as exc:  # not a number to call back: nothing to write
            log.warning("callback_not_recorded", call_id=args.get("call_id"), error=str(exc))
            return None

    async def flag_call(args: Mapping[str, Any]) -> object:
        incident = await store.incident_for_call(str(args["call_id"]))
        number = getattr(incident, "number", None)
        if not isinstance(number, str):
            return None  # no incident: nothing to flag (the journal still marks it applied)
        return await store.apply(number, "flag", "system", name=str(args["flag"]))

    async def audit(args: Mapping[str, Any]) -> object:
        at = _unjson(args.get("at"))
        async with write_unit(sessions) as s:
            s.add(
                AuditLog(
                    at=at if isinstance(at, datetime) else clock.utcnow(),
                    actor=str(args["actor"]),
                    action=str(args["action"]),
                    target=args.get("target"),
                    detail=args.get("detail"),
                )
            )
        return None

    return {
        "record_call": record_call,
        "incident_from_call": incident_from_call,
        "add_callback": add_callback,
        "flag_call": flag_call,
        "audit": audit,
    }


def marker(sessions: async_sessionmaker[AsyncSession]) -> Any:
    """The journal's `mark`: an empty write unit, which claims the current entry."""

    async def mark() -> None:
        async with write_unit(sessions):
            pass

    return mark
