"""The rota's view of the live seats, kept from the call story on the bus (`LiveSeatBoard`), and
the rota work that seat changes start (`RotaFollower`): a lunch that began during a call, a pause
changed by hand, the apply after each resync, the audit of an automatic pause (journaled)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, assert_never

import structlog

from ctid.config import Config
from ctid.core.calls import SeatsResynced, SeatState, SeatStateChanged
from ctid.core.clock import Clock
from ctid.core.effects import AlertSupervisors
from ctid.core.ids import SeatId
from ctid.rotation.enforcer import LiveSeat, RotaEnforcer
from ctid.spool import WriteSpool

log = structlog.get_logger(__name__)

SeatItem = SeatStateChanged | SeatsResynced | AlertSupervisors
"""The bus items the rota follows."""


class LiveSeatBoard:
    """Implements the enforcer's `LiveSeats` from `SeatStateChanged`/`SeatsResynced` notices:
    unknown (None) until the first resync after login has been told."""

    def __init__(self, cfg: Config) -> None:
        self._seats: dict[SeatId, SeatState] = {}
        self.known = False
        tiers = {s.id: s.tier for s in cfg.seats}
        # The PBX says which queues a seat is in, not its penalty there; ctid's own config gives
        # the penalty it would set (a wrong penalty set by hand is not corrected).
        self._penalties = {
            sid: {q.name: q.tiers.get(tier, 0) for q in cfg.queues} for sid, tier in tiers.items()
        }

    def update(self, item: SeatStateChanged | SeatsResynced) -> None:
        if isinstance(item, SeatsResynced):
            self._seats = {s.seat_id: s for s in item.seats}
            self.known = True
        else:
            self._seats[item.seat] = item.new

    def live(self, seat_id: SeatId) -> LiveSeat | None:
        state = self._seats.get(seat_id) if self.known else None
        if state is None:  # before the first resync, or a seat added to the roster since
            return None
        penalties = self._penalties.get(seat_id, {})
        return LiveSeat(
            on_call=state.activity != "idle",
            paused=state.paused,
            pause_reason=state.pause_reason,
            memberships={q: penalties.get(q, 0) for q in state.queues},
        )


class AuditJournal(Protocol):
    """Where audit rows wait for the database: on local disk before `submit` returns, applied
    in order, exactly once, by the journal's `audit` op (`ctid.journal` fits)."""

    async def submit(self, op: str, args: Mapping[str, Any], what: str = "") -> int: ...


class RotaFollower:
    """The bus handler `on_item`: keeps the board and queues the rota's reactions in order on
    their own work queue, so the event path never waits for an AMI round trip."""

    def __init__(
        self,
        board: LiveSeatBoard,
        rota: RotaEnforcer,
        work: WriteSpool,
        journal: AuditJournal,
        clock: Clock,
    ) -> None:
        self._board = board
        self._rota = rota
        self._work = work
        self._journal = journal
        self._clock = clock
        self.applied = asyncio.Event()
        """Set once the rota has been applied after the first resync (tests wait on it)."""

    async def on_item(self, item: SeatItem) -> None:
        match item:
            case SeatsResynced():
                self._board.update(item)
                await self._work.submit("rota apply after resync", self._apply_now)
            case SeatStateChanged():
                log.info("seat_state", seat=item.seat, status=item.new.status, why=item.reason)
                self._board.update(item)
                old, new, seat = item.old, item.new, item.seat
                if not self._board.known:
                    return
                if old.activity != "idle" and new.activity == "idle":
                    await self._work.submit(
                        f"rota: {seat} free", lambda: self._rota.seat_call_ended(seat)
                    )
                if (old.paused, old.pause_reason) != (new.paused, new.pause_reason):
                    await self._work.submit(
                        f"rota: {seat} pause changed", lambda: self._rota.seat_pause_changed(seat)
                    )
            case AlertSupervisors():
                if item.kind == "auto_pause" and item.seat:
                    # The supervisor's trail of ctid pausing a seat after missed rings.
                    await self._journal.submit(
                        "audit",
                        {
                            "at": self._clock.utcnow(),
                            "actor": "ctid",
                            "action": "seat_paused",
                            "target": item.seat,
                            "detail": {"reason": "rna", "message": item.message},
                        },
                        f"audit auto-pause {item.seat}",
                    )
            case _:
                assert_never(item)

    async def _apply_now(self) -> None:
        await self._rota.apply_now()
        self.applied.set()
