"""Attaching a call to one of the caller's open incidents from the pop (`CallAttach`): the
timeline records the contact and withdraws the automatic duplicate, the intake stops opening one,
and the pop is told the call's incident number."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ctid.core.actor import Actor
from ctid.core.calls import IncidentOpened
from ctid.core.ids import CallId
from ctid.tickets.intake import CallIntake
from ctid.tickets.timeline import AttachResult, IncidentTimeline

log = structlog.get_logger(__name__)


@dataclass
class CallAttach:
    """`POST /api/calls/{call_id}/attach` behind the web's `CallAttachPort`."""

    timeline: IncidentTimeline
    intake: CallIntake
    tell: Callable[[IncidentOpened], None]

    async def attach(self, call_id: str, number: str, actor: Actor) -> AttachResult:
        result = await self.timeline.attach_call(
            call_id, number, actor.employee_id, caller_number=self.intake.caller_number(call_id)
        )
        self.intake.note_attached(call_id, result.number)
        # The pop (ringing or talking) now saves into this incident.
        self.tell(IncidentOpened(CallId(call_id), result.number))
        return result
