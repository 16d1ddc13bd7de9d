"""The lifecycle action API (checked field by field, `FieldErrors`; a stale `expected_version` gets
a 409) and the incident's JSON. `incident_view.IncidentView` routes it and borrows `_apply` and
`_detail_json`; the open list is `incident_list`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from ctid.core.actor import (
    Actor,
)
from ctid.core.errors import (
    CtidError,
)
from ctid.tickets.actions import (
    ACTIONS,
)
from ctid.tickets.workflow import (
    ActionResult,
    IncidentDetail,
)
from ctid.web.edge import (
    Edge,
    HttpError,
    RequestContext,
    int_field,
    json_response,
    label,
    str_field,
)
from ctid.web.incident_forms import (
    ACTION_FORMS,
    ACTION_LABELS,
    INCIDENT_NUMBER,
    ROLE_ACTIONS,
    Choices,
    parse_action_args,
)
from ctid.web.ports import (
    CallControlPort,
    IncidentWorkflowPort,
)

log = structlog.get_logger(__name__)


class IncidentPages:
    """The action-API handler `IncidentView.add_routes` routes, and the step both forms use."""

    def __init__(
        self,
        edge: Edge,
        workflow: IncidentWorkflowPort | None,
        calls: CallControlPort | None,
    ) -> None:
        self._edge = edge
        self._workflow = workflow
        self._calls = calls
        cfg = edge.cfg
        self._tz: tzinfo = ZoneInfo(cfg.site.timezone)
        self._choices = Choices(
            seats=tuple(edge.seat_ids()),
            expert_seats=tuple(s.id for s in cfg.seats if s.tier == "expert"),
            groups=tuple(sorted(cfg.incidents.second_line_groups)),
        )

    def _port(self) -> IncidentWorkflowPort:
        if self._workflow is None:
            raise HttpError(404, "the incident workflow is not available")
        return self._workflow

    @staticmethod
    def _number(request: web.Request) -> str:
        number = request.match_info["number"]
        if not INCIDENT_NUMBER.match(number):
            raise HttpError(404, "no such incident")
        return number

    async def _apply(
        self,
        ctx: RequestContext,
        number: str,
        action: str,
        raw: Mapping[str, object],
        expected_version: int,
        call_id: str,
    ) -> tuple[ActionResult, str]:
        """Run the step; then move the live call if the step asks for it. Returns the result and
        a warning for the user ("" when all went through)."""
        allowed = ROLE_ACTIONS.get(ctx.actor.role, frozenset())
        if action not in ACTIONS:
            raise HttpError(400, f"unknown action {action[:40]!r}")
        if action not in allowed:
            raise HttpError(403, f"your role may not {label(action)} incidents")
        args, transfer = parse_action_args(action, raw, self._choices)
        if transfer and not call_id:
            raise HttpError(400, "call_id is required to transfer the live call")
        result = await self._port().apply(
            number, action, ctx.actor, expected_version=expected_version, args=args
        )
        log.info(
            "incident_action_from_web",
            number=result.number,
            action=action,
            employee_id=ctx.actor.employee_id,
            status=result.status,
        )
        seat = result.transfer_seat or (args.get("seat") if transfer else None)
        if not transfer or not seat:
            return result, ""
        if self._calls is None:
            return result, f"Handed to {seat}; transfer the call by hand (call control is off)."
        try:
            moved = await self._calls.transfer_to_expert(ctx.actor, call_id, seat)
        except CtidError as exc:
            log.warning("live_transfer_failed", call_id=call_id, seat=seat, error=str(exc))
            return result, f"Handed to {seat}, but the call was not transferred: {exc}"
        log.info("live_call_transferred", call_id=moved.call_id, target=moved.target)
        return result, ""

    # ------------------------------------------------------------------ JSON

    async def _action_api(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        number = self._number(request)
        data = await self._edge.read_json(request)
        if not isinstance(data, dict):
            raise HttpError(400, "expected a JSON object")
        action = data.get("action")
        if not isinstance(action, str):
            raise HttpError(400, "action is required")
        args = data.get("args", {})
        if not isinstance(args, dict):
            raise HttpError(400, "args must be an object")
        version = int_field(data, "expected_version", minimum=1)
        result, warning = await self._apply(
            ctx, number, action, args, version, str_field(data, "call_id", 64)
        )
        return json_response(
            {
                "number": result.number,
                "status": result.status,
                "version": result.version,
                "transfer_seat": result.transfer_seat,
                "mails": result.mails,
                "warning": warning or None,
            }
        )

    def _detail_json(self, d: IncidentDetail, actor: Actor) -> dict[str, Any]:
        def iso(v: Any) -> Any:
            return v.isoformat() if v is not None else None

        allowed = ROLE_ACTIONS.get(actor.role, frozenset())
        return {
            "number": d.incident.number,
            "status": d.incident.status,
            "version": d.incident.version,
            "channel": d.incident.channel,
            "request_type": d.incident.request_type,
            "category": d.incident.category,
            "impact": d.incident.impact,
            "urgency": d.incident.urgency,
            "priority": d.incident.priority,
            "summary": d.incident.summary,
            "description": d.incident.description,
            "caller_id": d.incident.caller_id,
            "caller_name": d.incident.caller_name,
            "caller_number": d.incident.caller_number,
            "owner_seat": d.incident.owner_seat,
            "owner_employee": d.incident.owner_employee,
            "owner_group": d.incident.owner_group,
            "created_at": iso(d.incident.created_at),
            "updated_at": iso(d.incident.updated_at),
            "sla_response_due": iso(d.incident.sla_response_due),
            "sla_resolve_due": iso(d.incident.sla_resolve_due),
            "responded_at": iso(d.incident.responded_at),
            "resolved_at": iso(d.incident.resolved_at),
            "closed_at": iso(d.incident.closed_at),
            "flags": list(d.incident.flags),
            "satisfaction": d.incident.satisfaction,
            "satisfaction_comment": d.incident.satisfaction_comment,
            "live_call_id": d.live_call_id,
            "actions": [
                {
                    "action": a,
                    "label": ACTION_LABELS[a],
                    "fields": [
                        {"name": f.name, "kind": f.kind, "required": f.required}
                        for f in ACTION_FORMS[a]
                        if f.kind != "live_call" or d.live_call_id
                    ],
                }
                for a in d.allowed_actions
                if a in allowed and a in ACTION_FORMS
            ],
            "history": [
                {
                    "at": iso(h.at),
                    "actor": h.actor,
                    "action": h.action,
                    "from_status": h.from_status,
                    "to_status": h.to_status,
                    "detail": {k: v for k, v in h.detail.items()},
                }
                for h in d.history
            ],
        }
