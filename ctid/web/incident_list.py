"""The open-incident list page and its JSON twin: filters (mine, seat, group, status) and pages of
50 rows with newer/older links keyed on an incident number (`before=` / `after=`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ctid.core.actor import Actor
from ctid.i18n import N_, Translator
from ctid.tickets.views import IncidentPage, IncidentRow
from ctid.tickets.vocabulary import (
    CATEGORY_WORDS,
    CHANNEL_WORDS,
    LEVEL_WORDS,
    REQUEST_TYPE_WORDS,
    STATUS_WORDS,
    STATUSES,
)
from ctid.tickets.workflow import IncidentQuery
from ctid.web.edge import Edge, HttpError, RequestContext, html_response, json_response, label
from ctid.web.html import Markup, Snippet, join, render, tag
from ctid.web.incident_forms import INCIDENT_NUMBER, Choices
from ctid.web.middleware import translator_of
from ctid.web.pages import layout
from ctid.web.ports import IncidentWorkflowPort

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

_ROW = Snippet(
    '<tr><td class="mono"><a href="/incidents/$number">$number</a></td>'
    '<td><span class="badge st-$status">$status_words</span></td>'
    '<td>$priority</td><td class="wrap">$summary</td><td>$caller</td><td>$owner</td>'
    "<td>$opened</td><td$due_class>$due</td></tr>"
)
_OVERDUE = Markup(' class="overdue"')
_FILTERS = ("mine", "seat", "group", "status")
_ROWS_A_TURN = 10


class IncidentListPages:
    """`GET /incidents` and `GET /api/incidents`, routed by `IncidentView.add_routes`."""

    def __init__(self, edge: Edge, workflow: IncidentWorkflowPort | None, choices: Choices) -> None:
        self._edge = edge
        self._workflow = workflow
        self._choices = choices

    def _port(self) -> IncidentWorkflowPort:
        if self._workflow is None:
            raise HttpError(404, "the incident workflow is not available")
        return self._workflow

    def _query(self, request: web.Request, actor: Actor) -> tuple[IncidentQuery, dict[str, str]]:
        q = request.query
        mine = q.get("mine", "") in ("1", "on", "true")
        seat = q.get("seat", "")
        group = q.get("group", "")
        status = q.get("status", "")
        before = q.get("before", "")
        after = q.get("after", "")
        if seat and seat not in self._choices.seats:
            raise HttpError(400, "seat must be one of " + ", ".join(self._choices.seats))
        if group and group not in self._choices.groups:
            raise HttpError(400, f"no second-line group {group[:40]!r}")
        if status and status not in STATUSES:
            raise HttpError(400, "status must be one of " + ", ".join(STATUSES))
        for name, cursor in (("before", before), ("after", after)):
            if cursor and not INCIDENT_NUMBER.match(cursor):
                raise HttpError(400, f"{name} must be an incident number")
        if before and after:
            raise HttpError(400, "give before or after, not both")
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
            before=before or None,
            after=after or None,
        )
        shown = {"mine": "1" if mine else "", "seat": seat, "group": group, "status": status}
        return query, shown

    @staticmethod
    def _link(path: str, shown: Mapping[str, str], cursor: str = "", number: str = "") -> str:
        """`path` with the filters that are set, and the page cursor if any."""
        params = [(k, shown[k]) for k in _FILTERS if shown.get(k)]
        if cursor:
            params.append((cursor, number))
        return path + ("?" + urlencode(params) if params else "")

    # ------------------------------------------------------------------ handlers

    async def list_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        query, shown = self._query(request, ctx.actor)
        page = await self._port().list_open(query)
        return html_response(await self._render(ctx, page, shown, translator_of(request)))

    async def list_api(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        query, shown = self._query(request, ctx.actor)
        page = await self._port().list_open(query)
        api = "/api/incidents"
        return json_response(
            {
                "incidents": [_row_json(r) for r in page.rows],
                "newer": page.newer,
                "older": page.older,
                "prev": self._link(api, shown, "after", page.newer) if page.newer else None,
                "next": self._link(api, shown, "before", page.older) if page.older else None,
            }
        )

    # ------------------------------------------------------------------ rendering

    def _select(
        self,
        name: str,
        values: Sequence[str],
        current: str,
        blank: str,
        *,
        shown: Callable[[str], str] = label,
    ) -> Markup:
        opts = [tag("option", blank, value="")]
        opts += [tag("option", shown(v), value=v, selected=(v == current) or None) for v in values]
        return tag("select", join(opts), name=name)

    async def _rows(self, rows: Sequence[IncidentRow], t: Translator) -> Markup:
        """The table's rows, giving the loop back every `_ROWS_A_TURN` rows: drawing a row (two
        dates in the reader's language) takes ~0.1 ms, and the pops must not wait for a page."""
        now = self._edge.clock.utcnow()
        drawn: list[Markup] = []
        for i, r in enumerate(rows):
            if i and i % _ROWS_A_TURN == 0:
                await asyncio.sleep(0)
            drawn.append(
                _ROW(
                    number=r.number,
                    status=r.status,
                    status_words=words(t, "status", r.status),
                    priority=r.priority or "–",
                    summary=r.summary,
                    caller=r.caller_name or r.caller_number or "",
                    owner=" · ".join(
                        x for x in (r.owner_seat, r.owner_employee, r.owner_group) if x
                    ),
                    opened=t.when(r.created_at, "short"),
                    due=t.when(r.sla_resolve_due, "short") if r.sla_resolve_due else "",
                    due_class=_OVERDUE
                    if r.sla_resolve_due is not None and r.sla_resolve_due < now
                    else "",
                )
            )
        return join(drawn)

    def _pager(self, page: IncidentPage, shown: Mapping[str, str], t: Translator) -> Markup:
        links = []
        if page.newer:
            links.append(
                tag("a", t.gettext("« Newest"), href=self._link("/incidents", shown), rel="first")
            )
            links.append(
                tag(
                    "a",
                    t.gettext("‹ Newer"),
                    href=self._link("/incidents", shown, "after", page.newer),
                    rel="prev",
                )
            )
        if page.older:
            links.append(
                tag(
                    "a",
                    t.gettext("Older ›"),
                    href=self._link("/incidents", shown, "before", page.older),
                    rel="next",
                )
            )
        if not links:
            return Markup("")
        return tag("nav", join(links), class_="pager", aria_label=t.gettext("Pages"))

    async def _render(
        self,
        ctx: RequestContext,
        page: IncidentPage,
        shown: Mapping[str, str],
        t: Translator,
    ) -> Markup:
        table = (
            render(
                """<table class="results" id="incident-list">
<thead><tr>$heads</tr></thead>
<tbody>$body</tbody></table>""",
                heads=join(tag("th", t.gettext(h)) for h in _LIST_HEADS),
                body=await self._rows(page.rows, t),
            )
            if page.rows
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
            """<section class="card"><h1>$title</h1>$filters$table$pager</section>""",
            title=t.gettext("Open incidents"),
            filters=filters,
            table=table,
            pager=self._pager(page, shown, t),
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


def _row_json(r: IncidentRow) -> dict[str, Any]:
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
