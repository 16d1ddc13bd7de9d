"""The incident lifecycle (ITIL), as a pure function: (state, action, who, when, rules) → new
state, one history entry and the notifications the step implies. No I/O; the store persists the
result and renders the notifications into mail."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import ClassVar, Literal, TypeAlias, TypeVar, get_args

from ctid.config import Config
from ctid.core.errors import TransitionError
from ctid.tickets.errors import InvalidInputError
from ctid.tickets.text import block_field, email_field, line_field

# --------------------------------------------------------------------------- vocabularies

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

RequestType = Literal["fault", "service_request", "consultation", "new_requirement", "complaint"]
REQUEST_TYPES: tuple[RequestType, ...] = get_args(RequestType)

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


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """Someone takes the incident and works on it (optionally moving it to their seat)."""

    name: ClassVar[str] = "start"
    seat: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Classify:
    name: ClassVar[str] = "classify"
    request_type: str
    category: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Prioritize:
    name: ClassVar[str] = "prioritize"
    impact: str
    urgency: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveFirstLine:
    name: ClassVar[str] = "resolve_first_line"
    resolution: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HandToExpert:
    """An ordinary seat cannot locate or fix the fault: ownership moves to an expert seat.
    `call_live` says the caller is still on the line, so the app should transfer the call."""

    name: ClassVar[str] = "hand_to_expert"
    seat: str
    employee: str | None = None
    call_live: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Dispatch:
    """To a second-line group (and optionally one person in it), who must accept or reject."""

    name: ClassVar[str] = "dispatch"
    group: str
    assignee_email: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept:
    name: ClassVar[str] = "accept"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """The second-line assignee refuses it: back to the desk."""

    name: ClassVar[str] = "reject"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reassign:
    """To another first-line seat."""

    name: ClassVar[str] = "reassign"
    seat: str
    employee: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalate:
    """Hierarchical escalation: the duty manager (supervisors with an email) is told."""

    name: ClassVar[str] = "escalate"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspend:
    name: ClassVar[str] = "suspend"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume:
    name: ClassVar[str] = "resume"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolve:
    name: ClassVar[str] = "resolve"
    resolution: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Close:
    name: ClassVar[str] = "close"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reopen:
    name: ClassVar[str] = "reopen"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    """A label such as `capped` (the call hit the talk-time cap). Setting it twice is a no-op."""

    name: ClassVar[str] = "flag"
    flag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """The caller's satisfaction (1–5), once: by the mailed survey link or the phone keypad."""

    name: ClassVar[str] = "rate"
    score: int
    comment: str | None = None
    source: Literal["link", "keypad"] = "link"


Action: TypeAlias = (
    Start
    | Classify
    | Prioritize
    | ResolveFirstLine
    | HandToExpert
    | Dispatch
    | Accept
    | Reject
    | Reassign
    | Escalate
    | Suspend
    | Resume
    | Resolve
    | Close
    | Reopen
    | Flag
    | Rate
)

ACTIONS: dict[str, type[Action]] = {
    cls.name: cls
    for cls in (
        Start,
        Classify,
        Prioritize,
        ResolveFirstLine,
        HandToExpert,
        Dispatch,
        Accept,
        Reject,
        Reassign,
        Escalate,
        Suspend,
        Resume,
        Resolve,
        Close,
        Reopen,
        Flag,
        Rate,
    )
}

# Aliases the web form may use for an argument (`flag(name=...)` reads better than `flag=`).
_ARG_ALIASES: dict[str, dict[str, str]] = {"flag": {"name": "flag"}}


def parse_action(name: str, args: Mapping[str, object]) -> Action:
    """Build an action from its name and keyword arguments (e.g. from a web form)."""
    cls = ACTIONS.get(name)
    if cls is None:
        raise InvalidInputError(f"unknown incident action {name[:40]!r}")
    aliases = _ARG_ALIASES.get(name, {})
    kwargs = {aliases.get(k, k): _coerce(aliases.get(k, k), v) for k, v in args.items()}
    try:
        return cls(**kwargs)  # type: ignore[arg-type]
    except TypeError as exc:
        raise InvalidInputError(f"{name}: {exc}") from None


def _coerce(arg: str, value: object) -> object:
    """Form fields arrive as text: `call_live=false` must not be truthy, `score=5` is a number."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if arg in _BOOL_ARGS:
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise InvalidInputError(f"{arg} must be true or false (got {value[:20]!r})")
    if arg in _INT_ARGS:
        if not text.isdigit() or len(text) > 3:
            raise InvalidInputError(f"{arg} must be a whole number (got {value[:20]!r})")
        return int(text)
    return value


_BOOL_ARGS = frozenset({"call_live"})
_INT_ARGS = frozenset({"score"})


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
class Transition:
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
    if state.status not in _ALLOWED[action.name]:
        verb = _VERBS.get(action.name, action.name.replace("_", " "))
        raise TransitionError(f"cannot {verb} {state.number}: {_why_not(action.name, state)}")


# --------------------------------------------------------------------------- the function


def transition(
    state: IncidentState, action: Action, *, actor: str, at: datetime, rules: Rules
) -> Transition:
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
            return Transition(new, entry("in_progress", seat=seat))

        case Classify():
            rtype = _choice("request_type", action.request_type, REQUEST_TYPES)
            cat = (
                _choice("category", action.category, CATEGORIES)
                if action.category not in (None, "")
                else None
            )
            new = replace(state, request_type=rtype, category=cat)
            return Transition(
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
            return Transition(
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
            return Transition(new, entry("resolved", resolution=text), notices)

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
            return Transition(
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
            return Transition(
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
            return Transition(new, entry("accepted", group=state.owner_group))

        case Reject():
            reason = _required_block("reason", action.reason, MAX_REASON)
            new = replace(state, status="rejected", owner_group=None)
            return Transition(new, entry("rejected", group=state.owner_group, reason=reason))

        case Reassign():
            seat = _seat(action.seat, rules, "seat")
            employee = _opt_line("employee", action.employee, 32)
            if seat == state.owner_seat and employee == state.owner_employee:
                raise InvalidInputError(f"{state.number} is already owned by seat {seat}")
            new = replace(
                state, status="assigned", owner_seat=seat, owner_employee=employee, owner_group=None
            )
            return Transition(
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
            return Transition(new, entry("escalated", reason=reason), mails)

        case Suspend():
            reason = _required_block("reason", action.reason, MAX_REASON)
            new = replace(state, status="suspended")
            return Transition(new, entry("suspended", reason=reason))

        case Resume():
            # Back to whoever holds it: second line if a group accepted it, else the desk.
            back: Status = "accepted" if state.owner_group else "in_progress"
            return Transition(replace(state, status=back), entry(back))

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
            return Transition(new, entry("closed"), follow)

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
            return Transition(new, entry("reopened", reason=reason))

        case Flag():
            name = _line("flag", action.flag, 32)
            if not _FLAG_NAME.match(name):
                raise InvalidInputError(f"flag {name!r} must be lower_snake_case (max 32)")
            if name in state.flags:
                return Transition(state, None)
            return Transition(replace(state, flags=(*state.flags, name)), entry(None, flag=name))

        case Rate():
            if state.satisfaction is not None:
                raise TransitionError(f"cannot rate {state.number}: it was rated already")
            score = action.score
            if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
                raise InvalidInputError(f"score must be a whole number from 1 to 5 (got {score!r})")
            comment = _opt_block("comment", action.comment, MAX_COMMENT)
            new = replace(state, satisfaction=score, satisfaction_comment=comment)
            return Transition(new, entry(None, score=score, source=action.source))

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
