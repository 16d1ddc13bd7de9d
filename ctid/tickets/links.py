"""The pages behind e-mailed links (`Links`: dispatch accept/reject, satisfaction survey) with
their view types; a bad token is `TokenError`, an expired one `TokenExpiredError`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ctid.core.errors import RecordMissingError, StateConflictError
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.incidents import IncidentStore


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchRequest:
    """What the dispatch link's page shows the second-line assignee. `waiting`: the incident is
    still dispatched to the link's group, so accept/reject are possible."""

    number: str
    summary: str
    status: str
    group: str
    expires_at: datetime
    waiting: bool
    description: str | None = None
    priority: str | None = None
    assignee: str | None = None
    caller_name: str | None = None
    caller_phone: str | None = None
    caller_office: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyRequest:
    """What the satisfaction survey page shows the caller."""

    number: str
    summary: str
    expires_at: datetime
    rated: bool


@dataclass
class Links:
    """`LinkPort`: the dispatch accept/reject page and the satisfaction survey."""

    store: IncidentStore
    directory: CallerDirectory

    async def dispatch_request(self, token: str) -> DispatchRequest:
        claims = self.store.verify_link(token, "dispatch")
        v = await self.store.get(claims.number)
        if v is None:
            raise RecordMissingError(f"no incident {claims.number}")
        office = None
        if v.caller_id is not None:
            found = await self.directory.get(v.caller_id)
            office = found.office_location if found is not None else None
        return DispatchRequest(
            number=v.number,
            summary=v.summary,
            status=v.status,
            group=claims.group or "",
            expires_at=claims.expires_at,
            waiting=v.status == "dispatched" and v.owner_group == claims.group,
            description=v.description,
            priority=v.priority,
            assignee=claims.assignee,
            caller_name=v.caller_name,
            caller_phone=v.caller_number,
            caller_office=office,
        )

    async def respond(
        self, token: str, decision: Literal["accept", "reject"], reason: str | None
    ) -> DispatchRequest:
        await self.store.respond_to_dispatch(token, decision, reason)
        return await self.dispatch_request(token)

    async def survey(self, token: str) -> SurveyRequest:
        claims = self.store.verify_link(token, "survey")
        v = await self.store.get(claims.number)
        if v is None:
            raise RecordMissingError(f"no incident {claims.number}")
        return SurveyRequest(
            number=v.number,
            summary=v.summary,
            expires_at=claims.expires_at,
            rated=v.satisfaction is not None,
        )

    async def rate(self, token: str, score: int, comment: str | None) -> None:
        if (await self.survey(token)).rated:
            raise StateConflictError("this incident has already been rated, thank you")
        await self.store.record_rating(token, score, comment)
