"""The frames pushed to desktops over `/ws/seat` and `/ws/supervisor`: one frozen type per kind
(its `TYPE` is the wire's `type`), each with a hand-written `to_wire()`, and `to_json`, the one
serializer (the wire format lives here and nowhere else)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, TypeAlias

FRAME_VERSION: Final = 1
"""The `v` of the versioned frames (`suggestions`, `spy_alert` and `hello` carry none)."""

PopState = Literal["ringing", "talking", "wrapup"]
PopMatch = Literal["one", "several", "none"]
IdleReason = Literal["none", "missed", "saved", "cleared"]

Wire: TypeAlias = dict[str, Any]
"""A JSON-ready object (what `json.dumps` takes)."""


# --------------------------------------------------------------------------- the pop's parts


@dataclass(frozen=True, slots=True)
class IvrPart:
    digit: str
    label: str
    request_type: str

    def to_wire(self) -> Wire:
        return {"digit": self.digit, "label": self.label, "request_type": self.request_type}


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerPart:
    """A directory caller as the pop shows it (text already cleaned)."""

    caller_id: int
    name: str
    phone: str
    employee_id: str
    department: str
    office: str
    vip: bool

    def to_wire(self) -> Wire:
        return {
            "caller_id": self.caller_id,
            "name": self.name,
            "phone": self.phone,
            "employee_id": self.employee_id,
            "department": self.department,
            "office": self.office,
            "vip": self.vip,
        }


@dataclass(frozen=True, slots=True)
class CandidatePart:
    """One of several callers the number matches, with how many open incidents it has."""

    caller: CallerPart
    open_incidents: int

    def to_wire(self) -> Wire:
        wire = self.caller.to_wire()
        wire["open_incidents"] = self.open_incidents
        return wire


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentPart:
    number: str
    summary: str
    status: str
    priority: str
    opened_at: float | None

    def to_wire(self) -> Wire:
        return {
            "number": self.number,
            "summary": self.summary,
            "status": self.status,
            "priority": self.priority,
            "opened_at": self.opened_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactPart:
    at: float
    channel: str
    summary: str
    incident_number: str

    def to_wire(self) -> Wire:
        return {
            "at": self.at,
            "channel": self.channel,
            "summary": self.summary,
            "incident_number": self.incident_number,
        }


@dataclass(frozen=True, slots=True)
class NewCallerPart:
    name: str
    phone: str

    def to_wire(self) -> Wire:
        return {"name": self.name, "phone": self.phone}


@dataclass(frozen=True, slots=True, kw_only=True)
class FormPart:
    """The incident form's prefill."""

    caller_id: int | None
    caller_name: str
    phone: str
    department: str
    office: str
    request_type: str

    def to_wire(self) -> Wire:
        return {
            "caller_id": self.caller_id,
            "caller_name": self.caller_name,
            "phone": self.phone,
            "department": self.department,
            "office": self.office,
            "request_type": self.request_type,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkPart:
    started_at: float
    cap_at: float
    warn_at: tuple[float, ...]
    action: str

    def to_wire(self) -> Wire:
        return {
            "started_at": self.started_at,
            "cap_at": self.cap_at,
            "warn_at": list(self.warn_at),
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class SopStep:
    """One step of the call script, with the time budget DOMAIN.md gives it."""

    key: str
    label: str
    budget_s: int
    prompt: str

    def to_wire(self) -> Wire:
        return {
            "key": self.key,
            "label": self.label,
            "budget_s": self.budget_s,
            "prompt": self.prompt,
        }


@dataclass(frozen=True, slots=True)
class EndedPart:
    at: float
    talk_s: float
    answered: bool

    def to_wire(self) -> Wire:
        return {"at": self.at, "talk_s": self.talk_s, "answered": self.answered}


# --------------------------------------------------------------------------- seat frames


@dataclass(frozen=True, slots=True, kw_only=True)
class PopFrame:
    """The seat's current call (the hub keeps the last one as the seat's state)."""

    TYPE: ClassVar[Literal["pop"]] = "pop"
    state: PopState
    seat: str
    call_id: str
    number: str
    cid_name: str
    queue: str
    ivr: IvrPart | None
    entered_at: float | None
    waited_s: float | None
    rang_at: float
    ring_deadline_at: float
    match: PopMatch
    caller: CallerPart | None
    open_incidents: tuple[IncidentPart, ...]
    recent_contacts: tuple[ContactPart, ...]
    candidates: tuple[CandidatePart, ...]
    new_caller: NewCallerPart | None
    form: FormPart
    talk: TalkPart | None
    sop: tuple[SopStep, ...]
    incident_number: str | None
    """On the wire as `"incident": {"number": ...}` (or null)."""
    ended: EndedPart | None

    def to_wire(self) -> Wire:
        return {
            "v": FRAME_VERSION,
            "type": self.TYPE,
            "state": self.state,
            "seat": self.seat,
            "call_id": self.call_id,
            "number": self.number,
            "cid_name": self.cid_name,
            "queue": self.queue,
            "ivr": self.ivr.to_wire() if self.ivr else None,
            "entered_at": self.entered_at,
            "waited_s": self.waited_s,
            "rang_at": self.rang_at,
            "ring_deadline_at": self.ring_deadline_at,
            "match": self.match,
            "caller": self.caller.to_wire() if self.caller else None,
            "open_incidents": [i.to_wire() for i in self.open_incidents],
            "recent_contacts": [c.to_wire() for c in self.recent_contacts],
            "candidates": [c.to_wire() for c in self.candidates],
            "new_caller": self.new_caller.to_wire() if self.new_caller else None,
            "form": self.form.to_wire(),
            "talk": self.talk.to_wire() if self.talk else None,
            "sop": [s.to_wire() for s in self.sop],
            "incident": {"number": self.incident_number} if self.incident_number else None,
            "ended": self.ended.to_wire() if self.ended else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class IdleFrame:
    """The seat has no call on screen (any more); `caller` names who it was for a missed call."""

    TYPE: ClassVar[Literal["idle"]] = "idle"
    seat: str
    reason: IdleReason
    call_id: str = ""
    incident_number: str = ""
    caller: str = ""

    def to_wire(self) -> Wire:
        return {
            "v": FRAME_VERSION,
            "type": self.TYPE,
            "seat": self.seat,
            "reason": self.reason,
            "call_id": self.call_id,
            "incident_number": self.incident_number,
            "caller": self.caller,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CapWarningFrame:
    """A talk-cap warning (`remaining_s` 0: the cap is reached and `action` applies)."""

    TYPE: ClassVar[Literal["cap_warning"]] = "cap_warning"
    seat: str
    call_id: str
    at: float
    cap_at: float
    remaining_s: float
    action: str

    def to_wire(self) -> Wire:
        return {
            "v": FRAME_VERSION,
            "type": self.TYPE,
            "seat": self.seat,
            "call_id": self.call_id,
            "at": self.at,
            "cap_at": self.cap_at,
            "remaining_s": self.remaining_s,
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class ArticlePart:
    id: int
    title: str
    category: str | None

    def to_wire(self) -> Wire:
        return {"id": self.id, "title": self.title, "category": self.category}


@dataclass(frozen=True, slots=True)
class SolvedPart:
    number: str
    summary: str
    resolution: str

    def to_wire(self) -> Wire:
        return {"number": self.number, "summary": self.summary, "resolution": self.resolution}


@dataclass(frozen=True, slots=True, kw_only=True)
class SuggestionsFrame:
    """Knowledge articles and incidents solved before, sent after a ringing pop (never kept)."""

    TYPE: ClassVar[Literal["suggestions"]] = "suggestions"
    seat: str
    call_id: str
    request_type: str | None
    articles: tuple[ArticlePart, ...]
    solved_before: tuple[SolvedPart, ...]

    def to_wire(self) -> Wire:
        return {
            "type": self.TYPE,
            "seat": self.seat,
            "call_id": self.call_id,
            "request_type": self.request_type,
            "articles": [a.to_wire() for a in self.articles],
            "solved_before": [s.to_wire() for s in self.solved_before],
        }


@dataclass(frozen=True, slots=True)
class AgentPart:
    employee_id: str
    name: str

    def to_wire(self) -> Wire:
        return {"employee_id": self.employee_id, "name": self.name}


@dataclass(frozen=True, slots=True)
class TodayPart:
    answered: int
    missed: int
    avg_talk_s: int

    def to_wire(self) -> Wire:
        return {"answered": self.answered, "missed": self.missed, "avg_talk_s": self.avg_talk_s}


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatPart:
    """One seat's documented shape (`GET /api/seats` and the `seat_state` frame)."""

    seat: str
    name: str
    agent: AgentPart | None
    tier: str
    state: str
    reason: str | None
    reason_words: str | None
    since: str | None
    in_state_s: int
    wrapup_ends_at: str | None
    wrapup_extended: bool
    call_id: str | None
    today: TodayPart

    def to_wire(self) -> Wire:
        return {
            "seat": self.seat,
            "name": self.name,
            "agent": self.agent.to_wire() if self.agent else None,
            "tier": self.tier,
            "state": self.state,
            "reason": self.reason,
            "reason_words": self.reason_words,
            "since": self.since,
            "in_state_s": self.in_state_s,
            "wrapup_ends_at": self.wrapup_ends_at,
            "wrapup_extended": self.wrapup_extended,
            "call_id": self.call_id,
            "today": self.today.to_wire(),
        }


@dataclass(frozen=True, slots=True)
class SeatStateFrame:
    """A seat's state changed (to its desktops and to the supervisors)."""

    TYPE: ClassVar[Literal["seat_state"]] = "seat_state"
    server_now: float
    seat: SeatPart

    def to_wire(self) -> Wire:
        wire: Wire = {"v": FRAME_VERSION, "type": self.TYPE, "server_now": self.server_now}
        wire.update(self.seat.to_wire())
        return wire


# --------------------------------------------------------------------------- supervisor frames


@dataclass(frozen=True, slots=True, kw_only=True)
class BoardSeat:
    """One seat tile of the wallboard."""

    seat_id: str
    name: str
    tier: str
    status: str
    pause_reason: str
    ring_started_at: float | None
    ring_deadline_at: float | None
    talk_started_at: float | None
    cap_at: float | None
    caller: str
    call_id: str
    channel: str

    def to_wire(self) -> Wire:
        return {
            "seat_id": self.seat_id,
            "name": self.name,
            "tier": self.tier,
            "status": self.status,
            "pause_reason": self.pause_reason,
            "ring_started_at": self.ring_started_at,
            "ring_deadline_at": self.ring_deadline_at,
            "talk_started_at": self.talk_started_at,
            "cap_at": self.cap_at,
            "caller": self.caller,
            "call_id": self.call_id,
            "channel": self.channel,
        }


@dataclass(frozen=True, slots=True)
class WaitingCaller:
    caller: str
    since: float

    def to_wire(self) -> Wire:
        return {"caller": self.caller, "since": self.since}


@dataclass(frozen=True, slots=True)
class BoardQueue:
    name: str
    waiting: tuple[WaitingCaller, ...]

    def to_wire(self) -> Wire:
        return {"name": self.name, "waiting": [w.to_wire() for w in self.waiting]}


@dataclass(frozen=True, slots=True, kw_only=True)
class WallboardFrame:
    """The supervisors' wallboard (the hub keeps the last one for a new wallboard)."""

    TYPE: ClassVar[Literal["wallboard"]] = "wallboard"
    at: float
    seats: tuple[BoardSeat, ...]
    queues: tuple[BoardQueue, ...]
    kpis: Mapping[str, object]
    desk: Mapping[str, object]
    ami: Mapping[str, object]

    def to_wire(self) -> Wire:
        return {
            "v": FRAME_VERSION,
            "type": self.TYPE,
            "at": self.at,
            "seats": [s.to_wire() for s in self.seats],
            "queues": [q.to_wire() for q in self.queues],
            "kpis": dict(self.kpis),
            "desk": dict(self.desk),
            "ami": dict(self.ami),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFrame:
    """Something the supervisors should see (the hub keeps the last few)."""

    TYPE: ClassVar[Literal["alert"]] = "alert"
    kind: str
    message: str
    seat: str | None
    call_id: str | None
    at: float

    def to_wire(self) -> Wire:
        return {
            "v": FRAME_VERSION,
            "type": self.TYPE,
            "kind": self.kind,
            "message": self.message,
            "seat": self.seat,
            "call_id": self.call_id,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class AlertsFrame:
    """The kept alerts, oldest first: a new supervisor desktop's second frame."""

    TYPE: ClassVar[Literal["alerts"]] = "alerts"
    alerts: tuple[AlertFrame, ...]

    def to_wire(self) -> Wire:
        return {"v": FRAME_VERSION, "type": self.TYPE, "alerts": [a.to_wire() for a in self.alerts]}


@dataclass(frozen=True, slots=True, kw_only=True)
class SpyAlertFrame:
    """A listen-in leg that did not end when asked (the supervisor must look at the phone)."""

    TYPE: ClassVar[Literal["spy_alert"]] = "spy_alert"
    session: int
    supervisor: str
    seat: str
    mode: str
    message: str

    def to_wire(self) -> Wire:
        return {
            "type": self.TYPE,
            "session": self.session,
            "supervisor": self.supervisor,
            "seat": self.seat,
            "mode": self.mode,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloFrame:
    """A socket's first frame: which channel it is (`seat` or `channel`) and the server's time."""

    TYPE: ClassVar[Literal["hello"]] = "hello"
    server_now: float
    session_expires_at: float
    seat: str | None = None
    channel: str | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"type": self.TYPE}
        if self.seat is not None:
            wire["seat"] = self.seat
        if self.channel is not None:
            wire["channel"] = self.channel
        wire["server_now"] = self.server_now
        wire["session_expires_at"] = self.session_expires_at
        return wire


SeatFrame: TypeAlias = PopFrame | IdleFrame | CapWarningFrame | SuggestionsFrame | SeatStateFrame
"""What the hub delivers to one seat's desktops (`PopHub.publish`)."""
SupervisorFrame: TypeAlias = WallboardFrame | AlertFrame | SpyAlertFrame | SeatStateFrame
"""What the hub delivers to the supervisors' desktops (`PopHub.publish_supervisor`)."""
Frame: TypeAlias = SeatFrame | SupervisorFrame | AlertsFrame | HelloFrame
"""Every frame a desktop is sent."""


def to_json(frame: Frame) -> str:
    """The frame as the text sent on the socket. Chinese names stay readable (no `\\u` escapes);
    the browser parses JSON and never treats it as HTML."""
    return json.dumps(frame.to_wire(), ensure_ascii=False, separators=(",", ":"))
