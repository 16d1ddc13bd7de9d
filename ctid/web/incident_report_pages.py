"""The incident reports page for the duty manager and the CIO (`/reports/incidents`): every table
of `IncidentReportTables` for a period as HTML (most with an inline-SVG bar chart) and as CSV."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from aiohttp import web

from ctid.i18n import Translator, excel_csv
from ctid.reports.incident_tables import TABLES, IncidentReportTables
from ctid.web.edge import Edge, HttpError, html_response
from ctid.web.html import Markup, join, render, tag
from ctid.web.pages import layout
from ctid.web.record_common import need_port, vocab, words_of
from ctid.web.record_ports import IncidentReportPort, RecordPorts
from ctid.web.report_pages import bar_chart

MAX_DAYS = 370


class IncidentReportPages:
    """Routes for `/reports/incidents` and `/reports/incidents.csv?table=`."""

    def __init__(self, edge: Edge, records: RecordPorts) -> None:
        self._edge = edge
        self._r = records

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/reports/incidents", self._page)
        r.add_get("/reports/incidents.csv", self._csv)

    def _port(self) -> IncidentReportPort:
        return need_port(self._r.reports, "incident reports")

    def _period(self, request: web.Request) -> tuple[date, date]:
        today = self._edge.clock.now().date()
        q = request.query
        try:
            start = date.fromisoformat(q["from"]) if q.get("from") else today - timedelta(days=29)
            end = date.fromisoformat(q["to"]) if q.get("to") else today
        except ValueError:
            raise HttpError(400, "from and to must be dates written YYYY-MM-DD") from None
        if end < start or (end - start).days + 1 > MAX_DAYS:
            raise HttpError(400, f"the period must run forward and cover at most {MAX_DAYS} days")
        return start, end

    async def _csv(self, request: web.Request) -> web.StreamResponse:
        self._edge.need(request, "supervisor", "ops")
        start, end = self._period(request)
        table = request.query.get("table", "")
        if table not in TABLES:
            raise HttpError(400, "table must be one of " + ", ".join(TABLES))
        text = await self._port().csv(start, end, table)
        return web.Response(
            body=excel_csv(text),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="incidents-{table}-{start}-{end}.csv"'
            },
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "supervisor", "ops")
        t = words_of(request, self._edge.cfg)
        start, end = self._period(request)
        tables = await self._port().tables(start, end)
        main = render(
            """<section class="card"><h1>$h</h1>
<form method="get" action="/reports/incidents" class="filters">
<label>$from_l <input type="date" name="from" value="$start"></label>
<label>$to_l <input type="date" name="to" value="$end"></label>
<button type="submit">$show</button></form></section>
$sections""",
            h=t.gettext("Incident reports"),
            from_l=t.gettext("From"),
            to_l=t.gettext("To"),
            start=start.isoformat(),
            end=end.isoformat(),
            show=t.gettext("Show"),
            sections=self._sections(t, tables, start, end),
        )
        return html_response(
            layout(
                site=self._edge.site(),
                title=t.gettext("Incident reports"),
                main=main,
                actor=ctx.actor,
                csrf=ctx.session.csrf_token,
                main_class="page wide",
                t=t,
            )
        )

    @staticmethod
    def _table(head: Sequence[str], rows: Sequence[Sequence[object]], table_id: str) -> Markup:
        return render(
            """<table class="results" id="$id"><thead><tr>$head</tr></thead><tbody>$rows</tbody></table>""",
            id=table_id,
            head=join(tag("th", h) for h in head),
            rows=join(tag("tr", join(tag("td", c) for c in r)) for r in rows),
        )

    def _sections(self, t: Translator, tb: IncidentReportTables, start: date, end: date) -> Markup:
        def pct(v: float | None) -> str:
            return t.percent(v) if v is not None else "–"

        def card(name: str, title: str, chart: Markup, table: Markup) -> Markup:
            return render(
                """<section class="card" id="report-$name"><h2>$title</h2>$chart$table
<p><a href="/reports/incidents.csv?table=$name&amp;from=$start&amp;to=$end">$csv</a></p></section>""",
                name=name,
                title=title,
                chart=chart,
                table=table,
                start=start.isoformat(),
                end=end.isoformat(),
                csv=t.gettext("Download CSV"),
            )

        types = card(
            "types",
            t.gettext("Incidents by request type and category"),
            bar_chart(
                t.gettext("Incidents"),
                [
                    (
                        f"{vocab(t, 'request_type', r.request_type)} · {vocab(t, 'category', r.category) if r.category != '(none)' else '–'}",
                        float(r.incidents),
                        t.number(r.incidents),
                    )
                    for r in tb.types
                ],
            ),
            self._table(
                [
                    t.gettext("Request type"),
                    t.gettext("Category"),
                    t.gettext("Incidents"),
                    t.gettext("Open"),
                    t.gettext("Resolved"),
                ],
                [
                    [
                        vocab(t, "request_type", r.request_type),
                        vocab(t, "category", r.category),
                        r.incidents,
                        r.open,
                        r.resolved,
                    ]
                    for r in tb.types
                ],
                "types-table",
            ),
        )
        sla = card(
            "sla",
            t.gettext("SLA met and breached by priority"),
            bar_chart(
                t.gettext("Resolution SLA met"),
                [
                    (r.priority, (r.resolution_met_rate or 0.0) * 100, pct(r.resolution_met_rate))
                    for r in tb.sla
                ],
                max_value=100.0,
            ),
            self._table(
                [
                    t.gettext("Priority"),
                    t.gettext("Incidents"),
                    t.gettext("Response met"),
                    t.gettext("Response breached"),
                    t.gettext("Resolution met"),
                    t.gettext("Resolution breached"),
                    t.gettext("Still running"),
                ],
                [
                    [
                        r.priority,
                        r.incidents,
                        r.response_met,
                        r.response_breached,
                        r.resolution_met,
                        r.resolution_breached,
                        r.resolution_running,
                    ]
                    for r in tb.sla
                ],
                "sla-table",
            ),
        )
        backlog = card(
            "backlog",
            t.gettext("Open backlog by age"),
            bar_chart(
                t.gettext("Open incidents"),
                [(r.age, float(r.incidents), t.number(r.incidents)) for r in tb.backlog[:-1]],
            ),
            self._table(
                [
                    t.gettext("Age"),
                    t.gettext("Open"),
                    t.gettext("First line"),
                    t.gettext("Second line"),
                    t.gettext("Suspended"),
                ],
                [
                    [r.age, r.incidents, r.first_line, r.second_line, r.suspended]
                    for r in tb.backlog
                ],
                "backlog-table",
            ),
        )
        line_words = {
            "first_line": t.gettext("First line"),
            "second_line": t.gettext("Second line"),
            "total": t.gettext("Total"),
        }
        lines = card(
            "lines",
            t.gettext("Resolved at first line and at second line"),
            bar_chart(
                t.gettext("Resolved"),
                [
                    (line_words.get(r.line, r.line), float(r.resolved), pct(r.share))
                    for r in tb.lines
                    if r.line != "total"
                ],
            ),
            self._table(
                [t.gettext("Line"), t.gettext("Resolved"), t.gettext("Share")],
                [[line_words.get(r.line, r.line), r.resolved, pct(r.share)] for r in tb.lines],
                "lines-table",
            ),
        )
        fcr = card(
            "fcr",
            t.gettext("First-contact resolution"),
            Markup(""),
            self._table(
                [
                    t.gettext("Resolved"),
                    t.gettext("At the first contact"),
                    t.gettext("FCR"),
                    t.gettext("Needed more contacts"),
                ],
                [
                    [
                        tb.fcr.resolved,
                        tb.fcr.first_contact,
                        pct(tb.fcr.fcr_rate),
                        tb.fcr.repeat_contacts,
                    ]
                ],
                "fcr-table",
            ),
        )
        articles = card(
            "articles",
            t.gettext("First-line resolution by knowledge article"),
            bar_chart(
                t.gettext("Resolved at first line"),
                [
                    (
                        r.title if r.article_id else t.gettext("no article"),
                        float(r.first_line_resolved),
                        t.number(r.first_line_resolved),
                    )
                    for r in tb.articles
                ],
            ),
            self._table(
                [t.gettext("Article"), t.gettext("Resolved at first line")],
                [
                    [r.title if r.article_id else t.gettext("no article"), r.first_line_resolved]
                    for r in tb.articles
                ],
                "articles-table",
            ),
        )
        uncovered = card(
            "uncovered",
            t.gettext("Categories with no article"),
            Markup(""),
            tag(
                "p",
                ", ".join(vocab(t, "category", c) for c in tb.uncovered)
                or t.gettext("Every category has an article."),
                id="uncovered",
            ),
        )
        return join([types, sla, backlog, lines, fcr, articles, uncovered], "\n")
