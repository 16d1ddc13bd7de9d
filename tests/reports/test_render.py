"""Text tables and formula-injection-safe CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from ctid.reports import kpi, render
from ctid.reports.agent_month import AgentMonth, AgentMonthRow
from ctid.reports.kpi import IncidentCount, Report


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("seat1", "seat1"),
        ("0.2500", "0.2500"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_safe_cell(cell: str, safe: str) -> None:
    assert render.safe_cell(cell) == safe


def test_csv_quotes_and_neutralises_every_cell() -> None:
    text = render.csv_text(
        ["id", "=name"], [["E001", '=cmd|" /C calc"!A0'], ["E002", 'Li, "Si"\nline 2']]
    )
    assert text == ('id,\'=name\r\nE001,"\'=cmd|"" /C calc""!A0"\r\nE002,"Li, ""Si""\nline 2"\r\n')
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        ["id", "'=name"],
        ["E001", '\'=cmd|" /C calc"!A0'],
        ["E002", 'Li, "Si"\nline 2'],
    ]


def _report(by: kpi.Grouping) -> Report:
    acc = kpi._Acc(offered=4, answered=3, abandoned=1, answered_all=3, within=2, ring_known=3)
    acc.wait_sum, acc.wait_n, acc.talk_sum, acc.talk_n = 31.0, 3, 400.0, 3
    acc.sat_sum, acc.sat_n = 9, 2
    row = acc.row("seat1")
    empty = kpi._Acc().row("@seat")
    return Report(
        start=date(2026, 11, 2),
        end=date(2026, 11, 3),
        by=by,
        timezone="Asia/Shanghai",
        rows=(row, empty) if by != "total" else (),
        total=acc.row("total"),
        incidents_by_type=(IncidentCount("fault", None, 2), IncidentCount("fault", "network", 1)),
    )


def test_report_csv() -> None:
    text = render.report_csv(_report("seat"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["seat"] for r in rows] == ["seat1", "'@seat", "total"]
    first = rows[0]
    assert (first["offered"], first["loss_rate"], first["within_rings_rate"]) == (
        "4",
        "0.2500",
        "0.6667",
    )
    assert (first["asa_s"], first["aht_s"], first["satisfaction_avg"]) == ("10.3", "133.3", "4.50")
    # No denominator: an empty cell, never 0 or a division error.
    assert (rows[1]["loss_rate"], rows[1]["asa_s"], rows[1]["first_line_rate"]) == ("", "", "")
    assert list(rows[0]) == ["seat", *(c.name for c in render.KPI_COLUMNS)]


def test_report_text_by_group() -> None:
    text = render.report_text(_report("seat"))
    lines = text.splitlines()
    assert lines[0] == "Service desk KPIs 2026-11-02 .. 2026-11-03 (Asia/Shanghai), by seat"
    # All KPI columns side by side would be ~230 columns: one record per seat instead.
    assert all(len(line) <= render.MAX_WIDTH for line in lines), max(lines, key=len)
    blocks = {
        b.splitlines()[0]: dict(
            line.strip().rsplit(None, 1) if len(line.split()) > 1 else (line.strip(), "")
            for line in b.splitlines()[1:]
        )
        for b in text.split("\n\n")
        if b.startswith("-- seat: ")
    }
    assert list(blocks) == ["-- seat: seat1", "-- seat: @seat", "-- seat: total"]
    seat1 = {k.strip(): v for k, v in blocks["-- seat: seat1"].items()}
    assert (seat1["offered"], seat1["answered"], seat1["abandoned"], seat1["loss"]) == (
        "4",
        "3",
        "1",
        "25.0%",
    )
    empty = {k.strip(): v for k, v in blocks["-- seat: @seat"].items()}
    assert (empty["offered"], empty["loss"]) == ("0", "-")
    total = {k.strip(): v for k, v in blocks["-- seat: total"].items()}
    assert total["offered"] == "4"

    assert text.endswith(
        "Incidents by request type and category\n"
        "request type  category  incidents\n"
        "------------  --------  ---------\n"
        "fault         (none)            2\n"
        "fault         network           1\n"
        "------------  --------  ---------\n"
        "total                           3\n"
    )


def test_narrow_tables_keep_their_columns() -> None:
    table = render.text_table(["seat", "offered"], [["seat1", "4"], ["total", "4"]])
    assert table.splitlines() == [
        "seat   offered",
        "-----  -------",
        "seat1        4",
        "total        4",
    ]
    wide = render.text_table(["seat", "x" * 60, "y" * 60], [["seat1", "1", "2"]])
    assert wide.splitlines()[0] == "-- seat: seat1"


def test_report_text_total_is_a_list_of_kpis() -> None:
    lines = render.report_text(_report("total")).splitlines()
    assert lines[3] == "KPI                                               value"
    assert lines[5] == "Calls offered (reached a queue in service hours)      4"
    assert lines[10] == "Call loss rate                                    25.0%"
    assert lines[14] == "  answered within the ring limit, rate            66.7%"
    assert lines[20] == "Average speed of answer (s)                        10.3"
    assert lines[29] == "First-line resolution rate                            -"
    assert lines[30] == "Satisfaction, average (1-5)                        4.50"


def test_agent_month_text_aligns_cjk_names_and_csv() -> None:
    review = AgentMonth(
        month="2026-11",
        timezone="Asia/Shanghai",
        seats=(AgentMonthRow("seat1", "Seat 1", 2, 1, 1, 1),),
        staff=(
            AgentMonthRow("E001", "张三", 2, 1, 1, 1),
            AgentMonthRow("E002", "=Li Si", 0, 0, 0, 0),
        ),
    )
    text = render.agent_month_text(review)
    # 张三 takes four terminal columns: two pad spaces, not four, keep the numbers aligned.
    assert text.endswith(
        "Per staff member\n"
        "employee  name    incidents  consultations  satisfaction  callbacks  follow-ups\n"
        "--------  ------  ---------  -------------  ------------  ---------  ----------\n"
        "E001      张三            2              1             1          1           2\n"
        "E002      =Li Si          0              0             0          0           0\n"
    )
    assert "seat1  Seat 1          2              1             1          1           2\n" in text
    rows = list(csv.reader(io.StringIO(render.agent_month_csv(review))))
    assert rows[0] == ["month", "kind", "id", "name", *render.AGENT_COLUMNS]
    assert rows[1] == ["2026-11", "seat", "seat1", "Seat 1", "2", "1", "1", "1", "2"]
    assert rows[3] == ["2026-11", "staff", "E002", "'=Li Si", "0", "0", "0", "0", "0"]


def test_csv_headers_in_words_of_the_translators_language() -> None:
    from ctid.i18n import translator

    zh = list(csv.reader(io.StringIO(render.report_csv(_report("seat"), translator("zh_CN")))))
    assert zh[0][:3] == ["坐席", "呼入量(服务时间内进入队列)", "已接"]
    assert zh[-1][0] == "合计"
    en = list(csv.reader(io.StringIO(render.report_csv(_report("seat"), translator("en")))))
    assert en[0][:3] == ["seat", "Calls offered (reached a queue in service hours)", "answered"]
    plain = list(csv.reader(io.StringIO(render.report_csv(_report("seat")))))
    assert plain[0][:3] == ["seat", "offered", "answered"]  # scripts keep the column names
    assert len(zh[0]) == len(en[0]) == len(plain[0])
