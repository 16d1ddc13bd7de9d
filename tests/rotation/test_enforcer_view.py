"""The desk state the IVR and the wallboard read: `RotaDeskView` (the IVR's `DeskView`), the cached
`CurrentRota` and `state_summary`."""

from __future__ import annotations

from ctid.calls.ivr import DeskView, queue_for
from ctid.core.clock import FakeClock
from ctid.rotation.desk import CurrentRota, RotaDeskView, state_summary
from ctid.rotation.rota import Rota

from ._desk import SHANGHAI, at
from .test_enforcer import CFG, MONDAY, ROTA, desk_config

OVERFLOW_CFG = desk_config(
    groups=[
        {"name": "A", "seats": ["seat1", "seat3"]},
        {"name": "B", "seats": ["seat2"]},  # no expert: W48's lunch overflows
    ],
    allow_overflow=True,
)


def view_at(when: str, rota: Rota = ROTA) -> tuple[RotaDeskView, CurrentRota, FakeClock]:
    clock = FakeClock(at(when), SHANGHAI)
    current = CurrentRota(rota, clock)
    return RotaDeskView(current), current, clock


def test_view_is_the_ivr_desk_view_and_follows_the_clock() -> None:
    view, _, clock = view_at(f"{MONDAY} 07:00")
    desk: DeskView = view  # structural: mypy checks ctid/, this documents the intent
    assert (desk.mode, desk.tiers_on_duty) == ("closed", frozenset())
    assert not desk.seat_on_duty("seat1")
    clock.set(at(f"{MONDAY} 09:00"))
    assert (view.mode, view.tiers_on_duty) == ("open", frozenset({"ordinary", "expert"}))
    clock.set(at(f"{MONDAY} 12:00"))
    assert view.mode == "lunch"
    assert [view.seat_on_duty(f"seat{n}") for n in (1, 2, 3, 4)] == [False, True, False, True]
    assert view.tiers_on_duty == frozenset({"ordinary", "expert"})
    assert view.overflow_expert_to_ordinary is False
    clock.set(at(f"{MONDAY} 13:30"))
    assert view.mode == "open" and view.seat_on_duty("seat1")
    clock.set(at(f"{MONDAY} 17:30"))
    assert view.mode == "closed"


def test_lunch_without_an_expert_overflows_and_the_ivr_never_routes_to_nobody() -> None:
    view, _, _ = view_at(f"{MONDAY} 12:30", Rota.from_config(OVERFLOW_CFG))
    assert view.tiers_on_duty == frozenset({"ordinary"})
    assert view.overflow_expert_to_ordinary is True
    assert queue_for(OVERFLOW_CFG, "expert", view) == ("ordinary", True)
    assert queue_for(CFG, "expert", view_at(f"{MONDAY} 12:30")[0]) == ("expert", False)


def test_cached_state_changes_exactly_at_the_transition_and_on_a_new_rota() -> None:
    _, current, clock = view_at(f"{MONDAY} 11:59:59")
    first = current.state()
    assert first.mode == "open"
    clock.set(at(f"{MONDAY} 11:59:59.999"))
    assert current.state().mode == "open"
    assert current.state().at == at(f"{MONDAY} 11:59:59.999")
    clock.set(at(f"{MONDAY} 12:00"))
    assert current.state().mode == "lunch"
    current.set(Rota.from_config(OVERFLOW_CFG))
    assert current.state().uncovered_tiers == frozenset({"expert"})


def test_cached_closed_state_does_not_carry_a_holiday_into_the_next_day() -> None:
    hours = CFG.hours.model_copy(update={"holidays": (at("2026-10-01").date(),)})
    rota = Rota.from_config(CFG.model_copy(update={"hours": hours}))
    _, current, clock = view_at("2026-09-30 18:00", rota)
    assert current.state().holiday is None
    clock.set(at("2026-10-01 09:00"))
    assert current.state().holiday == ""
    assert current.state().mode == "closed"


def test_state_summary_for_the_wallboard() -> None:
    _, current, _ = view_at(f"{MONDAY} 12:30")
    assert state_summary(current) == {
        "at": "2026-11-23T12:30:00+08:00",
        "mode": "lunch",
        "lunch_group": "B",
        "lunch_source": "rotation",
        "on_duty": ["seat2", "seat4"],
        "off_duty": {"seat1": "lunch", "seat3": "lunch"},
        "tiers_on_duty": ["expert", "ordinary"],
        "uncovered_tiers": [],
        "overflow_expert_to_ordinary": False,
        "holiday": None,
        "next_transition": "2026-11-23T13:30:00+08:00",
        "next_mode": "open",
    }
