"""The one place ctid reads the wall clock: a `Clock` port, the system clock and a fake for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Civil time in the site's time zone. Durations use the event loop, not this."""

    @property
    def tz(self) -> tzinfo: ...

    def now(self) -> datetime:
        """An aware datetime in the site zone."""
        ...

    def utcnow(self) -> datetime:
        """An aware datetime in UTC (what the store keeps)."""
        ...


def epoch(clock: Clock) -> float:
    """Now as epoch seconds (the clock events carry when the PBX stamps none)."""
    return clock.utcnow().timestamp()


class SystemClock:
    """The real wall clock."""

    def __init__(self, tz: str | tzinfo = "Asia/Shanghai") -> None:
        self._tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def now(self) -> datetime:
        return datetime.now(self._tz)

    def utcnow(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime, tz: str | tzinfo = "Asia/Shanghai") -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz
        self._now = start

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def now(self) -> datetime:
        return self._now.astimezone(self._tz)

    def utcnow(self) -> datetime:
        return self._now.astimezone(UTC)

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = when

    def advance(self, seconds: float) -> None:
        self._now = self._now + timedelta(seconds=seconds)
