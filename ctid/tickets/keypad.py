"""A satisfaction score keyed on the phone after the call: finds the call's incident (the link
made at answer time) and rates it once, with source `keypad`."""

from __future__ import annotations

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.db.schema import Call, Incident
from ctid.tickets.actions import Rate
from ctid.tickets.incidents import IncidentStore

log = structlog.get_logger(__name__)


class KeypadRatings:
    """`calls.survey.SatisfactionSink` over the incident store."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], incidents: IncidentStore
    ) -> None:
        self._sessions = sessions
        self._incidents = incidents

    async def incident_of_call(self, call_id: str) -> str | None:
        """The number of the incident the call was taken into, if any."""
        async with self._sessions() as s:
            number = await s.scalar(
                select(Incident.number)
                .join(Call, Call.incident_id == Incident.id)
                .where(Call.call_id == call_id)
            )
        return None if number is None else str(number)

    async def rate_call(self, call_id: str, score: int) -> str | None:
        """Rate the call's incident; returns its number, or None when the call has none.
        `TransitionError` when it was rated already, `InvalidInputError` for a bad score."""
        number = await self.incident_of_call(call_id)
        if number is None:
            return None
        await self._incidents.apply(number, Rate(score=score, source="keypad"), "caller")
        return number
