"""Who ended a ring attempt: table tests, and the facts read from the real PJSIP recordings
(ctid's cut first, the queue's timeout first, an abandon, an answer) classified as they happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctid.calls.ring_end import RingEndedBy, RingFacts, outcome_name, ring_ended_by
from tests.paths import SHARED_TRANSCRIPTS, TRANSCRIPTS


@pytest.mark.parametrize(
    ("facts", "by", "outcome"),
    [
        (RingFacts(answered=True), "answer", "answered"),
        (RingFacts(answered=True, cut_sent=True), "answer", "answered"),  # answered in the race
        (RingFacts(cut_sent=True, leg_cause=19), "ctid", "cut"),
        (RingFacts(cut_sent=True), "ctid", "cut"),  # the leg's Hangup not seen yet
        (RingFacts(no_answer_first=True, leg_cause=0), "queue", "no_answer"),
        # ctid sent its cut but app_queue had already timed the seat out: the queue ended it
        (RingFacts(cut_sent=True, no_answer_first=True, leg_cause=0), "queue", "no_answer"),
        (RingFacts(cut_sent=True, no_answer_first=True), "queue", "no_answer"),
        (RingFacts(cut_sent=True, leg_cause=0), "other", "other"),  # gone, but not by our cut
        (RingFacts(caller_left_first=True, leg_cause=0), "caller", "caller_left"),
        (RingFacts(caller_left_first=True, cut_sent=True), "caller", "caller_left"),
        (RingFacts(leg_cause=21), "other", "other"),  # the phone rejected the call
        (RingFacts(), "other", "other"),
    ],
)
def test_ring_ended_by(facts: RingFacts, by: RingEndedBy, outcome: str) -> None:
    assert ring_ended_by(facts) == by
    assert outcome_name(by) == outcome


def _pjsip_dir() -> Path | None:
    for base in (TRANSCRIPTS / "pjsip", SHARED_TRANSCRIPTS / "pjsip"):
        if (base / "pjsip_ring_cut_client_first.jsonl").is_file():
            return base
    return None


def _frames(path: Path) -> list[tuple[str, dict[str, str]]]:
    out = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec["dir"] not in ("in", "out"):
            continue
        fields: dict[str, str] = {}
        for row in rec["raw"].split("\r\n"):
            name, sep, value = row.partition(": ")
            if sep and name not in fields:
                fields[name] = value
        out.append((rec["dir"], fields))
    return out


def facts_for_seat1(path: Path) -> RingFacts:
    """The first seat1 ring attempt's facts, in wire order, as a tracker would collect them."""
    leg = caller = ""
    cut_sent = no_answer_first = caller_left_first = answered = False
    cause: int | None = None
    leg_gone = dialed_end = False
    for direction, f in _frames(path):
        event = f.get("Event", "")
        if direction == "out":
            if f.get("Action") == "Hangup" and leg and f.get("Channel") == leg and not leg_gone:
                cut_sent = True
            continue
        if (
            event == "AgentCalled"
            and not leg
            and f.get("DestChannel", "").startswith("PJSIP/seat1")
        ):
            leg, caller = f["DestChannel"], f["Channel"]
        if not leg or leg_gone:
            continue
        if event == "DialEnd" and f.get("DestChannel") == leg:
            dialed_end = True
        elif event == "AgentRingNoAnswer" and f.get("DestChannel") == leg:
            no_answer_first = not dialed_end
        elif event == "AgentConnect" and f.get("DestChannel") == leg:
            answered = True
        elif event in ("HangupRequest", "QueueCallerAbandon") and f.get("Channel") == caller:
            caller_left_first = caller_left_first or not (answered or no_answer_first)
        elif event == "Hangup" and f.get("Channel") == leg:
            leg_gone = True
            cause = int(f.get("Cause", "0"))
    return RingFacts(answered, cut_sent, no_answer_first, caller_left_first, cause)


@pytest.mark.parametrize(
    ("recording", "by"),
    [
        ("pjsip_ring_cut_client_first", "ctid"),
        ("pjsip_ring_timeout_queue_first", "queue"),
        ("pjsip_abandon_in_queue", "caller"),
        ("pjsip_answered", "answer"),
    ],
)
def test_recorded_rings_are_classified_as_they_happened(recording: str, by: str) -> None:
    base = _pjsip_dir()
    if base is None:
        pytest.skip("the PJSIP recordings are not beside this checkout")
    facts = facts_for_seat1(base / f"{recording}.jsonl")
    assert ring_ended_by(facts) == by, facts
    if by == "ctid":
        assert facts.leg_cause == 19
    if by in ("queue", "caller"):
        assert facts.leg_cause == 0
