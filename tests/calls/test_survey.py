"""The keypad survey's decisions (table tests) and the facts it keeps from the call story."""

from __future__ import annotations

import pytest

from ctid.calls.survey import (
    Ask,
    KeypadSurvey,
    Skip,
    SurveyFacts,
    decide_survey,
    parse_score,
)
from ctid.config import parse_config
from ctid.core.calls import CallAnswered, CallTransferred
from ctid.core.effects import FlagCall
from ctid.core.ids import CallId, Channel, SeatId

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
    await survey.on_item(answered(CALL))
    assert survey.facts(CALL) == SurveyFacts(CALL, answered_by=SEAT)
    await survey.on_item(FlagCall(CALL, "repeat"))
    assert survey.facts(CALL) == SurveyFacts(CALL, answered_by=SEAT)
    await survey.on_item(FlagCall(CALL, "capped"))
    assert decide_survey(survey.facts(CALL)) == Skip("capped")
    other = CallId("1795399300.4")
    await survey.on_item(answered(other))
    await survey.on_item(
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
