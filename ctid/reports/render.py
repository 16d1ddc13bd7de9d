"""Reports as plain-text tables (terminal, mail) and as CSV that spreadsheets open safely: a cell
that starts like a formula is prefixed with `'` so Excel/LibreOffice show it as text."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ctid.i18n import N_, Translator
from ctid.reports.agent_month import AgentMonth, AgentMonthRow
from ctid.reports.kpi import KpiRow, Report

Kind = Literal["count", "rate", "seconds", "score", "text"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters a spreadsheet reads as a formula (tab and CR too: some strip them first)."""


def safe_cell(value: str) -> str:
    """`value` made harmless for a spreadsheet (CSV formula injection)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """CSV (RFC 4180 quoting, CRLF line ends) with every cell passed through `safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return out.getvalue()


def _width(text: str) -> int:
    # CJK names take two terminal columns each.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


MAX_WIDTH = 100
"""Terminal columns a table may take before it switches to the record layout."""


def record_layout(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """One block per row: its first cell as a heading, then `label  value` lines."""
    label_w = max((_width(h) for h in header[1:]), default=0)
    blocks = []
    for row in rows:
        lines = [f"-- {header[0]}: {row[0]}"]
        for label, cell in zip(header[1:], row[1:], strict=True):
            lines.append(f"  {label}{' ' * (label_w - _width(label))}  {cell}".rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def text_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    left: int = 1,
    rule_before_last: bool = False,
    max_width: int | None = MAX_WIDTH,
) -> str:
    """Columns padded to their widest cell: the first `left` columns (names) left-aligned, the
    rest (numbers) right-aligned. `rule_before_last` sets a total line apart. A table wider than
    `max_width` terminal columns comes out as one record per row instead (`record_layout`)."""
    widths = [_width(h) for h in header]
    for row in rows:
        widths = [max(w, _width(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            pad = " " * (w - _width(cell))
            parts.append(cell + pad if i < left else pad + cell)
        return "  ".join(parts).rstrip()

    if max_width is not None and sum(widths) + 2 * (len(widths) - 1) > max_width:
        return record_layout(header, rows)
    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in rows]
    if rule_before_last and body:
        body.insert(len(body) - 1, rule)
    return "\n".join([line(header), rule, *body]) + "\n"


# --------------------------------------------------------------------------- KPI report


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    """CSV header and `KpiRow` attribute."""
    label: str
    """Text-table header."""
    kind: Kind


KPI_COLUMNS: tuple[Column, ...] = (
    Column("offered", N_("offered"), "count"),
    Column("answered", N_("answered"), "count"),
    Column("abandoned", N_("abandoned"), "count"),
    Column("short_abandons", N_("short"), "count"),
    Column("unanswered", N_("unanswered"), "count"),
    Column("loss_rate", N_("loss"), "rate"),
    Column("after_hours", N_("after hrs"), "count"),
    Column("answered_all", N_("ans all"), "count"),
    Column("within_rings", N_("in rings"), "count"),
    Column("within_rings_rate", N_("in rings %"), "rate"),
    Column("ring_1", N_("r1"), "count"),
    Column("ring_2", N_("r2"), "count"),
    Column("ring_3", N_("r3"), "count"),
    Column("ring_over", N_("r>3"), "count"),
    Column("ring_unknown", N_("r?"), "count"),
    Column("asa_s", N_("ASA s"), "seconds"),
    Column("aht_s", N_("AHT s"), "seconds"),
    Column("over_cap", N_("over cap"), "count"),
    Column("ring_misses", N_("misses"), "count"),
    Column("auto_pauses", N_("pauses"), "count"),
    Column("repeat_calls", N_("repeats"), "count"),
    Column("incidents", N_("incidents"), "count"),
    Column("first_line_resolved", N_("FLR"), "count"),
    Column("first_line_settled", N_("settled"), "count"),
    Column("first_line_rate", N_("FLR %"), "rate"),
    Column("satisfaction_avg", N_("sat avg"), "score"),
    Column("satisfaction_count", N_("sat n"), "count"),
)

KPI_LABELS: dict[str, str] = {
    "offered": N_("Calls offered (reached a queue in service hours)"),
    "answered": "  " + N_("answered"),
    "abandoned": "  " + N_("abandoned in queue"),
    "short_abandons": "    " + N_("of which short abandons"),
    "unanswered": "  " + N_("unanswered (queue timeout)"),
    "loss_rate": N_("Call loss rate"),
    "after_hours": N_("Calls outside service hours"),
    "answered_all": N_("Answered calls (all hours)"),
    "within_rings": "  " + N_("answered within the ring limit"),
    "within_rings_rate": "  " + N_("answered within the ring limit, rate"),
    "ring_1": "  " + N_("answered at ring 1"),
    "ring_2": "  " + N_("answered at ring 2"),
    "ring_3": "  " + N_("answered at ring 3"),
    "ring_over": "  " + N_("answered after ring 3"),
    "ring_unknown": "  " + N_("answer ring unknown"),
    "asa_s": N_("Average speed of answer (s)"),
    "aht_s": N_("Average handle time, talk (s)"),
    "over_cap": N_("Calls over the talk cap"),
    "ring_misses": N_("Ring misses"),
    "auto_pauses": N_("Auto-pauses (ring no answer)"),
    "repeat_calls": N_("Repeat calls"),
    "incidents": N_("Incidents created"),
    "first_line_resolved": "  " + N_("resolved at first line"),
    "first_line_settled": "  " + N_("settled (resolved or left first line)"),
    "first_line_rate": N_("First-line resolution rate"),
    "satisfaction_avg": N_("Satisfaction, average (1-5)"),
    "satisfaction_count": N_("Satisfaction, ratings"),
}


def _fmt(value: object, kind: Kind, *, for_csv: bool) -> str:
    if value is None:
        return "" if for_csv else "-"
    if kind == "rate" and isinstance(value, float):
        return f"{value:.4f}" if for_csv else f"{value * 100:.1f}%"
    if kind == "seconds" and isinstance(value, float):
        return f"{value:.1f}"
    if kind == "score" and isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _kpi_cells(row: KpiRow, *, for_csv: bool) -> list[str]:
    return [row.key] + [_fmt(getattr(row, c.name), c.kind, for_csv=for_csv) for c in KPI_COLUMNS]


GROUP_WORDS: dict[str, str] = {
    "total": N_("group"),
    "seat": N_("seat"),
    "tier": N_("tier"),
    "day": N_("day"),
    "hour": N_("hour"),
}
"""What the first column of a KPI table holds, per grouping."""


def report_csv(report: Report, t: Translator | None = None) -> str:
    """One line per group, then the `total` line. The incident breakdown is `incidents_csv`.
    Headers are the column names (stable, for scripts) or, with `t`, the KPIs in words in that
    language (for people opening the download in a spreadsheet)."""
    if t is None:
        header = [report.by if report.by != "total" else "group", *(c.name for c in KPI_COLUMNS)]
    else:
        header = [
            t.gettext(GROUP_WORDS.get(report.by, report.by)),
            *(t.gettext(KPI_LABELS[c.name].strip()) for c in KPI_COLUMNS),
        ]
    rows = [_kpi_cells(r, for_csv=True) for r in (*report.rows, report.total)]
    if t is not None:
        rows[-1][0] = t.gettext(TOTAL_WORD)
    return csv_text(header, rows)


TOTAL_WORD = N_("total")


def incidents_csv(report: Report) -> str:
    rows = [[i.request_type, i.category or "", str(i.count)] for i in report.incidents_by_type]
    return csv_text(["request_type", "category", "incidents"], rows)


def report_text(report: Report) -> str:
    title = (
        f"Service desk KPIs {report.start.isoformat()} .. {report.end.isoformat()} "
        f"({report.timezone})" + (f", by {report.by}" if report.by != "total" else "")
    )
    parts = [title, "=" * _width(title), ""]
    if report.by == "total":
        rows = [
            [KPI_LABELS[c.name], _fmt(getattr(report.total, c.name), c.kind, for_csv=False)]
            for c in KPI_COLUMNS
        ]
        parts.append(text_table(["KPI", "value"], rows))
    else:
        header = [report.by, *(c.label for c in KPI_COLUMNS)]
        rows = [_kpi_cells(r, for_csv=False) for r in (*report.rows, report.total)]
        parts.append(text_table(header, rows, rule_before_last=True))
    parts.append("")
    parts.append("Incidents by request type and category")
    if report.incidents_by_type:
        rows = [
            [i.request_type, i.category or "(none)", str(i.count)] for i in report.incidents_by_type
        ]
        rows.append(["total", "", str(sum(i.count for i in report.incidents_by_type))])
        parts.append(
            text_table(
                ["request type", "category", "incidents"], rows, left=2, rule_before_last=True
            )
        )
    else:
        parts.append("(no incidents)\n")
    return "\n".join(parts)


def report_output(report: Report, *, as_csv: bool) -> str:
    return report_csv(report) if as_csv else report_text(report)


# --------------------------------------------------------------------------- agent month

AGENT_COLUMNS = (
    "incidents_handled",
    "consultations_answered",
    "satisfaction_recorded",
    "callbacks_done",
    "followups",
)
_AGENT_LABELS = ("incidents", "consultations", "satisfaction", "callbacks", "follow-ups")


def _agent_cells(row: AgentMonthRow) -> list[str]:
    return [row.key, row.name, *(str(getattr(row, c)) for c in AGENT_COLUMNS)]


AGENT_HEADS: tuple[str, ...] = (
    N_("month"),
    N_("kind"),
    N_("id"),
    N_("name"),
    N_("incidents handled"),
    N_("consultations answered"),
    N_("satisfaction recorded"),
    N_("callbacks done"),
    N_("follow-ups"),
)
"""The agent review's CSV headers in words (with a translator)."""
_KIND_WORDS = {"seat": N_("seat"), "staff": N_("staff member")}


def agent_month_csv(review: AgentMonth, t: Translator | None = None) -> str:
    """One table: a `kind` column says whether a line is a seat or a staff member. With `t`, the
    headers and kinds are words in its language."""
    header = ["month", "kind", "id", "name", *AGENT_COLUMNS]
    seat, staff = "seat", "staff"
    if t is not None:
        header = [t.gettext(h) for h in AGENT_HEADS]
        seat, staff = t.gettext(_KIND_WORDS["seat"]), t.gettext(_KIND_WORDS["staff"])
    rows = [[review.month, seat, *_agent_cells(r)] for r in review.seats]
    rows += [[review.month, staff, *_agent_cells(r)] for r in review.staff]
    return csv_text(header, rows)


def agent_month_text(review: AgentMonth) -> str:
    title = f"Agent review {review.month} ({review.timezone})"
    parts = [title, "=" * _width(title), "", "Per seat"]
    parts.append(
        text_table(
            ["seat", "name", *_AGENT_LABELS], [_agent_cells(r) for r in review.seats], left=2
        )
    )
    parts += ["", "Per staff member"]
    if review.staff:
        parts.append(
            text_table(
                ["employee", "name", *_AGENT_LABELS],
                [_agent_cells(r) for r in review.staff],
                left=2,
            )
        )
    else:
        parts.append("(nobody on the roster)\n")
    return "\n".join(parts)


def agent_month_output(review: AgentMonth, *, as_csv: bool) -> str:
    return agent_month_csv(review) if as_csv else agent_month_text(review)
