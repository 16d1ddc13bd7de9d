"""Incident reports for the duty manager and the CIO (docs/KPIS.md): by request type and category,
SLA by priority, backlog by age, first- vs second-line and first-contact resolution, knowledge-base
coverage; rows as dataclasses, and CSV."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.sla import RESOLUTION_PAUSES, RESPONSE_PAUSES, SlaClock, StatusChange, sla_clock
from ctid.db.schema import Call, Incident, IncidentContact, IncidentHistory, KbArticle
from ctid.reports.kpi import NONE_KEY, NOT_FIRST_LINE_ACTIONS, RESOLVED_STATUSES
from ctid.reports.period import day_range, site_zone
from ctid.reports.render import csv_text

NO_ARTICLE = "(no article)"
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("< 1 day", timedelta(days=1)),
    ("1-3 days", timedelta(days=3)),
    ("3-7 days", timedelta(days=7)),
    ("7-30 days", timedelta(days=30)),
    (">= 30 days", None),
)
"""Backlog age buckets: (label, upper bound exclusive; None = no bound)."""
SECOND_LINE_STATUSES = frozenset({"dispatched", "accepted"})


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


# --------------------------------------------------------------------------- row types


@dataclass(frozen=True, slots=True)
class TypeCategoryRow:
    request_type: str
    category: str
    incidents: int
    open: int
    resolved: int


@dataclass(frozen=True, slots=True)
class SlaRow:
    """One priority. met/breached are stopped clocks (an open incident past its due time counts
    as breached: it cannot be met any more); running are open ones still in time."""

    priority: str
    incidents: int
    response_met: int
    response_breached: int
    response_running: int
    response_met_rate: float | None
    resolution_met: int
    resolution_breached: int
    resolution_running: int
    resolution_met_rate: float | None


@dataclass(frozen=True, slots=True)
class BacklogRow:
    age: str
    incidents: int
    first_line: int
    second_line: int
    suspended: int


@dataclass(frozen=True, slots=True)
class LineRow:
    line: str
    """first_line | second_line | total"""
    resolved: int
    share: float | None


@dataclass(frozen=True, slots=True)
class FcrRow:
    resolved: int
    first_contact: int
    fcr_rate: float | None
    repeat_contacts: int
    """Resolved incidents that needed more than one contact."""


@dataclass(frozen=True, slots=True)
class ArticleRow:
    article_id: int | None
    title: str
    first_line_resolved: int


# --------------------------------------------------------------------------- shared facts


@dataclass(frozen=True, slots=True)
class _Inc:
    id: int
    request_type: str
    category: str | None
    priority: str | None
    status: str
    owner_group: str | None
    flags: tuple[str, ...]
    kb_article_id: int | None
    created_at: datetime
    responded_at: datetime | None
    resolved_at: datetime | None
    sla_response_due: datetime | None
    sla_resolve_due: datetime | None


async def _incidents(s: AsyncSession, lo: datetime | None, hi: datetime | None) -> list[_Inc]:
    query = select(Incident).where(Incident.merged_into_id.is_(None))
    if lo is not None and hi is not None:
        query = query.where(Incident.created_at >= lo, Incident.created_at < hi)
    return [
        _Inc(
            id=r.id,
            request_type=r.request_type,
            category=r.category,
            priority=r.priority,
            status=r.status,
            owner_group=r.owner_group,
            flags=tuple(r.flags or ()),
            kb_article_id=r.kb_article_id,
            created_at=r.created_at,
            responded_at=r.responded_at,
            resolved_at=r.resolved_at,
            sla_response_due=r.sla_response_due,
            sla_resolve_due=r.sla_resolve_due,
        )
        for r in (await s.execute(query)).scalars()
    ]


async def _left_first_line(s: AsyncSession, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    rows = await s.execute(
        select(IncidentHistory.incident_id).where(
            IncidentHistory.incident_id.in_(list(ids)),
            IncidentHistory.action.in_(NOT_FIRST_LINE_ACTIONS),
        )
    )
    return set(rows.scalars())


def _first_line(inc: _Inc, left: set[int]) -> bool:
    """Resolved by the desk: never dispatched or escalated (docs/KPIS.md, first_line_resolved)."""
    return inc.id not in left and inc.owner_group is None and "escalated" not in inc.flags


def _period(cfg: Config, start: date, end: date) -> tuple[datetime, datetime]:
    return day_range(start, end, site_zone(cfg))


# --------------------------------------------------------------------------- reports


async def by_type_and_category(
    sessions: async_sessionmaker[AsyncSession], cfg: Config, start: date, end: date
) -> list[TypeCategoryRow]:
    """Incidents created in the period per (request type, category), with how many are still
    open and how many are resolved or closed."""
    lo, hi = _period(cfg, start, end)
    async with sessions() as s:
        incs = await _incidents(s, lo, hi)
    acc: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for inc in incs:
        a = acc[(inc.request_type, inc.category or NONE_KEY)]
        a[0] += 1
        a[2 if inc.status in RESOLVED_STATUSES else 1] += 1
    return [
        TypeCategoryRow(rtype, cat, n, o, r)
        for (rtype, cat), (n, o, r) in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    ]


async def sla_by_priority(
    sessions: async_sessionmaker[AsyncSession],
    cfg: Config,
    start: date,
    end: date,
    now: datetime,
) -> list[SlaRow]:
    """Response and resolution SLA per priority for incidents created in the period, judged at
    `now` with suspended time not counted (ctid.core.sla). Unprioritised incidents have no SLA
    and are left out."""
    lo, hi = _period(cfg, start, end)
    async with sessions() as s:
        incs = [i for i in await _incidents(s, lo, hi) if i.priority]
        changes: defaultdict[int, list[StatusChange]] = defaultdict(list)
        if incs:
            rows = await s.execute(
                select(IncidentHistory.incident_id, IncidentHistory.at, IncidentHistory.to_status)
                .where(
                    IncidentHistory.incident_id.in_([i.id for i in incs]),
                    IncidentHistory.to_status.is_not(None),
                )
                .order_by(IncidentHistory.at, IncidentHistory.id)
            )
            for inc_id, at, status in rows:
                if status is not None:
                    changes[inc_id].append(StatusChange(at, status))
    acc: dict[str, list[int]] = {}
    for inc in incs:
        assert inc.priority is not None
        a = acc.setdefault(inc.priority, [0] * 7)
        a[0] += 1
        for offset, clock in (
            (1, _clock(inc, changes[inc.id], now, response=True)),
            (4, _clock(inc, changes[inc.id], now, response=False)),
        ):
            if clock.state == "met":
                a[offset] += 1
            elif clock.state in ("breached", "overdue"):
                a[offset + 1] += 1
            elif clock.state in ("running", "paused"):
                a[offset + 2] += 1
    return [
        SlaRow(
            priority=p,
            incidents=a[0],
            response_met=a[1],
            response_breached=a[2],
            response_running=a[3],
            response_met_rate=_rate(a[1], a[1] + a[2]),
            resolution_met=a[4],
            resolution_breached=a[5],
            resolution_running=a[6],
            resolution_met_rate=_rate(a[4], a[4] + a[5]),
        )
        for p, a in sorted(acc.items())
    ]


def _clock(inc: _Inc, changes: list[StatusChange], now: datetime, *, response: bool) -> SlaClock:
    due = inc.sla_response_due if response else inc.sla_resolve_due
    return sla_clock(
        created_at=inc.created_at,
        budget=None if due is None else due - inc.created_at,
        changes=changes,
        stopped_at=inc.responded_at if response else inc.resolved_at,
        now=now,
        pauses=RESPONSE_PAUSES if response else RESOLUTION_PAUSES,
    )


async def backlog_by_age(
    sessions: async_sessionmaker[AsyncSession], now: datetime
) -> list[BacklogRow]:
    """Incidents open at `now` (whenever created) by age, split into still at first line, with
    a second-line group, and suspended. Every bucket gets a row; the last row is the total."""
    async with sessions() as s:
        incs = [i for i in await _incidents(s, None, None) if i.status not in RESOLVED_STATUSES]
    counts = {label: [0, 0, 0, 0] for label, _ in AGE_BUCKETS}
    for inc in incs:
        age = now - inc.created_at
        label = next(lbl for lbl, upper in AGE_BUCKETS if upper is None or age < upper)
        a = counts[label]
        a[0] += 1
        if inc.status == "suspended":
            a[3] += 1
        elif inc.status in SECOND_LINE_STATUSES:
            a[2] += 1
        else:
            a[1] += 1
    rows = [BacklogRow(label, *counts[label]) for label, _ in AGE_BUCKETS]
    totals = [sum(c[i] for c in counts.values()) for i in range(4)]
    rows.append(BacklogRow("total", *totals))
    return rows


async def resolution_lines(
    sessions: async_sessionmaker[AsyncSession], cfg: Config, start: date, end: date
) -> list[LineRow]:
    """Incidents created in the period and resolved (or closed): by the desk (first line) or
    after dispatch/escalation (second line), with their shares, and the total."""
    lo, hi = _period(cfg, start, end)
    async with sessions() as s:
        incs = [i for i in await _incidents(s, lo, hi) if i.status in RESOLVED_STATUSES]
        left = await _left_first_line(s, [i.id for i in incs])
    first = sum(1 for i in incs if _first_line(i, left))
    second = len(incs) - first
    return [
        LineRow("first_line", first, _rate(first, len(incs))),
        LineRow("second_line", second, _rate(second, len(incs))),
        LineRow("total", len(incs), _rate(len(incs), len(incs))),
    ]


async def contact_counts(s: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
    """incident id → contacts (docs/KPIS.md): distinct calls linked to it or attached to it,
    plus contacts without a call; at least 1 (the contact that opened it)."""
    calls: defaultdict[int, set[str]] = defaultdict(set)
    extra: defaultdict[int, int] = defaultdict(int)
    if ids:
        for linked, cid in await s.execute(
            select(Call.incident_id, Call.call_id).where(Call.incident_id.in_(list(ids)))
        ):
            if linked is not None:
                calls[linked].add(cid)
        for inc_id, contact_call in await s.execute(
            select(IncidentContact.incident_id, IncidentContact.call_id).where(
                IncidentContact.incident_id.in_(list(ids))
            )
        ):
            if contact_call is None:
                extra[inc_id] += 1
            else:
                calls[inc_id].add(contact_call)
    return {i: max(1, len(calls[i]) + extra[i]) for i in ids}


async def first_contact_resolution(
    sessions: async_sessionmaker[AsyncSession], cfg: Config, start: date, end: date
) -> FcrRow:
    """FCR: of the incidents created in the period and resolved, those resolved at first line
    with a single contact."""
    lo, hi = _period(cfg, start, end)
    async with sessions() as s:
        incs = [i for i in await _incidents(s, lo, hi) if i.status in RESOLVED_STATUSES]
        ids = [i.id for i in incs]
        left = await _left_first_line(s, ids)
        contacts = await contact_counts(s, ids)
    fcr = sum(1 for i in incs if contacts[i.id] == 1 and _first_line(i, left))
    repeat = sum(1 for i in incs if contacts[i.id] > 1)
    return FcrRow(len(incs), fcr, _rate(fcr, len(incs)), repeat)


async def first_line_by_article(
    sessions: async_sessionmaker[AsyncSession], cfg: Config, start: date, end: date
) -> list[ArticleRow]:
    """First-line resolutions of incidents created in the period, per cited knowledge article
    (most used first), then those that cited none."""
    lo, hi = _period(cfg, start, end)
    async with sessions() as s:
        incs = [i for i in await _incidents(s, lo, hi) if i.status in RESOLVED_STATUSES]
        left = await _left_first_line(s, [i.id for i in incs])
        per: defaultdict[int | None, int] = defaultdict(int)
        for inc in incs:
            if _first_line(inc, left):
                per[inc.kb_article_id] += 1
        ids = [k for k in per if k is not None]
        titles: dict[int, str] = {}
        if ids:
            rows = await s.execute(
                select(KbArticle.id, KbArticle.title).where(KbArticle.id.in_(ids))
            )
            titles = {int(i): str(t) for i, t in rows}
    cited = sorted(
        (ArticleRow(k, titles.get(k, f"#{k}"), n) for k, n in per.items() if k is not None),
        key=lambda r: (-r.first_line_resolved, r.article_id or 0),
    )
    return [*cited, ArticleRow(None, NO_ARTICLE, per.get(None, 0))]


async def categories_without_article(
    sessions: async_sessionmaker[AsyncSession], categories: Sequence[str] | None = None
) -> list[str]:
    """Categories no published article is written for (an article without a category does not
    cover one). `categories`: the vocabulary to check (the app passes ctid.tickets'); default:
    every category incidents have used."""
    async with sessions() as s:
        if categories is None:
            used = await s.execute(
                select(Incident.category).where(Incident.category.is_not(None)).distinct()
            )
            categories = sorted(str(c) for c in used.scalars())
        covered = set(
            (
                await s.execute(
                    select(KbArticle.category)
                    .where(KbArticle.status == "published", KbArticle.category.is_not(None))
                    .distinct()
                )
            ).scalars()
        )
    return [c for c in categories if c not in covered]


# --------------------------------------------------------------------------- CSV


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def rows_csv(row_type: type[Any], rows: Sequence[Any]) -> str:
    """Rows of one of the types above as CSV: the field names as header, rates as fractions with
    four decimals, empty cells for None (render.csv_text guards against formula injection)."""
    fields = [f.name for f in dataclasses.fields(row_type)]
    return csv_text(fields, [[_cell(getattr(r, f)) for f in fields] for r in rows])
