"""Frozen read models the tickets store hands out (ORM rows never leave the store): incidents,
their history, callers and their phones, callbacks, and the directory import report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ctid.tickets.lifecycle import (
    TransferLiveCall,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentView:
    id: int
    number: str
    status: str
    channel: str
    request_type: str
    category: str | None
    impact: str | None
    urgency: str | None
    priority: str | None
    summary: str
    description: str | None
    caller_id: int | None
    caller_number: str | None
    caller_name: str | None
    owner_seat: str | None
    owner_employee: str | None
    owner_group: str | None
    sla_response_due: datetime | None
    sla_resolve_due: datetime | None
    responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    flags: tuple[str, ...]
    satisfaction: int | None
    satisfaction_comment: str | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One line of the open-incident list: only the columns the list shows (read as columns,
    not as ORM entities; `ctid.tickets.incident_list` selects them in this field order)."""

    id: int
    number: str
    status: str
    request_type: str
    category: str | None
    priority: str | None
    summary: str
    caller_name: str | None
    caller_number: str | None
    owner_seat: str | None
    owner_employee: str | None
    owner_group: str | None
    created_at: datetime
    updated_at: datetime
    sla_resolve_due: datetime | None
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentPage:
    """A page of the open-incident list, newest first. `newer`/`older`: the incident number to
    page from (`after=`/`before=`), None when there is no such page."""

    rows: tuple[IncidentRow, ...]
    newer: str | None = None
    older: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryView:
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    detail: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What `IncidentStore.apply` did: the incident afterwards, the history row written (None for
    a no-op), the outbox keys of the mails enqueued, and a live-call transfer the app must do."""

    incident: IncidentView
    entry: HistoryView | None
    mails: tuple[str, ...] = ()
    transfer: TransferLiveCall | None = None


@dataclass(frozen=True, slots=True)
class PhoneView:
    number: str
    """Normalised: E.164 (`+8613800138000`) or `ext:NNNN`."""
    raw: str
    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerView:
    id: int
    name: str
    employee_id: str | None
    department: str | None
    office_location: str | None
    email: str | None
    vip: bool
    notes: str | None
    phones: tuple[PhoneView, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackView:
    id: int
    caller_number: str
    caller_id: int | None
    reason: str
    call_id: str | None
    incident_id: int | None
    requested_at: datetime
    status: str
    attempts: int
    outcome: str | None
    worked_by: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One line of a CSV import that was refused (or accepted with a warning)."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: tuple[RowProblem, ...] = ()
    warnings: tuple[RowProblem, ...] = ()
    encoding: str = "utf-8"

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.unchanged
