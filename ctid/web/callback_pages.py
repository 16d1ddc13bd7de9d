"""The callback list page: who waits for a call back, "Call back" (click-to-call rings the
agent's phone first) and recording the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from ctid.core.errors import (
    CtidError,
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
    TransitionError,
)
from ctid.i18n import N_, Translator
from ctid.tickets.callback_list import CallbackRow
from ctid.tickets.vocabulary import (
    CALLBACK_OUTCOME_WORDS,
    CALLBACK_OUTCOMES,
    CALLBACK_REASON_WORDS,
)
from ctid.web.edge import (
    Edge,
    HttpError,
    RequestContext,
    form_fields,
    html_response,
    label,
    see_other,
    str_field,
)
from ctid.web.html import Markup, join, render, tag
from ctid.web.incident_forms import INCIDENT_NUMBER
from ctid.web.middleware import translator_of
from ctid.web.pages import layout
from ctid.web.ports import CallbackPort, CallControlPort

log = structlog.get_logger(__name__)

CALLBACK_STATUS_WORDS = {"open": N_("waiting"), "in_progress": N_("being called")}
_HEADS = (
    N_("Requested"),
    N_("Number"),
    N_("Caller"),
    N_("Why"),
    N_("Attempts"),
    N_("Status"),
)
CALLBACK_ROLES = ("agent", "supervisor")


class CallbackPages:
    """Routes for `/callbacks*`. A `callbacks` port left None makes the list a 404; without
    `calls` the agent dials by hand."""

    def __init__(
        self, edge: Edge, callbacks: CallbackPort | None, calls: CallControlPort | None
    ) -> None:
        self._edge = edge
        self._callbacks = callbacks
        self._calls = calls
        self._tz: tzinfo = ZoneInfo(edge.cfg.site.timezone)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/callbacks", self._callbacks_page)
        router.add_post("/callbacks/{id}/call", self._callback_call)
        router.add_post("/callbacks/{id}/finish", self._callback_finish)

    def _callback_port(self) -> CallbackPort:
        if self._callbacks is None:
            raise HttpError(404, "the callback list is not available")
        return self._callbacks

    @staticmethod
    def _callback_id(request: web.Request) -> int:
        raw = request.match_info["id"]
        if not raw.isdigit() or len(raw) > 12:
            raise HttpError(404, "no such callback")
        return int(raw)

    async def _callbacks_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *CALLBACK_ROLES)
        rows = await self._callback_port().list_open()
        t = translator_of(request)
        notice = ""
        if request.query.get("calling", "").isdigit():
            notice = t.gettext(
                "Your phone rings: pick it up to call the caller back, then record the outcome."
            )
        elif request.query.get("done", "").isdigit():
            notice = t.gettext("Outcome recorded.")
        return html_response(self._render_callbacks(ctx, rows, t, notice=notice))

    async def _callback_call(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *CALLBACK_ROLES)
        port = self._callback_port()
        callback_id = self._callback_id(request)
        try:
            row = await port.start(callback_id, ctx.actor)
        except (StateConflictError, TransitionError, RequestRefusedError) as exc:
            status = 400 if isinstance(exc, RequestRefusedError) else 409
            rows = await port.list_open()
            t = translator_of(request)
            return html_response(self._render_callbacks(ctx, rows, t, error=str(exc)), status)
        log.info("callback_started_from_web", callback_id=row.callback_id, by=ctx.actor.employee_id)
        t = translator_of(request)
        if self._calls is None:
            error = t.gettext(
                "Call {number} yourself (click-to-call is off), then record the outcome.",
                number=row.number,
            )
        else:
            try:
                await self._calls.click_to_call(ctx.actor, row.number)
                return see_other(f"/callbacks?calling={row.callback_id}")
            except CtidError as exc:
                log.warning("click_to_call_failed", callback_id=row.callback_id, error=str(exc))
                error = t.gettext(
                    "Your phone could not be rung ({why}). Dial {number} by hand, then record "
                    "the outcome.",
                    why=str(exc),
                    number=row.number,
                )
        rows = await port.list_open()
        return html_response(self._render_callbacks(ctx, rows, t, error=error))

    async def _callback_finish(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *CALLBACK_ROLES)
        port = self._callback_port()
        callback_id = self._callback_id(request)
        form = await form_fields(request)
        try:
            outcome = form.get("outcome", "")
            if outcome not in CALLBACK_OUTCOMES:
                raise HttpError(400, N_("choose the outcome of the call"))
            incident = str_field(form, "incident_number", 64) or None
            if incident is not None and not INCIDENT_NUMBER.match(incident):
                raise HttpError(400, "incident_number is not an incident number")
            await port.finish(callback_id, outcome, ctx.actor, incident_number=incident)
        except (
            HttpError,
            RequestRefusedError,
            StateConflictError,
            TransitionError,
            RecordMissingError,
        ) as exc:
            status = exc.status if isinstance(exc, HttpError) else 400
            if isinstance(exc, StateConflictError | TransitionError):
                status = 409
            elif isinstance(exc, RecordMissingError):
                status = 404
            rows = await port.list_open()
            message = exc.message if isinstance(exc, HttpError) else str(exc)
            t = translator_of(request)
            return html_response(
                self._render_callbacks(ctx, rows, t, error=t.gettext(message)), status
            )
        return see_other(f"/callbacks?done={callback_id}")

    def _callback_row(self, ctx: RequestContext, r: CallbackRow, t: Translator) -> Markup:
        csrf = ctx.session.csrf_token
        if r.status == "open":
            act = render(
                """<form method="post" action="/callbacks/$id/call" class="inline" data-callback="$id">
<input type="hidden" name="csrf_token" value="$csrf"><button type="submit">$call</button></form>""",
                id=r.callback_id,
                csrf=csrf,
                call=t.gettext("Call back"),
            )
        elif r.status == "in_progress" and (
            r.worked_by == ctx.actor.employee_id or ctx.actor.role == "supervisor"
        ):
            act = render(
                """<form method="post" action="/callbacks/$id/finish" class="outcome" data-callback="$id">
<input type="hidden" name="csrf_token" value="$csrf">
<select name="outcome" required aria-label="$l_outcome">$outcomes</select>
<input name="incident_number" placeholder="$l_incident" aria-label="$l_incident" maxlength="64">
<button type="submit">$record</button></form>""",
                id=r.callback_id,
                csrf=csrf,
                l_outcome=t.gettext("Outcome"),
                l_incident=t.gettext("Incident (optional)"),
                record=t.gettext("Record outcome"),
                outcomes=join(
                    [tag("option", t.gettext("outcome…"), value="")]
                    + [
                        tag("option", t.gettext(CALLBACK_OUTCOME_WORDS.get(o, o)), value=o)
                        for o in CALLBACK_OUTCOMES
                    ]
                ),
            )
        else:
            act = tag(
                "span", t.gettext("being called by {who}", who=r.worked_by or "?"), class_="muted"
            )
        return tag(
            "tr",
            join(
                [
                    tag("td", t.when(r.requested_at, "short")),
                    tag("td", r.number, class_="mono"),
                    tag("td", r.caller_name or ""),
                    tag(
                        "td",
                        t.gettext(CALLBACK_REASON_WORDS[r.reason])
                        if r.reason in CALLBACK_REASON_WORDS
                        else label(r.reason),
                    ),
                    tag("td", t.number(r.attempts)),
                    tag(
                        "td",
                        t.gettext(CALLBACK_STATUS_WORDS[r.status])
                        if r.status in CALLBACK_STATUS_WORDS
                        else label(r.status),
                    ),
                    tag("td", act),
                ]
            ),
            data_callback=r.callback_id,
        )

    def _render_callbacks(
        self,
        ctx: RequestContext,
        rows: Sequence[CallbackRow],
        t: Translator,
        *,
        error: str = "",
        notice: str = "",
    ) -> Markup:
        table = (
            render(
                """<table class="results" id="callback-list">
<thead><tr>$heads<th></th></tr></thead>
<tbody>$body</tbody></table>""",
                heads=join(tag("th", t.gettext(h)) for h in _HEADS),
                body=join((self._callback_row(ctx, r, t) for r in rows), "\n"),
            )
            if rows
            else tag("p", t.gettext("Nobody is waiting for a call back."), class_="muted")
        )
        main = render(
            """<section class="card"><h1>$title</h1>$error$notice$table</section>""",
            title=t.gettext("Callbacks"),
            error=tag("p", error, class_="banner warn", role="alert") if error else "",
            notice=tag("p", notice, class_="banner info", role="status") if notice else "",
            table=table,
        )
        return layout(
            t=t,
            site=self._edge.site(),
            title=t.gettext("Callbacks"),
            main=main,
            actor=ctx.actor,
            csrf=ctx.session.csrf_token,
            main_class="page wide",
        )
