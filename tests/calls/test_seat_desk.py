"""The one state of a seat (`derive`): a call beats a pause, a pause beats ready, no staff or no
phone is logged out, a wrap-up not yet confirmed by the PBX already counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from ctid.calls.seat_desk import SeatChange, SeatDesk, SeatToday, TodaySoFar, _Wrap, derive
from ctid.calls.seat_state import SeatState
from ctid.config import parse_config
from ctid.core.calls import CallAnswered
from ctid.core.calls import SeatState as Live
from ctid.core.clock import FakeClock
from ctid.core.errors import StoreError
from ctid.core.ids import CallId, Channel, SeatId

S1 = SeatId("seat1")


@pytest.mark.parametrize(
    ("live", "staffed", "wrap", "want"),
    [
        (None, True, None, (SeatState.LOGGED_OUT, None)),
        (Live(S1), False, None, (SeatState.LOGGED_OUT, None)),
        (Live(S1, available=False), True, None, (SeatState.LOGGED_OUT, None)),
        (Live(S1), True, None, (SeatState.READY, None)),
        (Live(S1, activity="ringing", call_id=CallId("c")), True, None, (SeatState.RINGING, None)),
        (
            Live(S1, activity="on_call", paused=True, pause_reason="meal"),
            True,
            None,
            (SeatState.TALKING, None),
        ),
        (Live(S1, paused=True, pause_reason="rna"), True, None, (SeatState.PAUSED, "rna")),
        (Live(S1, paused=True, pause_reason=""), True, None, (SeatState.PAUSED, None)),
        (Live(S1, paused=True, pause_reason="wrapup"), True, None, (SeatState.WRAPUP, "wrapup")),
        (Live(S1), True, _Wrap(ends_at=10.0), (SeatState.WRAPUP, "wrapup")),
        (Live(S1), True, _Wrap(ends_at=10.0, confirmed=True), (SeatState.READY, None)),
    ],
)
def test_derive(live: Live | None, staffed: bool, wrap: _Wrap | None, want: object) -> None:
    assert derive(live, staffed, wrap) == want


# --------------------------------------------------------------------------- today after a restart


class _Pbx:
    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None:
        return None


class _Roster:
    def staffed_by(self, seat_id: str) -> str | None:
        return None

    def interface(self, seat_id: str) -> str | None:
        return None


class _Push:
    def publish(self, seat_id: str, frame: object) -> int:
        return 0

    def publish_supervisor(self, frame: object) -> int:
        return 0


@dataclass
class _Log:
    stored: TodaySoFar | None
    asked: list[tuple[datetime, datetime]] = field(default_factory=list)

    async def record(self, change: SeatChange) -> None:
        return None

    async def names(self, employee_ids: Sequence[str]) -> Mapping[str, str]:
        return {}

    async def today(self, lo: datetime, hi: datetime) -> TodaySoFar:
        self.asked.append((lo, hi))
        if self.stored is None:
            raise StoreError("database unreachable")
        return self.stored


def _desk(log: _Log) -> SeatDesk:
    cfg = parse_config(
        {
            "seats": [
                {
                    "id": f"seat{i}",
                    "name": f"Seat {i}",
                    "tier": "ordinary",
                    "interface": f"PJSIP/seat{i}",
                }
                for i in (1, 2)
            ]
        }
    )
    clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    return SeatDesk(cfg, _Pbx(), _Roster(), log, _Push(), clock, now=lambda: 0.0)


def _answered(call_id: str, seat: str) -> CallAnswered:
    return CallAnswered(
        call_id=CallId(call_id),
        seat=SeatId(seat),
        seat_channel=Channel(f"PJSIP/{seat}-0001"),
        at=1.0,
        ring_s=None,
        hold_s=None,
        caller_num="13800138000",
        caller_name="",
        caller_channel=None,
        started_at=0.0,
        queue=None,
        ivr_choice="1",
    )


async def test_today_is_restored_from_the_site_day_and_an_answer_is_counted_once() -> None:
    log = _Log(
        TodaySoFar(
            frozenset({("a", "seat1"), ("b", "seat1"), ("x", "gone")}),
            {"seat1": 90.0},
            {"seat2": 3},
        )
    )
    desk = _desk(log)
    await desk.restore_today()
    # the site's day (Shanghai), as UTC instants
    assert log.asked == [
        (datetime(2026, 11, 22, 16, 0, tzinfo=UTC), datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    ]
    assert desk.view("seat1").today == SeatToday(answered=2, missed=0, talk_s=90.0)
    assert desk.view("seat2").today == SeatToday(answered=0, missed=3, talk_s=0.0)
    desk.on_item(_answered("b", "seat1"))  # the resync finds the talking call answered
    desk.on_item(_answered("c", "seat1"))  # a new call
    assert desk.view("seat1").today.answered == 3


async def test_a_database_that_cannot_answer_leaves_the_counts_at_zero_and_says_so() -> None:
    desk = _desk(_Log(None))
    with capture_logs() as logs:
        await desk.restore_today()
    assert [e["event"] for e in logs] == ["seat_today_not_restored"]
    assert "database unreachable" in logs[0]["error"]
    assert desk.view("seat1").today == SeatToday()
    desk.on_item(_answered("a", "seat1"))
    assert desk.view("seat1").today.answered == 1
