"""The incident page that leads (state, SLA clocks, the steps legal now, timeline, note form) and
its JSON twin, with their action and note posts. Over 700 lines because the page's parts (panel,
forms, timeline, facts) share one render state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from ctid.core.errors import RequestRefusedError, StateConflictError, TransitionError
from ctid.core.sla import SlaClock
from ctid.i18n import N_, Translator
from ctid.tickets.kb import ArticleView
from ctid.tickets.lifecycle import IncidentState, next_actions
from ctid.tickets.sla import IncidentClocks, incident_clocks
from ctid.tickets.timeline import TimelineEntry
from ctid.tickets.workflow import IncidentDetail
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
    see_other,
    str_field,
)
from ctid.web.html import Markup, join, render, tag
from ctid.web.incident_forms import ACTION_FORMS, INCIDENT_NUMBER, ROLE_ACTIONS, ActionField
from ctid.web.incident_list import IncidentListPages
from ctid.web.incident_pages import IncidentPages
from ctid.web.pages import layout
from ctid.web.ports import CallControlPort, IncidentWorkflowPort
from ctid.web.record_common import entry_json, iso, vocab, words_of
from ctid.web.record_ports import KnowledgePort, RecordPorts, TimelinePort

log = structlog.get_logger(__name__)

ACTION_WORDS: dict[str, str] = {
    "start": N_("Take it"),
    "classify": N_("Classify"),
    "prioritize": N_("Set the priority"),
    "resolve_first_line": N_("Resolve at first line"),
    "hand_to_expert": N_("Hand to an expert"),
    "dispatch": N_("Dispatch to second line"),
    "accept": N_("Accept for second line"),
    "reject": N_("Reject for second line"),
    "reassign": N_("Reassign"),
    "escalate": N_("Escalate"),
    "suspend": N_("Suspend"),
    "resume": N_("Resume"),
    "resolve": N_("Resolve"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
    "flag": N_("Flag"),
    "rate": N_("Satisfaction recorded"),
}
EVENT_WORDS: dict[str, str] = {
    "create": N_("Incident opened"),
    "merge": N_("Withdrawn as a duplicate"),
    "attach_call": N_("Call attached"),
    "cite_article": N_("Knowledge article cited"),
    "update": N_("Details changed"),
    "internal": N_("Internal note"),
    "caller": N_("Note to the caller"),
    "call": N_("Call"),
    "status_query": N_("Status asked in the phone menu"),
}
FIELD_WORDS: dict[str, str] = {
    "request_type": N_("Request type"),
    "category": N_("Category"),
    "impact": N_("Impact"),
    "urgency": N_("Urgency"),
    "resolution": N_("Resolution"),
    "seat": N_("Seat"),
    "employee": N_("Employee ID (optional)"),
    "call_live": N_("The caller is on the line: transfer the call"),
    "group": N_("Second-line group"),
    "assignee_email": N_("Assignee e-mail (optional)"),
    "note": N_("Note for the engineer"),
    "reason": N_("Reason"),
    "flag": N_("Flag"),
    "score": N_("Score"),
    "comment": N_("Comment"),
}
CLOCK_WORDS: dict[str, str] = {
    "none": N_("no target until the priority is set"),
    "running": N_("{left} left, due {due}"),
    "paused": N_("paused while suspended, {left} left"),
    "overdue": N_("overdue by {late}"),
    "met": N_("met ({used} of {budget})"),
    "breached": N_("breached ({used} of {budget})"),
}


def _state(d: IncidentDetail) -> IncidentState:
    v = d.incident
    return IncidentState(
        number=v.number,
        status=v.status,  # type: ignore[arg-type]
        request_type=v.request_type,  # type: ignore[arg-type]
        category=v.category,  # type: ignore[arg-type]
        impact=v.impact,  # type: ignore[arg-type]
        urgency=v.urgency,  # type: ignore[arg-type]
        priority=v.priority,
        owner_seat=v.owner_seat,
        owner_group=v.owner_group,
        created_at=v.created_at,
        flags=v.flags,
        version=v.version,
    )


def clock_json(c: SlaClock) -> dict[str, Any]:
    return {
        "state": c.state,
        "budget_s": c.budget_s,
        "used_s": round(c.used_s, 1),
        "remaining_s": None if c.remaining_s is None else round(c.remaining_s, 1),
        "due_at": iso(c.due_at),
        "stopped_at": iso(c.stopped_at),
    }


class IncidentView:
    """Routes for `/incidents/{number}` (page, actions, notes) and `/api/incidents/{number}`,
    and the open list's (`incident_list.IncidentListPages`)."""

    def __init__(
        self,
        edge: Edge,
        workflow: IncidentWorkflowPort | None,
        calls: CallControlPort | None,
        records: RecordPorts,
    ) -> None:
        self._edge = edge
        self._workflow = workflow
        self._records = records
        self._old = IncidentPages(edge, workflow, calls)
        self._list = IncidentListPages(edge, workflow, self._old._choices)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/incidents", self._list.list_page)
        router.add_get("/api/incidents", self._list.list_api)
        router.add_get("/incidents/{number}", self._page)
        router.add_post("/incidents/{number}/actions", self._action)
        router.add_post("/incidents/{number}/notes", self._note)
        router.add_get("/api/incidents/{number}", self._api)
        router.add_post("/api/incidents/{number}/actions", self._old._action_api)

    # ------------------------------------------------------------------ data

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

    async def _detail(self, number: str) -> IncidentDetail:
        found = await self._port().detail(number)
        if found is None:
            raise HttpError(404, f"no incident {number}")
        return found

    async def _timeline(self, d: IncidentDetail) -> list[TimelineEntry]:
        port: TimelinePort | None = self._records.timeline
        if port is not None:
            return await port.timeline(d.incident.number)
        # Without the timeline service: the lifecycle history alone.
        return [
            TimelineEntry(
                at=h.at,
                kind="lifecycle",
                what=h.action,
                actor=h.actor,
                detail={**h.detail, "from_status": h.from_status, "to_status": h.to_status},
            )
            for h in d.history
        ]

    def _clocks(self, d: IncidentDetail) -> IncidentClocks:
        return incident_clocks(d.incident, d.history, self._edge.clock.utcnow())

    def _actions(self, ctx: RequestContext, d: IncidentDetail) -> list[str]:
        allowed = ROLE_ACTIONS.get(ctx.actor.role, frozenset())
        return [a for a in next_actions(_state(d), staff=True) if a in allowed]

    # ------------------------------------------------------------------ handlers

    async def _page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        t = words_of(request, self._edge.cfg)
        d = await self._detail(self._number(request))
        done = request.query.get("done", "")
        notice = ""
        if done in ACTION_WORDS:
            notice = t.gettext("Done: {action}.", action=t.gettext(ACTION_WORDS[done]))
        elif done == "note":
            notice = t.gettext("Note added.")
        return html_response(
            await self._render(
                ctx,
                t,
                d,
                notice=notice,
                chosen=request.query.get("act", ""),
                kb_query=request.query.get("kb_q", "")[:200],
            )
        )

    async def _action(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        t = words_of(request, self._edge.cfg)
        number = self._number(request)
        form = await form_fields(request)
        action = form.get("action", "")
        try:
            version = int_field(form, "expected_version", minimum=1)
            result, warning = await self._old._apply(
                ctx, number, action, form, version, str_field(form, "call_id", 64)
            )
        except FieldErrors as exc:
            # Refused field by field: every problem is shown at once, each next to its field.
            return await self._again(
                ctx, t, number, 400, t.gettext(exc.message), form, problems=exc.problems
            )
        except HttpError as exc:
            if exc.status in (401, 403, 404):
                raise
            return await self._again(ctx, t, number, exc.status, exc.message, form)
        except (RequestRefusedError, StateConflictError, TransitionError) as exc:
            status = 400 if isinstance(exc, RequestRefusedError) else 409
            return await self._again(ctx, t, number, status, str(exc), form)
        article = form.get("article_id", "")
        if action == "resolve_first_line" and article.isdigit() and self._records.kb:
            await self._records.kb.cite(result.number, int(article), ctx.actor.employee_id)
        if warning:
            d = await self._detail(result.number)
            return html_response(await self._render(ctx, t, d, warning=warning))
        return see_other(f"/incidents/{result.number}?done={action}")

    async def _note(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "agent", "supervisor")
        t = words_of(request, self._edge.cfg)
        number = self._number(request)
        form = await form_fields(request)
        port = self._records.timeline
        if port is None:
            raise HttpError(404, "notes are not available")
        kind = form.get("kind", "internal")
        try:
            await port.add_note(number, ctx.actor.employee_id, form.get("body", ""), kind=kind)
        except RequestRefusedError as exc:
            return await self._again(ctx, t, number, 400, str(exc), form)
        return see_other(f"/incidents/{number}?done=note#timeline")

    async def _again(
        self,
        ctx: RequestContext,
        t: Translator,
        number: str,
        status: int,
        message: str,
        form: Mapping[str, str],
        *,
        problems: Mapping[str, FieldProblem] | None = None,
    ) -> web.Response:
        """The page as it is now, the refusal on top, the form as it was typed (each field's
        problem next to it) and, after a conflict, what others did since the page was loaded."""
        d = await self._detail(number)
        since = None
        if status == 409:
            message = t.gettext(
                "Not saved: {reason} What you typed is kept below; check what changed.",
                reason=message,
            )
            try:
                since = datetime.fromisoformat(form.get("seen_at", ""))
            except ValueError:
                since = None
        return html_response(
            await self._render(
                ctx,
                t,
                d,
                error=message,
                typed=form,
                chosen=form.get("action", ""),
                since=since,
                problems=problems or {},
            ),
            status,
        )

    async def _api(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        number = self._number(request)
        d = await self._detail(number)
        data = self._old._detail_json(d, ctx.actor)
        clocks = self._clocks(d)
        timeline = await self._timeline(d)
        contacts = (
            await self._records.timeline.contact_count(d.incident.number)
            if self._records.timeline
            else None
        )
        data.update(
            next_actions=self._actions(ctx, d),
            clocks={
                "response": clock_json(clocks.response),
                "resolution": clock_json(clocks.resolution),
            },
            timeline=[entry_json(e) for e in timeline],
            notes=[entry_json(e) for e in timeline if e.kind == "note"],
            contacts=[entry_json(e) for e in timeline if e.kind in ("contact", "call")],
            lifecycle=[entry_json(e) for e in timeline if e.kind == "lifecycle"],
            contact_count=contacts,
        )
        return json_response(data)

    # ------------------------------------------------------------------ rendering

    def _clock_words(self, t: Translator, c: SlaClock) -> str:
        dur = t.duration
        due = t.when(c.due_at) if c.due_at else ""
        left = dur(max(0.0, c.remaining_s or 0.0))
        late = dur(max(0.0, -(c.remaining_s or 0.0)))
        budget = dur(c.budget_s or 0.0)
        return t.gettext(
            CLOCK_WORDS[c.state], left=left, due=due, late=late, used=dur(c.used_s), budget=budget
        )

    def _select(
        self,
        t: Translator,
        name: str,
        kind: str,
        values: Sequence[str],
        current: str,
        required: bool,
    ) -> Markup:
        opts = [tag("option", t.gettext("choose…") if required else "—", value="")]
        opts += [
            tag(
                "option",
                vocab(t, kind, v) if kind else v,
                value=v,
                selected=(v == current) or None,
            )
            for v in values
        ]
        return tag("select", join(opts), name=name, required=required or None)

    def _field(
        self,
        t: Translator,
        f: ActionField,
        d: IncidentDetail,
        typed: Mapping[str, str],
        problem: FieldProblem | None,
    ) -> Markup:
        required = f.required or None
        invalid = "true" if problem else None
        current = typed.get(f.name) or {
            "request_type": d.incident.request_type,
            "category": d.incident.category or "",
            "impact": d.incident.impact or "",
            "urgency": d.incident.urgency or "",
        }.get(f.name, "")
        words = t.gettext(FIELD_WORDS.get(f.name, f.label))
        choices = self._old._choices
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
                    value=current,
                    maxlength=f.limit,
                    required=required,
                    aria_invalid=invalid,
                )
            case "email":
                control = tag(
                    "input",
                    name=f.name,
                    type="email",
                    value=current,
                    maxlength=f.limit,
                    aria_invalid=invalid,
                )
            case "live_call":
                if not d.live_call_id:
                    return Markup("")
                return render(
                    """<label class="check"><input type="checkbox" name="call_live" value="true" checked> $label</label>
<input type="hidden" name="call_id" value="$call">""",
                    label=words,
                    call=d.live_call_id,
                )
            case "request_type" | "category" | "level":
                kind = "level" if f.kind == "level" else f.kind
                control = self._select(
                    t, f.name, kind, choices.options(f.kind) or (), current, f.required
                )
            case _:
                control = self._select(
                    t, f.name, "", choices.options(f.kind) or (), current, f.required
                )
        mark = (
            render('<abbr class="req" title="$r">*</abbr>', r=t.gettext("required"))
            if f.required
            else ""
        )
        return render(
            "<label><span>$label $mark</span> $control $problem</label>",
            label=words,
            mark=mark,
            control=control,
            problem=tag("span", problem.words(t), class_="field-error", data_field=f.name)
            if problem
            else "",
        )

    async def _cite_box(
        self, t: Translator, d: IncidentDetail, kb_query: str, typed: Mapping[str, str]
    ) -> Markup:
        kb: KnowledgePort | None = self._records.kb
        if kb is None:
            return Markup("")
        found: list[ArticleView] = await kb.search(
            kb_query or "", category=None if kb_query else d.incident.category, limit=8
        )
        chosen = typed.get("article_id", "")
        opts = [tag("option", t.gettext("no article"), value="")] + [
            tag("option", a.title, value=str(a.id), selected=(str(a.id) == chosen) or None)
            for a in found
        ]
        return render(
            """<label>$label $select</label>""",
            label=t.gettext("Knowledge article used"),
            select=tag("select", join(opts), name="article_id", id="cite-article"),
        )

    async def _action_panel(
        self,
        ctx: RequestContext,
        t: Translator,
        d: IncidentDetail,
        chosen: str,
        typed: Mapping[str, str],
        kb_query: str,
        problems: Mapping[str, FieldProblem],
    ) -> Markup:
        """Only the steps legal now for this user, the expected next one first; one form shown at
        a time (the others as links), the words typed for a step that is gone kept above it, and
        resolving at first line offers to cite a knowledge article (`_cite_box`)."""
        actions = self._actions(ctx, d)
        missing = [
            t.gettext(w)
            for w, v in (
                (N_("a category"), d.incident.category),
                (N_("a priority"), d.incident.priority),
            )
            if not v
        ]
        hint = Markup("")
        if missing and d.incident.status not in ("resolved", "closed"):
            hint = tag(
                "p",
                t.gettext("Resolving needs {what} first.", what=t.gettext(" and ").join(missing)),
                class_="muted",
                id="resolve-needs",
            )
        if not actions:
            return join(
                [tag("p", t.gettext("Nothing for you to do in this state."), class_="muted"), hint]
            )
        current = chosen if chosen in actions else actions[0]
        kept = Markup("")
        texts = [
            typed[f.name]
            for f in ACTION_FORMS.get(chosen, ())
            if f.kind in ("text", "line") and typed.get(f.name)
        ]
        if (texts or problems) and chosen != current:
            # The step typed for is not possible any more: keep the words where they can be copied,
            # and say what was wrong with them, field by field.
            wrong = [
                render(
                    "<li>$field: $problem</li>",
                    field=t.gettext(FIELD_WORDS.get(f.name, f.label)),
                    problem=tag("span", p.words(t), class_="field-error", data_field=f.name),
                )
                for f in ACTION_FORMS.get(chosen, ())
                if (p := problems.get(f.name)) is not None
            ]
            kept = render(
                """<div class="banner warn" id="typed"><p>$h</p><div class="prewrap">$text</div>$wrong</div>""",
                h=t.gettext("What you typed:"),
                text="\n".join(texts),
                wrong=tag("ul", join(wrong)) if wrong else "",
            )
        shown_problems = problems if chosen == current else {}
        number = d.incident.number
        fields = ACTION_FORMS[current]
        extra = Markup("")
        search = Markup("")
        if current == "resolve_first_line":
            extra = await self._cite_box(t, d, kb_query, typed)
            search = render(
                """<form method="get" action="/incidents/$number#actions" class="search" id="kb-search">
<input type="hidden" name="act" value="resolve_first_line">
<input name="kb_q" value="$q" placeholder="$ph" maxlength="200">
<button type="submit" class="secondary">$find</button></form>""",
                number=number,
                q=kb_query,
                ph=t.gettext("Search the knowledge base"),
                find=t.gettext("Find articles"),
            )
        seen = d.history[-1].at if d.history else d.incident.updated_at
        form = render(
            """<form method="post" action="/incidents/$number/actions" class="action-form" id="action-form" data-action="$action">
<input type="hidden" name="csrf_token" value="$csrf">
<input type="hidden" name="expected_version" value="$version">
<input type="hidden" name="seen_at" value="$seen">
<input type="hidden" name="action" value="$action">
$fields
$extra
<button type="submit">$label</button></form>""",
            number=number,
            action=current,
            csrf=ctx.session.csrf_token,
            version=d.incident.version,
            seen=seen.isoformat(),
            fields=join(
                (self._field(t, f, d, typed, shown_problems.get(f.name)) for f in fields), "\n"
            ),
            extra=extra,
            label=t.gettext(ACTION_WORDS[current]),
        )
        others = [a for a in actions if a != current]
        switch = Markup("")
        if others:
            switch = render(
                """<p class="other-actions" id="other-actions">$or $links</p>""",
                links=join(
                    (
                        tag(
                            "a",
                            t.gettext(ACTION_WORDS[a]),
                            href=f"/incidents/{number}?act={a}#actions",
                            class_="button secondary",
                            data_action=a,
                        )
                        for a in others
                    ),
                    " ",
                ),
                **{"or": t.gettext("Or:")},
            )
        head = t.gettext("Next step") if current == actions[0] else t.gettext("Chosen step")
        return join([kept, tag("h3", head), hint, search, form, switch])

    def _timeline_html(
        self, t: Translator, entries: Sequence[TimelineEntry], since: datetime | None
    ) -> Markup:
        """The timeline of notes, contacts, lifecycle steps and calls; after a conflict the
        entries newer than `since` (when the refused form was loaded) are marked as changed."""
        items = []
        for e in entries:
            if e.kind == "lifecycle":
                what = t.gettext(ACTION_WORDS.get(e.what) or EVENT_WORDS.get(e.what) or e.what)
            else:
                what = t.gettext(EVENT_WORDS.get(e.what, e.what))
            detail = self._detail_words(t, e)
            new = since is not None and e.at > since
            items.append(
                render(
                    """<li class="tl-$kind$new"><span class="muted">$at</span> <strong>$what</strong> <span class="muted">$who</span><div class="prewrap">$text</div></li>""",
                    kind=e.kind if e.kind != "note" else f"note-{e.what}",
                    new=" changed" if new else "",
                    at=t.when(e.at),
                    what=what,
                    who=e.actor or "",
                    text=detail,
                )
            )
        if not items:
            return tag("p", t.gettext("Nothing yet."), class_="muted")
        return tag("ol", join(items, "\n"), class_="timeline", id="timeline")

    def _detail_words(self, t: Translator, e: TimelineEntry) -> str:
        d = e.detail
        if e.kind == "note":
            mailed = t.gettext(" (mailed to the caller)") if d.get("mailed") else ""
            return (e.text or "") + mailed
        if e.kind == "call":
            parts = [str(d.get("caller_number") or "")]
            if d.get("talk_s") is not None:
                parts.append(t.gettext("talked {d}", d=t.duration(float(str(d["talk_s"])))))
            if d.get("outcome"):
                parts.append(vocab(t, "outcome", str(d["outcome"])))
            return " · ".join(p for p in parts if p)
        if e.kind == "lifecycle":
            out = []
            a, b = d.get("from_status"), d.get("to_status")
            if b and a != b:
                was = vocab(t, "status", str(a)) if a else ""
                now = vocab(t, "status", str(b))
                out.append(f"{was} → {now}" if was else now)
            for key in ("reason", "resolution", "note", "comment"):
                if d.get(key):
                    out.append(str(d[key]))
            if d.get("into"):
                out.append(t.gettext("into {number}", number=str(d["into"])))
            if d.get("withdrawn"):
                out.append(t.gettext("{number} withdrawn", number=str(d["withdrawn"])))
            if d.get("priority"):
                out.append(t.gettext("priority {p}", p=str(d["priority"])))
            if d.get("category"):
                out.append(vocab(t, "category", str(d["category"])))
            return " · ".join(out)
        return ""

    async def _render(
        self,
        ctx: RequestContext,
        t: Translator,
        d: IncidentDetail,
        *,
        error: str = "",
        warning: str = "",
        notice: str = "",
        chosen: str = "",
        typed: Mapping[str, str] | None = None,
        kb_query: str = "",
        since: datetime | None = None,
        problems: Mapping[str, FieldProblem] | None = None,
    ) -> Markup:
        v = d.incident
        typed = typed or {}
        caller = d.caller
        clocks = self._clocks(d)
        entries = await self._timeline(d)
        owner = " · ".join(x for x in (v.owner_seat, v.owner_employee, v.owner_group) if x)
        caller_name: object = v.caller_name or (caller.name if caller else "")
        if v.caller_id is not None:
            caller_name = tag(
                "a", caller_name or t.gettext("caller"), href=f"/callers/{v.caller_id}"
            )
        facts: list[tuple[str, object]] = [
            (t.gettext("Caller"), caller_name),
            (t.gettext("Phone"), v.caller_number or (", ".join(caller.phones) if caller else "")),
            (t.gettext("Department"), caller.department if caller else ""),
            (t.gettext("Office"), caller.office if caller else ""),
            (t.gettext("Request type"), vocab(t, "request_type", v.request_type)),
            (
                t.gettext("Category"),
                vocab(t, "category", v.category) or t.gettext("not classified yet"),
            ),
            (
                t.gettext("Impact and urgency"),
                f"{vocab(t, 'level', v.impact)} × {vocab(t, 'level', v.urgency)}"
                if v.impact and v.urgency
                else "",
            ),
            (t.gettext("Owner"), owner),
            (t.gettext("Opened"), t.when(v.created_at)),
            (t.gettext("Response time"), self._clock_words(t, clocks.response)),
            (t.gettext("Resolution time"), self._clock_words(t, clocks.resolution)),
            (t.gettext("Resolved"), t.when(v.resolved_at) if v.resolved_at else ""),
            (t.gettext("Closed"), t.when(v.closed_at) if v.closed_at else ""),
            (
                t.gettext("Caller's satisfaction"),
                t.gettext("{score} of 5", score=v.satisfaction)
                + (f" — {v.satisfaction_comment}" if v.satisfaction_comment else "")
                if v.satisfaction
                else "",
            ),
        ]
        if d.live_call_id:
            facts.append((t.gettext("Call"), t.gettext("The caller is on the line now")))
        dl = join(join([tag("dt", k), tag("dd", val)]) for k, val in facts if val not in ("", None))
        banners = join(
            [
                tag("p", error, class_="banner warn", role="alert", id="action-error")
                if error
                else "",
                tag("p", warning, class_="banner warn", role="alert") if warning else "",
                tag("p", notice, class_="banner info", role="status") if notice else "",
            ]
        )
        priority = (
            t.gettext("Priority {p}", p=v.priority) if v.priority else t.gettext("No priority yet")
        )
        note_form = Markup("")
        if ctx.actor.role in ("agent", "supervisor"):
            note_form = render(
                """<form method="post" action="/incidents/$number/notes" class="note-form" id="note-form">
<input type="hidden" name="csrf_token" value="$csrf">
<label>$label <textarea name="body" rows="3" maxlength="4000" required>$body</textarea></label>
<label class="check"><input type="radio" name="kind" value="internal"$internal> $internal_label</label>
<label class="check"><input type="radio" name="kind" value="caller"$caller> $caller_label</label>
<button type="submit">$add</button></form>""",
                number=v.number,
                csrf=ctx.session.csrf_token,
                label=t.gettext("Work note"),
                body=typed.get("body", "") if "body" in typed else "",
                internal=Markup("" if typed.get("kind") == "caller" else " checked"),
                caller=Markup(" checked" if typed.get("kind") == "caller" else ""),
                internal_label=t.gettext("Internal (staff only)"),
                caller_label=t.gettext("To the caller (sent by e-mail)"),
                add=t.gettext("Add note"),
            )
        main = render(
            """<section class="card">
  <div class="inc-head">
    <h1 class="mono" id="incident-number">$number</h1>
    <span class="badge st-$status" id="incident-status">$status_words</span>
    <span class="badge" id="incident-priority">$priority</span>
  </div>
  $banners
  <h2 class="summary" id="incident-summary">$summary</h2>
  <dl class="facts" id="incident-facts">$dl</dl>
  <h3>$desc_h</h3>
  <div class="prewrap" id="incident-description">$description</div>
</section>
<section class="card" id="actions"><h2>$actions_h</h2>$actions</section>
<section class="card"><h2>$timeline_h</h2>$timeline$note_form</section>
<p><a href="/incidents">$back</a></p>""",
            number=v.number,
            status=v.status,
            status_words=vocab(t, "status", v.status),
            priority=priority,
            banners=banners,
            summary=v.summary,
            dl=dl,
            desc_h=t.gettext("Description"),
            description=v.description or "—",
            actions_h=t.gettext("What to do"),
            actions=await self._action_panel(ctx, t, d, chosen, typed, kb_query, problems or {}),
            timeline_h=t.gettext("Timeline"),
            timeline=self._timeline_html(t, entries, since),
            note_form=note_form,
            back=t.gettext("← Open incidents"),
        )
        return layout(
            site=self._edge.site(),
            title=v.number,
            main=main,
            actor=ctx.actor,
            csrf=ctx.session.csrf_token,
            t=t,
        )
