"""IVR decisions (table tests) and the menu dialog on a scripted channel: silence, invalid keys,
hang-up, after hours, callback, incident status, lunch overflow — never a dead end."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from ctid.calls.ivr import IncidentStatus, Route, queue_for, run_ivr
from ctid.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(EXAMPLE, env={})


@dataclass(frozen=True)
class Desk:
    mode: Literal["closed", "open", "lunch"] = "open"
    tiers_on_duty: frozenset[str] = frozenset({"ordinary", "expert"})
    overflow_expert_to_ordinary: bool = False
    seats_on_duty: frozenset[str] = frozenset({"seat1", "seat2", "seat3", "seat4"})

    def seat_on_duty(self, seat_id: str) -> bool:
        return seat_id in self.seats_on_duty


OPEN = Desk()
LUNCH_A = Desk("lunch", frozenset({"ordinary", "expert"}), False, frozenset({"seat1", "seat3"}))
LUNCH_NO_EXPERT = Desk("lunch", frozenset({"ordinary"}), True, frozenset({"seat1", "seat2"}))
CLOSED = Desk("closed", frozenset(), False, frozenset())


@dataclass
class ScriptedChannel:
    """Answers get_data from a script (None = caller hung up); records everything played/set."""

    answers: list[str | None]
    played: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    barge_in: str = ""
    """A key pressed during the welcome prompt."""

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        self.played.append(name)
        if name == "ctid/welcome" and self.barge_in:
            assert self.barge_in in escape_digits
            return self.barge_in
        return ""

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        self.asked.append(prompt)
        return self.answers.pop(0) if self.answers else ""

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value


@dataclass
class Recorder:
    callbacks: list[tuple[str, str]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    incidents: dict[str, IncidentStatus] = field(default_factory=dict)

    async def callback(self, number: str, reason: str) -> None:
        self.callbacks.append((number, reason))

    async def lookup(self, number: str) -> IncidentStatus | None:
        self.lookups.append(number)
        return self.incidents.get(number)


async def _run(
    cfg: Config, desk: Desk, answers: list[str | None], rec: Recorder | None = None
) -> tuple[ScriptedChannel, Recorder, Route, bool]:
    rec = rec or Recorder()
    ch = ScriptedChannel(list(answers))
    result = await run_ivr(
        ch, cfg, desk, caller_number="13800138000", lookup=rec.lookup, callbacks=rec.callback
    )
    return ch, rec, result.route, result.hung_up


@pytest.mark.parametrize(
    ("wanted", "desk", "expected"),
    [
        ("ordinary", OPEN, ("ordinary", False)),
        ("expert", OPEN, ("expert", False)),
        ("shared", OPEN, ("shared", False)),
        ("expert", LUNCH_A, ("expert", False)),
        ("expert", LUNCH_NO_EXPERT, ("ordinary", True)),
        ("shared", LUNCH_NO_EXPERT, ("shared", False)),
        ("nonexistent", OPEN, ("ordinary", True)),
    ],
)
def test_queue_for(cfg: Config, wanted: str, desk: Desk, expected: tuple[str, bool]) -> None:
    assert queue_for(cfg, wanted, desk) == expected


async def test_digit_1_goes_to_ordinary(cfg: Config) -> None:
    ch, _, _route, hung = await _run(cfg, OPEN, ["1"])
    assert not hung
    assert ch.variables == {
        "CTID_ROUTE": "queue",
        "CTID_IVR": "1",
        "CTID_CATEGORY": "consultation",
        "CTID_QUEUE": "ordinary",
    }
    assert ch.played[0] == "ctid/welcome"


async def test_digit_2_fault_goes_to_shared_and_0_complaint_to_expert(cfg: Config) -> None:
    ch, _, _, _ = await _run(cfg, OPEN, ["2"])
    assert (ch.variables["CTID_QUEUE"], ch.variables["CTID_CATEGORY"]) == ("shared", "fault")
    ch, _, _, _ = await _run(cfg, OPEN, ["0"])
    assert (ch.variables["CTID_QUEUE"], ch.variables["CTID_CATEGORY"]) == ("expert", "complaint")


async def test_key_pressed_during_the_welcome_is_taken(cfg: Config) -> None:
    rec = Recorder()
    ch = ScriptedChannel([], barge_in="2")
    result = await run_ivr(
        ch, cfg, OPEN, caller_number="1", lookup=rec.lookup, callbacks=rec.callback
    )
    assert result.route.choice == "2"
    assert ch.asked == []  # the menu never had to play


async def test_silence_takes_the_default_route_after_the_menu(cfg: Config) -> None:
    ch, _, route, _ = await _run(cfg, OPEN, ["", ""])
    assert cfg.ivr.silence_replays == 0  # the example keeps a silent caller under 20 s
    assert ch.asked == ["ctid/menu"]
    assert route.choice == "default"
    assert ch.variables["CTID_QUEUE"] == "ordinary"


async def test_silence_replays_then_choice(cfg: Config) -> None:
    replaying = cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={"silence_replays": 1})})
    ch, _, route, _ = await _run(replaying, OPEN, ["", "2"])
    assert ch.asked == ["ctid/menu", "ctid/menu"]
    assert ch.variables["CTID_IVR"] == "2"
    ch, _, route, _ = await _run(replaying, OPEN, ["", ""])
    assert (ch.asked, route.choice) == (["ctid/menu", "ctid/menu"], "default")


async def test_invalid_digits_replay_twice_then_default(cfg: Config) -> None:
    ch, _, route, _ = await _run(cfg, OPEN, ["9", "#", "7"])
    assert ch.played.count("ctid/invalid") == 3
    assert len(ch.asked) == 3
    assert route.choice == "default"
    ch, _, route, _ = await _run(cfg, OPEN, ["9", "1"])
    assert route.choice == "1"


async def test_hostile_digits_are_treated_as_invalid(cfg: Config) -> None:
    ch, _, route, _ = await _run(cfg, OPEN, ["1\nSET VARIABLE X 1", "1"])
    assert ch.played.count("ctid/invalid") == 1
    assert route.queue == "ordinary"


async def test_hangup_in_menu(cfg: Config) -> None:
    ch, _, _route, hung = await _run(cfg, OPEN, [None])
    assert hung
    assert ch.variables == {}  # nothing set: the dialplan's fail-open default stays


async def test_after_hours_callback_request(cfg: Config) -> None:
    ch, rec, route, _ = await _run(cfg, CLOSED, ["1"])
    assert ch.played[:1] == ["ctid/closed"]
    assert rec.callbacks == [("13800138000", "after_hours")]
    assert "ctid/callback-recorded" in ch.played
    assert ch.variables["CTID_ROUTE"] == "hangup"
    assert route.choice == "callback"


async def test_after_hours_hangup_during_the_message_still_leaves_closed(cfg: Config) -> None:
    rec = Recorder()
    ch = ScriptedChannel([])

    async def gone(name: str, escape_digits: str = "") -> str | None:
        ch.played.append(name)
        return None

    ch.stream_file = gone  # type: ignore[method-assign]
    result = await run_ivr(
        ch, cfg, CLOSED, caller_number="1", lookup=rec.lookup, callbacks=rec.callback
    )
    assert result.hung_up
    # the decision reached the dialplan before any prompt: never the fail-open queue
    assert ch.variables["CTID_ROUTE"] == "hangup"
    assert ch.variables["CTID_IVR"] == "closed"
    assert rec.callbacks == []


async def test_after_hours_no_callback(cfg: Config) -> None:
    ch, rec, _route, _ = await _run(cfg, CLOSED, [""])
    assert rec.callbacks == []
    assert ch.variables["CTID_ROUTE"] == "hangup"
    assert ch.variables["CTID_IVR"] == "closed"


async def test_status_of_existing_incident_routes_to_its_owner(cfg: Config) -> None:
    rec = Recorder(incidents={"202611220001": IncidentStatus("in_progress", "seat3")})
    ch, rec, _route, _ = await _run(cfg, OPEN, ["3", "202611220001"], rec)
    assert "ctid/status-in_progress" in ch.played
    assert ch.variables["CTID_ROUTE"] == "seat"
    assert ch.variables["CTID_DIAL"] == "PJSIP/seat3"
    assert ch.variables["CTID_QUEUE"] == "expert"


async def test_status_owner_off_duty_goes_to_queue(cfg: Config) -> None:
    rec = Recorder(incidents={"1": IncidentStatus("in_progress", "seat4")})
    ch, _, _route, _ = await _run(cfg, LUNCH_A, ["3", "1"], rec)
    assert ch.variables["CTID_ROUTE"] == "queue"


async def test_status_unknown_and_closed(cfg: Config) -> None:
    ch, rec, _route, _ = await _run(cfg, OPEN, ["3", "999"])
    assert rec.lookups == ["999"]
    assert "ctid/incident-unknown" in ch.played
    assert ch.variables["CTID_ROUTE"] == "queue"
    rec = Recorder(incidents={"5": IncidentStatus("closed", "seat1")})
    ch, _, _, _ = await _run(cfg, OPEN, ["3", "5"], rec)
    assert "ctid/status-closed" in ch.played
    assert ch.variables["CTID_ROUTE"] == "queue"


async def test_lunch_overflow_is_announced(cfg: Config) -> None:
    ch, _, route, _ = await _run(cfg, LUNCH_NO_EXPERT, ["0"])
    assert route.overflow
    assert "ctid/lunch-overflow" in ch.played
    assert ch.variables["CTID_QUEUE"] == "ordinary"
