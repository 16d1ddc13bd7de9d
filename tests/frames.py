"""Frames for tests: a whole pop frame built by the pure pop model, and a wallboard frame."""

from __future__ import annotations

from typing import Any

from ctid.config import TalkCapConfig
from ctid.core.frames import (
    AlertFrame,
    BoardQueue,
    BoardSeat,
    PopFrame,
    SeatPart,
    SeatStateFrame,
    TodayPart,
    WaitingCaller,
    WallboardFrame,
)
from ctid.screenpop.pop import (
    CallerCard,
    CallerMatch,
    RingInput,
    answered,
    hung_up,
    ringing,
    to_frame,
)

T0 = 1_795_000_000.0


def pop_frame(seat: str, call_id: str, name: str = "Li Lei", state: str = "ringing") -> PopFrame:
    """The pop of a call from a known caller named `name`, ringing, talking or in wrap-up."""
    ring = RingInput(
        call_id=call_id,
        seat_id=seat,
        number="13800138000",
        cid_name=name,
        queue="ordinary",
        rang_at=T0,
        ring_deadline_at=T0 + 15,
        matches=(CallerMatch(card=CallerCard(caller_id=1, name=name)),),
    )
    pop = ringing(ring)
    if state in ("talking", "wrapup"):
        pop = answered(pop, at=T0 + 5, talk_cap=TalkCapConfig())
    if state == "wrapup":
        pop = hung_up(pop, at=T0 + 60)
    return to_frame(pop)


def seat_state(seat: str, state: str = "ready", call_id: str | None = None) -> SeatStateFrame:
    """A `seat_state` frame: `seat` is in `state` (on `call_id`, if given)."""
    part = SeatPart(
        seat=seat,
        name=seat.title(),
        agent=None,
        tier="ordinary",
        state=state,
        reason=None,
        reason_words=None,
        since=None,
        in_state_s=0,
        wrapup_ends_at=None,
        wrapup_extended=False,
        call_id=call_id,
        today=TodayPart(answered=0, missed=0, avg_talk_s=0),
    )
    return SeatStateFrame(T0, part)


def wallboard(**kpis: object) -> WallboardFrame:
    """A wallboard with no seats and no queues, and these KPI figures."""
    return WallboardFrame(at=T0, seats=(), queues=(), kpis=kpis, desk={}, ami={})


def wallboard_of(wire: dict[str, Any]) -> WallboardFrame:
    """The typed frame of a wallboard written out as its wire JSON (checked to round-trip)."""
    frame = WallboardFrame(
        at=wire["at"],
        seats=tuple(BoardSeat(**s) for s in wire["seats"]),
        queues=tuple(
            BoardQueue(q["name"], tuple(WaitingCaller(**w) for w in q["waiting"]))
            for q in wire["queues"]
        ),
        kpis=wire["kpis"],
        desk=wire["desk"],
        ami=wire["ami"],
    )
    assert frame.to_wire() == wire
    return frame


def alert_of(wire: dict[str, Any]) -> AlertFrame:
    """The typed frame of an alert written out as its wire JSON (checked to round-trip)."""
    frame = AlertFrame(**{k: v for k, v in wire.items() if k not in ("v", "type")})
    assert frame.to_wire() == wire
    return frame


def wallboard_seat(seat_id: str, status: str, **kw: Any) -> dict[str, Any]:
    """One seat of a wallboard frame as the browser receives it (JSON-ready)."""
    base: dict[str, Any] = {
        "seat_id": seat_id,
        "name": f"Seat {seat_id[-1]}",
        "tier": "expert" if seat_id in ("seat3", "seat4") else "ordinary",
        "status": status,
        "pause_reason": "",
        "ring_started_at": None,
        "ring_deadline_at": None,
        "talk_started_at": None,
        "cap_at": None,
        "caller": "",
        "call_id": "",
        "channel": "",
    }
    base.update(kw)
    return base
