"""The pure incident lifecycle: every legal step (table), every illegal one (the full
status × action matrix, checked against a table written out here), and what each step implies:
ownership, SLA deadlines, flags, history detail and notifications."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ctid.core.errors import TransitionError
from ctid.tickets.actions import (
    Accept,
    Action,
    Classify,
    Close,
    Dispatch,
    Escalate,
    Flag,
    HandToExpert,
    Prioritize,
    Rate,
    Reassign,
    Reject,
    Reopen,
    Resolve,
    ResolveFirstLine,
    Resume,
    Start,
    Suspend,
    parse_action,
)
from ctid.tickets.errors import InvalidInputError
from ctid.tickets.lifecycle import (
    DispatchMail,
    EscalationMail,
    IncidentState,
    ResolvedMail,
    Rules,
    SatisfactionMail,
    TransferLiveCall,
    allowed_actions,
    transition,
)
from ctid.tickets.vocabulary import (
    STATUSES,
    Status,
)

from .conftest import desk_config

CREATED = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
NOW = CREATED + timedelta(minutes=20)
RULES = Rules.from_config(desk_config())
NUMBER = "INC-20261122-0001"


def state(status: Status = "in_progress", **kw: object) -> IncidentState:
    base = IncidentState(
        number=NUMBER,
        status=status,
        request_type="fault",
        category="hardware",
        priority="P3",
        owner_seat="seat1",
        owner_group="network" if status in ("dispatched", "accepted") else None,
        created_at=CREATED,
        caller_email="zhangsan@example.com",
        version=4,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def go(st: IncidentState, action: Action):  # type: ignore[no-untyped-def]
    return transition(st, action, actor="E100", at=NOW, rules=RULES)


# One valid instance of every action (arguments that pass validation in any status).
SAMPLES: dict[str, Action] = {
    "start": Start(),
    "classify": Classify(request_type="fault", category="network"),
    "prioritize": Prioritize(impact="high", urgency="medium"),
    "resolve_first_line": ResolveFirstLine(resolution="Restarted the router."),
    "hand_to_expert": HandToExpert(seat="seat4"),
    "dispatch": Dispatch(group="desktop"),
    "accept": Accept(),
    "reject": Reject(reason="Not ours: this is a network fault."),
    "reassign": Reassign(seat="seat2"),
    "escalate": Escalate(reason="VIP waiting for 2 hours"),
    "suspend": Suspend(reason="Waiting for the vendor"),
    "resume": Resume(),
    "resolve": Resolve(resolution="Replaced the disk."),
    "close": Close(),
    "reopen": Reopen(reason="It broke again"),
    "flag": Flag(flag="capped"),
    "rate": Rate(score=4, comment="quick"),
}

# The lifecycle, written out independently of the implementation's table.
FIRST = {"new", "assigned", "in_progress", "handed_to_expert", "escalated", "rejected", "reopened"}
LEGAL: dict[str, set[str]] = {
    "start": {"new", "assigned", "rejected", "reopened"},
    "classify": set(STATUSES) - {"closed"},
    "prioritize": set(STATUSES) - {"resolved", "closed"},
    "resolve_first_line": FIRST,
    "hand_to_expert": {"new", "assigned", "in_progress", "escalated", "rejected", "reopened"},
    "dispatch": FIRST | {"dispatched", "accepted"},
    "accept": {"dispatched"},
    "reject": {"dispatched"},
    "reassign": FIRST,
    "escalate": (FIRST | {"accepted", "dispatched"}) - {"escalated"},
    "suspend": (FIRST | {"accepted"}) - {"new"},
    "resume": {"suspended"},
    "resolve": FIRST | {"accepted"},
    "close": {"resolved"},
    "reopen": {"resolved", "closed"},
    "flag": set(STATUSES),
    "rate": {"resolved", "closed"},
}

EXPECTED_TO: dict[str, str | None] = {
    "start": "in_progress",
    "resolve_first_line": "resolved",
    "hand_to_expert": "handed_to_expert",
    "dispatch": "dispatched",
    "accept": "accepted",
    "reject": "rejected",
    "reassign": "assigned",
    "escalate": "escalated",
    "suspend": "suspended",
    "resolve": "resolved",
    "close": "closed",
    "reopen": "reopened",
    "flag": None,
    "rate": None,
}

MATRIX = [(s, a) for s in STATUSES for a in SAMPLES]


def test_every_action_and_status_is_covered() -> None:
    assert set(LEGAL) == set(SAMPLES)
    assert len(STATUSES) == 12


@pytest.mark.parametrize(("status", "name"), [m for m in MATRIX if m[0] in LEGAL[m[1]]])
def test_legal_step(status: Status, name: str) -> None:
    before = state(status)
    t = go(before, SAMPLES[name])
    assert t.entry is not None
    assert t.entry.action == name
    assert t.entry.actor == "E100"
    assert t.entry.at == NOW
    assert t.entry.from_status == status
    if name in EXPECTED_TO:
        assert t.state.status == (EXPECTED_TO[name] or status)
        assert t.entry.to_status == EXPECTED_TO[name]
    elif name == "resume":
        assert t.state.status == "in_progress"
    else:  # classify / prioritize keep the status
        assert t.state.status == status
    assert name in allowed_actions(status)


@pytest.mark.parametrize(("status", "name"), [m for m in MATRIX if m[0] not in LEGAL[m[1]]])
def test_illegal_step(status: Status, name: str) -> None:
    before = state(status)
    with pytest.raises(TransitionError) as info:
        go(before, SAMPLES[name])
    message = str(info.value)
    assert message.startswith("cannot ")
    assert NUMBER in message
    assert status in message
    assert name not in allowed_actions(status)


@pytest.mark.parametrize(
    ("status", "name", "message"),
    [
        ("in_progress", "close", f"cannot close {NUMBER}: it is in_progress, resolve it first"),
        ("closed", "resolve", f"cannot resolve {NUMBER}: it is closed, reopen it first"),
        ("suspended", "resolve", f"cannot resolve {NUMBER}: it is suspended, resume it first"),
        (
            "dispatched",
            "resolve",
            f"cannot resolve {NUMBER}: it is dispatched, wait until network accepts or rejects it",
        ),
        (
            "in_progress",
            "accept",
            f"cannot accept {NUMBER}: it is in_progress, not waiting for a second-line group "
            "to accept it",
        ),
        ("escalated", "escalate", f"cannot escalate {NUMBER}: it is escalated already"),
        (
            "accepted",
            "resolve_first_line",
            f"cannot resolve at first line {NUMBER}: it is accepted by network, dispatch it "
            "again or resolve it",
        ),
        ("new", "rate", f"cannot rate {NUMBER}: it is new, it can be rated once it is resolved"),
    ],
)
def test_illegal_step_messages(status: Status, name: str, message: str) -> None:
    with pytest.raises(TransitionError) as info:
        go(state(status), SAMPLES[name])
    assert str(info.value) == message


def test_prioritize_sets_priority_and_sla_from_creation() -> None:
    t = go(state("in_progress"), Prioritize(impact="high", urgency="medium"))
    assert t.state.priority == "P2"
    assert t.state.sla_response_due == CREATED + timedelta(minutes=30)
    assert t.state.sla_resolve_due == CREATED + timedelta(minutes=480)
    assert t.entry is not None and t.entry.detail["priority"] == "P2"
    t = go(t.state, Prioritize(impact="low", urgency="low"))
    assert t.state.priority == "P4"
    assert t.state.sla_resolve_due == CREATED + timedelta(minutes=4320)
    assert t.entry is not None and t.entry.detail["was"] == "P2"


@pytest.mark.parametrize(
    "action",
    [
        Prioritize(impact="huge", urgency="low"),
        Classify(request_type="fault", category="plumbing"),
        Classify(request_type="gossip"),
        HandToExpert(seat="seat2"),
        HandToExpert(seat="seat9"),
        Dispatch(group="facilities"),
        Dispatch(group="network", assignee_email="not an address"),
        Reassign(seat="nobody"),
        Escalate(reason="   "),
        Suspend(reason=""),
        Resolve(resolution="x" * 8001),
        Flag(flag="Not A Flag"),
    ],
)
def test_bad_arguments(action: Action) -> None:
    with pytest.raises(InvalidInputError):
        go(state("in_progress"), action)


def test_classify_changes_type_and_category() -> None:
    t = go(state("new"), Classify(request_type="consultation", category="software"))
    assert (t.state.request_type, t.state.category, t.state.status) == (
        "consultation",
        "software",
        "new",
    )
    assert t.entry is not None and t.entry.detail["was_request_type"] == "fault"


def test_resolve_first_line_flags_and_mails_the_caller() -> None:
    t = go(state("in_progress"), ResolveFirstLine(resolution="Reset the password."))
    assert t.state.status == "resolved"
    assert t.state.resolved_at == NOW
    assert "first_line" in t.state.flags
    assert t.notices == (
        ResolvedMail(
            to="zhangsan@example.com",
            dedupe_key=f"incident:{NUMBER}:resolved:v5",
            resolution="Reset the password.",
        ),
    )


def test_resolve_without_caller_email_sends_nothing() -> None:
    t = go(state("accepted", caller_email=None), Resolve(resolution="Fixed the switch."))
    assert t.state.status == "resolved"
    assert "first_line" not in t.state.flags
    assert t.notices == ()


def test_responded_at_is_the_first_response_only() -> None:
    t = go(state("new", responded_at=None), Start(seat="seat2"))
    assert t.state.responded_at == NOW
    assert t.state.owner_seat == "seat2"
    earlier = NOW - timedelta(minutes=5)
    t = go(state("assigned", responded_at=earlier), Start())
    assert t.state.responded_at == earlier


@pytest.mark.parametrize("live", [True, False])
def test_hand_to_expert_moves_ownership_and_transfers_live_call(live: bool) -> None:
    t = go(
        state("in_progress", owner_group=None),
        HandToExpert(seat="seat3", employee="E300", call_live=live),
    )
    assert (t.state.status, t.state.owner_seat, t.state.owner_employee) == (
        "handed_to_expert",
        "seat3",
        "E300",
    )
    assert t.notices == ((TransferLiveCall(seat="seat3"),) if live else ())
    assert t.entry is not None and t.entry.detail["from_seat"] == "seat1"


def test_dispatch_mails_group_and_assignee() -> None:
    t = go(
        state("in_progress"),
        Dispatch(group="network", assignee_email="li.lei@example.com", note="Core switch, 3F"),
    )
    assert (t.state.status, t.state.owner_group, t.state.owner_seat) == (
        "dispatched",
        "network",
        "seat1",
    )
    assert t.notices == (
        DispatchMail(
            to="li.lei@example.com, netops@example.com",
            dedupe_key=f"incident:{NUMBER}:dispatched:v5",
            group="network",
            assignee_email="li.lei@example.com",
            note="Core switch, 3F",
        ),
    )


def test_reject_goes_back_to_the_desk() -> None:
    t = go(state("dispatched"), Reject(reason="Wrong group"))
    assert (t.state.status, t.state.owner_group, t.state.owner_seat) == (
        "rejected",
        None,
        "seat1",
    )
    assert t.entry is not None and t.entry.detail == {"group": "network", "reason": "Wrong group"}
    # ... and the desk can dispatch it elsewhere or work on it.
    assert go(t.state, Dispatch(group="desktop")).state.status == "dispatched"
    assert go(t.state, Start()).state.status == "in_progress"


@pytest.mark.parametrize(("group", "expected"), [("network", "accepted"), (None, "in_progress")])
def test_resume_returns_to_the_holder(group: str | None, expected: str) -> None:
    t = go(state("suspended", owner_group=group), Resume())
    assert t.state.status == expected


def test_escalate_mails_duty_manager_once_flagged() -> None:
    t = go(state("accepted"), Escalate(reason="SLA breached"))
    assert t.state.status == "escalated"
    assert "escalated" in t.state.flags
    assert t.notices == (
        EscalationMail(
            to="duty@example.com",
            dedupe_key=f"incident:{NUMBER}:escalated:v5",
            reason="SLA breached",
        ),
    )
    quiet = replace(RULES, supervisor_emails=())
    t2 = transition(state("accepted"), Escalate(reason="x"), actor="a", at=NOW, rules=quiet)
    assert t2.notices == ()


def test_close_schedules_satisfaction_followup() -> None:
    t = go(state("resolved", resolved_at=NOW), Close())
    assert t.state.closed_at == NOW
    assert t.notices == (
        SatisfactionMail(
            to="zhangsan@example.com",
            dedupe_key=f"incident:{NUMBER}:satisfaction:v5",
            send_at=NOW + timedelta(seconds=3600),
        ),
    )
    assert go(state("resolved", caller_email=None), Close()).notices == ()


def test_reopen_clears_resolution_and_first_line_flag() -> None:
    closed = state(
        "closed",
        resolved_at=NOW,
        closed_at=NOW,
        flags=("capped", "first_line"),
        owner_group="network",
    )
    t = go(closed, Reopen(reason="Printer jams again"))
    assert t.state.status == "reopened"
    assert (t.state.resolved_at, t.state.closed_at, t.state.owner_group) == (None, None, None)
    assert t.state.flags == ("capped",)


def test_flag_twice_is_a_no_op() -> None:
    t = go(state("in_progress"), Flag(flag="capped"))
    assert t.state.flags == ("capped",)
    again = go(t.state, Flag(flag="capped"))
    assert again.entry is None
    assert again.state == t.state


def test_rate_once_within_bounds() -> None:
    t = go(state("closed"), Rate(score=5, comment="很好"))
    assert (t.state.satisfaction, t.state.satisfaction_comment) == (5, "很好")
    with pytest.raises(TransitionError, match="rated already"):
        go(t.state, Rate(score=1))
    for bad in (0, 6, True):
        with pytest.raises(InvalidInputError):
            go(state("closed"), Rate(score=bad))


@pytest.mark.parametrize("status", STATUSES)
def test_a_keypad_score_is_taken_in_any_status_once(status: Status) -> None:
    t = go(state(status), Rate(score=2, source="keypad"))
    assert t.state.satisfaction == 2
    assert t.entry is not None and t.entry.detail == {"score": 2, "source": "keypad"}
    with pytest.raises(TransitionError, match="rated already"):
        go(t.state, Rate(score=5, source="keypad"))
    with pytest.raises(InvalidInputError):
        go(state(status), Rate(score=6, source="keypad"))


def test_a_mailed_score_waits_for_the_resolution() -> None:
    with pytest.raises(TransitionError, match="once it is resolved"):
        go(state("in_progress"), Rate(score=4))
    assert go(state("resolved"), Rate(score=4)).entry.detail["source"] == "link"  # type: ignore[union-attr]


def test_parse_action() -> None:
    assert parse_action("flag", {"name": "capped"}) == Flag(flag="capped")
    assert parse_action("dispatch", {"group": "network"}) == Dispatch(group="network")
    assert parse_action("hand_to_expert", {"seat": "seat3", "call_live": "false"}) == HandToExpert(
        seat="seat3", call_live=False
    )
    assert parse_action("rate", {"score": "5"}) == Rate(score=5)
    with pytest.raises(InvalidInputError, match="call_live"):
        parse_action("hand_to_expert", {"seat": "seat3", "call_live": "maybe"})
    with pytest.raises(InvalidInputError, match="score"):
        parse_action("rate", {"score": "five"})
    with pytest.raises(InvalidInputError, match="unknown incident action"):
        parse_action("delete", {})
    with pytest.raises(InvalidInputError, match="dispatch"):
        parse_action("dispatch", {"grp": "network"})


def test_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        transition(state(), Start(), actor="a", at=datetime(2026, 1, 1), rules=RULES)
