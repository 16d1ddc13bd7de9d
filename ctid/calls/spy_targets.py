"""The spy's targets: which seat talks on which exact channel of which live call now, kept from
the call story's notices (the tracker is never read back)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias, assert_never

from ctid.core.calls import (
    CallAnswered,
    CallEnded,
    SeatLegEnded,
    SeatsResynced,
    SeatState,
    SeatStateChanged,
)
from ctid.core.ids import CallId, Channel, SeatId

TargetItems: TypeAlias = CallAnswered | SeatLegEnded | CallEnded | SeatStateChanged | SeatsResynced
"""What `TalkingSeats` reads from the bus (subscribe `on_item` to these)."""


@dataclass(frozen=True, slots=True)
class SeatLeg:
    """A seat's own answered leg of a live call: ChanSpy's exact target."""

    call_id: CallId
    channel: Channel


class TalkingSeats:
    """Each seat's answered leg (`CallAnswered`, one per seat that took the call, so a transferred
    call's new seat counts) until that leg ends (`SeatLegEnded`) or the call does (`CallEnded`),
    and each seat's state. A resync's notices repair it: a leg that vanished meanwhile is told
    ended, one answered meanwhile is told answered, and `SeatsResynced` replaces the seats and
    drops the legs of calls that are no longer live.

    It is current whenever a request runs between two bus items: the tracker's notices about an
    event are dispatched right after the event, before anything else."""

    def __init__(self) -> None:
        self._legs: dict[SeatId, SeatLeg] = {}
        self._seats: dict[SeatId, SeatState] = {}

    def leg(self, seat_id: SeatId) -> SeatLeg | None:
        """The seat's answered leg while the seat is talking on that call, else None."""
        leg = self._legs.get(seat_id)
        seat = self._seats.get(seat_id)
        if leg is None or seat is None or seat.activity != "on_call" or seat.call_id != leg.call_id:
            return None
        return leg

    def on_item(self, item: TargetItems) -> None:
        match item:
            case CallAnswered():
                self._legs[item.seat] = SeatLeg(item.call_id, item.seat_channel)
            case SeatLegEnded():
                leg = self._legs.get(item.seat)
                if leg is not None and leg.channel == item.seat_channel:
                    del self._legs[item.seat]
            case CallEnded():
                call_id = item.record.call_id
                for seat in [s for s, leg in self._legs.items() if leg.call_id == call_id]:
                    del self._legs[seat]
            case SeatStateChanged():
                self._seats[item.seat] = item.new
            case SeatsResynced():
                self._seats = {s.seat_id: s for s in item.seats}
                live = set(item.calls)
                for seat in [s for s, leg in self._legs.items() if leg.call_id not in live]:
                    del self._legs[seat]
            case _:
                assert_never(item)
