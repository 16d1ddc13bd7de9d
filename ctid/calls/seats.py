"""Seats as the call tracker sees them: which Asterisk interface and channels belong to a seat
(the `SeatState` snapshot itself is public, in `ctid.core.calls`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ctid.config import SeatConfig, Tier
from ctid.core.ids import SeatId

_HEX = frozenset("0123456789abcdefABCDEF")
UNAVAILABLE_DEVICE_STATES = frozenset({4, 5})
"""Asterisk device states 4 (invalid) and 5 (unavailable): the phone cannot take calls."""


@dataclass(frozen=True, slots=True)
class SeatRef:
    """A configured seat: its id, the queue-member interface and its tier."""

    seat_id: SeatId
    interface: str
    tier: Tier

    @classmethod
    def from_config(cls, seat: SeatConfig) -> SeatRef:
        return cls(SeatId(seat.id), seat.interface, seat.tier)


def seat_refs(seats: Iterable[SeatConfig]) -> tuple[SeatRef, ...]:
    """The tracker's view of `Config.seats`."""
    return tuple(SeatRef.from_config(s) for s in seats)


def interface_device(interface: str) -> str:
    """The device a queue-member interface dials: `Local/seat1@phones/n` → `Local/seat1@phones`.

    Only Local interfaces carry options (`/n`, `/m`, `/nj`...) after the `exten@context` part.
    """
    if interface.startswith("Local/"):
        head, sep, opts = interface[6:].rpartition("/")
        if sep and "@" in head and opts.isalpha():
            return "Local/" + head
    return interface


def channel_device(channel: str) -> str:
    """The device a channel belongs to, by Asterisk's naming rules: `PJSIP/seat1-0000002a` →
    `PJSIP/seat1`, `Local/seat1@phones-0000000b;1` → `Local/seat1@phones`.

    Asterisk names a channel `<tech>/<resource>-<8+ hex digits>` (Local adds `;1`/`;2` for its two
    halves), so only that exact suffix is removed; `PJSIP/seat10-...` can never become `seat1`.
    """
    name = channel
    if name.endswith((";1", ";2")):
        name = name[:-2]
    base, sep, suffix = name.rpartition("-")
    if sep and len(suffix) >= 8 and _HEX.issuperset(suffix) and "/" in base:
        return base
    return name
