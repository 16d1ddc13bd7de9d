"""A 4-seat desk like config.example.toml, shared by the rotation tests."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from ctid.config import HoursConfig, LunchConfig, SeatConfig
from ctid.rotation.calendar import ServiceCalendar
from ctid.rotation.lunch import LunchRotation

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def seat(n: int, tier: str) -> SeatConfig:
    return SeatConfig.model_validate(
        {"id": f"seat{n}", "name": f"Seat {n}", "tier": tier, "interface": f"PJSIP/seat{n}"}
    )


SEATS = (seat(1, "ordinary"), seat(2, "ordinary"), seat(3, "expert"), seat(4, "expert"))
"""seat1, seat2 ordinary; seat3, seat4 expert."""

NATIONAL_DAY = date(2026, 10, 1)  # a Thursday
MAKEUP_SAT = date(2026, 9, 26)


def lunch(*groups: tuple[str, list[str]], **extra: object) -> LunchConfig:
    return LunchConfig.model_validate(
        {"groups": [{"name": n, "seats": s} for n, s in groups], **extra}
    )


def rotation(*groups: tuple[str, list[str]], **extra: object) -> LunchRotation:
    chosen = groups or (("A", ["seat1", "seat3"]), ("B", ["seat2", "seat4"]))
    return LunchRotation.from_config(lunch(*chosen, **extra), SEATS)


def calendar(tz: ZoneInfo = SHANGHAI, **hours: object) -> ServiceCalendar:
    cfg = HoursConfig.model_validate(
        {"holidays": [NATIONAL_DAY], "makeup_workdays": [MAKEUP_SAT], **hours}
    )
    return ServiceCalendar.from_config(cfg, tz)


def at(text: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    """`2026-11-23 12:00` (or with seconds) as an aware datetime in `tz`."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)
