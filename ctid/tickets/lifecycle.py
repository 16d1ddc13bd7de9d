"""The incident lifecycle (ITIL), as a pure function: (state, action, who, when, rules) → new
state, one history entry and the notifications the step implies. No I/O; the store persists the
result and renders the notifications into mail."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeAlias, TypeVar

from ctid.config import Config
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
)
from ctid.tickets.errors import InvalidInputError
from ctid.tickets.text import block_field, email_field, line_field
from ctid.tickets.vocabulary import (
    CATEGORIES,
    FIRST_LINE,
    FLAG_ESCALATED,
    FLAG_FIRST_LINE,
    LEVELS,
    OPEN_STATUSES,
    REQUEST_TYPES,
    STATUSES,
    WORKING,
    Category,
    Level,
    RequestType,
    Status,
)

_FLAG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

_S = TypeVar("_S", bound=str)

MAX_REASON = 2000
MAX_RESOLUTION = 8000
MAX_NOTE = 4000
MAX_COMMENT = 2000


# --------------------------------------------------------------------------- state and rules


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentState:
    """What the lifecycle reads and writes. `caller_email` comes from the directory (it decides
    whether the caller gets mail); `version` is the stored optimistic-lock version."""

    number: str
    status: Status
    request_type: RequestType
    category: Category | None = None
    impact: Level | None = None
    urgency: Level | None = None
    priority: str | None = None
    owner_seat: str | None = None
    owner_employee: str | None = None
    owner_group: str | None = None
    created_at: datetime
    sla_response_due: datetime | None = None
    sla_resolve_due: datetime | None = None
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    flags: tuple[str, ...] = ()
    satisfaction: int | None = None
    satisfaction_comment: str | None = None
    caller_email: str | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class Rules:
    """The parts of the configuration the lifecycle needs (see `from_config`)."""

    priority_matrix: Mapping[str, Mapping[str, str]]
    sla_minutes: Mapping[str, tuple[int, int]]
    """priority → (response minutes, resolution minutes)."""
    groups: Mapping[str, str]
    """second-line group → mailbox."""
    seats: frozenset[str]
    expert_seats: frozenset[str]
    supervisor_emails: tuple[str, ...] = ()
    followup_after_close_s: int = 3600

    @classmethod
    def from_config(cls, cfg: Config) -> Rules:
        inc = cfg.incidents
        return cls(
            priority_matrix={
                str(impact): {str(u): p for u, p in row.items()}
                for impact, row in inc.priority_matrix.items()
            },
            sla_minutes={p: (s.response_min, s.resolve_min) for p, s in inc.sla.items()},
            groups=dict(inc.second_line_groups),
            seats=frozenset(s.id for s in cfg.seats),
            expert_seats=frozenset(s.id for s in cfg.seats if s.tier == "expert"),
            supervisor_emails=tuple(s.email for s in cfg.supervisors if s.email),
            followup_after_close_s=inc.followup_after_close_s,
        )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One row of `incident_history`."""

    action: str
    actor: str
    at: datetime
    from_status: Status | None
    to_status: Status | None
    detail: dict[str, str | int | bool | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchMail:
    """To the second-line group (and assignee): the incident in professional terms, with links
    to accept or reject it."""

    to: str
    dedupe_key: str
    group: str
    assignee_email: str | None
    note: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedMail:
    """To the caller: what was done."""

    to: str
    dedupe_key: str
    resolution: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SatisfactionMail:
    """To the caller, `send_at` (a while after closure): a link to rate the service."""

    to: str
    dedupe_key: str
    send_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationMail:
    """To the duty manager (every supervisor with an email)."""

    to: str
    dedupe_key: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferLiveCall:
    """The caller is still on the line: the app should transfer the call to `seat`."""

    seat: str


Notice: TypeAlias = (
    DispatchMail | ResolvedMail | SatisfactionMail | EscalationMail | TransferLiveCall
)
MailNotice: TypeAlias = DispatchMail | ResolvedMail | SatisfactionMail | EscalationMail


@dataclass(frozen=True, slots=True)
class IncidentTransition:
    """The outcome of one step. `entry` is None for a no-op (a flag that was already set): the
    store then writes nothing."""

    state: IncidentState
    entry: HistoryEntry | None
    notices: tuple[Notice, ...] = ()


def mail_key(number: str, kind: str, version: int) -> str:
    """The outbox dedupe key: one mail per (incident, reason, version), so a step handled twice
    still sends one mail."""
    return f"incident:{number}:{kind}:v{version}"


# --------------------------------------------------------------------------- legality

_ALLOWED: dict[str, frozenset[Status]] = {
    "start": frozenset({"new", "assigned", "rejected", "reopened"}),
    "classify": frozenset(STATUSES) - {"closed"},
    "prioritize": OPEN_STATUSES,
    "resolve_first_line": FIRST_LINE,
    "hand_to_expert": frozenset(
        {"new", "assigned", "in_progress", "escalated", "rejected", "reopened"}
    ),
    "dispatch": FIRST_LINE | {"dispatched", "accepted"},
    "accept": frozenset({"dispatched"}),
    "reject": frozenset({"dispatched"}),
    "reassign": FIRST_LINE,
    "escalate": (WORKING | frozenset[Status]({"dispatched"})) - {"escalated"},
    "suspend": WORKING - {"new"},
    "resume": frozenset({"suspended"}),
    "resolve": WORKING,
    "close": frozenset({"resolved"}),
    "reopen": frozenset({"resolved", "closed"}),
    "flag": frozenset(STATUSES),
    "rate": frozenset({"resolved", "closed"}),
}

_VERBS = {
    "resolve_first_line": "resolve at first line",
    "hand_to_expert": "hand to an expert",
    "flag": "flag",
}


def allowed_actions(status: Status) -> tuple[str, ...]:
    """The actions that may be applied in `status` (for the agent desktop's buttons)."""
    return tuple(name for name, allowed in _ALLOWED.items() if status in allowed)


def _why_not(action: str, state: IncidentState) -> str:
    """The tail of the error message: why `action` is not possible in `state.status`."""
    status = state.status
    group = state.owner_group or "second line"
    if status == "closed":
        return "it is closed, reopen it first"
    if status == "suspended":
        return "it is suspended, resume it first"
    if action == "close":
        return f"it is {status}, resolve it first"
    if action in ("accept", "reject"):
        return f"it is {status}, not waiting for a second-line group to accept it"
    if action == "resume":
        return f"it is {status}, not suspended"
    if action == "rate":
        return f"it is {status}, it can be rated once it is resolved"
    if action == "reopen":
        return f"it is {status}, only a resolved or closed incident can be reopened"
    if status == "resolved":
        return "it is resolved, reopen it first"
    if status == "dispatched":
        return f"it is dispatched, wait until {group} accepts or rejects it"
    if status == "accepted":
        return f"it is accepted by {group}, dispatch it again or resolve it"
    if action == "escalate":
        return "it is escalated already"
    if action == "start":
        return f"it is {status} already"
    if action == "hand_to_expert":
        return f"it is {status} already"
    return f"it is {status}, which does not allow that"  # pragma: no cover - table is complete


def _check(action: Action, state: IncidentState) -> None:
    if isinstance(action, Rate) and action.source == "keypad":
        return  # the caller rates the call on the phone right after it, whatever the status
    verb = _VERBS.get(action.name, action.name.replace("_", " "))
    if state.status not in _ALLOWED[action.name]:
        raise TransitionError(f"cannot {verb} {state.number}: {_why_not(action.name, state)}")
    missing = _missing_for(action.name, state)
    if missing:
        raise TransitionError(f"cannot {verb} {state.number}: give it {missing} first")


def _missing_for(action: str, state: IncidentState) -> str | None:
    """What the incident still lacks for `action` (resolving needs a category and a priority,
    so the reports by category and SLA by priority cover every resolved incident)."""
    if action not in ("resolve", "resolve_first_line"):
        return None
    lacks = [
        w for w, v in (("a category", state.category), ("a priority", state.priority)) if not v
    ]
    return " and ".join(lacks) or None


STAFF_HIDDEN: frozenset[str] = frozenset({"rate", "flag"})
"""Not offered to staff: the satisfaction score comes only from the caller (keypad or mail
survey), and flags are set by ctid itself (`capped`)."""


def next_actions(state: IncidentState, *, staff: bool = True) -> tuple[str, ...]:
    """The actions possible now, the expected next step first (for the incident page's buttons):
    what the status allows, less resolving while the category or priority is missing, less
    `STAFF_HIDDEN` for staff."""
    legal = [
        name
        for name, allowed in _ALLOWED.items()
        if state.status in allowed
        and _missing_for(name, state) is None
        and not (staff and name in STAFF_HIDDEN)
    ]
    first = _expected(state)
    return tuple(sorted(legal, key=lambda name: name != first))


def _expected(state: IncidentState) -> str | None:
    """The step the desk would normally take next in this state."""
    status = state.status
    if status == "closed":
        return "reopen"
    if status == "resolved":
        return "close"
    if status == "suspended":
        return "resume"
    if status == "dispatched":
        return "accept"
    if status in ("new", "assigned", "rejected", "reopened") and state.category and state.priority:
        return "start"
    if not state.category:
        return "classify"
    if not state.priority:
        return "prioritize"
    if status == "accepted":
        return "resolve"
    return "resolve_first_line"


# --------------------------------------------------------------------------- the function


def transition(
    state: IncidentState, action: Action, *, actor: str, at: datetime, rules: Rules
) -> IncidentTransition:
    """Apply `action` to `state`. Raises `TransitionError` when the step is not allowed in the
    current status and `InvalidInputError` when an argument is bad."""
    if at.tzinfo is None:
        raise ValueError("transition needs an aware datetime")
    _check(action, state)
    next_version = state.version + 1
    old = state.status

    def entry(to: Status | None, **detail: str | int | bool | None) -> HistoryEntry:
        return HistoryEntry(action.name, actor, at, old, to, detail)

    def responded(s: IncidentState) -> datetime | None:
        return s.responded_at or at

    match action:
        case Start():
            seat = _seat(action.seat, rules, "seat") if action.seat else state.owner_seat
            new = replace(
                state, status="in_progress", owner_seat=seat, responded_at=responded(state)
            )
            return IncidentTransition(new, entry("in_progress", seat=seat))

        case Classify():
            rtype = _choice("request_type", action.request_type, REQUEST_TYPES)
            cat = (
                _choice("category", action.category, CATEGORIES)
                if action.category not in (None, "")
                else None
            )
            new = replace(state, request_type=rtype, category=cat)
            return IncidentTransition(
                new,
                entry(
                    old,
                    request_type=rtype,
                    category=cat,
                    was_request_type=state.request_type,
                    was_category=state.category,
                ),
            )

        case Prioritize():
            impact = _choice("impact", action.impact, LEVELS)
            urgency = _choice("urgency", action.urgency, LEVELS)
            priority = rules.priority_matrix.get(impact, {}).get(urgency)
            if priority is None:
                raise InvalidInputError(f"priority matrix has no entry for {impact} × {urgency}")
            minutes = rules.sla_minutes.get(priority)
            response_due = resolve_due = None
            if minutes is not None:
                response_due = state.created_at + timedelta(minutes=minutes[0])
                resolve_due = state.created_at + timedelta(minutes=minutes[1])
            new = replace(
                state,
                impact=impact,
                urgency=urgency,
                priority=priority,
                sla_response_due=response_due,
                sla_resolve_due=resolve_due,
            )
            return IncidentTransition(
                new,
                entry(old, impact=impact, urgency=urgency, priority=priority, was=state.priority),
            )

        case ResolveFirstLine() | Resolve():
            text = _required_block("resolution", action.resolution, MAX_RESOLUTION)
            flags = state.flags
            if isinstance(action, ResolveFirstLine) and FLAG_FIRST_LINE not in flags:
                flags = (*flags, FLAG_FIRST_LINE)
            new = replace(
                state,
                status="resolved",
                resolved_at=at,
                responded_at=responded(state),
                flags=flags,
            )
            notices: tuple[Notice, ...] = ()
            if state.caller_email:
                notices = (
                    ResolvedMail(
                        to=state.caller_email,
                        dedupe_key=mail_key(state.number, "resolved", next_version),
                        resolution=text,
                    ),
                )
            return IncidentTransition(new, entry("resolved", resolution=text), notices)

        case HandToExpert():
            seat = _seat(action.seat, rules, "seat")
            if seat not in rules.expert_seats:
                raise InvalidInputError(f"seat {seat} is not an expert seat")
            if seat == state.owner_seat:
                raise InvalidInputError(f"{state.number} is already owned by seat {seat}")
            employee = _opt_line("employee", action.employee, 32)
            new = replace(
                state,
                status="handed_to_expert",
                owner_seat=seat,
                owner_employee=employee,
                owner_group=None,
                responded_at=responded(state),
            )
            transfer = (TransferLiveCall(seat=seat),) if action.call_live else ()
            return IncidentTransition(
                new,
                entry(
                    "handed_to_expert",
                    seat=seat,
                    from_seat=state.owner_seat,
                    call_live=action.call_live,
                ),
                transfer,
            )

        case Dispatch():
            group = _line("group", action.group, 64)
            mailbox = rules.groups.get(group)
            if mailbox is None:
                known = ", ".join(sorted(rules.groups)) or "none configured"
                raise InvalidInputError(f"unknown second-line group {group!r} (known: {known})")
            assignee = email_field("assignee_email", action.assignee_email)
            note = _opt_block("note", action.note, MAX_NOTE)
            new = replace(
                state, status="dispatched", owner_group=group, responded_at=responded(state)
            )
            recipients = ", ".join(dict.fromkeys(a for a in (assignee, mailbox) if a))
            mail = DispatchMail(
                to=recipients,
                dedupe_key=mail_key(state.number, "dispatched", next_version),
                group=group,
                assignee_email=assignee,
                note=note,
            )
            return IncidentTransition(
                new,
                entry(
                    "dispatched",
                    group=group,
                    assignee_email=assignee,
                    note=note,
                    from_group=state.owner_group,
                ),
                (mail,),
            )

        case Accept():
            new = replace(state, status="accepted", responded_at=responded(state))
            return IncidentTransition(new, entry("accepted", group=state.owner_group))

        case Reject():
            reason = _required_block("reason", action.reason, MAX_REASON)
            new = replace(state, status="rejected", owner_group=None)
            return IncidentTransition(
                new, entry("rejected", group=state.owner_group, reason=reason)
            )

        case Reassign():
            seat = _seat(action.seat, rules, "seat")
            employee = _opt_line("employee", action.employee, 32)
            if seat == state.owner_seat and employee == state.owner_employee:
                raise InvalidInputError(f"{state.number} is already owned by seat {seat}")
            new = replace(
                state, status="assigned", owner_seat=seat, owner_employee=employee, owner_group=None
            )
            return IncidentTransition(
                new, entry("assigned", seat=seat, employee=employee, from_seat=state.owner_seat)
            )

        case Escalate():
            reason = _required_block("reason", action.reason, MAX_REASON)
            flags = state.flags if FLAG_ESCALATED in state.flags else (*state.flags, FLAG_ESCALATED)
            new = replace(state, status="escalated", flags=flags, responded_at=responded(state))
            mails: tuple[Notice, ...] = ()
            if rules.supervisor_emails:
                mails = (
                    EscalationMail(
                        to=", ".join(dict.fromkeys(rules.supervisor_emails)),
                        dedupe_key=mail_key(state.number, "escalated", next_version),
                        reason=reason,
                    ),
                )
            return IncidentTransition(new, entry("escalated", reason=reason), mails)

        case Suspend():
            reason = _required_block("reason", action.reason, MAX_REASON)
            new = replace(state, status="suspended")
            return IncidentTransition(new, entry("suspended", reason=reason))

        case Resume():
            # Back to whoever holds it: second line if a group accepted it, else the desk.
            back: Status = "accepted" if state.owner_group else "in_progress"
            return IncidentTransition(replace(state, status=back), entry(back))

        case Close():
            new = replace(state, status="closed", closed_at=at)
            follow: tuple[Notice, ...] = ()
            if state.caller_email:
                follow = (
                    SatisfactionMail(
                        to=state.caller_email,
                        dedupe_key=mail_key(state.number, "satisfaction", next_version),
                        send_at=at + timedelta(seconds=rules.followup_after_close_s),
                    ),
                )
            return IncidentTransition(new, entry("closed"), follow)

        case Reopen():
            reason = _required_block("reason", action.reason, MAX_REASON)
            new = replace(
                state,
                status="reopened",
                resolved_at=None,
                closed_at=None,
                owner_group=None,
                flags=tuple(f for f in state.flags if f != FLAG_FIRST_LINE),
            )
            return IncidentTransition(new, entry("reopened", reason=reason))

        case Flag():
            name = _line("flag", action.flag, 32)
            if not _FLAG_NAME.match(name):
                raise InvalidInputError(f"flag {name!r} must be lower_snake_case (max 32)")
            if name in state.flags:
                return IncidentTransition(state, None)
            return IncidentTransition(
                replace(state, flags=(*state.flags, name)), entry(None, flag=name)
            )

        case Rate():
            if state.satisfaction is not None:
                raise TransitionError(f"cannot rate {state.number}: it was rated already")
            score = action.score
            if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
                raise InvalidInputError(f"score must be a whole number from 1 to 5 (got {score!r})")
            comment = _opt_block("comment", action.comment, MAX_COMMENT)
            new = replace(state, satisfaction=score, satisfaction_comment=comment)
            return IncidentTransition(new, entry(None, score=score, source=action.source))

    raise AssertionError(f"unhandled action {action!r}")  # pragma: no cover


# --------------------------------------------------------------------------- argument checks


def _choice(name: str, value: object, allowed: tuple[_S, ...]) -> _S:
    for option in allowed:
        if value == option:
            return option
    raise InvalidInputError(f"{name} must be one of {', '.join(allowed)} (got {value!r:.40})")


def _line(name: str, value: object, max_len: int) -> str:
    text = line_field(name, value, max_len, required=True)
    assert text is not None
    return text


def _opt_line(name: str, value: object, max_len: int) -> str | None:
    return line_field(name, value, max_len)


def _required_block(name: str, value: object, max_len: int) -> str:
    text = block_field(name, value, max_len, required=True)
    assert text is not None
    return text


def _opt_block(name: str, value: object, max_len: int) -> str | None:
    return block_field(name, value, max_len)


def _seat(value: object, rules: Rules, name: str) -> str:
    seat = _line(name, value, 64)
    if seat not in rules.seats:
        raise InvalidInputError(f"unknown seat {seat!r}")
    return seat
