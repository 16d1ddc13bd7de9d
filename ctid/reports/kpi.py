"""The desk's KPIs, computed from stored facts (calls, ring attempts, incidents and their history,
the audit log) so they survive restarts; grouped per seat, tier, site-local day or hour.
Every number is defined in docs/KPIS.md; keep the two in step."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.db.schema import AuditLog, Call, Incident, IncidentHistory, RingAttempt
from ctid.reports.period import (
    Origin,
    ReportError,
    Roster,
    day_range,
    days_between,
    incident_origins,
    load_roster,
    load_service_hours,
    site_zone,
)

Grouping = Literal["total", "seat", "tier", "day", "hour"]
GROUPINGS: tuple[Grouping, ...] = get_args(Grouping)

TOTAL_KEY = "total"
NONE_KEY = "(none)"
"""The row for facts no seat (or tier) can be credited with: calls nobody answered, say."""

# Call outcomes as the tracker stores them.
ANSWERED = "answered"
ABANDONED_IN_QUEUE = "abandoned_in_queue"
UNANSWERED_TIMEOUT = "unanswered_timeout"
CLOSED_HOURS = "closed_hours"

MISSED_RING_OUTCOMES = ("no_answer", "cut")
"""A ring attempt the seat let run out (the queue's ring timeout, or ctid cut it at the deadline)."""
NOT_FIRST_LINE_ACTIONS = ("dispatch", "escalate")
"""History actions that take an incident out of first-line resolution for good."""
RESOLVED_STATUSES = frozenset({"resolved", "closed"})
AUTO_PAUSE_ACTION = "seat_paused"
AUTO_PAUSE_REASON = "rna"
RING_BUCKETS = 3
"""Answer-ring distribution columns: rings 1, 2, 3, then `over`."""


@dataclass(frozen=True, slots=True)
class KpiRow:
    """One row of KPI values. Rates are fractions (0.0–1.0), None when the denominator is 0;
    averages are seconds or points, None when there is nothing to average."""

    key: str
    offered: int
    answered: int
    abandoned: int
    short_abandons: int
    unanswered: int
    loss_rate: float | None
    after_hours: int
    answered_all: int
    within_rings: int
    within_rings_rate: float | None
    ring_1: int
    ring_2: int
    ring_3: int
    ring_over: int
    ring_unknown: int
    asa_s: float | None
    aht_s: float | None
    over_cap: int
    ring_misses: int
    auto_pauses: int
    repeat_calls: int
    incidents: int
    first_line_resolved: int
    first_line_settled: int
    first_line_rate: float | None
    satisfaction_avg: float | None
    satisfaction_count: int


@dataclass(frozen=True, slots=True)
class IncidentCount:
    """Incidents created in the period with this request type and category (None: unclassified)."""

    request_type: str
    category: str | None
    count: int


@dataclass(frozen=True, slots=True)
class Report:
    start: date
    end: date
    by: Grouping
    timezone: str
    rows: tuple[KpiRow, ...]
    """One row per group (empty for `by="total"`), in a stable order."""
    total: KpiRow
    incidents_by_type: tuple[IncidentCount, ...]


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _avg(total: float, n: int) -> float | None:
    return total / n if n else None


@dataclass
class _Acc:
    """Running sums for one row."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandons: int = 0
    unanswered: int = 0
    after_hours: int = 0
    answered_all: int = 0
    within: int = 0
    ring_known: int = 0
    rings: list[int] = field(default_factory=lambda: [0] * (RING_BUCKETS + 1))
    ring_unknown: int = 0
    wait_sum: float = 0.0
    wait_n: int = 0
    talk_sum: float = 0.0
    talk_n: int = 0
    over_cap: int = 0
    ring_misses: int = 0
    auto_pauses: int = 0
    repeat_calls: int = 0
    incidents: int = 0
    fl_resolved: int = 0
    fl_settled: int = 0
    sat_sum: int = 0
    sat_n: int = 0

    def row(self, key: str) -> KpiRow:
        lost = self.abandoned - self.short_abandons + self.unanswered
        return KpiRow(
            key=key,
            offered=self.offered,
            answered=self.answered,
            abandoned=self.abandoned,
            short_abandons=self.short_abandons,
            unanswered=self.unanswered,
            loss_rate=_rate(lost, self.offered),
            after_hours=self.after_hours,
            answered_all=self.answered_all,
            within_rings=self.within,
            within_rings_rate=_rate(self.within, self.ring_known),
            ring_1=self.rings[0],
            ring_2=self.rings[1],
            ring_3=self.rings[2],
            ring_over=self.rings[3],
            ring_unknown=self.ring_unknown,
            asa_s=_avg(self.wait_sum, self.wait_n),
            aht_s=_avg(self.talk_sum, self.talk_n),
            over_cap=self.over_cap,
            ring_misses=self.ring_misses,
            auto_pauses=self.auto_pauses,
            repeat_calls=self.repeat_calls,
            incidents=self.incidents,
            first_line_resolved=self.fl_resolved,
            first_line_settled=self.fl_settled,
            first_line_rate=_rate(self.fl_resolved, self.fl_settled),
            satisfaction_avg=_avg(self.sat_sum, self.sat_n),
            satisfaction_count=self.sat_n,
        )


@dataclass(frozen=True, slots=True)
class _CallFact:
    call_id: str
    number: str | None
    started: datetime
    queued: datetime | None
    answered: datetime | None
    ended: datetime | None
    seat: str | None
    answer_ring: int | None
    within_rings: bool | None
    outcome: str
    talk_s: float | None
    capped: bool


class _Groups:
    """Routes each fact to its group's row and to the total row."""

    def __init__(self, by: Grouping, cfg: Config, roster: Roster) -> None:
        self.by = by
        self.tz = site_zone(cfg)
        self.roster = roster
        self.total = _Acc()
        self.rows: defaultdict[str, _Acc] = defaultdict(_Acc)

    def key(self, at: datetime, seat: str | None) -> str:
        match self.by:
            case "total":
                return TOTAL_KEY
            case "seat":
                return seat or NONE_KEY
            case "tier":
                return self.roster.tier(seat) or NONE_KEY
            case "day":
                return at.astimezone(self.tz).date().isoformat()
            case "hour":
                return f"{at.astimezone(self.tz).hour:02d}"

    def accs(self, at: datetime, seat: str | None) -> tuple[_Acc, ...]:
        if self.by == "total":
            return (self.total,)
        return (self.total, self.rows[self.key(at, seat)])


async def compute(
    sessions: async_sessionmaker[AsyncSession],
    cfg: Config,
    start: date,
    end: date,
    by: Grouping,
    *,
    is_open: Callable[[datetime], bool] | None = None,
) -> Report:
    """The KPIs for the site-local days `start`..`end` (both included), grouped `by`.

    `is_open` says whether the desk was serving at an instant; by default `[hours]` plus the
    `holidays` table (pass `ServiceCalendar.is_open` from ctid.rotation to honour the holidays
    file as well). Calls, ring misses and incidents are credited by when the call started / the
    incident was created, in the site zone.
    """
    if by not in GROUPINGS:
        raise ReportError(f"cannot group a report by {by!r} (choose {', '.join(GROUPINGS)})")
    lo, hi = day_range(start, end, site_zone(cfg))
    async with sessions() as s:
        if is_open is None:
            is_open = (await load_service_hours(s, cfg)).is_open
        roster = await load_roster(s, cfg)
        groups = _Groups(by, cfg, roster)
        lookback = lo - timedelta(days=cfg.reports.repeat_call_days)
        calls = await _calls(s, lookback, hi)
        rings = await _answer_ring_seconds(s, lo, hi)
        legs = await _answered_legs(s, lo, hi)
        in_range = [c for c in calls if c.started >= lo]
        for c in in_range:
            _add_call(groups, cfg, c, is_open, rings.get(c.call_id))
            _add_transfer_legs(groups, c, legs.get(c.call_id, ()))
        _add_repeats(groups, cfg, calls, lo)
        await _add_ring_misses(s, groups, lo, hi)
        await _add_auto_pauses(s, groups, lo, hi)
        breakdown = await _add_incidents(s, groups, lo, hi)
    return Report(
        start=start,
        end=end,
        by=by,
        timezone=cfg.site.timezone,
        rows=_ordered_rows(groups, cfg, start, end),
        total=groups.total.row(TOTAL_KEY),
        incidents_by_type=breakdown,
    )


def _ordered_rows(groups: _Groups, cfg: Config, start: date, end: date) -> tuple[KpiRow, ...]:
    """Every group that has facts, plus the groups a reader expects to see even when empty
    (each configured seat and tier, each day of the period, each service hour)."""
    keys: list[str]
    match groups.by:
        case "total":
            return ()
        case "seat":
            keys = [s.id for s in cfg.seats]
        case "tier":
            keys = list(dict.fromkeys(s.tier for s in cfg.seats))
        case "day":
            keys = [d.isoformat() for d in days_between(start, end)]
        case "hour":
            last = cfg.hours.close.hour - (1 if cfg.hours.close.minute == 0 else 0)
            keys = [f"{h:02d}" for h in range(cfg.hours.open.hour, last + 1)]
    extra = sorted(k for k in groups.rows if k not in keys and k != NONE_KEY)
    keys = sorted({*keys, *extra}) if groups.by in ("day", "hour") else [*keys, *extra]
    if NONE_KEY in groups.rows:
        keys.append(NONE_KEY)
    return tuple(groups.rows[k].row(k) if k in groups.rows else _Acc().row(k) for k in keys)


# --------------------------------------------------------------------------- calls


async def _calls(s: AsyncSession, lo: datetime, hi: datetime) -> list[_CallFact]:
    query = (
        select(
            Call.call_id,
            Call.caller_number,
            Call.started_at,
            Call.queued_at,
            Call.answered_at,
            Call.ended_at,
            Call.answered_by_seat,
            Call.answer_ring,
            Call.within_rings,
            Call.outcome,
            Call.talk_s,
            Call.capped,
        )
        # A call without an outcome is still live (or its end was never stored): not counted.
        .where(Call.started_at >= lo, Call.started_at < hi, Call.outcome.is_not(None))
        .order_by(Call.started_at, Call.id)
    )
    out: list[_CallFact] = []
    for row in await s.execute(query):
        (
            call_id,
            number,
            started,
            queued,
            answered,
            ended,
            seat,
            ring,
            within,
            outcome,
            talk_s,
            capped,
        ) = row
        out.append(
            _CallFact(
                call_id=call_id,
                number=number or None,
                started=started,
                queued=queued,
                answered=answered,
                ended=ended,
                seat=seat,
                answer_ring=ring,
                within_rings=within,
                outcome=outcome or "",
                talk_s=talk_s,
                capped=bool(capped),
            )
        )
    return out


async def _answer_ring_seconds(
    s: AsyncSession, lo: datetime, hi: datetime
) -> dict[str, tuple[str, float]]:
    """call_id → (seat, seconds it rang) of the answered ring attempt, for calls whose stored
    row lacks `answer_ring` (the ring number is then derived from the cadence)."""
    query = (
        select(RingAttempt.call_id, RingAttempt.seat_id, RingAttempt.ring_s)
        .join(Call, Call.call_id == RingAttempt.call_id)
        .where(
            Call.started_at >= lo,
            Call.started_at < hi,
            Call.answer_ring.is_(None),
            RingAttempt.outcome == ANSWERED,
            RingAttempt.ring_s.is_not(None),
        )
    )
    out: dict[str, tuple[str, float]] = {}
    for call_id, seat, ring_s in await s.execute(query):
        if ring_s is not None:
            out[call_id] = (seat, ring_s)
    return out


async def _answered_legs(
    s: AsyncSession, lo: datetime, hi: datetime
) -> dict[str, list[tuple[str, float | None]]]:
    """call_id → (seat, its own talk seconds) of every answered ring, in answer order, for the
    calls more than one seat answered (a transfer)."""
    query = (
        select(RingAttempt.call_id, RingAttempt.seat_id, RingAttempt.talk_s)
        .join(Call, Call.call_id == RingAttempt.call_id)
        .where(
            Call.started_at >= lo,
            Call.started_at < hi,
            Call.transferred_to.is_not(None),
            RingAttempt.outcome == ANSWERED,
        )
        .order_by(RingAttempt.started_at, RingAttempt.id)
    )
    out: dict[str, list[tuple[str, float | None]]] = {}
    for call_id, seat, talk_s in await s.execute(query):
        out.setdefault(call_id, []).append((seat, talk_s))
    return out


def _add_transfer_legs(
    groups: _Groups, c: _CallFact, legs: Sequence[tuple[str, float | None]]
) -> None:
    """A transferred call in a per-seat (or per-tier) report: the seat that took it over counts
    its answer and its own talk time, and the first seat keeps only its own leg's talk time
    (the total row still counts the call once, with its whole talk time)."""
    if groups.by not in ("seat", "tier") or c.outcome != ANSWERED or len(legs) < 2:
        return
    first_talk = next((talk for seat, talk in legs if seat == c.seat), None)
    if first_talk is not None and c.talk_s is not None:
        groups.rows[groups.key(c.started, c.seat)].talk_sum += first_talk - c.talk_s
    seen = {c.seat}
    for seat, talk in legs:
        if seat in seen:
            continue
        seen.add(seat)
        acc = groups.rows[groups.key(c.started, seat)]
        acc.answered_all += 1
        if talk is not None:
            acc.talk_sum += talk
            acc.talk_n += 1


def _add_call(
    groups: _Groups,
    cfg: Config,
    c: _CallFact,
    is_open: Callable[[datetime], bool],
    answered_ring: tuple[str, float] | None,
) -> None:
    answered = c.outcome == ANSWERED
    accs = groups.accs(c.started, c.seat if answered else None)
    offered = c.queued is not None and c.outcome != CLOSED_HOURS and is_open(c.queued)
    after_hours = c.outcome == CLOSED_HOURS or (c.queued is not None and not offered)
    short = (
        c.outcome == ABANDONED_IN_QUEUE
        and c.queued is not None
        and c.ended is not None
        and (c.ended - c.queued).total_seconds() < cfg.reports.short_abandon_s
    )
    ring = c.answer_ring
    if ring is None and answered_ring is not None and answered_ring[0] == c.seat:
        # Ring 1 is [0, cadence), ring 2 [cadence, 2·cadence), ...
        ring = int(answered_ring[1] // cfg.ring.ring_cadence_s) + 1
    within = c.within_rings
    if within is None and ring is not None:
        within = ring <= cfg.ring.max_rings
    wait_s = (
        (c.answered - c.queued).total_seconds()
        if c.answered is not None and c.queued is not None
        else None
    )
    over_cap = c.capped or (c.talk_s is not None and c.talk_s >= cfg.talk_cap.talk_cap_s)
    for acc in accs:
        if after_hours:
            acc.after_hours += 1
        if offered:
            acc.offered += 1
            if answered:
                acc.answered += 1
            elif c.outcome == ABANDONED_IN_QUEUE:
                acc.abandoned += 1
                acc.short_abandons += short
            elif c.outcome == UNANSWERED_TIMEOUT:
                acc.unanswered += 1
        if not answered:
            continue
        acc.answered_all += 1
        if ring is None:
            acc.ring_unknown += 1
        else:
            acc.rings[min(max(ring, 1), RING_BUCKETS + 1) - 1] += 1
        if within is not None:
            acc.ring_known += 1
            acc.within += within
        if wait_s is not None:
            acc.wait_sum += max(0.0, wait_s)
            acc.wait_n += 1
        if c.talk_s is not None:
            acc.talk_sum += c.talk_s
            acc.talk_n += 1
        acc.over_cap += over_cap


def _add_repeats(groups: _Groups, cfg: Config, calls: Iterable[_CallFact], lo: datetime) -> None:
    """A call in the period that reached the desk (queued or answered) is a repeat call when the
    same number had an answered call that started at most `repeat_call_days` × 24 h before it."""
    window = timedelta(days=cfg.reports.repeat_call_days)
    last_answered: dict[str, datetime] = {}
    for c in calls:  # ordered by start
        if c.number is None:
            continue
        prev = last_answered.get(c.number)
        reached = c.queued is not None or c.outcome == ANSWERED
        if c.started >= lo and reached and prev is not None and c.started - prev <= window:
            for acc in groups.accs(c.started, c.seat if c.outcome == ANSWERED else None):
                acc.repeat_calls += 1
        if c.outcome == ANSWERED:
            last_answered[c.number] = c.started


# --------------------------------------------------------------------------- seats


async def _add_ring_misses(s: AsyncSession, groups: _Groups, lo: datetime, hi: datetime) -> None:
    query = (
        select(RingAttempt.seat_id, Call.started_at)
        .join(Call, Call.call_id == RingAttempt.call_id)
        .where(
            Call.started_at >= lo,
            Call.started_at < hi,
            RingAttempt.outcome.in_(MISSED_RING_OUTCOMES),
        )
    )
    for seat, started in await s.execute(query):
        for acc in groups.accs(started, seat):
            acc.ring_misses += 1


async def _add_auto_pauses(s: AsyncSession, groups: _Groups, lo: datetime, hi: datetime) -> None:
    query = select(AuditLog.at, AuditLog.target, AuditLog.detail).where(
        AuditLog.action == AUTO_PAUSE_ACTION, AuditLog.at >= lo, AuditLog.at < hi
    )
    for at, target, detail in await s.execute(query):
        # The reason lives in the JSON detail; filtered here because JSON operators differ
        # between SQLite and PostgreSQL.
        info = detail if isinstance(detail, dict) else {}
        if info.get("reason") != AUTO_PAUSE_REASON:
            continue
        seat = info.get("seat") or target
        for acc in groups.accs(at, str(seat) if seat else None):
            acc.auto_pauses += 1


# --------------------------------------------------------------------------- incidents


async def _add_incidents(
    s: AsyncSession, groups: _Groups, lo: datetime, hi: datetime
) -> tuple[IncidentCount, ...]:
    # A duplicate withdrawn into another incident (one incident per problem) is not counted.
    in_range = (
        Incident.created_at >= lo,
        Incident.created_at < hi,
        Incident.merged_into_id.is_(None),
    )
    origins = await incident_origins(s, lo, hi)
    left_first_line: set[int] = set(
        (
            await s.execute(
                select(IncidentHistory.incident_id)
                .join(Incident, Incident.id == IncidentHistory.incident_id)
                .where(*in_range, IncidentHistory.action.in_(NOT_FIRST_LINE_ACTIONS))
            )
        ).scalars()
    )
    query = select(
        Incident.id,
        Incident.created_at,
        Incident.request_type,
        Incident.category,
        Incident.status,
        Incident.owner_seat,
        Incident.owner_group,
        Incident.flags,
        Incident.satisfaction,
    ).where(*in_range)
    counts: defaultdict[tuple[str, str | None], int] = defaultdict(int)
    for row in await s.execute(query):
        inc_id, created, rtype, category, status, owner_seat, owner_group, flags, score = row
        counts[(rtype, category)] += 1
        flag_list = flags if isinstance(flags, list) else []
        left = inc_id in left_first_line or owner_group is not None or "escalated" in flag_list
        resolved = status in RESOLVED_STATUSES
        seat = origins.get(inc_id, Origin()).receiving_seat(owner_seat)
        for acc in groups.accs(created, seat):
            acc.incidents += 1
            if resolved and not left:
                acc.fl_resolved += 1
            if resolved or left:
                acc.fl_settled += 1
            if score is not None:
                acc.sat_sum += score
                acc.sat_n += 1
    return tuple(
        IncidentCount(rtype, cat, n)
        for (rtype, cat), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "~"))
    )
