"""The incident lifecycle as the web drives it (`IncidentWorkflow`: open list, detail with history,
one lifecycle step), with its view types."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ctid.core.actor import Actor
from ctid.core.errors import RequestRefusedError
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.forms import CallerRow, caller_row
from ctid.tickets.incident_list import PAGE_ROWS
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.lifecycle import (
    allowed_actions,
)
from ctid.tickets.views import HistoryView, IncidentPage, IncidentView


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentQuery:
    """Filters of the open-incident list (every given filter must match) and which page."""

    seat: str | None = None
    group: str | None = None
    employee: str | None = None
    """Owned by this employee ID (`owner_employee`)."""
    statuses: tuple[str, ...] = ()
    """Empty: every status that is not resolved or closed."""
    before: str | None = None
    """The page just older than this incident number (its `older` link)."""
    after: str | None = None
    """The page just newer than this incident number (its `newer` link)."""
    limit: int = PAGE_ROWS


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentDetail:
    """Everything the incident page shows: the incident, its directory caller, its history (oldest
    first), `allowed_actions` (`ctid.tickets.lifecycle.allowed_actions(status)`), and the call
    still connected for it, if any (hand-to-expert then offers to transfer it)."""

    incident: IncidentView
    caller: CallerRow | None = None
    history: tuple[HistoryView, ...] = ()
    allowed_actions: tuple[str, ...] = ()
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


@dataclass
class IncidentWorkflow:
    """`IncidentWorkflowPort` over `IncidentStore`. `live_calls()` maps the call id of every call
    still connected to its incident number (`DeskEvents.incidents`)."""

    store: IncidentStore
    directory: CallerDirectory
    live_calls: Callable[[], Mapping[str, str]]

    async def list_open(self, query: IncidentQuery) -> IncidentPage:
        return await self.store.listing.page(
            owner_seat=query.seat,
            owner_group=query.group,
            owner_employee=query.employee,
            statuses=query.statuses or None,
            before=query.before,
            after=query.after,
            limit=query.limit,
        )

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
            incident=v,
            caller=caller,
            history=tuple(history),
            allowed_actions=allowed_actions(v.status),  # type: ignore[arg-type]
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
