"""The callback list the agents work (`Callbacks`: list, start, finish) with its row type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ctid.core.actor import Actor
from ctid.tickets.callbacks import CallbackStore
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.views import (
    CallbackView,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRow:
    callback_id: int
    number: str
    reason: str
    requested_at: datetime
    status: str
    """open | in_progress | done | failed"""
    attempts: int
    caller_name: str | None = None
    worked_by: str | None = None
    outcome: str | None = None
    call_id: str | None = None
    incident_number: str | None = None


@dataclass
class Callbacks:
    """`CallbackPort` over the store's callback list. `incident_number` is only known for a row
    this adapter just finished with one (the list view carries the incident's id, not number)."""

    store: CallbackStore
    directory: CallerDirectory

    async def _row(
        self, v: CallbackView, names: dict[int, str | None], incident_number: str | None = None
    ) -> CallbackRow:
        name: str | None = None
        if v.caller_id is not None:
            if v.caller_id not in names:
                found = await self.directory.get(v.caller_id)
                names[v.caller_id] = found.name if found is not None else None
            name = names[v.caller_id]
        return CallbackRow(
            callback_id=v.id,
            number=v.caller_number,
            reason=v.reason,
            requested_at=v.requested_at,
            status=v.status,
            attempts=v.attempts,
            caller_name=name,
            worked_by=v.worked_by,
            outcome=v.outcome,
            call_id=v.call_id,
            incident_number=incident_number,
        )

    async def list_open(self) -> Sequence[CallbackRow]:
        names: dict[int, str | None] = {}
        return [await self._row(v, names) for v in await self.store.list_callbacks()]

    async def start(self, callback_id: int, actor: Actor) -> CallbackRow:
        v = await self.store.start_callback(callback_id, actor.employee_id)
        return await self._row(v, {})

    async def finish(
        self, callback_id: int, outcome: str, actor: Actor, *, incident_number: str | None
    ) -> CallbackRow:
        v = await self.store.finish_callback(
            callback_id,
            outcome,
            worked_by=actor.employee_id,
            incident_number=incident_number,
        )
        return await self._row(v, {}, incident_number)
