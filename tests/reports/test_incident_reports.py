"""Incident reports on SQLite and PostgreSQL from stored facts: by type and category, SLA by
priority with suspended time not counted, backlog by age, first- vs second-line resolution, FCR
from the incidents' contacts, first-line resolution by article, uncovered categories, CSV."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.db.schema import IncidentContact, IncidentHistory, KbArticle
from ctid.reports.incidents import (
    ArticleRow,
    BacklogRow,
    FcrRow,
    LineRow,
    SlaRow,
    TypeCategoryRow,
    backlog_by_age,
    by_type_and_category,
    categories_without_article,
    first_contact_resolution,
    first_line_by_article,
    resolution_lines,
    rows_csv,
    sla_by_priority,
)

from .conftest import at, call, incident, insert

DAY = date(2026, 11, 2)
T = at(2, 9)
NOW = at(6, 9)


def m(minutes: float):  # type: ignore[no-untyped-def]
    return T + timedelta(minutes=minutes)


def prio(row, p: str, response: int, resolve: int, responded: float | None, resolved: float | None):  # type: ignore[no-untyped-def]
    row.priority = p
    row.sla_response_due = T + timedelta(minutes=response)
    row.sla_resolve_due = T + timedelta(minutes=resolve)
    row.responded_at = None if responded is None else m(responded)
    row.resolved_at = None if resolved is None else m(resolved)
    return row


def h(inc_id: int, minutes: float, action: str, to: str) -> IncidentHistory:
    return IncidentHistory(
        incident_id=inc_id, at=m(minutes), actor="seat1", action=action, to_status=to
    )


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    article = KbArticle(
        id=7,
        title="打印机卡纸",
        symptoms="",
        steps="取出纸张",
        category="hardware",
        tags="",
        language="zh",
        status="published",
        search_text="打印机卡纸",
        version=1,
        created_by="S001",
        created_at=T,
        updated_by="S001",
        updated_at=T,
    )
    # 1: first line, cited the article, one call, SLA met.
    i1 = prio(incident(1, T, category="hardware", status="resolved"), "P2", 30, 480, 5, 60)
    i1.kb_article_id = 7
    # 2: first line, but the caller called twice (a contact): not FCR; resolution breached.
    i2 = prio(incident(2, T, category="hardware", status="closed"), "P3", 120, 1440, 1, 2000)
    # 3: dispatched, suspended 10..300, resolved at 400: 110 running minutes of 240: met.
    i3 = prio(incident(3, T, category="network", status="resolved"), "P1", 15, 240, 5, 400)
    i3.owner_group = "network"
    # 4: open consultation, unprioritised.
    i4 = incident(4, T, request_type="consultation", status="new")
    # 5: open, P2, past its resolution due time: breached; 6: a withdrawn duplicate of it.
    i5 = prio(incident(5, T, category="network", status="suspended"), "P2", 30, 480, 3, None)
    i6 = incident(6, T, category="network", status="closed", flags=["merged"])
    i6.merged_into_id = 5
    await insert(
        sessions,
        article,
        i1,
        i2,
        i3,
        i4,
        i5,
        i6,
        call("c1", T, "answered", incident_id=1),
        call("c2", T, "answered", incident_id=2),
        call("c3", m(30), "answered", incident_id=2),
        IncidentContact(incident_id=2, call_id="c3", kind="call", at=m(30), actor="seat1"),
        IncidentContact(incident_id=2, call_id="c9", kind="status_query", at=m(40), actor="ivr"),
        h(1, 0, "create", "in_progress"),
        h(1, 60, "resolve_first_line", "resolved"),
        h(2, 0, "create", "in_progress"),
        h(2, 2000, "resolve", "resolved"),
        h(3, 0, "create", "in_progress"),
        h(3, 5, "dispatch", "dispatched"),
        h(3, 10, "suspend", "suspended"),
        h(3, 300, "resume", "accepted"),
        h(3, 400, "resolve", "resolved"),
        h(5, 0, "create", "in_progress"),
        h(5, 600, "suspend", "suspended"),
    )


async def test_incident_reports(
    any_sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await seed(any_sessions)
    end = date(2026, 11, 6)
    assert await by_type_and_category(any_sessions, cfg, DAY, end) == [
        TypeCategoryRow("consultation", "(none)", 1, 1, 0),
        TypeCategoryRow("fault", "hardware", 2, 0, 2),
        TypeCategoryRow("fault", "network", 2, 1, 1),
    ]
    assert await by_type_and_category(any_sessions, cfg, date(2026, 11, 3), end) == []
    assert await sla_by_priority(any_sessions, cfg, DAY, end, NOW) == [
        SlaRow("P1", 1, 1, 0, 0, 1.0, 1, 0, 0, 1.0),
        SlaRow("P2", 2, 2, 0, 0, 1.0, 1, 1, 0, 0.5),
        SlaRow("P3", 1, 1, 0, 0, 1.0, 0, 1, 0, 0.0),
    ]
    # Judged at 200 minutes, the P2 that is open still has time.
    early = await sla_by_priority(any_sessions, cfg, DAY, end, m(200))
    assert [(r.priority, r.resolution_running) for r in early] == [("P1", 0), ("P2", 1), ("P3", 0)]
    backlog = await backlog_by_age(any_sessions, NOW)
    assert backlog[0] == BacklogRow("< 1 day", 0, 0, 0, 0)
    assert backlog[1] == BacklogRow("1-3 days", 0, 0, 0, 0)
    assert backlog[2] == BacklogRow("3-7 days", 2, 1, 0, 1)
    assert backlog[-1] == BacklogRow("total", 2, 1, 0, 1)
    assert await resolution_lines(any_sessions, cfg, DAY, end) == [
        LineRow("first_line", 2, 2 / 3),
        LineRow("second_line", 1, 1 / 3),
        LineRow("total", 3, 1.0),
    ]
    assert await first_contact_resolution(any_sessions, cfg, DAY, end) == FcrRow(3, 1, 1 / 3, 1)
    assert await first_line_by_article(any_sessions, cfg, DAY, end) == [
        ArticleRow(7, "打印机卡纸", 1),
        ArticleRow(None, "(no article)", 1),
    ]
    assert await categories_without_article(any_sessions) == ["network"]
    assert await categories_without_article(any_sessions, ["software", "hardware"]) == ["software"]


async def test_reports_as_csv(any_sessions: async_sessionmaker[AsyncSession], cfg: Config) -> None:
    await seed(any_sessions)
    rows = await resolution_lines(any_sessions, cfg, DAY, date(2026, 11, 6))
    assert rows_csv(LineRow, rows) == (
        "line,resolved,share\r\nfirst_line,2,0.6667\r\nsecond_line,1,0.3333\r\ntotal,3,1.0000\r\n"
    )
    assert rows_csv(ArticleRow, [ArticleRow(None, "=cmd()", 0)]) == (
        "article_id,title,first_line_resolved\r\n,'=cmd(),0\r\n"
    )
    assert rows_csv(SlaRow, []) == (
        "priority,incidents,response_met,response_breached,response_running,response_met_rate,"
        "resolution_met,resolution_breached,resolution_running,resolution_met_rate\r\n"
    )
