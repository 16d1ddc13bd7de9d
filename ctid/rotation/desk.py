"""The rota in force and the desk state for now, shared by the enforcer, the scheduler, the IVR
(`RotaDeskView`, the `DeskView` of `ctid.calls.ivr`) and the wallboard (`state_summary`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from ctid.core.clock import Clock
from ctid.rotation.plan import DeskState, Mode
from ctid.rotation.rota import Rota


class CurrentRota:
    """Holds the current `Rota` snapshot; `state()` is cached until the next transition, so the
    IVR asking once per call costs a comparison, not a calendar walk."""

    def __init__(self, rota: Rota, clock: Clock) -> None:
        self._rota = rota
        self._clock = clock
        self._cached: DeskState | None = None

    @property
    def rota(self) -> Rota:
        return self._rota

    @property
    def clock(self) -> Clock:
        return self._clock

    def set(self, rota: Rota) -> None:
        self._rota = rota
        self._cached = None

    def state(self, at: datetime | None = None) -> DeskState:
        """The desk at `at` (default: now)."""
        when = at if at is not None else self._clock.now()
        cached = self._cached
        if (
            cached is not None
            and cached.at.astimezone(UTC) <= when.astimezone(UTC)
            and when.astimezone(UTC) < cached.next_transition.astimezone(UTC)
            # `holiday` belongs to the local date; a closed stretch spans midnights.
            and self._rota.calendar.local_date(when) == cached.at.date()
        ):
            return replace(cached, at=when.astimezone(self._rota.calendar.tz))
        state = self._rota.state(when)
        self._cached = state
        return state

    def tiers_on_duty(self, state: DeskState) -> frozenset[str]:
        return frozenset(s.tier for s in self._rota.duty_seats if s.id in state.on_duty)


class RotaDeskView:
    """What the IVR reads (structurally the `DeskView` Protocol of `ctid.calls.ivr`)."""

    def __init__(self, current: CurrentRota) -> None:
        self._current = current

    @property
    def mode(self) -> Literal["closed", "open", "lunch"]:
        return self._current.state().mode

    @property
    def tiers_on_duty(self) -> frozenset[str]:
        return self._current.tiers_on_duty(self._current.state())

    @property
    def overflow_expert_to_ordinary(self) -> bool:
        return self._current.state().overflow_expert_to_ordinary

    def seat_on_duty(self, seat_id: str) -> bool:
        return seat_id in self._current.state().on_duty


def state_summary(current: CurrentRota, at: datetime | None = None) -> dict[str, object]:
    """The desk state as JSON-ready data for the wallboard and the ops page."""
    state = current.state(at)
    mode: Mode = state.mode
    return {
        "at": state.at.isoformat(),
        "mode": mode,
        "lunch_group": state.lunch_group,
        "lunch_source": state.lunch_source,
        "on_duty": sorted(state.on_duty),
        "off_duty": dict(sorted(state.off_duty.items())),
        "tiers_on_duty": sorted(current.tiers_on_duty(state)),
        "uncovered_tiers": sorted(state.uncovered_tiers),
        "overflow_expert_to_ordinary": state.overflow_expert_to_ordinary,
        "holiday": state.holiday,
        "next_transition": state.next_transition.isoformat(),
        "next_mode": state.next_mode,
    }
