"""The open-incident list with filters and its JSON twin, and the lifecycle action API (checked
field by field, `FieldErrors`; a stale `expected_version` gets a 409). The incident page itself is
`incident_view.IncidentView`, which routes these handlers and borrows `_apply` and `_detail_json`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
from ctid.i18n import N_, Translator
from ctid.tickets.actions import (
    ACTIONS,
)
from ctid.tickets.views import IncidentView
from ctid.tickets.vocabulary import (
    CATEGORY_WORDS,
    CHANNEL_WORDS,
    LEVEL_WORDS,
    REQUEST_TYPE_WORDS,
    STATUS_WORDS,
    STATUSES,
)
from ctid.tickets.workflow import (
    ActionResult,
    IncidentDetail,
    IncidentQuery,
)
from ctid.web.edge import (
    Edge,
    HttpError,
    RequestContext,
    html_response,
    int_field,
    json_response,
    label,
    str_field,
)
from ctid.web.html import Markup, join, render, tag
from ctid.web.incident_forms import (
    ACTION_FORMS,
    ACTION_LABELS,
    INCIDENT_NUMBER,
    ROLE_ACTIONS,
    Choices,
    parse_action_args,
)
from ctid.web.middleware import translator_of
from ctid.web.pages import layout
from ctid.web.ports import (
    CallControlPort,
    IncidentWorkflowPort,
)

log = structlog.get_logger(__name__)

_WORDS: dict[str, dict[str, str]] = {
    "status": STATUS_WORDS,
    "request_type": REQUEST_TYPE_WORDS,
    "category": CATEGORY_WORDS,
    "level": LEVEL_WORDS,
    "channel": CHANNEL_WORDS,
}


def words(t: Translator, kind: str, value: str | None) -> str:
    """A vocabulary value (`in_progress`) in words (`In progress` / `处理中`)."""
    if not value:
        return ""
    known = _WORDS.get(kind, {}).get(value)
    return t.gettext(known) if known else label(value)


_LIST_HEADS = (
    N_("Incident no."),
    N_("Status"),
    N_("Priority"),
    N_("Summary"),
    N_("Caller"),
    N_("Owner"),
    N_("Opened"),
    N_("Resolve by"),
)


class IncidentPages:
    """The list and action-API handlers `IncidentView.add_routes` routes."""

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

    def _query(self, request: web.Request, actor: Actor) -> tuple[IncidentQuery, dict[str, str]]:
        q = request.query
        mine = q.get("mine", "") in ("1", "on", "true")
        seat = q.get("seat", "")
        group = q.get("group", "")
        status = q.get("status", "")
        if seat and seat not in self._choices.seats:
            raise HttpError(400, "seat must be one of " + ", ".join(self._choices.seats))
        if group and group not in self._choices.groups:
            raise HttpError(400, f"no second-line group {group[:40]!r}")
        if status and status not in STATUSES:
            raise HttpError(400, "status must be one of " + ", ".join(STATUSES))
        employee = None
        if mine:
            if actor.seat_id and not seat:
                seat = actor.seat_id
            elif not actor.seat_id:
                employee = actor.employee_id
        query = IncidentQuery(
            seat=seat or None,
            group=group or None,
            employee=employee,
            statuses=(status,) if status else (),
        )
        shown = {"mine": "1" if mine else "", "seat": seat, "group": group, "status": status}
        return query, shown

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

    # ------------------------------------------------------------------ pages

    async def _list_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        query, shown = self._query(request, ctx.actor)
        rows = await self._port().list_open(query)
        return html_response(self._render_list(ctx, rows, shown, translator_of(request)))

    # ------------------------------------------------------------------ JSON twins

    async def _list_api(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        query, _ = self._query(request, ctx.actor)
        rows = await self._port().list_open(query)
        return json_response({"incidents": [self._summary_json(r) for r in rows]})

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

    def _summary_json(self, r: IncidentView) -> dict[str, Any]:
        return {
            "number": r.number,
            "status": r.status,
            "summary": r.summary,
            "request_type": r.request_type,
            "category": r.category,
            "priority": r.priority,
            "caller_name": r.caller_name,
            "caller_number": r.caller_number,
            "owner_seat": r.owner_seat,
            "owner_employee": r.owner_employee,
            "owner_group": r.owner_group,
            "created_at": r.created_at.isoformat(),
            "updated_at": r.updated_at.isoformat(),
            "sla_resolve_due": r.sla_resolve_due.isoformat() if r.sla_resolve_due else None,
            "version": r.version,
        }

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

    # ------------------------------------------------------------------ rendering

    def _select(
        self,
        name: str,
        values: Sequence[str],
        current: str,
        blank: str | None,
        *,
        required: bool | None = None,
        shown: Callable[[str], str] = label,
    ) -> Markup:
        opts = [tag("option", blank, value="")] if blank is not None else []
        opts += [tag("option", shown(v), value=v, selected=(v == current) or None) for v in values]
        return tag("select", join(opts), name=name, required=required)

    def _render_list(
        self,
        ctx: RequestContext,
        rows: Sequence[IncidentView],
        shown: Mapping[str, str],
        t: Translator,
    ) -> Markup:
        now = self._edge.clock.utcnow()
        body = join(
            tag(
                "tr",
                join(
                    [
                        tag("td", tag("a", r.number, href=f"/incidents/{r.number}"), class_="mono"),
                        tag(
                            "td",
                            tag(
                                "span", words(t, "status", r.status), class_=f"badge st-{r.status}"
                            ),
                        ),
                        tag("td", r.priority or "–"),
                        tag("td", r.summary, class_="wrap"),
                        tag("td", r.caller_name or r.caller_number or ""),
                        tag(
                            "td",
                            " · ".join(
                                x for x in (r.owner_seat, r.owner_employee, r.owner_group) if x
                            ),
                        ),
                        tag("td", t.when(r.created_at, "short")),
                        tag(
                            "td",
                            t.when(r.sla_resolve_due, "short") if r.sla_resolve_due else "",
                            class_="overdue"
                            if r.sla_resolve_due is not None and r.sla_resolve_due < now
                            else None,
                        ),
                    ]
                ),
            )
            for r in rows
        )
        table = (
            render(
                """<table class="results" id="incident-list">
<thead><tr>$heads</tr></thead>
<tbody>$body</tbody></table>""",
                heads=join(tag("th", t.gettext(h)) for h in _LIST_HEADS),
                body=body,
            )
            if rows
            else tag("p", t.gettext("No open incident matches."), class_="muted")
        )
        filters = render(
            """<form method="get" action="/incidents" class="filters">
  <label class="check"><input type="checkbox" name="mine" value="1"$mine> $l_mine</label>
  <label>$l_seat $seat</label>
  <label>$l_group $group</label>
  <label>$l_status $status</label>
  <button type="submit">$l_filter</button>
</form>""",
            l_mine=t.gettext("Mine"),
            l_seat=t.gettext("Seat"),
            l_group=t.gettext("Group"),
            l_status=t.gettext("Status"),
            l_filter=t.gettext("Filter"),
            mine=Markup(" checked") if shown.get("mine") else "",
            seat=self._select("seat", self._choices.seats, shown.get("seat", ""), t.gettext("any")),
            group=self._select(
                "group", self._choices.groups, shown.get("group", ""), t.gettext("any")
            ),
            status=self._select(
                "status",
                STATUSES,
                shown.get("status", ""),
                t.gettext("any open"),
                shown=lambda v: words(t, "status", v),
            ),
        )
        main = render(
            """<section class="card"><h1>$title</h1>$filters$table</section>""",
            title=t.gettext("Open incidents"),
            filters=filters,
            table=table,
        )
        return layout(
            t=t,
            site=self._edge.site(),
            title=t.gettext("Incidents"),
            main=main,
            actor=ctx.actor,
            csrf=ctx.session.csrf_token,
            main_class="page wide",
        )
