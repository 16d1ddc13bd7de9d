"""The tickets' vocabulary, the one copy everyone uses: incident statuses and their groups, request
types, categories, channels, impact/urgency levels, flags, and the callback reasons and outcomes,
each with its words for people (marked for the catalogs; translated where shown)."""

from __future__ import annotations

from typing import Literal, get_args

from ctid.core.vocabulary import CALLBACK_REASON_WORDS as CALLBACK_REASON_WORDS
from ctid.core.vocabulary import CALLBACK_REASONS as CALLBACK_REASONS
from ctid.core.vocabulary import REQUEST_TYPE_WORDS as REQUEST_TYPE_WORDS
from ctid.core.vocabulary import REQUEST_TYPES as REQUEST_TYPES
from ctid.core.vocabulary import CallbackReason as CallbackReason
from ctid.core.vocabulary import RequestType as RequestType
from ctid.i18n import N_

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

STATUS_WORDS: dict[str, str] = {
    "new": N_("New"),
    "assigned": N_("Assigned"),
    "in_progress": N_("In progress"),
    "handed_to_expert": N_("With an expert"),
    "escalated": N_("Escalated"),
    "dispatched": N_("Dispatched to second line"),
    "accepted": N_("Accepted by second line"),
    "rejected": N_("Rejected by second line"),
    "suspended": N_("Suspended"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "reopened": N_("Reopened"),
}
CATEGORY_WORDS: dict[str, str] = {
    "software": N_("Software"),
    "hardware": N_("Hardware"),
    "network": N_("Network"),
    "database": N_("Database"),
    "business_application": N_("Business application"),
    "other": N_("Other"),
}
CHANNEL_WORDS: dict[str, str] = {
    "phone": N_("Phone"),
    "web": N_("Web"),
    "email": N_("E-mail"),
    "im": N_("Instant message"),
    "monitoring": N_("Monitoring"),
}
LEVEL_WORDS: dict[str, str] = {"high": N_("High"), "medium": N_("Medium"), "low": N_("Low")}
CALLBACK_OUTCOME_WORDS: dict[str, str] = {
    "reached": N_("Reached the caller"),
    "not_needed": N_("Not needed any more"),
    "no_answer": N_("No answer"),
    "wrong_number": N_("Wrong number"),
}
