"""The desk state at an instant, transition instants (also across DST), and the roster table."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from ctid.config import HoursConfig
from ctid.core.ids import SeatId
from ctid.rotation.calendar import CalendarError, ServiceCalendar, parse_holidays
from ctid.rotation.lunch import IsoWeek, LunchGroup, LunchRotation, RotationOverrides
from ctid.rotation.plan import Transition, desk_state, render_weeks, transitions

from ._desk import BERLIN, SEATS, SHANGHAI, at, calendar, rotation


def ids(text: str) -> frozenset[str]:
    return frozenset(f"seat{n}" for n in text.split(",") if n)


# 2026-W48 (Mon 11-23): group B (seat2 ordinary, seat4 expert) covers lunch; W53 is A, 2027-W01 B.
# fmt: off
STATES = [
    # at,                   mode,     on,        off reason,   lunch,  next transition,     next
    ("2026-11-23 07:59:59", "closed", "",        "closed",     None, "2026-11-23 08:00", "open"),
    ("2026-11-23 08:00",    "open",   "1,2,3,4", "",           None, "2026-11-23 12:00", "lunch"),
    ("2026-11-23 11:59:59", "open",   "1,2,3,4", "",           None, "2026-11-23 12:00", "lunch"),
    ("2026-11-23 12:00",    "lunch",  "2,4",     "lunch",      "B",  "2026-11-23 13:30", "open"),
    ("2026-11-23 13:29:59", "lunch",  "2,4",     "lunch",      "B",  "2026-11-23 13:30", "open"),
    ("2026-11-23 13:30",    "open",   "1,2,3,4", "",           None, "2026-11-23 17:30", "closed"),
    ("2026-11-23 17:29:59", "open",   "1,2,3,4", "",           None, "2026-11-23 17:30", "closed"),
    ("2026-11-23 17:30",    "closed", "",        "closed",     None, "2026-11-24 08:00", "open"),
    ("2026-11-27 17:30",    "closed", "",        "closed",     None, "2026-11-30 08:00", "open"),
    ("2026-11-28 12:00",    "closed", "",        "closed",     None, "2026-11-30 08:00", "open"),
    ("2026-09-30 17:30",    "closed", "",        "closed",     None, "2026-10-02 08:00", "open"),
    ("2026-10-01 12:00",    "closed", "",        "closed",     None, "2026-10-02 08:00", "open"),
    ("2026-09-25 18:00",    "closed", "",        "closed",     None, "2026-09-26 08:00", "open"),
    ("2026-09-26 12:00",    "lunch",  "1,3",     "lunch",      "A",  "2026-09-26 13:30", "open"),
    ("2026-12-31 23:00",    "closed", "",        "closed",     None, "2027-01-01 08:00", "open"),
    ("2027-01-01 12:00",    "lunch",  "1,3",     "lunch",      "A",  "2027-01-01 13:30", "open"),
    ("2027-01-04 12:00",    "lunch",  "2,4",     "lunch",      "B",  "2027-01-04 13:30", "open"),
]
# fmt: on


@pytest.mark.parametrize(("when", "mode", "on", "reason", "group", "nxt", "next_mode"), STATES)
def test_desk_state(
    when: str, mode: str, on: str, reason: str, group: str | None, nxt: str, next_mode: str
) -> None:
    state = desk_state(at(when), calendar=calendar(), rotation=rotation(), seats=SEATS)
    assert state.mode == mode
    assert state.on_duty == ids(on)
    assert dict(state.off_duty) == {s.id: reason for s in SEATS if s.id not in ids(on)}
    assert state.lunch_group == group
    assert state.lunch_source == ("rotation" if group else None)
    assert state.next_transition == at(nxt)
    assert state.next_transition.utcoffset() == at(nxt).utcoffset()
    assert state.next_mode == next_mode
    assert state.overflow_expert_to_ordinary is False
    assert state.uncovered_tiers == frozenset()


def test_holiday_is_named_in_the_state() -> None:
    cal = ServiceCalendar.from_config(
        HoursConfig(), SHANGHAI, parse_holidays("2026-10-01,holiday,National Day")
    )
    state = desk_state(at("2026-10-01 09:00"), calendar=cal, rotation=rotation(), seats=SEATS)
    assert (state.mode, state.holiday) == ("closed", "National Day")
    assert (
        desk_state(at("2026-10-02 09:00"), calendar=cal, rotation=rotation(), seats=SEATS).holiday
        is None
    )


def test_instant_in_another_zone_is_read_in_the_site_zone() -> None:
    # 04:00 UTC is 12:00 in Shanghai: lunch; the state reports times in the site zone.
    state = desk_state(
        datetime(2026, 11, 23, 4, 0, tzinfo=UTC),
        calendar=calendar(),
        rotation=rotation(),
        seats=SEATS,
    )
    assert state.mode == "lunch"
    assert state.at == at("2026-11-23 12:00")
    assert state.at.tzinfo == SHANGHAI
    assert state.next_transition.tzinfo == SHANGHAI


def test_overrides_drive_the_state() -> None:
    overrides = RotationOverrides(days={date(2026, 11, 25): "A"}, weeks={IsoWeek(2026, 49): "B"})
    cal, rot = calendar(), rotation()

    def state(when: str) -> tuple[str | None, str | None, frozenset[str]]:
        s = desk_state(at(when), calendar=cal, rotation=rot, seats=SEATS, overrides=overrides)
        return s.lunch_group, s.lunch_source, s.on_duty

    assert state("2026-11-25 12:15") == ("A", "day_override", ids("1,3"))
    assert state("2026-11-26 12:15") == ("B", "rotation", ids("2,4"))
    assert state("2026-11-30 12:15") == ("B", "week_swap", ids("2,4"))  # W49 would be A
    # The scheduler's instants follow the overrides too.
    got = transitions(
        at("2026-11-24 00:00"),
        at("2026-11-27 00:00"),
        calendar=cal,
        rotation=rot,
        overrides=overrides,
    )
    assert [(t.at.date(), t.lunch_group) for t in got if t.kind == "lunch_start"] == [
        (date(2026, 11, 24), "B"),
        (date(2026, 11, 25), "A"),
        (date(2026, 11, 26), "B"),
    ]


def test_allow_overflow_flags_expert_calls_to_ordinary_seats() -> None:
    # Anchor W46 → W48 is group C, two ordinary seats and no expert.
    rot = rotation(
        ("A", ["seat1", "seat3"]),
        ("B", ["seat2", "seat4"]),
        ("C", ["seat1", "seat2"]),
        anchor_week="2026-W46",
        allow_overflow=True,
    )
    lunch = desk_state(at("2026-11-23 12:00"), calendar=calendar(), rotation=rot, seats=SEATS)
    assert lunch.mode == "lunch"
    assert lunch.lunch_group == "C"
    assert lunch.on_duty == ids("1,2")
    assert lunch.overflow_expert_to_ordinary is True
    assert lunch.uncovered_tiers == frozenset({"expert"})
    after = desk_state(at("2026-11-23 13:30"), calendar=calendar(), rotation=rot, seats=SEATS)
    assert after.overflow_expert_to_ordinary is False
    # A group of experts only leaves ordinary calls uncovered, which is not an expert overflow.
    experts = rotation(("E", ["seat3", "seat4"]), allow_overflow=True)
    state = desk_state(at("2026-11-23 12:00"), calendar=calendar(), rotation=experts, seats=SEATS)
    assert (state.overflow_expert_to_ordinary, state.uncovered_tiers) == (
        False,
        frozenset({"ordinary"}),
    )
    # A group with no configured seat leaves nobody to overflow to.
    ghosts = LunchRotation(groups=(LunchGroup("G", (SeatId("ghost"),)),), allow_overflow=True)
    empty = desk_state(at("2026-11-23 12:00"), calendar=calendar(), rotation=ghosts, seats=SEATS)
    assert empty.on_duty == frozenset()
    assert empty.uncovered_tiers == frozenset({"ordinary", "expert"})
    assert empty.overflow_expert_to_ordinary is False


def test_no_lunch_rotation_means_open_through_midday() -> None:
    state = desk_state(
        at("2026-11-23 12:00"), calendar=calendar(), rotation=LunchRotation(), seats=SEATS
    )
    assert (state.mode, state.on_duty, state.next_transition) == (
        "open",
        ids("1,2,3,4"),
        at("2026-11-23 17:30"),
    )


def _show(ts: list[Transition]) -> list[tuple[str, str, str, str | None]]:
    return [(t.at.isoformat(), t.kind, t.mode, t.lunch_group) for t in ts]


def test_transitions_over_a_range_start_inclusive_end_exclusive() -> None:
    got = transitions(
        at("2026-09-25 08:00"), at("2026-09-28 12:00"), calendar=calendar(), rotation=rotation()
    )
    assert _show(got) == [
        ("2026-09-25T08:00:00+08:00", "open", "open", None),
        ("2026-09-25T12:00:00+08:00", "lunch_start", "lunch", "A"),
        ("2026-09-25T13:30:00+08:00", "lunch_end", "open", None),
        ("2026-09-25T17:30:00+08:00", "close", "closed", None),
        ("2026-09-26T08:00:00+08:00", "open", "open", None),  # make-up Saturday
        ("2026-09-26T12:00:00+08:00", "lunch_start", "lunch", "A"),
        ("2026-09-26T13:30:00+08:00", "lunch_end", "open", None),
        ("2026-09-26T17:30:00+08:00", "close", "closed", None),
        ("2026-09-28T08:00:00+08:00", "open", "open", None),  # W40: lunch at 12:00 is excluded
    ]
    assert (
        transitions(
            at("2026-10-01 00:00"), at("2026-10-02 00:00"), calendar=calendar(), rotation=rotation()
        )
        == []
    )


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (  # lunch from opening time: the desk opens straight into lunch
            time(8),
            time(9),
            [
                ("2026-11-23T08:00:00+08:00", "open", "lunch", "B"),
                ("2026-11-23T09:00:00+08:00", "lunch_end", "open", None),
                ("2026-11-23T17:30:00+08:00", "close", "closed", None),
            ],
        ),
        (  # lunch until closing time: the desk closes from lunch
            time(16),
            time(17, 30),
            [
                ("2026-11-23T08:00:00+08:00", "open", "open", None),
                ("2026-11-23T16:00:00+08:00", "lunch_start", "lunch", "B"),
                ("2026-11-23T17:30:00+08:00", "close", "closed", None),
            ],
        ),
    ],
)
def test_lunch_at_the_edges_of_service_hours(
    start: time, end: time, expected: list[tuple[str, str, str, str | None]]
) -> None:
    rot = LunchRotation(start=start, end=end, groups=rotation().groups)
    got = transitions(
        at("2026-11-23 00:00"), at("2026-11-24 00:00"), calendar=calendar(), rotation=rot
    )
    assert _show(got) == expected
    if start == time(8):
        state = desk_state(at("2026-11-23 08:00"), calendar=calendar(), rotation=rot, seats=SEATS)
        assert (state.mode, state.next_transition, state.next_mode) == (
            "lunch",
            at("2026-11-23 09:00"),
            "open",
        )


# --------------------------------------------------------------------------- DST (Europe/Berlin)

BERLIN_SUNDAYS = [date(2026, 3, 29), date(2026, 10, 25)]  # the last Sundays of March and October


def berlin() -> ServiceCalendar:
    # The DST changes fall on Sundays, so make those Sundays working days to see them.
    return calendar(BERLIN, holidays=[], makeup_workdays=BERLIN_SUNDAYS)


@pytest.mark.parametrize(
    ("first", "last", "offsets"),
    [
        # Fri before (CET), the Sunday of the change (CEST from 03:00), Monday after.
        ("2026-03-27", "2026-03-31", {"03-27": "+01:00", "03-29": "+02:00", "03-30": "+02:00"}),
        ("2026-10-23", "2026-10-27", {"10-23": "+02:00", "10-25": "+01:00", "10-26": "+01:00"}),
    ],
)
def test_dst_keeps_local_hours(first: str, last: str, offsets: dict[str, str]) -> None:
    got = transitions(
        at(f"{first} 00:00", BERLIN),
        at(f"{last} 00:00", BERLIN),
        calendar=berlin(),
        rotation=rotation(),
    )
    expected = []
    for md, off in offsets.items():
        day = f"{first[:4]}-{md}"
        expected += [
            (f"{day}T08:00:00{off}", "open"),
            (f"{day}T12:00:00{off}", "lunch_start"),
            (f"{day}T13:30:00{off}", "lunch_end"),
            (f"{day}T17:30:00{off}", "close"),
        ]
    assert [(t.at.isoformat(), t.kind) for t in got] == expected


@pytest.mark.parametrize(
    ("utc", "mode", "nxt"),
    [
        # 2026-03-29: 08:00 CEST is 06:00 UTC (it was 07:00 UTC the Friday before).
        (datetime(2026, 3, 29, 5, 59, tzinfo=UTC), "closed", "2026-03-29T08:00:00+02:00"),
        (datetime(2026, 3, 29, 6, 0, tzinfo=UTC), "open", "2026-03-29T12:00:00+02:00"),
        (datetime(2026, 3, 29, 15, 29, tzinfo=UTC), "open", "2026-03-29T17:30:00+02:00"),
        (datetime(2026, 3, 29, 15, 30, tzinfo=UTC), "closed", "2026-03-30T08:00:00+02:00"),
        (
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            "closed",
            "2026-03-29T08:00:00+02:00",
        ),  # 03:30 CEST
        # 2026-10-25: 08:00 CET is 07:00 UTC.
        (datetime(2026, 10, 25, 6, 59, tzinfo=UTC), "closed", "2026-10-25T08:00:00+01:00"),
        (datetime(2026, 10, 25, 7, 0, tzinfo=UTC), "open", "2026-10-25T12:00:00+01:00"),
        (datetime(2026, 10, 25, 16, 30, tzinfo=UTC), "closed", "2026-10-26T08:00:00+01:00"),
        (
            datetime(2026, 10, 24, 15, 30, tzinfo=UTC),
            "closed",
            "2026-10-25T08:00:00+01:00",
        ),  # Sat 17:30 CEST
        # The repeated hour: 02:30 happens twice (00:30 and 01:30 UTC); both are closed.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "closed", "2026-10-25T08:00:00+01:00"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "closed", "2026-10-25T08:00:00+01:00"),
    ],
)
def test_dst_desk_state(utc: datetime, mode: str, nxt: str) -> None:
    state = desk_state(utc, calendar=berlin(), rotation=rotation(), seats=SEATS)
    assert (state.mode, state.next_transition.isoformat()) == (mode, nxt)


def test_dst_fold_instant_given_in_the_site_zone() -> None:
    second_half_past_two = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
    state = desk_state(second_half_past_two, calendar=berlin(), rotation=rotation(), seats=SEATS)
    assert state.mode == "closed"
    assert state.next_transition.astimezone(UTC) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


def test_desk_opening_in_the_spring_gap_opens_when_the_clock_jumps() -> None:
    # 02:30 does not exist on 2026-03-29 in Berlin; a wall clock shows 03:30 at that instant.
    cal = calendar(BERLIN, holidays=[], makeup_workdays=BERLIN_SUNDAYS, open="02:30")
    got = transitions(
        at("2026-03-29 00:00", BERLIN),
        at("2026-03-29 04:00", BERLIN),
        calendar=cal,
        rotation=rotation(),
    )
    assert [(t.at.isoformat(), t.kind) for t in got] == [("2026-03-29T03:30:00+02:00", "open")]


# --------------------------------------------------------------------------- roster table

HOLIDAYS = parse_holidays(
    "2026-10-01,holiday,National Day\n"
    "2026-10-02,holiday,National Day\n"
    "2026-10-03,holiday,National Day\n"  # a Saturday: closed anyway, not worth a note
    "2026-09-26,workday,make-up\n"
)

TABLE = """\
week      dates                  on duty at lunch     off             notes
--------  ---------------------  -------------------  --------------  --------------------------------------------------------------
2026-W39  Mon 09-21 – Fri 09-25  A: Seat 1, Seat 3    Seat 2, Seat 4  Sat 09-26 open: make-up
2026-W40  Mon 09-28 – Fri 10-02  B: Seat 2, Seat 4    Seat 1, Seat 3  Thu 10-01 closed: National Day; Fri 10-02 closed: National Day
2026-W41  Mon 10-05 – Fri 10-09  B: Seat 2, Seat 4 *  Seat 1, Seat 3  week swap: B instead of A
2026-W42  Mon 10-12 – Fri 10-16  B: Seat 2, Seat 4 *  Seat 1, Seat 3  Tue 10-13 lunch duty A
"""


def test_render_weeks_exact_text() -> None:
    cal = ServiceCalendar.from_config(HoursConfig(), SHANGHAI, HOLIDAYS)
    overrides = RotationOverrides(
        # The 14th names the week's own group, so it needs no note.
        days={date(2026, 10, 13): "A", date(2026, 10, 14): "B"},
        weeks={IsoWeek(2026, 41): "B"},
    )
    text = render_weeks(
        date(2026, 9, 23), 4, rotation=rotation(), seats=SEATS, overrides=overrides, calendar=cal
    )
    assert text == TABLE


def test_render_weeks_across_the_year_boundary_without_calendar() -> None:
    assert render_weeks(date(2026, 12, 27), 3, rotation=rotation(), seats=SEATS) == (
        "week      dates                  on duty at lunch   off             notes\n"
        "--------  ---------------------  -----------------  --------------  -----\n"
        "2026-W52  Mon 12-21 – Fri 12-25  B: Seat 2, Seat 4  Seat 1, Seat 3\n"
        "2026-W53  Mon 12-28 – Fri 01-01  A: Seat 1, Seat 3  Seat 2, Seat 4\n"
        "2027-W01  Mon 01-04 – Fri 01-08  B: Seat 2, Seat 4  Seat 1, Seat 3\n"
    )


def test_render_weeks_uses_the_weekly_days_of_the_calendar() -> None:
    six_days = calendar(days=["mon", "tue", "wed", "thu", "fri", "sat"])
    text = render_weeks(date(2026, 11, 23), 1, rotation=rotation(), seats=SEATS, calendar=six_days)
    assert text.splitlines()[2].startswith("2026-W48  Mon 11-23 – Sat 11-28  B: Seat 2, Seat 4")


def test_a_calendar_without_service_hours_is_an_error() -> None:
    never = calendar(days=[], holidays=[], makeup_workdays=[])
    with pytest.raises(CalendarError, match="no service hours within"):
        desk_state(at("2026-11-23 12:00"), calendar=never, rotation=rotation(), seats=SEATS)
