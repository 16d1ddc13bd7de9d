"""The incident lifecycle's actions: one frozen dataclass per step a person (or ctid) may ask for,
`ACTIONS` by name, and `parse_action` building one from a form's text fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeAlias

from ctid.tickets.errors import InvalidInputError


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
    """The caller's satisfaction (1–5), once: by the mailed survey link (after resolution) or
    the phone keypad (right after the call, whatever the status)."""

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
