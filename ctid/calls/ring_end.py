"""Who ended a ring attempt — ctid's three-ring cut, the queue's own ring timeout, the caller, or an
answer — decided from the order of what the PBX reported (pure; the tracker supplies the facts)."""

# The recordings (shared/ami-transcripts/pjsip) give the signatures: ctid's cut → the seat leg's
# DialEnd NOANSWER comes *before* AgentRingNoAnswer and the leg's Hangup has cause 19; the queue's
# timeout → AgentRingNoAnswer comes first, then DialEnd NOANSWER/CANCEL, Hangup cause 0; a caller
# who leaves → the caller's hangup / QueueCallerAbandon while the seat rings, DialEnd CANCEL.

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, assert_never

RingEndedBy = Literal["ctid", "queue", "caller", "answer", "other"]
RingOutcomeName = Literal["cut", "no_answer", "caller_left", "answered", "other"]

CAUSE_NO_ANSWER = 19
"""The Hangup cause ctid's cut uses (`User alerting, no answer`)."""


@dataclass(frozen=True)
class RingFacts:
    """What was seen of one ring attempt, in the order that matters."""

    answered: bool = False
    """AgentConnect, a bridged seat leg or DialEnd ANSWER."""
    cut_sent: bool = False
    """ctid sent Hangup for this ringing leg (its three-ring cut)."""
    no_answer_first: bool = False
    """AgentRingNoAnswer arrived before the seat leg's DialEnd: app_queue's own timeout."""
    caller_left_first: bool = False
    """The caller hung up or abandoned while this seat still rang."""
    leg_cause: int | None = None
    """The Hangup cause of the seat leg, when it was seen."""


def ring_ended_by(facts: RingFacts) -> RingEndedBy:
    """Who ended the ring. The leg's Hangup cause settles a race: 19 means ctid's Hangup killed
    it; when app_queue timed the seat out first the leg goes with cause 0 and ctid's Hangup finds
    no channel (the race the contrib margin avoids). Without a cause the order decides:
    AgentRingNoAnswer before the leg's DialEnd is the queue's. A leg that ended without either
    (the phone declined it, another manager hung it up) is `other`."""
    if facts.answered:
        return "answer"
    if facts.caller_left_first:
        return "caller"
    if facts.cut_sent and facts.leg_cause == CAUSE_NO_ANSWER:
        return "ctid"
    if facts.no_answer_first:
        return "queue"
    if facts.cut_sent and facts.leg_cause is None:
        return "ctid"
    return "other"


def outcome_name(by: RingEndedBy) -> RingOutcomeName:
    """The `ring_attempts.outcome` word for who ended it (the column the reports already read)."""
    match by:
        case "ctid":
            return "cut"
        case "queue":
            return "no_answer"
        case "caller":
            return "caller_left"
        case "answer":
            return "answered"
        case "other":
            return "other"
        case _:
            assert_never(by)
