"""The reports pages (supervisors and ops): the KPI table for a period grouped by seat, tier, day
or hour with bar charts drawn server-side as inline SVG (nothing is fetched from elsewhere), the
CSV download, and the monthly per-agent review."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta

from aiohttp import web

from ctid.i18n import N_, Translator, excel_csv, translator
from ctid.reports.render import GROUP_WORDS, TOTAL_WORD
from ctid.reports.tables import (
    GROUPINGS,
    AgentMonthLine,
    AgentMonthTable,
    KpiColumn,
    KpiLine,
    KpiTable,
)
from ctid.tickets.vocabulary import CATEGORY_WORDS, REQUEST_TYPE_WORDS
from ctid.web.edge import Edge, HttpError, RequestContext, html_response
from ctid.web.html import Markup, join, render, tag
from ctid.web.middleware import translator_of
from ctid.web.pages import layout
from ctid.web.ports import (
    ReportsPort,
)

REPORT_ROLES = ("supervisor", "ops")
ENGLISH = translator("en")
MAX_DAYS = 366
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

MAIN_COLUMNS = (
    "offered",
    "answered",
    "abandoned",
    "loss_rate",
    "within_rings_rate",
    "asa_s",
    "aht_s",
    "over_cap",
    "ring_misses",
    "incidents",
    "first_line_rate",
    "satisfaction_avg",
)
"""What the page's table shows; the CSV and "all columns" have every column."""


def fmt(value: float | int | None, kind: str, t: Translator = ENGLISH) -> str:
    """A KPI value for people, in `t`'s number formats."""
    if value is None:
        return "–"
    if kind == "rate":
        return t.percent(float(value))
    if kind == "seconds":
        return t.gettext("{n} s", n=t.number(round(float(value))))
    if kind == "score":
        return t.number(round(float(value), 2))
    if isinstance(value, int | float):
        return t.number(value)
    return str(value)


def key_words(t: Translator, key: str, by: str) -> str:
    """A row key as people read it: `total`, a tier or an hour (`09` → `09:00`) in words."""
    if key == "total":
        return t.gettext(TOTAL_WORD)
    if by == "tier":
        return t.gettext(TIER_WORDS.get(key, key))
    if by == "hour" and key.isdigit():
        return f"{key}:00"
    return key


TIER_WORDS = {"ordinary": N_("Ordinary"), "expert": N_("Expert")}


def bar_chart(
    title: str, bars: Sequence[tuple[str, float | None, str]], *, max_value: float | None = None
) -> Markup:
    """A horizontal bar chart as inline SVG: one bar per (label, value, value text). Colours
    come from classes in app.css (no inline style: the CSP forbids it)."""
    row_h, label_w, bar_w, pad = 22, 150, 360, 8
    values = [v for _, v, _ in bars if v is not None]
    top = max_value if max_value is not None else max(values, default=0.0)
    height = pad * 2 + row_h * max(len(bars), 1) + 18
    parts: list[Markup] = [
        tag("title", title),
        tag("text", title, x=0, y=14, class_="chart-title"),
    ]
    for i, (label, value, text) in enumerate(bars):
        y = 18 + pad + i * row_h
        width = 0.0 if not value or top <= 0 else max(1.0, bar_w * min(value, top) / top)
        parts.append(tag("text", label[:24], x=label_w - 6, y=y + 15, text_anchor="end"))
        parts.append(
            tag(
                "rect", "", x=label_w, y=y + 3, width=f"{width:.1f}", height=row_h - 6, class_="bar"
            )
        )
        parts.append(tag("text", text, x=f"{label_w + width + 6:.1f}", y=y + 15, class_="val"))
    total_w = label_w + bar_w + 80
    return tag(
        "svg",
        join(parts),
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {total_w} {height}",
        width=total_w,
        height=height,
        role="img",
        aria_label=title,
        class_="chart",
    )


class ReportPages:
    """Routes for `/reports`, `/reports.csv`, `/reports/agent-month[.csv]`."""

    def __init__(self, edge: Edge, reports: ReportsPort | None) -> None:
        self._edge = edge
        self._reports = reports

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/reports", self._page)
        router.add_get("/reports.csv", self._csv)
        router.add_get("/reports/agent-month", self._month_page)
        router.add_get("/reports/agent-month.csv", self._month_csv)

    def _port(self) -> ReportsPort:
        if self._reports is None:
            raise HttpError(404, "reports are not available")
        return self._reports

    def _period(self, request: web.Request) -> tuple[date, date, str]:
        today = self._edge.clock.now().date()
        q = request.query
        try:
            start = date.fromisoformat(q["from"]) if q.get("from") else today - timedelta(days=6)
            end = date.fromisoformat(q["to"]) if q.get("to") else today
        except ValueError:
            raise HttpError(400, "from and to must be dates written YYYY-MM-DD") from None
        by = q.get("by", "day") or "day"
        if by not in GROUPINGS:
            raise HttpError(400, "by must be one of " + ", ".join(GROUPINGS))
        if end < start:
            raise HttpError(400, "to is before from")
        if (end - start).days + 1 > MAX_DAYS:
            raise HttpError(400, f"a report covers at most {MAX_DAYS} days")
        return start, end, by

    def _month(self, request: web.Request) -> str:
        month = request.query.get("month", "") or self._edge.clock.now().strftime("%Y-%m")
        m = _MONTH.match(month)
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise HttpError(400, "month must be written YYYY-MM")
        return month

    @staticmethod
    def _csv_response(text: str, filename: str) -> web.Response:
        # UTF-8 with a byte-order mark: Excel then reads the Chinese right.
        resp = web.Response(body=excel_csv(text), content_type="text/csv", charset="utf-8")
        resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def _csv(self, request: web.Request) -> web.StreamResponse:
        self._edge.need(request, *REPORT_ROLES)
        start, end, by = self._period(request)
        text = await self._port().kpis_csv(start, end, by, translator_of(request))
        return self._csv_response(text, f"ctid-kpis-{start}-{end}-by-{by}.csv")

    async def _month_csv(self, request: web.Request) -> web.StreamResponse:
        self._edge.need(request, *REPORT_ROLES)
        month = self._month(request)
        text = await self._port().agent_month_csv(month, translator_of(request))
        return self._csv_response(text, f"ctid-agents-{month}.csv")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *REPORT_ROLES)
        start, end, by = self._period(request)
        table = await self._port().kpis(start, end, by)
        return html_response(self._render(ctx, table, translator_of(request)))

    async def _month_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *REPORT_ROLES)
        month = self._month(request)
        review = await self._port().agent_month(month)
        return html_response(self._render_month(ctx, review, translator_of(request)))

    # ------------------------------------------------------------------ rendering

    def _page_layout(self, ctx: RequestContext, title: str, main: Markup, t: Translator) -> Markup:
        return layout(
            t=t,
            site=self._edge.site(),
            title=title,
            main=main,
            actor=ctx.actor,
            csrf=ctx.session.csrf_token,
            main_class="page wide",
        )

    @staticmethod
    def _kpi_table(
        columns: Sequence[KpiColumn], lines: Sequence[KpiLine], by: str, t: Translator
    ) -> Markup:
        head = join(
            [tag("th", t.gettext(GROUP_WORDS[by]) if by != "total" else "")]
            + [tag("th", t.gettext(c.label)) for c in columns]
        )
        body = join(
            tag(
                "tr",
                join(
                    [tag("th", key_words(t, line.key, by))]
                    + [
                        tag("td", fmt(line.values.get(c.name), c.kind, t), class_="num")
                        for c in columns
                    ]
                ),
                class_="total" if line.key == "total" else None,
            )
            for line in lines
        )
        return render(
            """<table class="results kpis"><thead><tr>$head</tr></thead><tbody>$body</tbody></table>""",
            head=head,
            body=body,
        )

    def _charts(self, table: KpiTable, t: Translator) -> Markup:
        rows = table.rows or (table.total,)

        def values(name: str) -> list[tuple[str, float | None, str]]:
            kind = next((c.kind for c in table.columns if c.name == name), "count")
            out: list[tuple[str, float | None, str]] = []
            for line in rows:
                v = line.values.get(name)
                out.append(
                    (
                        key_words(t, line.key, table.by),
                        None if v is None else float(v),
                        fmt(v, kind, t),
                    )
                )
            return out

        charts = [
            bar_chart(t.gettext("Calls offered"), values("offered")),
            bar_chart(t.gettext("Call loss rate"), values("loss_rate"), max_value=1.0),
            bar_chart(
                t.gettext("Answered within the ring limit"),
                values("within_rings_rate"),
                max_value=1.0,
            ),
            bar_chart(t.gettext("Average speed of answer"), values("asa_s")),
        ]
        return tag("div", join(charts), class_="charts")

    def _render(self, ctx: RequestContext, table: KpiTable, t: Translator) -> Markup:
        main_cols = [c for name in MAIN_COLUMNS for c in table.columns if c.name == name]
        lines = (*table.rows, table.total)
        incidents = join(
            tag(
                "tr",
                join(
                    [
                        tag("td", t.gettext(REQUEST_TYPE_WORDS.get(rtype, rtype))),
                        tag(
                            "td",
                            t.gettext(CATEGORY_WORDS.get(cat, cat))
                            if cat
                            else t.gettext("unclassified"),
                        ),
                        tag("td", t.number(count), class_="num"),
                    ]
                ),
            )
            for rtype, cat, count in table.incidents_by_type
        )
        csv_href = f"/reports.csv?from={table.start}&to={table.end}&by={table.by}"
        main = render(
            """<section class="card"><h1>$title</h1>
<form method="get" action="/reports" class="filters" id="report-form">
  <label>$l_from <input type="date" name="from" value="$start" required></label>
  <label>$l_to <input type="date" name="to" value="$end" required></label>
  <label>$l_by <select name="by">$by_options</select></label>
  <button type="submit">$show</button>
  <a class="button secondary" href="$csv" id="csv-link">$download</a>
</form>
<p class="muted">$period</p>
$table
<details><summary>$all_columns</summary>$all</details>
</section>
<section class="card"><h2>$charts_h</h2>$charts</section>
<section class="card"><h2>$by_type</h2>
<table class="results"><thead><tr><th>$h_type</th><th>$h_cat</th><th>$h_count</th></tr></thead><tbody>$incidents</tbody></table>
</section>
<section class="card"><h2>$review</h2>
<form method="get" action="/reports/agent-month" class="filters">
  <label>$l_month <input name="month" value="$month" pattern="\\d{4}-\\d{2}" placeholder="YYYY-MM" required></label>
  <button type="submit">$open_review</button>
</form></section>""",
            title=t.gettext("Reports"),
            l_from=t.gettext("From"),
            l_to=t.gettext("To"),
            l_by=t.gettext("By"),
            show=t.gettext("Show"),
            download=t.gettext("Download CSV"),
            period=t.gettext(
                "{start} – {end}, times in {tz}.",
                start=t.day(table.start),
                end=t.day(table.end),
                tz=table.timezone,
            ),
            all_columns=t.gettext("All columns"),
            charts_h=t.gettext("Charts"),
            by_type=t.gettext("Incidents by type"),
            h_type=t.gettext("Request type"),
            h_cat=t.gettext("Category"),
            h_count=t.gettext("Count"),
            review=t.gettext("Monthly agent review"),
            l_month=t.gettext("Month"),
            open_review=t.gettext("Open the review"),
            start=table.start.isoformat(),
            end=table.end.isoformat(),
            by_options=join(
                tag("option", t.gettext(GROUP_WORDS[g]), value=g, selected=(g == table.by) or None)
                for g in GROUPINGS
            ),
            csv=csv_href,
            table=self._kpi_table(main_cols, lines, table.by, t),
            all=self._kpi_table(table.columns, lines, table.by, t),
            charts=self._charts(table, t),
            incidents=incidents,
            month=table.end.strftime("%Y-%m"),
        )
        return self._page_layout(ctx, t.gettext("Reports"), main, t)

    def _render_month(self, ctx: RequestContext, review: AgentMonthTable, t: Translator) -> Markup:
        def rows(lines: Sequence[AgentMonthLine]) -> Markup:
            return join(
                tag(
                    "tr",
                    join(
                        [
                            tag("td", line.key, class_="mono"),
                            tag("td", line.name),
                            tag("td", t.number(line.incidents_handled), class_="num"),
                            tag("td", t.number(line.consultations_answered), class_="num"),
                            tag("td", t.number(line.satisfaction_recorded), class_="num"),
                            tag("td", t.number(line.callbacks_done), class_="num"),
                            tag("td", t.number(line.followups), class_="num"),
                        ]
                    ),
                )
                for line in lines
            )

        heads = (
            N_("Name"),
            N_("Incidents handled"),
            N_("Consultations"),
            N_("Satisfaction recorded"),
            N_("Callbacks done"),
            N_("Follow-ups"),
        )
        head = render(
            "<thead><tr><th></th>$cells</tr></thead>",
            cells=join(tag("th", t.gettext(h)) for h in heads),
        )
        chart = bar_chart(
            t.gettext("Incidents handled per staff member"),
            [
                (f"{line.name}", float(line.incidents_handled), str(line.incidents_handled))
                for line in review.staff
            ],
        )
        main = render(
            """<section class="card"><h1>$title</h1>
<p><a href="/reports/agent-month.csv?month=$month" id="month-csv">$download</a> · <a href="/reports">$kpis</a> · $tz</p>
<h2>$per_staff</h2>
<table class="results" id="staff-review">$head<tbody>$staff</tbody></table>
$chart
<h2>$per_seat</h2>
<table class="results" id="seat-review">$head<tbody>$seats</tbody></table>
</section>""",
            title=t.gettext("Agent review {month}", month=review.month),
            download=t.gettext("Download CSV"),
            kpis=t.gettext("KPIs"),
            per_staff=t.gettext("Per staff member"),
            per_seat=t.gettext("Per seat"),
            month=review.month,
            tz=t.gettext("times in {tz}", tz=review.timezone),
            head=head,
            staff=rows(review.staff),
            seats=rows(review.seats),
            chart=chart,
        )
        return self._page_layout(
            ctx, t.gettext("Agent review {month}", month=review.month), main, t
        )
