"""The incident lifecycle's action forms: each action's fields and their kinds, which role may
use which action, and parsing a submitted form or JSON object into the action's arguments."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ctid.i18n import N_
from ctid.tickets.actions import (
    ACTIONS,
)
from ctid.tickets.vocabulary import (
    CATEGORIES,
    LEVELS,
    REQUEST_TYPES,
)
from ctid.web.edge import FieldErrors, FieldProblem, HttpError

INCIDENT_NUMBER = re.compile(r"^[A-Za-z0-9\-]{1,64}$")

FieldKind = Literal[
    "line",
    "text",
    "email",
    "seat",
    "expert_seat",
    "group",
    "request_type",
    "category",
    "level",
    "score",
    "live_call",
]


@dataclass(frozen=True, slots=True)
class ActionField:
    name: str
    label: str
    """English words (the msgid); translated where shown."""
    kind: FieldKind
    required: bool = False
    limit: int = 64


def _reason(label: str = N_("Reason")) -> ActionField:
    return ActionField("reason", label, "text", True, 2000)


ACTION_FORMS: dict[str, tuple[ActionField, ...]] = {
    "start": (),
    "classify": (
        ActionField("request_type", N_("Request type"), "request_type", True),
        ActionField("category", N_("Category"), "category"),
    ),
    "prioritize": (
        ActionField("impact", N_("Impact"), "level", True),
        ActionField("urgency", N_("Urgency"), "level", True),
    ),
    "resolve_first_line": (ActionField("resolution", N_("Resolution"), "text", True, 8000),),
    "hand_to_expert": (
        ActionField("seat", N_("Expert seat"), "expert_seat", True),
        ActionField("employee", N_("Expert (employee ID, optional)"), "line", False, 32),
        ActionField("call_live", N_("The caller is on the line: transfer the call"), "live_call"),
    ),
    "dispatch": (
        ActionField("group", N_("Second-line group"), "group", True),
        ActionField("assignee_email", N_("Assignee e-mail (optional)"), "email", False, 254),
        ActionField("note", N_("Note for the engineer"), "text", False, 4000),
    ),
    "accept": (),
    "reject": (_reason(),),
    "reassign": (
        ActionField("seat", N_("Seat"), "seat", True),
        ActionField("employee", N_("Employee ID (optional)"), "line", False, 32),
    ),
    "escalate": (_reason(),),
    "suspend": (_reason(),),
    "resume": (),
    "resolve": (ActionField("resolution", N_("Resolution"), "text", True, 8000),),
    "close": (),
    "reopen": (_reason(),),
    "flag": (ActionField("flag", N_("Flag (lower_snake_case)"), "line", True, 32),),
    "rate": (
        ActionField("score", N_("Satisfaction (1–5)"), "score", True),
        ActionField("comment", N_("Comment"), "text", False, 2000),
    ),
}
assert set(ACTION_FORMS) == set(ACTIONS)

ACTION_LABELS: dict[str, str] = {
    "start": N_("Take it"),
    "classify": N_("Classify"),
    "prioritize": N_("Prioritize"),
    "resolve_first_line": N_("Resolve at first line"),
    "hand_to_expert": N_("Hand to an expert"),
    "dispatch": N_("Dispatch to second line"),
    "accept": N_("Accept (for second line)"),
    "reject": N_("Reject (for second line)"),
    "reassign": N_("Reassign"),
    "escalate": N_("Escalate"),
    "suspend": N_("Suspend"),
    "resume": N_("Resume"),
    "resolve": N_("Resolve"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
    "flag": N_("Flag"),
    "rate": N_("Record satisfaction"),
}

# Second line accepts or rejects through the e-mailed link; a supervisor (duty manager) may
# record a decision given by phone. Ops configure the desk and only read incidents.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "agent": frozenset(ACTIONS) - {"accept", "reject"},
    "supervisor": frozenset(ACTIONS),
    "ops": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Choices:
    """The option lists of the action forms, from config."""

    seats: tuple[str, ...]
    expert_seats: tuple[str, ...]
    groups: tuple[str, ...]

    def options(self, kind: FieldKind) -> tuple[str, ...] | None:
        match kind:
            case "seat":
                return self.seats
            case "expert_seat":
                return self.expert_seats
            case "group":
                return self.groups
            case "request_type":
                return REQUEST_TYPES
            case "category":
                return CATEGORIES
            case "level":
                return LEVELS
            case "score":
                return ("1", "2", "3", "4", "5")
            case _:
                return None


def _text_value(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise HttpError(400, f"{name} must be a string")


def parse_action_args(
    action: str, raw: Mapping[str, object], choices: Choices
) -> tuple[dict[str, str], bool]:
    """The action's own fields from a form or JSON object, checked for shape (the store checks
    the rest). Returns (args, wants a live-call transfer). Unknown fields are ignored. Every
    problem is reported at once (`FieldErrors`), in words, for the field it belongs to."""
    fields = ACTION_FORMS.get(action)
    if fields is None:
        raise HttpError(400, f"unknown action {action[:40]!r}")
    args: dict[str, str] = {}
    problems: dict[str, FieldProblem] = {}
    transfer = False
    for f in fields:
        try:
            value = _text_value(f.name, raw.get(f.name)).strip()
        except HttpError:
            problems[f.name] = FieldProblem(N_("Write text here."))
            continue
        if f.kind == "live_call":
            transfer = value.lower() in ("1", "true", "yes", "on")
            args[f.name] = "true" if transfer else "false"
            continue
        if len(value) > f.limit and f.kind in ("line", "text", "email"):
            problems[f.name] = FieldProblem(
                N_("At most {limit} characters (this has {n})."),
                {"limit": f.limit, "n": len(value)},
            )
            continue
        if not value:
            if f.required:
                problems[f.name] = FieldProblem(N_("This is required."))
            continue
        if f.kind == "email" and not _EMAIL.match(value):
            problems[f.name] = FieldProblem(N_("This is not an e-mail address."))
            continue
        options = choices.options(f.kind)
        if options is not None and value not in options:
            problems[f.name] = FieldProblem(N_("Choose one from the list."))
            continue
        args[f.name] = value
    if problems:
        raise FieldErrors(problems)
    return args, transfer


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
