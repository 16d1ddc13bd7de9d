"""What the incident page offers: the legal actions of each state with the expected next step
first; resolving needs a category and a priority; the score and flags are never offered to
staff; and the lifecycle refuses an unclassified or unprioritised resolution."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ctid.core.errors import TransitionError
from ctid.tickets.lifecycle import (
    IncidentState,
    Resolve,
    ResolveFirstLine,
    Rules,
    Status,
    allowed_actions,
    next_actions,
    transition,
)

T = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
RULES = Rules(
    priority_matrix={"low": {"low": "P4"}},
    sla_minutes={"P4": (480, 4320)},
    groups={"network": "net@example.com"},
    seats=frozenset({"seat1", "seat3"}),
    expert_seats=frozenset({"seat3"}),
)


def st(
    status: Status, *, category: str | None = "network", priority: str | None = "P3"
) -> IncidentState:
    return IncidentState(
        number="INC-20261123-0001",
        status=status,
        request_type="fault",
        category=category,  # type: ignore[arg-type]
        priority=priority,
        owner_group="network" if status in ("dispatched", "accepted") else None,
        created_at=T,
    )


@pytest.mark.parametrize(
    ("state", "first"),
    [
        (st("new", category=None, priority=None), "classify"),
        (st("new", priority=None), "prioritize"),
        (st("new"), "start"),
        (st("assigned"), "start"),
        (st("in_progress", category=None), "classify"),
        (st("in_progress", priority=None), "prioritize"),
        (st("in_progress"), "resolve_first_line"),
        (st("handed_to_expert"), "resolve_first_line"),
        (st("dispatched"), "accept"),
        (st("accepted"), "resolve"),
        (st("suspended"), "resume"),
        (st("resolved"), "close"),
        (st("closed"), "reopen"),
        (st("rejected"), "start"),
        (st("reopened", priority=None), "prioritize"),
    ],
)
def test_the_expected_step_comes_first(state: IncidentState, first: str) -> None:
    offered = next_actions(state)
    assert offered[0] == first
    assert len(set(offered)) == len(offered)
    # Every offered action is legal in the state; nothing legal for staff is left out.
    legal = set(allowed_actions(state.status)) - {"rate", "flag"}
    if not (state.category and state.priority):
        legal -= {"resolve", "resolve_first_line"}
    assert set(offered) == legal


def test_resolving_is_not_offered_without_category_and_priority() -> None:
    assert "resolve_first_line" not in next_actions(st("in_progress", priority=None))
    assert "resolve" not in next_actions(st("accepted", category=None))
    assert "resolve" in next_actions(st("accepted"))


def test_the_caller_alone_rates() -> None:
    assert "rate" not in next_actions(st("closed"))
    assert "flag" not in next_actions(st("in_progress"))
    assert "rate" in next_actions(st("closed"), staff=False)


@pytest.mark.parametrize(
    ("category", "priority", "missing"),
    [
        (None, None, "a category and a priority"),
        ("network", None, "a priority"),
        (None, "P2", "a category"),
    ],
)
def test_resolving_without_category_or_priority_is_refused(
    category: str | None, priority: str | None, missing: str
) -> None:
    for action in (Resolve(resolution="done"), ResolveFirstLine(resolution="done")):
        state = st("accepted" if isinstance(action, Resolve) else "in_progress")
        with pytest.raises(TransitionError, match=f"give it {missing} first"):
            transition(
                replace(state, category=category, priority=priority),  # type: ignore[arg-type]
                action,
                actor="E100",
                at=T,
                rules=RULES,
            )
