"""The call tracker: every live call and seat from events, pure (no I/O, no clock), returning the
`Notice`s that tell what happened; its public face and `apply`, built on its parts, `tracker_*.py`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ctid.calls.call_state import TOMBSTONES, call_view
from ctid.calls.seats import SeatRef
from ctid.calls.tracker_events import EventHandlers
from ctid.calls.tracker_resync import Resync
from ctid.core.calls import CallState, Notice, SeatState
from ctid.core.errors import CtidError
from ctid.core.events import (
    AgentCompleted,
    AgentConnected,
    AgentDumped,
    AgentRang,
    AgentRingUnanswered,
    BridgeEntered,
    BridgeLeft,
    CallerAbandoned,
    CallerJoinedQueue,
    CallerLeftQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelStateChanged,
    ChannelVariableSet,
    DialEnded,
    Event,
    QueueMemberAdded,
    QueueMemberPaused,
    QueueMemberRemoved,
    QueueMemberStatusChanged,
    RingingLegCut,
    SpyStarted,
    SpyStopped,
    TalkCapApplied,
    Transferred,
)
from ctid.core.ids import CallId, Channel, SeatId


class UnknownSeatError(CtidError):
    """A seat id that is not configured."""


class CallTracker(EventHandlers, Resync):
    """Every live call and every seat, from events. Feed it with `apply` in bus order and, after
    (re)connecting, with `resync`; read it with `call`, `calls`, `seat`, `seats`.

    Asterisk gives no ordering between channels (docs/architecture.md, "The call tracker"), so
    nothing here assumes one: a seat leg may hang up before the queue says the ring went
    unanswered, a bridge may form before the queue says the agent connected. A ring attempt ends
    on the queue's verdict, a seat's own state follows its channels at once, and a call ends only
    when its last channel is gone (its `CallEnded` carries the `CallRecord`).

    Its parts, each a base class over the same tables: `TrackerTables` (the tables and their
    bookkeeping), `SeatViews` (seats' views, membership events), `EventHandlers` (the other
    events) and `Resync`; `apply` dispatches on the event's type through `_handlers`."""

    def __init__(self, seats: Sequence[SeatRef], remember: int = TOMBSTONES) -> None:
        """`remember`: how many hung-up channels and ended calls to recognise late events for."""
        super().__init__(seats, remember)
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            ChannelCreated: self._on_created,
            ChannelStateChanged: self._on_state,
            ChannelHungUp: self._on_hangup,
            ChannelVariableSet: self._on_varset,
            DialEnded: self._on_dial_end,
            BridgeEntered: self._on_bridge_enter,
            BridgeLeft: self._on_bridge_leave,
            CallerJoinedQueue: self._on_join,
            CallerLeftQueue: self._on_leave,
            CallerAbandoned: self._on_abandon,
            AgentRang: self._on_agent_rang,
            AgentRingUnanswered: self._on_agent_rna,
            AgentConnected: self._on_agent_connect,
            AgentCompleted: self._on_agent_complete,
            AgentDumped: self._on_agent_dump,
            QueueMemberStatusChanged: self._on_member_status,
            QueueMemberPaused: self._on_member_pause,
            QueueMemberAdded: self._on_member_added,
            QueueMemberRemoved: self._on_member_removed,
            SpyStarted: self._on_spy_start,
            SpyStopped: self._on_spy_stop,
            Transferred: self._on_transfer,
            RingingLegCut: self._on_leg_cut,
            TalkCapApplied: self._on_talk_cap,
        }

    # ------------------------------------------------------------------ reading

    @property
    def last_at(self) -> float:
        """The latest `at` seen: "now" on the events' clock, for the facts ctid adds itself."""
        return self._last_at

    def call(self, call_id: CallId) -> CallState | None:
        group = self._calls.get(call_id)
        return None if group is None else call_view(group)

    def calls(self) -> tuple[CallState, ...]:
        return tuple(call_view(g) for g in self._calls.values())

    def seat(self, seat_id: SeatId) -> SeatState:
        try:
            return self._views[seat_id]
        except KeyError:
            raise UnknownSeatError(f"no seat {seat_id!r} is configured") from None

    def seats(self) -> tuple[SeatState, ...]:
        return tuple(self._views.values())

    def call_of_channel(self, channel: Channel) -> CallId | None:
        """The call a live channel belongs to (for the policy: which call is this seat leg?)."""
        chan = self._by_name.get(channel)
        if chan is None or not chan.group.is_call:
            return None
        return chan.group.call_id

    def stats(self) -> dict[str, int]:
        """Sizes of the internal tables (to watch for leaks)."""
        return {
            "channels": len(self._chans),
            "calls": len(self._calls),
            "aliases": len(self._alias),
            "leg_attempts": len(self._leg_attempts),
            "tombstones": len(self._gone_uids) + len(self._ended_calls),
        }

    def recall_answer(self, call_id: CallId, seat: SeatId, at: float) -> bool:
        """The stored answer time of a call a resync found answered (see `AnswerSource`).
        Applied only to an answer estimated from the seat leg's age, by the same seat, and only
        when it fits (not before the leg existed). Returns whether it changed anything."""
        group = self._calls.get(call_id)
        if (
            group is None
            or group.answer_source != "seat_leg_start"
            or group.answered_by != seat
            or group.answered_at is None
        ):
            return False
        attempt = group.by_leg.get(group.answered_uid) if group.answered_uid else None
        if attempt is None or at < attempt.start - 1.0 or at > self._last_at:
            return False  # Duration is whole seconds: a stored answer may precede it by < 1 s
        group.answered_at = at
        group.answer_source = "stored"
        attempt.end = at
        return True

    # ------------------------------------------------------------------ applying events

    def apply(self, event: Event) -> list[Notice]:
        """Apply one event; return what happened, in order. Never raises for odd event orders."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return []
        if event.at > self._last_at:
            self._last_at = event.at
        out: list[Notice] = []
        self._notices = out
        handler(event)
        if self._touched:
            self._flush_seats(event.at)
        return out
