"""Satisfaction by keypad: after the agent hangs up, contrib's dialplan sends the caller to the
FastAGI route `survey`; `KeypadSurvey` decides from the call's facts whether to ask (never after
a talk cap or a transfer), asks one "press 1 to 5" question and hands the score to the incident.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeAlias, assert_never

import structlog

from ctid.config import Config
from ctid.core.calls import CallAnswered, CallTransferred
from ctid.core.effects import FlagCall
from ctid.core.errors import CtidError
from ctid.core.ids import CallId, Channel, SeatId

log = structlog.get_logger(__name__)

SURVEY_DIGITS = "12345"
_KEEP_CALLS = 1024
"""Calls whose facts are remembered (newest kept); a survey follows its call within seconds."""

SkipReason = Literal["unknown_call", "not_answered", "capped", "transferred"]
SurveyItems: TypeAlias = CallAnswered | CallTransferred | FlagCall
"""What the survey reads from the bus (subscribe `on_item` to these)."""


@dataclass(frozen=True, slots=True)
class SurveyFacts:
    """What ctid saw of a call that matters for the survey."""

    call_id: CallId
    answered_by: SeatId | None = None
    capped: bool = False
    transferred: bool = False


@dataclass(frozen=True, slots=True)
class Ask:
    call_id: CallId
    seat: SeatId


@dataclass(frozen=True, slots=True)
class Skip:
    reason: SkipReason


SurveyDecision: TypeAlias = Ask | Skip


def decide_survey(facts: SurveyFacts | None) -> SurveyDecision:
    """Ask only a caller whose call a seat answered and that was neither capped nor transferred."""
    if facts is None:
        return Skip("unknown_call")
    if facts.answered_by is None:
        return Skip("not_answered")
    if facts.capped:
        return Skip("capped")
    if facts.transferred:
        return Skip("transferred")
    return Ask(facts.call_id, facts.answered_by)


def parse_score(digits: str | None) -> int | None:
    """The keyed score 1–5, or None (no key, another key)."""
    if digits is None or len(digits) != 1 or digits not in SURVEY_DIGITS:
        return None
    return int(digits)


class SurveyChannel(Protocol):
    """The caller's FastAGI session (`ctid.asterisk.agi.AgiSession` fits)."""

    channel: str
    uniqueid: str
    hung_up: bool

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None: ...


class CallLookup(Protocol):
    """Which live call a channel belongs to (`ctid.calls.call_channels.CallChannels` fits)."""

    def call_of_channel(self, channel: Channel) -> CallId | None: ...


class SatisfactionSink(Protocol):
    """Where the score goes (`ctid.tickets.keypad.KeypadRatings` fits)."""

    async def rate_call(self, call_id: str, score: int) -> str | None:
        """Rate the call's incident; its number, or None when the call has no incident."""
        ...


SurveyOutcome = Literal[
    "scored",
    "no_incident",
    "no_score",
    "hung_up",
    "failed",
    "unknown_call",
    "not_answered",
    "capped",
    "transferred",
]


class KeypadSurvey:
    """The `survey` FastAGI route and the facts it decides from."""

    def __init__(self, cfg: Config, calls: CallLookup, sink: SatisfactionSink) -> None:
        self._prompt = cfg.ivr.prompts.survey
        self._timeout_ms = int(cfg.ivr.digit_timeout_s * 1000)
        self._calls = calls
        self._sink = sink
        self._facts: OrderedDict[CallId, SurveyFacts] = OrderedDict()
        self.outcomes: Counter[SurveyOutcome] = Counter()
        """How many survey requests ended each way (for ops and tests)."""

    def facts(self, call_id: CallId) -> SurveyFacts | None:
        return self._facts.get(call_id)

    def on_item(self, item: SurveyItems) -> None:
        """Remember who answered, a transfer and the talk cap (`FlagCall` `capped`, told whatever
        the cap's action: with `notify` the call goes on and could reach the survey)."""
        match item:
            case CallAnswered():
                self._update(item.call_id, answered_by=item.seat)
            case CallTransferred():
                self._update(item.call_id, transferred=True)
            case FlagCall():
                if item.flag == "capped":
                    self._update(item.call_id, capped=True)
            case _:
                assert_never(item)

    def _update(self, call_id: CallId, **changes: object) -> None:
        old = self._facts.pop(call_id, None) or SurveyFacts(call_id)
        self._facts[call_id] = replace(old, **changes)  # type: ignore[arg-type]
        while len(self._facts) > _KEEP_CALLS:
            self._facts.popitem(last=False)

    def call_of(self, session: SurveyChannel) -> CallId | None:
        """The caller channel's call: by channel while the call is live, else its Uniqueid (a
        trunk caller's channel is the call's first, so its Uniqueid is the Linkedid)."""
        found = self._calls.call_of_channel(Channel(session.channel))
        if found is not None:
            return found
        fallback = CallId(session.uniqueid)
        return fallback if fallback in self._facts else None

    async def handle(self, session: SurveyChannel) -> None:
        """The FastAGI route handler: serve one survey request and count its outcome."""
        outcome = await self.serve(session)
        self.outcomes[outcome] += 1

    async def serve(self, session: SurveyChannel) -> SurveyOutcome:
        """Serve one survey request; every outcome is logged. Never raises for a caller's doing."""
        call_id = self.call_of(session)
        decision = decide_survey(None if call_id is None else self._facts.get(call_id))
        match decision:
            case Skip(reason=reason):
                log.info("survey_skipped", call_id=call_id, channel=session.channel, reason=reason)
                return reason
            case Ask():
                return await self._ask(session, decision)
            case _:
                assert_never(decision)

    async def _ask(self, session: SurveyChannel, ask: Ask) -> SurveyOutcome:
        try:
            digits = await session.get_data(self._prompt, self._timeout_ms, 1)
        except CtidError as exc:  # AgiHangup: the caller hung up before or while asked
            log.info("survey_skipped", call_id=ask.call_id, reason="hung_up", detail=str(exc))
            return "hung_up"
        if digits is None and session.hung_up:
            log.info("survey_skipped", call_id=ask.call_id, reason="hung_up")
            return "hung_up"
        score = parse_score(digits)
        if score is None:
            log.info("survey_no_score", call_id=ask.call_id, seat=ask.seat, keyed=digits or "")
            return "no_score"
        try:
            number = await self._sink.rate_call(ask.call_id, score)
        except CtidError as exc:
            log.error("survey_store_failed", call_id=ask.call_id, score=score, error=str(exc))
            return "failed"
        if number is None:
            log.warning("survey_no_incident", call_id=ask.call_id, score=score)
            return "no_incident"
        log.info("survey_scored", call_id=ask.call_id, seat=ask.seat, score=score, incident=number)
        return "scored"
