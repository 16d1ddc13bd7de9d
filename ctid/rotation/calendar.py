"""The service calendar: weekly service hours in the site zone, public holidays, make-up working
days, and the importer for the holidays file (`2026-10-01,holiday,National Day`). Pure code.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from ctid.config import WEEKDAYS, HoursConfig
from ctid.core.errors import ConfigError, CtidError

EntryKind = Literal["holiday", "workday"]
DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Fixed English weekday names (strftime's `%a` depends on the process locale)."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CalendarError(CtidError):
    """The service calendar cannot answer (conflicting entries, no service hours at all)."""


class HolidayFileError(ConfigError):
    """The holidays file has bad lines; `problems` holds one `source:line: what` per line."""


@dataclass(frozen=True)
class CalendarEntry:
    """One line of the holidays file (or one date from `hours.holidays`/`makeup_workdays`)."""

    day: date
    kind: EntryKind
    name: str = ""
    line: int = 0
    """Line number in the holidays file; 0 when the entry came from the TOML config."""


def parse_holidays(text: str, source: str = "holidays") -> tuple[CalendarEntry, ...]:
    """Parse the holidays file: one `YYYY-MM-DD,holiday|workday[,name]` per line.

    Blank lines and lines starting with `#` are skipped, as is a `date,kind,name` header. Every bad
    line is reported (`source:3: ...`) in one `HolidayFileError`.
    """
    entries: list[CalendarEntry] = []
    problems: list[str] = []
    first_line: dict[date, int] = {}
    # Spreadsheets save CSV with a byte-order mark; it would glue itself to the first date.
    lines = text.removeprefix("\ufeff").splitlines()
    for lineno, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([stripped], skipinitialspace=True))]
        where = f"{source}:{lineno}"
        if not entries and not problems and fields[0].lower() == "date":
            continue  # header row
        if len(fields) not in (2, 3):
            problems.append(
                f"{where}: expected DATE,KIND[,NAME] with 2 or 3 fields, got {len(fields)} "
                f"(quote a name that contains commas): {stripped!r}"
            )
            continue
        text_day, text_kind = fields[0], fields[1]
        name = fields[2] if len(fields) == 3 else ""
        day: date | None = None
        if not _ISO_DATE.match(text_day):
            problems.append(f"{where}: {text_day!r} is not a date written YYYY-MM-DD")
        else:
            try:
                day = date.fromisoformat(text_day)
            except ValueError:
                problems.append(f"{where}: {text_day!r} is not a valid calendar date")
        kind = text_kind.lower()
        if kind not in ("holiday", "workday"):
            problems.append(f"{where}: kind must be 'holiday' or 'workday', got {text_kind!r}")
            continue
        if day is None:
            continue
        if day in first_line:
            problems.append(
                f"{where}: {day.isoformat()} is already listed on line {first_line[day]}"
            )
            continue
        first_line[day] = lineno
        entries.append(
            CalendarEntry(
                day=day, kind="holiday" if kind == "holiday" else "workday", name=name, line=lineno
            )
        )
    if problems:
        raise HolidayFileError(problems)
    return tuple(entries)


def _frozen(mapping: dict[date, str]) -> Mapping[date, str]:
    return MappingProxyType(dict(sorted(mapping.items())))


@dataclass(frozen=True)
class ServiceCalendar:
    """When the desk serves, as local wall-clock hours in `tz` (kept the same across DST changes)."""

    tz: tzinfo
    open: time = time(8, 0)
    close: time = time(17, 30)
    days: frozenset[int] = frozenset(range(5))
    """Weekly working days as `date.weekday()` numbers (0 = Monday)."""
    holidays: Mapping[date, str] = field(default_factory=lambda: _frozen({}))
    """Closed all day even on a weekly working day; value is the holiday's name (may be empty)."""
    makeup_workdays: Mapping[date, str] = field(default_factory=lambda: _frozen({}))
    """Working days with normal hours even when not a weekly working day (a make-up Saturday)."""

    def __post_init__(self) -> None:
        if self.close <= self.open:
            raise CalendarError(
                f"service hours close ({self.close}) must be after open ({self.open})"
            )
        both = sorted(set(self.holidays) & set(self.makeup_workdays))
        if both:
            listed = ", ".join(d.isoformat() for d in both)
            raise CalendarError(f"dates listed both as holiday and as make-up workday: {listed}")

    @classmethod
    def from_config(
        cls,
        hours: HoursConfig,
        tz: str | tzinfo,
        entries: Iterable[CalendarEntry] = (),
    ) -> ServiceCalendar:
        """Build from `[hours]` plus the parsed holidays file (`parse_holidays`), if any.

        A date that the config and the file (or two sources) put on opposite sides raises
        `CalendarError`; the same date listed twice with the same kind is fine.
        """
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        holidays: dict[date, str] = dict.fromkeys(hours.holidays, "")
        makeup: dict[date, str] = dict.fromkeys(hours.makeup_workdays, "")
        for entry in entries:
            target = holidays if entry.kind == "holiday" else makeup
            if entry.name or entry.day not in target:
                target[entry.day] = entry.name
        return cls(
            tz=zone,
            open=hours.open,
            close=hours.close,
            days=frozenset(WEEKDAYS.index(d) for d in hours.days),
            holidays=_frozen(holidays),
            makeup_workdays=_frozen(makeup),
        )

    def is_working_day(self, day: date) -> bool:
        """A holiday closes even a weekday; a make-up day opens even a weekend day."""
        if day in self.holidays:
            return False
        if day in self.makeup_workdays:
            return True
        return day.weekday() in self.days

    def note(self, day: date) -> str | None:
        """A listed holiday or make-up day (`closed: National Day`, `open: make-up workday`), or None."""
        if day in self.holidays:
            return f"closed: {self.holidays[day] or 'holiday'}"
        if day in self.makeup_workdays:
            return f"open: {self.makeup_workdays[day] or 'make-up workday'}"
        return None

    def local(self, day: date, at: time) -> datetime:
        """The aware instant of wall-clock `at` on `day` in the site zone.

        A wall time that does not exist (skipped by a spring-forward DST change) moves forward by
        the gap, like a wall clock would; an ambiguous one (autumn) means its first occurrence.
        """
        naive_guess = datetime.combine(day, at, tzinfo=self.tz)
        return naive_guess.astimezone(UTC).astimezone(self.tz)

    def local_date(self, at: datetime) -> date:
        """The site-zone calendar date of an aware instant."""
        if at.tzinfo is None:
            raise CalendarError("the service calendar needs an aware datetime")
        return at.astimezone(self.tz).date()

    def service_window(self, day: date) -> tuple[datetime, datetime] | None:
        """Open and close instants (site zone) on `day`, or None when the desk is closed all day."""
        if not self.is_working_day(day):
            return None
        return self.local(day, self.open), self.local(day, self.close)

    def is_open(self, at: datetime) -> bool:
        """Whether the desk serves at `at` (open inclusive, close exclusive)."""
        window = self.service_window(self.local_date(at))
        if window is None:
            return False
        # Compare in UTC: aware datetimes that share a tzinfo compare by wall time and ignore
        # `fold`, which is wrong in the repeated autumn hour.
        t = at.astimezone(UTC)
        return window[0].astimezone(UTC) <= t < window[1].astimezone(UTC)
