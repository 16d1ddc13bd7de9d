"""Service calendar: weekly hours, holidays, make-up days, and the holidays-file importer."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from ctid.config import HoursConfig
from ctid.core.errors import ConfigError
from ctid.rotation.calendar import (
    CalendarEntry,
    CalendarError,
    HolidayFileError,
    ServiceCalendar,
    parse_holidays,
)

from ._desk import MAKEUP_SAT, NATIONAL_DAY, SHANGHAI, at, calendar


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 11, 23), True),  # Monday
        (date(2026, 11, 27), True),  # Friday
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 11, 29), False),  # Sunday
        (NATIONAL_DAY, False),  # a Thursday, but a public holiday
        (MAKEUP_SAT, True),  # a Saturday, but a make-up working day
        (date(2026, 9, 27), False),  # the Sunday after it stays closed
    ],
)
def test_working_days(day: date, working: bool) -> None:
    assert calendar().is_working_day(day) is working


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        ("2026-11-23 07:59:59", False),
        ("2026-11-23 08:00", True),  # open is inclusive
        ("2026-11-23 12:30", True),  # lunch is still service hours
        ("2026-11-23 17:29:59", True),
        ("2026-11-23 17:30", False),  # close is exclusive
        ("2026-10-01 10:00", False),  # holiday on a weekday
        ("2026-09-26 10:00", True),  # make-up Saturday, normal hours
        ("2026-09-26 17:30", False),
        ("2026-11-28 10:00", False),  # plain Saturday
    ],
)
def test_is_open_edges(when: str, is_open: bool) -> None:
    assert calendar().is_open(at(when)) is is_open


def test_is_open_uses_site_zone_for_instants_given_in_utc() -> None:
    # 00:30 UTC Monday is 08:30 in Shanghai (UTC+8): open, although it is Monday 00:30 in UTC.
    assert calendar().is_open(datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    assert not calendar().is_open(datetime(2026, 11, 22, 23, 30, tzinfo=UTC))  # Mon 07:30 local


def test_service_window_and_notes() -> None:
    cal = calendar()
    assert cal.service_window(NATIONAL_DAY) is None
    window = cal.service_window(MAKEUP_SAT)
    assert window == (at("2026-09-26 08:00"), at("2026-09-26 17:30"))
    assert cal.note(NATIONAL_DAY) == "closed: holiday"
    assert cal.note(MAKEUP_SAT) == "open: make-up workday"
    assert cal.note(date(2026, 11, 23)) is None


def test_custom_weekly_days_and_hours() -> None:
    cal = calendar(days=["mon", "tue", "wed", "thu", "fri", "sat"], open="09:00", close="18:00")
    assert cal.is_working_day(date(2026, 11, 28))  # Saturday now a weekly day
    assert not cal.is_working_day(date(2026, 11, 29))
    assert (cal.open, cal.close) == (time(9), time(18))
    assert not cal.is_open(at("2026-11-28 08:30"))
    assert cal.is_open(at("2026-11-28 17:59"))


GOOD_FILE = """\ufeffdate,kind,name
# China 2026 (example)
2026-10-01,holiday,National Day
2026-10-02, holiday , National Day

2026-09-27,workday,make-up
2026-10-10,WORKDAY
2026-05-01,holiday,"Labour Day, observed"
"""


def test_parse_holidays_file() -> None:
    assert parse_holidays(GOOD_FILE, "cn.csv") == (
        CalendarEntry(date(2026, 10, 1), "holiday", "National Day", 3),
        CalendarEntry(date(2026, 10, 2), "holiday", "National Day", 4),
        CalendarEntry(date(2026, 9, 27), "workday", "make-up", 6),
        CalendarEntry(date(2026, 10, 10), "workday", "", 7),
        CalendarEntry(date(2026, 5, 1), "holiday", "Labour Day, observed", 8),
    )


def test_parse_holidays_reports_every_bad_line() -> None:
    text = "\n".join(
        [
            "2026-10-01,holiday,National Day",
            "2026-10-1,holiday",
            "2026-02-30,holiday",
            "2026-10-03,vacation",
            "2026-10-04",
            "2026-10-05,holiday,National Day,extra",
            "2026-10-01,workday",
            "01/10/2026,holday",
        ]
    )
    with pytest.raises(HolidayFileError) as info:
        parse_holidays(text, "h.csv")
    assert info.value.problems == [
        "h.csv:2: '2026-10-1' is not a date written YYYY-MM-DD",
        "h.csv:3: '2026-02-30' is not a valid calendar date",
        "h.csv:4: kind must be 'holiday' or 'workday', got 'vacation'",
        "h.csv:5: expected DATE,KIND[,NAME] with 2 or 3 fields, got 1 "
        "(quote a name that contains commas): '2026-10-04'",
        "h.csv:6: expected DATE,KIND[,NAME] with 2 or 3 fields, got 4 "
        "(quote a name that contains commas): '2026-10-05,holiday,National Day,extra'",
        "h.csv:7: 2026-10-01 is already listed on line 1",
        "h.csv:8: '01/10/2026' is not a date written YYYY-MM-DD",
        "h.csv:8: kind must be 'holiday' or 'workday', got 'holday'",
    ]
    assert isinstance(info.value, ConfigError)  # the CLI reports it like a config problem


def test_parse_holidays_empty_and_comment_only() -> None:
    assert parse_holidays("") == ()
    assert parse_holidays("# nothing yet\n\n") == ()


def test_from_config_merges_file_entries() -> None:
    hours = HoursConfig.model_validate({"holidays": ["2026-10-01"]})
    entries = parse_holidays("2026-10-01,holiday,National Day\n2026-09-27,workday,make-up\n")
    cal = ServiceCalendar.from_config(hours, "Asia/Shanghai", entries)
    assert cal.tz == SHANGHAI
    assert dict(cal.holidays) == {date(2026, 10, 1): "National Day"}
    assert dict(cal.makeup_workdays) == {date(2026, 9, 27): "make-up"}
    assert cal.note(date(2026, 10, 1)) == "closed: National Day"
    assert cal.is_working_day(date(2026, 9, 27))  # a Sunday


def test_from_config_rejects_a_day_that_is_both() -> None:
    hours = HoursConfig.model_validate({"holidays": ["2026-09-27"]})
    entries = parse_holidays("2026-09-27,workday,make-up\n")
    with pytest.raises(CalendarError, match="both as holiday and as make-up workday: 2026-09-27"):
        ServiceCalendar.from_config(hours, SHANGHAI, entries)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(CalendarError, match="aware"):
        calendar().is_open(datetime(2026, 11, 23, 9, 0))
