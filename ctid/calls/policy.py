"""The desk's rules on live calls as pure state machines that return effects:
the three-ring rule (cut a leg still ringing at the deadline, count misses, pause after repeated
misses) and the talk-time cap (warnings, then the configured action)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ctid.config import RingConfig, TalkCapConfig
from ctid.core.effects import (
    AlertSupervisors,
    CancelTimer,
    CapDue,
    CapWarningDue,
    CutRingingLeg,
    Effect,
    FlagCall,
    HangupChannel,
    NotifySeat,
    PauseSeat,
    RecordAnswer,
    RecordRingMiss,
    RedirectToQueue,
    RequestCallback,
    RingDeadlineDue,
    StartTimer,
)
from ctid.core.ids import CallId, Channel, QueueName, SeatId

RingEnd = Literal["answered", "no_answer", "cut", "caller_left", "other_answered", "other"]

# A leg the queue itself ended this close to the deadline was let ring to the limit: a miss.
_DEADLINE_SLACK_S = 0.5


def ring_number(ring_s: float, cadence_s: float) -> int:
    """Which ring a call was answered at: 0–5 s is ring 1, 5–10 s ring 2, … (cadence 5 s)."""
    return max(1, math.ceil(round(ring_s, 3) / cadence_s))


@dataclass
class _Leg:
    call_id: CallId
    seat: SeatId
    missed: bool = False


@dataclass
class RingPolicy:
    """Answer within `max_rings` rings (deadline = max_rings × ring_cadence_s from ring start)."""

    cfg: RingConfig
    _legs: dict[Channel, _Leg] = field(default_factory=dict)
    misses: dict[SeatId, int] = field(default_factory=dict)
    _paused_rna: set[SeatId] = field(default_factory=set)

    @staticmethod
    def key(channel: Channel) -> RingDeadlineDue:
        return RingDeadlineDue(channel)

    def ring_started(
        self, call_id: CallId, seat: SeatId, channel: Channel, already_ringing_s: float = 0.0
    ) -> list[Effect]:
        self._legs[channel] = _Leg(call_id, seat)
        return [StartTimer(self.key(channel), self.cfg.deadline_s - already_ringing_s)]

    def deadline_reached(self, channel: Channel, still_ringing: bool) -> list[Effect]:
        leg = self._legs.get(channel)
        if leg is None or not still_ringing:
            return []
        leg.missed = True
        return [
            CutRingingLeg(leg.call_id, leg.seat, channel),
            *self._miss(leg, self.cfg.deadline_s),
        ]

    def ring_ended(self, channel: Channel, why: RingEnd, ring_s: float) -> list[Effect]:
        leg = self._legs.pop(channel, None)
        if leg is None:
            return []
        effects: list[Effect] = [CancelTimer(self.key(channel))]
        if why == "answered":
            self.misses[leg.seat] = 0
            number = ring_number(ring_s, self.cfg.ring_cadence_s)
            effects.append(
                RecordAnswer(leg.call_id, leg.seat, ring_s, number, number <= self.cfg.max_rings)
            )
        elif (
            why in ("no_answer", "cut")
            and not leg.missed
            and ring_s >= self.cfg.deadline_s - _DEADLINE_SLACK_S
        ):
            effects += self._miss(leg, ring_s)
        return effects

    def seat_unpaused(self, seat: SeatId) -> list[Effect]:
        """Back from a pause (by the agent or a supervisor): a clean slate."""
        self.misses[seat] = 0
        self._paused_rna.discard(seat)
        return []

    def _miss(self, leg: _Leg, ring_s: float) -> list[Effect]:
        count = self.misses.get(leg.seat, 0) + 1
        self.misses[leg.seat] = count
        effects: list[Effect] = [
            RecordRingMiss(leg.call_id, leg.seat, ring_s, count),
            AlertSupervisors(
                "ring_miss",
                f"{leg.seat} let a call ring past {self.cfg.max_rings} rings ({count} in a row)",
                leg.seat,
                leg.call_id,
            ),
        ]
        if count >= self.cfg.rna_pause_after and leg.seat not in self._paused_rna:
            self._paused_rna.add(leg.seat)
            effects += [
                PauseSeat(leg.seat, "rna"),
                AlertSupervisors(
                    "auto_pause",
                    f"{leg.seat} paused after {count} missed calls in a row (reason rna)",
                    leg.seat,
                    leg.call_id,
                ),
            ]
        return effects


@dataclass
class _Talk:
    seat: SeatId
    tier: str
    caller_channel: Channel
    caller_number: str


@dataclass
class TalkCapPolicy:
    """No agent call past `talk_cap_s`: warnings at `warn_at_s`, then the configured action."""

    cfg: TalkCapConfig
    _calls: dict[CallId, _Talk] = field(default_factory=dict)

    def answered(
        self,
        call_id: CallId,
        seat: SeatId,
        tier: str,
        caller_channel: Channel,
        caller_number: str,
        talked_s: float = 0.0,
    ) -> list[Effect]:
        """A call was answered `talked_s` ago (0 live; more after a resync or restart)."""
        self._calls[call_id] = _Talk(seat, tier, caller_channel, caller_number)
        effects: list[Effect] = [
            StartTimer(CapWarningDue(call_id, point), point - talked_s)
            for point in self.cfg.warn_at_s
            if point > talked_s
        ]
        effects.append(StartTimer(CapDue(call_id), max(0.0, self.cfg.talk_cap_s - talked_s)))
        return effects

    def talking(self, call_id: CallId) -> bool:
        """Whether the cap is counting for this call (it was answered and has not ended)."""
        return call_id in self._calls

    def moved(self, call_id: CallId, seat: SeatId, tier: str) -> None:
        """The call now talks to another seat (transfer); timers keep counting from the answer."""
        talk = self._calls.get(call_id)
        if talk is not None:
            talk.seat, talk.tier = seat, tier

    def ended(self, call_id: CallId) -> list[Effect]:
        if self._calls.pop(call_id, None) is None:
            return []
        effects: list[Effect] = [CancelTimer(CapWarningDue(call_id, p)) for p in self.cfg.warn_at_s]
        effects.append(CancelTimer(CapDue(call_id)))
        return effects

    def timer(self, key: CapWarningDue | CapDue) -> list[Effect]:
        call_id = key.call_id
        talk = self._calls.get(call_id)
        if talk is None:
            return []
        if isinstance(key, CapWarningDue):
            point = key.point_s
            remaining = self.cfg.talk_cap_s - point
            text = f"{talk.seat}: call at {point // 60}:{point % 60:02d}, {remaining} s to the cap"
            return [
                NotifySeat(talk.seat, "cap_warning", call_id, remaining_s=remaining),
                AlertSupervisors("cap_warning", text, talk.seat, call_id),
            ]
        action = self.cfg.action
        if action == "transfer_expert" and talk.tier == "expert":
            action = "notify"  # already with an expert: nobody to hand it to
        effects: list[Effect] = [
            FlagCall(call_id, "capped"),
            NotifySeat(talk.seat, "cap_reached", call_id, action=action),
            AlertSupervisors(
                "cap_reached",
                f"{talk.seat}: call reached the {self.cfg.talk_cap_s // 60}-minute cap ({action})",
                talk.seat,
                call_id,
            ),
        ]
        if action == "hangup":
            self._calls.pop(call_id, None)
            effects += [
                HangupChannel(call_id, talk.caller_channel, "talk cap"),
                RequestCallback(call_id, talk.caller_number, "capped"),
            ]
        elif action == "transfer_expert":
            effects.append(
                RedirectToQueue(
                    call_id, talk.caller_channel, QueueName(self.cfg.expert_queue), "talk cap"
                )
            )
        return effects
