"""The one state of a seat (`derive`): a call beats a pause, a pause beats ready, no staff or no
phone is logged out, a wrap-up not yet confirmed by the PBX already counts."""

from __future__ import annotations

import pytest

from ctid.calls.seat_desk import _Wrap, derive
from ctid.calls.seat_state import SeatState
from ctid.core.calls import SeatState as Live
from ctid.core.ids import CallId, SeatId

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
