"""An incident's SLA clocks (response and resolution, paused while suspended) from its view and
its history: a pure function over what the store hands out (`ctid.core.sla` does the sums)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ctid.core.sla import (
    RESOLUTION_PAUSES,
    RESPONSE_PAUSES,
    SlaClock,
    StatusChange,
    sla_clock,
)
from ctid.tickets.views import HistoryView, IncidentView


@dataclass(frozen=True, slots=True)
class IncidentClocks:
    response: SlaClock
    resolution: SlaClock


def status_changes(history: Sequence[HistoryView]) -> list[StatusChange]:
    """The status the incident entered at each history entry that changed or set it."""
    return [StatusChange(h.at, h.to_status) for h in history if h.to_status is not None]


def incident_clocks(
    incident: IncidentView, history: Sequence[HistoryView], now: datetime
) -> IncidentClocks:
    """Both clocks of `incident` at `now`. The budgets are what `prioritize` set (due − created),
    so a later change to the SLA configuration does not rewrite old incidents."""
    changes = status_changes(history)
    created = incident.created_at

    response = sla_clock(
        created_at=created,
        budget=None if incident.sla_response_due is None else incident.sla_response_due - created,
        changes=changes,
        stopped_at=incident.responded_at,
        now=now,
        pauses=RESPONSE_PAUSES,
    )
    resolution = sla_clock(
        created_at=created,
        budget=None if incident.sla_resolve_due is None else incident.sla_resolve_due - created,
        changes=changes,
        stopped_at=incident.resolved_at,
        now=now,
        pauses=RESOLUTION_PAUSES,
    )
    return IncidentClocks(response=response, resolution=resolution)
