"""Lunch rotation: ISO weeks, round-robin from the anchor week, overrides and the plan check."""

from __future__ import annotations

from datetime import date

import pytest

from ctid.config import parse_config
from ctid.core.ids import SeatId
from ctid.rotation.lunch import (
    IsoWeek,
    LunchGroup,
    LunchRotation,
    RotationError,
    RotationOverrides,
    validate_plan,
)

from ._desk import SEATS, rotation


@pytest.mark.parametrize(
    ("day", "week"),
    [
        (date(2026, 1, 1), "2026-W01"),  # a Thursday: week 1 holds the year's first Thursday
        (date(2025, 12, 29), "2026-W01"),  # that week's Monday is still in 2025
        (date(2025, 12, 28), "2025-W52"),
        (date(2026, 11, 23), "2026-W48"),
        (date(2026, 12, 28), "2026-W53"),  # 2026 has 53 ISO weeks
        (date(2027, 1, 3), "2026-W53"),  # ... and its last week ends in 2027
        (date(2027, 1, 4), "2027-W01"),
    ],
)
def test_iso_week_of(day: date, week: str) -> None:
    assert str(IsoWeek.of(day)) == week
    assert IsoWeek.parse(week) == IsoWeek.of(day)


def test_iso_week_arithmetic_across_years() -> None:
    w53 = IsoWeek.parse("2026-W53")
    assert w53.monday() == date(2026, 12, 28)
    assert w53 + 1 == IsoWeek(2027, 1)
    assert IsoWeek(2027, 1) - w53 == 1
    assert IsoWeek(2027, 1) - IsoWeek(2026, 1) == 53
    assert IsoWeek(2025, 52) - IsoWeek(2026, 1) == -1
    assert IsoWeek(2026, 1) + -1 == IsoWeek(2025, 52)


@pytest.mark.parametrize("text", ["2025-W53", "2026-W00", "2026-W54", "2026W01", "26-W01"])
def test_iso_week_rejects_bad_weeks(text: str) -> None:
    with pytest.raises(RotationError):
        IsoWeek.parse(text)


THREE = (("A", ["seat1", "seat3"]), ("B", ["seat2", "seat4"]), ("C", ["seat1", "seat4"]))


@pytest.mark.parametrize(
    ("week", "group"),
    [
        ("2026-W01", "A"),  # the anchor
        ("2026-W02", "B"),
        ("2026-W03", "C"),
        ("2026-W04", "A"),
        ("2026-W52", "A"),  # 51 weeks after the anchor: 51 % 3 == 0
        ("2026-W53", "B"),
        ("2027-W01", "C"),  # the year boundary keeps counting weeks, not week numbers
        ("2027-W02", "A"),
        ("2025-W52", "C"),  # one week before the anchor
        ("2025-W51", "B"),
        ("2025-W50", "A"),
    ],
)
def test_round_robin_from_anchor(week: str, group: str) -> None:
    # Groups are made of seats configured only for their names; overlap does not matter here.
    rot = LunchRotation(
        anchor=IsoWeek(2026, 1),
        groups=tuple(LunchGroup(n, tuple(SeatId(s) for s in ss)) for n, ss in THREE),
    )
    assert rot.scheduled_group(IsoWeek.parse(week)).name == group


@pytest.mark.parametrize(
    ("anchor", "week", "group"),
    [
        ("2026-W48", "2026-W48", "A"),
        ("2026-W48", "2026-W53", "B"),
        ("2026-W48", "2027-W01", "A"),
        ("2026-W53", "2027-W01", "B"),
        ("2026-W53", "2026-W52", "B"),
    ],
)
def test_anchor_week_is_configurable(anchor: str, week: str, group: str) -> None:
    rot = rotation(anchor_week=anchor)
    assert rot.scheduled_group(IsoWeek.parse(week)).name == group


def test_from_config_of_a_full_config() -> None:
    cfg = parse_config(
        {
            "seats": [s.model_dump() for s in SEATS],
            "lunch": {
                "start": "11:30",
                "end": "13:00",
                "anchor_week": "2026-W48",
                "groups": [
                    {"name": "A", "seats": ["seat1", "seat3"]},
                    {"name": "B", "seats": ["seat2", "seat4"]},
                ],
            },
        }
    )
    rot = LunchRotation.from_config(cfg.lunch, cfg.seats)
    assert rot.anchor == IsoWeek(2026, 48)
    assert rot.groups[1] == LunchGroup("B", (SeatId("seat2"), SeatId("seat4")))
    assert (rot.start.hour, rot.start.minute, rot.end.hour) == (11, 30, 13)
    assert rot.active


def test_from_config_rejects_unknown_seat_and_duplicate_group() -> None:
    with pytest.raises(RotationError, match="lunch group 'A' names unknown seats: seat9"):
        rotation(("A", ["seat1", "seat9"]), ("B", ["seat2"]))
    with pytest.raises(RotationError, match="used twice: A"):
        rotation(("A", ["seat1", "seat3"]), ("A", ["seat2", "seat4"]))


def test_inactive_rotation() -> None:
    assert not rotation(enabled=False).active
    assert not LunchRotation().active
    assert validate_plan(date(2026, 11, 23), 4, rotation=LunchRotation(), seats=SEATS) == []


OVERRIDES = RotationOverrides(
    days={date(2026, 11, 25): "A"},  # Wednesday of W48 (a B week)
    weeks={IsoWeek(2026, 49): "B"},  # W49 would be A
)


@pytest.mark.parametrize(
    ("day", "group", "source", "scheduled"),
    [
        (date(2026, 11, 24), "B", "rotation", "B"),
        (date(2026, 11, 25), "A", "day_override", "B"),
        (date(2026, 11, 26), "B", "rotation", "B"),
        (date(2026, 11, 30), "B", "week_swap", "A"),
        (date(2026, 12, 4), "B", "week_swap", "A"),
        (date(2026, 12, 7), "B", "rotation", "B"),  # W50, plain rota again
    ],
)
def test_overrides(day: date, group: str, source: str, scheduled: str) -> None:
    duty = rotation().duty_on(day, OVERRIDES)
    assert (duty.group.name, duty.source, duty.scheduled.name) == (group, source, scheduled)


def test_day_override_beats_week_swap() -> None:
    o = RotationOverrides(days={date(2026, 12, 1): "A"}, weeks={IsoWeek(2026, 49): "B"})
    assert rotation().duty_on(date(2026, 12, 1), o).group.name == "A"
    assert rotation().duty_on(date(2026, 12, 2), o).group.name == "B"


def test_override_naming_an_unknown_group_raises() -> None:
    o = RotationOverrides(days={date(2026, 11, 25): "Z"})
    with pytest.raises(RotationError, match=r"unknown lunch group 'Z' \(groups: A, B\)"):
        rotation().duty_on(date(2026, 11, 25), o)


# --------------------------------------------------------------------------- plan validation

UNEVEN = (("A", ["seat1", "seat3"]), ("B", ["seat2", "seat4"]), ("C", ["seat1", "seat2"]))


def test_balanced_plan_is_valid() -> None:
    assert validate_plan(date(2026, 11, 23), 8, rotation=rotation(), seats=SEATS) == []


def test_uncovered_tier_is_rejected_naming_week_and_tier() -> None:
    # Anchor W46 → W46 A, W47 B, W48 C (two ordinary seats only), W49 A.
    rot = rotation(*UNEVEN, anchor_week="2026-W46")
    assert validate_plan(date(2026, 11, 23), 2, rotation=rot, seats=SEATS) == [
        "week 2026-W48: no expert seat on lunch duty (group C: seat1, seat2)",
    ]
    assert validate_plan(date(2026, 11, 16), 5, rotation=rot, seats=SEATS) == [
        "week 2026-W48: no expert seat on lunch duty (group C: seat1, seat2)",
        "week 2026-W51: no expert seat on lunch duty (group C: seat1, seat2)",
    ]


def test_plan_check_includes_overrides() -> None:
    rot = rotation(*UNEVEN, anchor_week="2026-W47")  # W47 A, W48 B, W49 C, W50 A
    overrides = RotationOverrides(
        days={date(2026, 11, 25): "C", date(2026, 12, 30): "C"},  # the second is out of range
        weeks={IsoWeek(2026, 49): "A", IsoWeek(2026, 50): "C"},
    )
    assert validate_plan(date(2026, 11, 23), 3, rotation=rot, seats=SEATS, overrides=overrides) == [
        "week 2026-W50: no expert seat on lunch duty (group C: seat1, seat2)",
        "day 2026-11-25: no expert seat on lunch duty (group C: seat1, seat2)",
    ]


def test_plan_check_reports_unknown_groups() -> None:
    overrides = RotationOverrides(days={date(2026, 11, 24): "X"}, weeks={IsoWeek(2026, 48): "Y"})
    assert validate_plan(
        date(2026, 11, 23), 1, rotation=rotation(), seats=SEATS, overrides=overrides
    ) == [
        "week 2026-W48: swap names unknown lunch group 'Y' (groups: A, B)",
        "day 2026-11-24: override names unknown lunch group 'X' (groups: A, B)",
    ]


def test_missing_ordinary_tier_is_rejected_too() -> None:
    rot = rotation(("A", ["seat1", "seat3"]), ("B", ["seat4"]))  # W02: B, experts only
    assert validate_plan(date(2026, 1, 5), 1, rotation=rot, seats=SEATS) == [
        "week 2026-W02: no ordinary seat on lunch duty (group B: seat4)",
    ]


def test_allow_overflow_accepts_a_missing_tier() -> None:
    rot = rotation(*UNEVEN, anchor_week="2026-W46", allow_overflow=True)
    assert validate_plan(date(2026, 11, 16), 5, rotation=rot, seats=SEATS) == []


def test_group_without_any_configured_seat_is_always_rejected() -> None:
    rot = LunchRotation(
        groups=(
            LunchGroup("A", (SeatId("seat1"), SeatId("seat3"))),
            LunchGroup("G", (SeatId("ghost"),)),
        ),
        allow_overflow=True,
    )
    assert validate_plan(date(2026, 1, 5), 1, rotation=rot, seats=SEATS) == [
        "week 2026-W02: no seat on lunch duty (group G: ghost)",
    ]
