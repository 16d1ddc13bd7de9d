"""The incident workflow pages: the open list with filters, the incident with its history and the
lifecycle actions its status allows (plain forms carrying CSRF and `expected_version`, so a stale
page gets a 409), and their JSON twins."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from ctid.core.actor import (
    Actor,
)
from ctid.core.errors import (
    CtidError,
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
    TransitionError,
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
    FieldErrors,
    FieldProblem,
    HttpError,
    RequestContext,
    form_fields,
    html_response,
    int_field,
    json_response,
    label,
    see_other,
    str_field,
)
from ctid.web.html import Markup, join, render, tag
from ctid.web.incident_forms import (
    ACTION_FORMS,
    ACTION_LABELS,
    INCIDENT_NUMBER,
    ROLE_ACTIONS,
    ActionField,
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


@dataclass(frozen=True, slots=True)
class _Failed:
    """A submitted action form that was refused field by field: shown again, open, as sent."""

    action: str
    sent: Mapping[str, str]
    problems: Mapping[str, FieldProblem]


_DETAIL_WORDS: dict[str, str] = {
    "channel": N_("Channel"),
    **{f.name: f.label for fields in ACTION_FORMS.values() for f in fields},
}
"""The history's detail keys in words: the action forms' own field labels."""
_HISTORY_ACTIONS = {"create": N_("Recorded"), "update": N_("Updated")}
"""History steps that are not lifecycle actions."""


class IncidentPages:
    """Routes for `/incidents*` and `/api/incidents/{number}*`."""

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

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/incidents", self._list_page)
        router.add_get("/incidents/{number}", self._detail_page)
        router.add_post("/incidents/{number}/actions", self._action_form)
        router.add_get("/api/incidents", self._list_api)
        router.add_get("/api/incidents/{number}", self._detail_api)
        router.add_post("/api/incidents/{number}/actions", self._action_api)

    # ------------------------------------------------------------------ shared

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

    async def _detail(self, number: str) -> IncidentDetail:
        found = await self._port().detail(number)
        if found is None:
            raise HttpError(404, f"no incident {number}")
        return found

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

    async def _detail_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        number = self._number(request)
        detail = await self._detail(number)
        done = request.query.get("done", "")
        t = translator_of(request)
        note = (
            t.gettext("Done: {action}.", action=t.gettext(ACTION_LABELS[done]))
            if done in ACTION_LABELS
            else ""
        )
        return html_response(self._render_detail(ctx, detail, t, notice=note))

    async def _action_form(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        number = self._number(request)
        form = await form_fields(request)
        action = form.get("action", "")
        t = translator_of(request)
        try:
            version = int_field(form, "expected_version", minimum=1)
            result, warning = await self._apply(
                ctx, number, action, form, version, str_field(form, "call_id", 64)
            )
        except FieldErrors as exc:
            detail = await self._detail(number)
            failed = _Failed(action, form, exc.problems)
            return html_response(
                self._render_detail(ctx, detail, t, error=t.gettext(exc.message), failed=failed),
                400,
            )
        except HttpError as exc:
            if exc.status in (401, 403, 404):
                raise
            return await self._detail_with_error(ctx, number, exc.status, exc.message, t)
        except (RequestRefusedError, StateConflictError, TransitionError) as exc:
            status = 400 if isinstance(exc, RequestRefusedError) else 409
            return await self._detail_with_error(ctx, number, status, str(exc), t)
        if warning:
            detail = await self._detail(result.number)
            return html_response(self._render_detail(ctx, detail, t, warning=warning))
        return see_other(f"/incidents/{result.number}?done={action}")

    async def _detail_with_error(
        self, ctx: RequestContext, number: str, status: int, message: str, t: Translator
    ) -> web.Response:
        # The page is rendered afresh: after a 409 the agent sees what changed, and the forms
        # carry the current version.
        try:
            detail = await self._detail(number)
        except (HttpError, RecordMissingError):
            raise HttpError(status, message) from None
        message = t.gettext(message)
        if status == 409:
            message += " " + t.gettext("The page now shows the incident as it is.")
        return html_response(self._render_detail(ctx, detail, t, error=message), status)

    # ------------------------------------------------------------------ JSON twins

    async def _list_api(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        query, _ = self._query(request, ctx.actor)
        rows = await self._port().list_open(query)
        return json_response({"incidents": [self._summary_json(r) for r in rows]})

    async def _detail_api(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        detail = await self._detail(self._number(request))
        return json_response(self._detail_json(detail, ctx.actor))

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

    def _field(
        self,
        f: ActionField,
        d: IncidentDetail,
        t: Translator,
        sent: str | None = None,
        problem: FieldProblem | None = None,
    ) -> Markup:
        required = f.required or None
        current = {
            "request_type": d.incident.request_type,
            "category": d.incident.category or "",
            "impact": d.incident.impact or "",
            "urgency": d.incident.urgency or "",
        }.get(f.name, "")
        if sent is not None:
            current = sent
        invalid = "true" if problem else None
        match f.kind:
            case "text":
                control = tag(
                    "textarea",
                    current,
                    name=f.name,
                    rows=3,
                    maxlength=f.limit,
                    required=required,
                    aria_invalid=invalid,
                )
            case "line":
                control = tag(
                    "input",
                    name=f.name,
                    value=current or None,
                    maxlength=f.limit,
                    required=required,
                    aria_invalid=invalid,
                )
            case "email":
                control = tag(
                    "input",
                    name=f.name,
                    type="email",
                    value=current or None,
                    maxlength=f.limit,
                    aria_invalid=invalid,
                )
            case "live_call":
                if not d.live_call_id:
                    return Markup("")
                return render(
                    """<label class="check"><input type="checkbox" name="call_live" value="true" checked> $label</label>
<input type="hidden" name="call_id" value="$call">""",
                    label=t.gettext(f.label),
                    call=d.live_call_id,
                )
            case _:
                options = self._choices.options(f.kind) or ()
                control = self._select(
                    f.name,
                    options,
                    current,
                    t.gettext("choose…") if f.required else "—",
                    required=required,
                    shown=lambda v: words(t, f.kind, v),
                )
        mark = (
            render('<abbr class="req" title="$r">*</abbr>', r=t.gettext("required"))
            if f.required
            else ""
        )
        return render(
            "<label><span>$label $mark</span> $control $problem</label>",
            label=t.gettext(f.label),
            mark=mark,
            control=control,
            problem=tag("span", problem.words(t), class_="field-error", data_field=f.name)
            if problem
            else "",
        )

    def _action_forms(
        self, ctx: RequestContext, d: IncidentDetail, t: Translator, failed: _Failed | None
    ) -> Markup:
        allowed = ROLE_ACTIONS.get(ctx.actor.role, frozenset())
        actions = [a for a in d.allowed_actions if a in allowed and a in ACTION_FORMS]
        if not actions:
            return tag("p", t.gettext("No action for you in this status."), class_="muted")
        plain: list[Markup] = []
        detailed: list[Markup] = []
        for a in actions:
            hidden = render(
                """<input type="hidden" name="csrf_token" value="$csrf">
<input type="hidden" name="expected_version" value="$version">
<input type="hidden" name="action" value="$action">""",
                csrf=ctx.session.csrf_token,
                version=d.incident.version,
                action=a,
            )
            fields = ACTION_FORMS[a]
            if not fields:
                plain.append(
                    render(
                        """<form method="post" action="/incidents/$number/actions" class="inline" data-action="$action">$hidden<button type="submit">$label</button></form>""",
                        number=d.incident.number,
                        action=a,
                        hidden=hidden,
                        label=t.gettext(ACTION_LABELS[a]),
                    )
                )
                continue
            mine = failed if failed is not None and failed.action == a else None
            detailed.append(
                render(
                    """<details class="action" data-action="$action"$open><summary>$label…</summary>
<form method="post" action="/incidents/$number/actions" class="action-form" data-action="$action">$hidden
$fields
<button type="submit">$label</button></form></details>""",
                    number=d.incident.number,
                    action=a,
                    hidden=hidden,
                    label=t.gettext(ACTION_LABELS[a]),
                    open=Markup(" open") if mine else "",
                    fields=join(
                        (
                            self._field(
                                f,
                                d,
                                t,
                                mine.sent.get(f.name) if mine else None,
                                mine.problems.get(f.name) if mine else None,
                            )
                            for f in fields
                        ),
                        "\n",
                    ),
                )
            )
        return render(
            """<div class="action-buttons">$plain</div>$detailed""",
            plain=join(plain, " "),
            detailed=join(detailed, "\n"),
        )

    def _history(self, d: IncidentDetail, t: Translator) -> Markup:
        items = []
        for h in d.history:
            move = ""
            if h.to_status and h.from_status != h.to_status:
                before = words(t, "status", h.from_status) or "–"
                move = f"{before} → {words(t, 'status', h.to_status)}"
            detail = "; ".join(
                f"{t.gettext(_DETAIL_WORDS[k]) if k in _DETAIL_WORDS else label(k)}: "
                f"{words(t, 'channel', str(v)) if k == 'channel' else v}"
                for k, v in h.detail.items()
                if v not in (None, "")
            )
            items.append(
                render(
                    """<li><span class="muted">$at</span> <strong>$action</strong> $by <span class="move">$move</span><div class="wrap">$detail</div></li>""",
                    at=t.when(h.at),
                    action=t.gettext(_HISTORY_ACTIONS.get(h.action) or ACTION_LABELS[h.action])
                    if h.action in ACTION_LABELS or h.action in _HISTORY_ACTIONS
                    else label(h.action),
                    by=t.gettext("by {actor}", actor=h.actor),
                    move=move,
                    detail=detail,
                )
            )
        if not items:
            return tag("p", t.gettext("No history."), class_="muted")
        return tag("ol", join(items, "\n"), class_="timeline", id="history")

    def _render_detail(
        self,
        ctx: RequestContext,
        d: IncidentDetail,
        t: Translator,
        *,
        error: str = "",
        warning: str = "",
        notice: str = "",
        failed: _Failed | None = None,
    ) -> Markup:
        caller = d.caller

        def at(v: datetime | None) -> str:
            return t.when(v, "short") if v is not None else ""

        owner = " · ".join(
            x
            for x in (d.incident.owner_seat, d.incident.owner_employee, d.incident.owner_group)
            if x
        )
        impact = words(t, "level", d.incident.impact) or "–"
        urgency = words(t, "level", d.incident.urgency) or "–"
        facts: list[tuple[str, object]] = [
            (N_("Caller"), d.incident.caller_name or (caller.name if caller else "")),
            (N_("Phone"), d.incident.caller_number or (", ".join(caller.phones) if caller else "")),
            (N_("Department"), caller.department if caller else ""),
            (N_("Office"), caller.office if caller else ""),
            (N_("Request type"), words(t, "request_type", d.incident.request_type)),
            (N_("Category"), words(t, "category", d.incident.category)),
            (N_("Impact × urgency"), f"{impact} × {urgency}"),
            (N_("Owner"), owner),
            (N_("Channel"), words(t, "channel", d.incident.channel)),
            (N_("Opened"), at(d.incident.created_at)),
            (N_("Last change"), at(d.incident.updated_at)),
            (N_("Respond by"), at(d.incident.sla_response_due)),
            (N_("Resolve by"), at(d.incident.sla_resolve_due)),
            (N_("Resolved"), at(d.incident.resolved_at)),
            (N_("Closed"), at(d.incident.closed_at)),
            (N_("Flags"), ", ".join(d.incident.flags)),
            (
                N_("Satisfaction"),
                f"{d.incident.satisfaction}/5 {d.incident.satisfaction_comment or ''}".strip()
                if d.incident.satisfaction
                else "",
            ),
        ]
        dl = join(
            join([tag("dt", t.gettext(k)), tag("dd", v)])
            for k, v in facts
            if v not in ("", None, "– × –")
        )
        banners = join(
            [
                tag("p", error, class_="banner warn", role="alert", id="action-error")
                if error
                else "",
                tag("p", warning, class_="banner warn", role="alert") if warning else "",
                tag("p", notice, class_="banner info", role="status") if notice else "",
            ]
        )
        main = render(
            """<section class="card">
  <div class="inc-head">
    <h1 class="mono" id="incident-number">$number</h1>
    <span class="badge st-$status" id="incident-status">$status_label</span>
    <span class="badge">$priority</span>
    <span class="muted">$version</span>
  </div>
  $banners
  <h2 class="summary" id="incident-summary">$summary</h2>
  <dl class="facts">$dl</dl>
  <h3>$l_description</h3>
  <div class="prewrap" id="incident-description">$description</div>
</section>
<section class="card" id="actions"><h2>$l_actions</h2>$actions</section>
<section class="card"><h2>$l_history</h2>$history</section>
<p><a href="/incidents">← $l_open</a></p>""",
            l_description=t.gettext("Description"),
            l_actions=t.gettext("Actions"),
            l_history=t.gettext("History"),
            l_open=t.gettext("Open incidents"),
            number=d.incident.number,
            status=d.incident.status,
            status_label=words(t, "status", d.incident.status),
            priority=d.incident.priority or t.gettext("no priority"),
            version=t.gettext("version {n}", n=d.incident.version),
            banners=banners,
            summary=d.incident.summary,
            dl=dl,
            description=d.incident.description or "—",
            actions=self._action_forms(ctx, d, t, failed),
            history=self._history(d, t),
        )
        return layout(
            t=t,
            site=self._edge.site(),
            title=d.incident.number,
            main=main,
            actor=ctx.actor,
            csrf=ctx.session.csrf_token,
        )
