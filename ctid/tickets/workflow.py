"""The incident lifecycle as the web drives it (`IncidentWorkflow`: open list, detail with history,
one lifecycle step), with its view types."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ctid.core.actor import Actor
from ctid.core.errors import RequestRefusedError
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.forms import CallerRow, caller_row
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.lifecycle import (
    allowed_actions,
)
from ctid.tickets.views import (
    IncidentView,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentQuery:
    """Filters of the open-incident list; every given filter must match."""

    seat: str | None = None
    group: str | None = None
    employee: str | None = None
    """Owned by this employee ID (`owner_employee`)."""
    statuses: tuple[str, ...] = ()
    """Empty: every status that is not resolved or closed."""
    limit: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentSummary:
    """One line of the incident list."""

    number: str
    status: str
    summary: str
    request_type: str
    category: str | None = None
    priority: str | None = None
    caller_name: str | None = None
    caller_number: str | None = None
    owner_seat: str | None = None
    owner_employee: str | None = None
    owner_group: str | None = None
    created_at: datetime
    updated_at: datetime
    sla_resolve_due: datetime | None = None
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryItem:
    """One step of an incident's history (`incident_history`)."""

    at: datetime
    actor: str
    action: str
    from_status: str | None = None
    to_status: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentDetail:
    """Everything the incident page shows. `allowed_actions` is
    `ctid.tickets.lifecycle.allowed_actions(status)`; `live_call_id` is the call still connected
    for this incident, if any (hand-to-expert then offers to transfer it)."""

    number: str
    status: str
    version: int
    channel: str
    request_type: str
    category: str | None = None
    impact: str | None = None
    urgency: str | None = None
    priority: str | None = None
    summary: str
    description: str | None = None
    caller_id: int | None = None
    caller_name: str | None = None
    caller_number: str | None = None
    caller: CallerRow | None = None
    owner_seat: str | None = None
    owner_employee: str | None = None
    owner_group: str | None = None
    created_at: datetime
    updated_at: datetime
    sla_response_due: datetime | None = None
    sla_resolve_due: datetime | None = None
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    flags: tuple[str, ...] = ()
    satisfaction: int | None = None
    satisfaction_comment: str | None = None
    allowed_actions: tuple[str, ...] = ()
    history: tuple[HistoryItem, ...] = ()
    live_call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult:
    """What a lifecycle step did. `transfer_seat`: the step asks for the live call to be moved
    to this seat (`ApplyResult.transfer`); `mails`: how many mails were queued."""

    number: str
    status: str
    version: int
    transfer_seat: str | None = None
    mails: int = 0


_RESERVED_ARGS = frozenset({"number", "action", "actor", "expected_version"})
"""`IncidentStore.apply`'s own parameters: a form field with one of these names is refused."""


def _summary(v: IncidentView) -> IncidentSummary:
    return IncidentSummary(
        number=v.number,
        status=v.status,
        summary=v.summary,
        request_type=v.request_type,
        category=v.category,
        priority=v.priority,
        caller_name=v.caller_name,
        caller_number=v.caller_number,
        owner_seat=v.owner_seat,
        owner_employee=v.owner_employee,
        owner_group=v.owner_group,
        created_at=v.created_at,
        updated_at=v.updated_at,
        sla_resolve_due=v.sla_resolve_due,
        version=v.version,
    )


@dataclass
class IncidentWorkflow:
    """`IncidentWorkflowPort` over `IncidentStore`. `live_calls()` maps the call id of every call
    still connected to its incident number (`DeskEvents.incidents`)."""

    store: IncidentStore
    directory: CallerDirectory
    live_calls: Callable[[], Mapping[str, str]]

    async def list_open(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        views = await self.store.list_open(
            owner_seat=query.seat,
            owner_group=query.group,
            statuses=query.statuses or None,
            # The store cannot filter by owner employee: read more, filter here.
            limit=1000 if query.employee else query.limit,
        )
        if query.employee:
            views = [v for v in views if v.owner_employee == query.employee][: query.limit]
        return [_summary(v) for v in views]

    async def detail(self, number: str) -> IncidentDetail | None:
        v = await self.store.get(number)
        if v is None:
            return None
        history = await self.store.history(v.number)
        caller = None
        if v.caller_id is not None:
            found = await self.directory.get(v.caller_id)
            caller = caller_row(found) if found is not None else None
        live = next((cid for cid, n in self.live_calls().items() if n == v.number), None)
        return IncidentDetail(
            number=v.number,
            status=v.status,
            version=v.version,
            channel=v.channel,
            request_type=v.request_type,
            category=v.category,
            impact=v.impact,
            urgency=v.urgency,
            priority=v.priority,
            summary=v.summary,
            description=v.description,
            caller_id=v.caller_id,
            caller_name=v.caller_name,
            caller_number=v.caller_number,
            caller=caller,
            owner_seat=v.owner_seat,
            owner_employee=v.owner_employee,
            owner_group=v.owner_group,
            created_at=v.created_at,
            updated_at=v.updated_at,
            sla_response_due=v.sla_response_due,
            sla_resolve_due=v.sla_resolve_due,
            responded_at=v.responded_at,
            resolved_at=v.resolved_at,
            closed_at=v.closed_at,
            flags=v.flags,
            satisfaction=v.satisfaction,
            satisfaction_comment=v.satisfaction_comment,
            allowed_actions=allowed_actions(v.status),  # type: ignore[arg-type]
            history=tuple(
                HistoryItem(
                    at=h.at,
                    actor=h.actor,
                    action=h.action,
                    from_status=h.from_status,
                    to_status=h.to_status,
                    detail=h.detail,
                )
                for h in history
            ),
            live_call_id=live,
        )

    async def apply(
        self,
        number: str,
        action: str,
        actor: Actor,
        *,
        expected_version: int,
        args: Mapping[str, str],
    ) -> ActionResult:
        bad = sorted(_RESERVED_ARGS.intersection(args))
        if bad:
            raise RequestRefusedError(f"unexpected field {bad[0]!r}")
        result = await self.store.apply(
            number, action, actor.employee_id, expected_version=expected_version, **args
        )
        return ActionResult(
            number=result.incident.number,
            status=result.incident.status,
            version=result.incident.version,
            transfer_seat=result.transfer.seat if result.transfer is not None else None,
            mails=len(result.mails),
        )
