"""The keypad survey's decisions (table tests) and the facts it keeps from the call story."""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

import pytest

from ctid.calls.call_channels import CallChannels, ChannelItems
from ctid.calls.survey import (
    Ask,
    KeypadSurvey,
    Skip,
    SurveyFacts,
    decide_survey,
    parse_score,
)
from ctid.calls.tracker import CallTracker
from ctid.config import parse_config
from ctid.core.calls import (
    CallAnswered,
    CallEnded,
    CallRecord,
    CallStarted,
    CallTransferred,
    SeatsResynced,
)
from ctid.core.effects import FlagCall
from ctid.core.ids import CallId, Channel, SeatId
from tests.calls._replay import LAB_SEATS, events

CALL = CallId("1795399200.0")
CONFIG = parse_config(
    {
        "seats": [
            {"id": "seat1", "name": "Seat 1", "tier": "ordinary", "interface": "PJSIP/seat1"}
        ],
        "lunch": {"enabled": False},
    }
)
SEAT = SeatId("seat1")


@pytest.mark.parametrize(
    ("facts", "decision"),
    [
        (None, Skip("unknown_call")),
        (SurveyFacts(CALL), Skip("not_answered")),
        (SurveyFacts(CALL, answered_by=SEAT), Ask(CALL, SEAT)),
        (SurveyFacts(CALL, answered_by=SEAT, capped=True), Skip("capped")),
        (SurveyFacts(CALL, answered_by=SEAT, transferred=True), Skip("transferred")),
        (SurveyFacts(CALL, answered_by=SEAT, capped=True, transferred=True), Skip("capped")),
    ],
)
def test_who_is_asked(facts: SurveyFacts | None, decision: Ask | Skip) -> None:
    assert decide_survey(facts) == decision


@pytest.mark.parametrize(
    ("keyed", "score"),
    [
        ("1", 1),
        ("3", 3),
        ("5", 5),
        ("0", None),
        ("6", None),
        ("#", None),
        ("", None),
        ("12", None),
        (None, None),
    ],
)
def test_only_one_key_from_1_to_5_is_a_score(keyed: str | None, score: int | None) -> None:
    assert parse_score(keyed) == score


class NoCalls:
    def call_of_channel(self, channel: Channel) -> CallId | None:
        return None


class NoSink:
    async def rate_call(self, call_id: str, score: int) -> str | None:
        return None


def answered(call_id: CallId) -> CallAnswered:
    return CallAnswered(
        call_id=call_id,
        seat=SEAT,
        seat_channel=Channel("PJSIP/seat1-00000001"),
        at=1795399205.0,
        ring_s=1.0,
        hold_s=1.0,
        caller_num="13800138000",
        caller_name="Zhang San",
        caller_channel=Channel("PJSIP/trunk-00000000"),
        queue=None,
        ivr_choice="1",
        started_at=1795399200.0,
    )


async def test_the_facts_follow_the_story() -> None:
    survey = KeypadSurvey(CONFIG, NoCalls(), NoSink())
    survey.on_item(answered(CALL))
    assert survey.facts(CALL) == SurveyFacts(CALL, answered_by=SEAT)
    survey.on_item(FlagCall(CALL, "repeat"))
    assert survey.facts(CALL) == SurveyFacts(CALL, answered_by=SEAT)
    survey.on_item(FlagCall(CALL, "capped"))
    assert decide_survey(survey.facts(CALL)) == Skip("capped")
    other = CallId("1795399300.4")
    survey.on_item(answered(other))
    survey.on_item(
        CallTransferred(
            call_id=other,
            at=1795399310.0,
            kind="blind",
            by_seat=SEAT,
            context="ctid-transfer",
            exten="expert",
            target_channel=Channel(""),
        )
    )
    assert decide_survey(survey.facts(other)) == Skip("transferred")


# --------------------------------------------------------------------------- the channel map


def started(call_id: CallId, channel: str | None) -> CallStarted:
    return CallStarted(
        call_id, 1795399200.0, "13800138000", "Zhang San", Channel(channel) if channel else None
    )


def ended(call_id: CallId) -> CallEnded:
    return CallEnded(
        CallRecord(
            call_id=call_id,
            caller_num="13800138000",
            caller_name="Zhang San",
            queue=None,
            ivr_choice="1",
            started_at=1795399200.0,
            queued_at=None,
            answered_at=None,
            answered_by=None,
            ended_at=1795399300.0,
            outcome="abandoned_in_ivr",
            ring_attempts=(),
            talk_s=None,
            hold_s=None,
            ended_by="unknown",
            transferred=False,
            variables=(),
        )
    )


def test_the_channel_map_follows_the_story() -> None:
    channels = CallChannels()
    trunk = Channel("PJSIP/trunk-00000000")
    channels.on_item(started(CALL, "PJSIP/trunk-00000000"))
    assert channels.call_of_channel(trunk) == CALL
    channels.on_item(started(CallId("1795399201.5"), None))  # no caller channel known yet
    assert len(channels) == 1
    channels.on_item(answered(CALL))  # names the same caller channel: nothing changes
    assert channels.call_of_channel(trunk) == CALL and len(channels) == 1
    channels.on_item(ended(CALL))
    assert channels.call_of_channel(trunk) is None and len(channels) == 0


def test_a_resync_drops_the_calls_that_are_gone_and_adds_those_it_found() -> None:
    channels = CallChannels()
    other = CallId("1795399300.4")
    channels.on_item(started(CALL, "PJSIP/trunk-00000000"))
    channels.on_item(started(other, "PJSIP/trunk-00000007"))
    # After a reconnect: CALL ended while the link was down (its CallEnded was told, but say it
    # was not seen), a call answered meanwhile is told answered, and the seats come last.
    found = CallId("1795399400.9")
    channels.on_item(replace(answered(found), caller_channel=Channel("PJSIP/trunk-00000009")))
    channels.on_item(SeatsResynced(1795399500.0, (), (other, found)))
    assert channels.call_of_channel(Channel("PJSIP/trunk-00000000")) is None
    assert channels.call_of_channel(Channel("PJSIP/trunk-00000007")) == other
    assert channels.call_of_channel(Channel("PJSIP/trunk-00000009")) == found


class Session:
    def __init__(self, channel: str, uniqueid: str) -> None:
        self.channel, self.uniqueid, self.hung_up = channel, uniqueid, False

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        return "5"


class Sink:
    def __init__(self) -> None:
        self.rated: list[tuple[str, int]] = []

    async def rate_call(self, call_id: str, score: int) -> str | None:
        self.rated.append((call_id, score))
        return "INC-1"


async def test_the_survey_finds_the_call_by_its_caller_channel() -> None:
    channels, sink = CallChannels(), Sink()
    survey = KeypadSurvey(CONFIG, channels, sink)
    # A Local channel caller: its Uniqueid is not the call's id, only the map knows the call.
    local = "Local/4000@hotline-00000003;2"
    channels.on_item(started(CALL, local))
    answer = replace(answered(CALL), caller_channel=Channel(local))
    channels.on_item(answer)
    survey.on_item(answer)
    assert await survey.serve(Session(local, "1795399200.3")) == "scored"
    assert sink.rated == [(CALL, 5)]
    channels.on_item(ended(CALL))
    assert await survey.serve(Session(local, "1795399200.3")) == "unknown_call"


def test_the_map_knows_every_live_calls_caller_channel_in_the_recordings() -> None:
    for name in ("answered", "abandon", "ring_no_answer", "call_cap", "hangup_in_ivr", "resync"):
        tracker, channels = CallTracker(LAB_SEATS), CallChannels()
        for ev in events(name):
            for notice in tracker.apply(ev):
                if isinstance(notice, get_args(ChannelItems)):
                    channels.on_item(notice)
            for call in tracker.calls():
                if call.caller_channel and call.answered_at is not None:
                    assert channels.call_of_channel(call.caller_channel) == call.call_id, name
        assert len(channels) == 0 or tracker.calls(), name
