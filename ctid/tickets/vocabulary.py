"""The tickets' vocabulary, the one copy everyone uses: incident statuses and their groups, request
types, categories, channels, impact/urgency levels, flags, and the callback reasons and outcomes."""

from __future__ import annotations

from typing import Literal, get_args

from ctid.core.vocabulary import CALLBACK_REASONS as CALLBACK_REASONS
from ctid.core.vocabulary import REQUEST_TYPES as REQUEST_TYPES
from ctid.core.vocabulary import CallbackReason as CallbackReason
from ctid.core.vocabulary import RequestType as RequestType

Status = Literal[
    "new",
    "assigned",
    "in_progress",
    "handed_to_expert",
    "escalated",
    "dispatched",
    "accepted",
    "rejected",
    "suspended",
    "resolved",
    "closed",
    "reopened",
]
STATUSES: tuple[Status, ...] = get_args(Status)
CLOSED_STATUSES: frozenset[Status] = frozenset({"resolved", "closed"})
OPEN_STATUSES: frozenset[Status] = frozenset(STATUSES) - CLOSED_STATUSES


Category = Literal["software", "hardware", "network", "database", "business_application", "other"]
CATEGORIES: tuple[Category, ...] = get_args(Category)

Channel = Literal["phone", "web", "email", "im", "monitoring"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)

Level = Literal["high", "medium", "low"]
LEVELS: tuple[Level, ...] = get_args(Level)

# Where first line is still the owner (nobody at second line has taken it).
FIRST_LINE: frozenset[Status] = frozenset(
    {"new", "assigned", "in_progress", "handed_to_expert", "escalated", "rejected", "reopened"}
)
WORKING: frozenset[Status] = FIRST_LINE | {"accepted"}

FLAG_FIRST_LINE = "first_line"
"""Set by `resolve_first_line`: counts toward the first-line resolution rate."""
FLAG_ESCALATED = "escalated"

CALLBACK_ACTIVE = ("open", "in_progress")
CALLBACK_GOT_THROUGH = "caller_got_through"
"""The outcome of a callback closed because the caller's later call was answered."""
CALLBACK_OUTCOMES: dict[str, str] = {
    "reached": "done",
    "not_needed": "done",
    "no_answer": "open",
    "wrong_number": "failed",
}
"""outcome → the callback's next status (`no_answer` retries until `max_callback_attempts`)."""
