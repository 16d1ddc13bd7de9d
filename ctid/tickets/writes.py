"""The tickets writes a whole call needs (its record, its incident, its callback) over the three
split stores: what the journal and the queue_log reconciler apply, in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import Clock
from ctid.tickets.call_facts import CallFactStore
from ctid.tickets.callbacks import CallbackStore
from ctid.tickets.facts import CallFacts, CallRecordIn
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.views import CallbackView, IncidentView


class CallWriter:
    """Delegates each write to the store that owns it."""

    def __init__(
        self, incidents: IncidentStore, call_facts: CallFactStore, callbacks: CallbackStore
    ) -> None:
        self.incidents = incidents
        self.call_facts = call_facts
        self.callbacks = callbacks

    @classmethod
    def build(
        cls,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        cfg: Config,
        *,
        link_secret: bytes,
    ) -> CallWriter:
        return cls(
            IncidentStore(sessions, clock, cfg, link_secret=link_secret),
            CallFactStore(sessions, cfg),
            CallbackStore(sessions, clock, cfg),
        )

    async def record_call(self, rec: CallRecordIn) -> None:
        await self.call_facts.record_call(rec)

    async def record_calls(
        self,
        s: AsyncSession,
        recs: Sequence[CallRecordIn],
        incident_ids: Mapping[str, int] | None = None,
    ) -> None:
        await self.call_facts.record_calls(s, recs, incident_ids)

    async def create_from_calls(
        self, s: AsyncSession, calls: Sequence[CallFacts], *, flag: str | None = None
    ) -> dict[str, IncidentView]:
        return await self.incidents.create_from_calls(s, calls, flag=flag)

    async def add_callback_for(
        self, number: str, reason: str, call_id: str | None = None
    ) -> CallbackView:
        return await self.callbacks.add_callback_for(number, reason, call_id)

    async def add_callbacks(
        self, s: AsyncSession, wanted: Sequence[tuple[str, str, str | None]]
    ) -> list[CallbackView | None]:
        return await self.callbacks.add_callbacks(s, wanted)

    async def create_from_call(self, facts: CallFacts) -> IncidentView:
        return await self.incidents.create_from_call(facts)

    async def incident_for_call(self, call_id: str) -> IncidentView | None:
        return await self.incidents.incident_for_call(call_id)

    async def add_callback(
        self, number: str, reason: str, call_id: str | None = None
    ) -> CallbackView:
        return await self.callbacks.add_callback(number, reason, call_id)

    async def apply(
        self,
        number: str,
        action: str,
        actor: str,
        *,
        expected_version: int | None = None,
        **args: object,
    ) -> object:
        return await self.incidents.apply(
            number, action, actor, expected_version=expected_version, **args
        )
