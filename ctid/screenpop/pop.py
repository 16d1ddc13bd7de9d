"""The screen-pop model (pure): what a seat's desktop shows while a call rings, talks and wraps
up, built from plain inputs into `ctid.core.frames.PopFrame`s. Caller-controlled text stays data
(JSON strings); the desktop renders it with `textContent` only."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from ctid.config import TalkCapConfig
from ctid.core.events import clean_caller_text
from ctid.core.frames import (
    CallerPart,
    CandidatePart,
    CapWarningFrame,
    ContactPart,
    EndedPart,
    FormPart,
    IdleFrame,
    IdleReason,
    IncidentPart,
    IvrPart,
    NewCallerPart,
    PopFrame,
    PopMatch,
    PopState,
    SopStep,
    TalkPart,
)

RECENT_CONTACTS_MAX: Final = 5
OPEN_INCIDENTS_MAX: Final = 10
CANDIDATES_MAX: Final = 10

SOP_STEPS: Final[tuple[SopStep, ...]] = (
    SopStep(
        "greet",
        "Greet",
        10,
        "Hello, customer center. How can I help you? (您好,客户中心。请问有什么可以帮您的吗?)",
    ),
    SopStep("confirm_caller", "Confirm caller", 60, "Ask name, phone and office location."),
    SopStep(
        "diagnose",
        "Diagnose",
        180,
        "Alarms or noises? The error message? Cables and indicator lights? (with consent)",
    ),
    SopStep(
        "guided_fix",
        "Guided fix",
        230,
        "Walk the caller through the steps (generally discouraged).",
    ),
    SopStep(
        "dispatch",
        "Dispatch",
        120,
        "Promise an engineer; re-check name, phone, address; describe the fault in professional terms.",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerCard:
    """A caller from the directory (all text is data, never markup)."""

    caller_id: int
    name: str
    phone: str = ""
    employee_id: str = ""
    department: str = ""
    office: str = ""
    vip: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentLine:
    number: str
    summary: str
    status: str
    priority: str = ""
    opened_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactLine:
    """A past contact (call, mail, ...) of the caller, newest first."""

    at: float
    channel: str
    summary: str
    incident_number: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerMatch:
    card: CallerCard
    open_incidents: tuple[IncidentLine, ...] = ()
    recent_contacts: tuple[ContactLine, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrChoice:
    digit: str
    label: str
    request_type: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RingInput:
    """Everything known when the PBX rings a seat (`AgentCalled`). Times are epoch seconds."""

    call_id: str
    seat_id: str
    number: str
    """Caller number as received (untrusted)."""
    cid_name: str = ""
    """Caller ID name as received (untrusted)."""
    queue: str = ""
    ivr: IvrChoice | None = None
    entered_at: float | None = None
    """When the caller reached the desk (IVR/queue entry), for "time waited"."""
    rang_at: float
    ring_deadline_at: float
    """When ctid cuts the ringing leg (max_rings x cadence after ringing started)."""
    matches: tuple[CallerMatch, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Talk:
    started_at: float
    cap_at: float
    warn_at: tuple[float, ...]
    action: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop:
    """One seat's view of one call. Build it with `ringing`, move it on with `answered` and
    `hung_up`, and send `to_frame(pop)`."""

    state: PopState
    ring: RingInput
    talk: Talk | None = None
    incident_number: str | None = None
    ended_at: float | None = None


def ringing(ring: RingInput) -> Pop:
    return Pop(state="ringing", ring=ring)


def answered(
    pop: Pop,
    *,
    at: float,
    talk_cap: TalkCapConfig,
    incident_number: str | None = None,
    cap_from: float | None = None,
) -> Pop:
    """The seat answered: the talk timer starts, with the 10-minute cap and its warning points.
    `cap_from`: when the caller's conversation began, if earlier (a transferred call's cap
    counts from its first answer)."""
    start = at if cap_from is None else min(at, cap_from)
    talk = Talk(
        started_at=at,
        cap_at=start + talk_cap.talk_cap_s,
        warn_at=tuple(start + w for w in talk_cap.warn_at_s),
        action=talk_cap.action,
    )
    return replace(
        pop, state="talking", talk=talk, incident_number=incident_number or pop.incident_number
    )


def hung_up(pop: Pop, *, at: float, incident_number: str | None = None) -> Pop:
    """The call ended: the pop becomes the incident with the call attached (wrap-up)."""
    return replace(
        pop, state="wrapup", ended_at=at, incident_number=incident_number or pop.incident_number
    )


def _text(value: str, limit: int = 128) -> str:
    return clean_caller_text(value, limit)


def _card(card: CallerCard) -> CallerPart:
    return CallerPart(
        caller_id=card.caller_id,
        name=_text(card.name),
        phone=_text(card.phone, 64),
        employee_id=_text(card.employee_id, 32),
        department=_text(card.department),
        office=_text(card.office),
        vip=card.vip,
    )


def _incident(line: IncidentLine) -> IncidentPart:
    return IncidentPart(
        number=line.number,
        summary=_text(line.summary, 200),
        status=line.status,
        priority=line.priority,
        opened_at=line.opened_at,
    )


def _contact(line: ContactLine) -> ContactPart:
    return ContactPart(
        at=line.at,
        channel=line.channel,
        summary=_text(line.summary, 200),
        incident_number=line.incident_number,
    )


def _form(ring: RingInput, match: CallerMatch | None) -> FormPart:
    """The incident form's prefill: the one matched caller, else what the caller ID says."""
    request_type = ring.ivr.request_type if ring.ivr else ""
    if match is not None:
        card = match.card
        return FormPart(
            caller_id=card.caller_id,
            caller_name=_text(card.name),
            phone=_text(card.phone or ring.number, 64),
            department=_text(card.department),
            office=_text(card.office),
            request_type=request_type,
        )
    return FormPart(
        caller_id=None,
        caller_name=_text(ring.cid_name),
        phone=_text(ring.number, 64),
        department="",
        office="",
        request_type=request_type,
    )


def to_frame(pop: Pop) -> PopFrame:
    """The frame the seat's desktop renders (and the hub keeps as the seat's state)."""
    ring = pop.ring
    matches = ring.matches
    one = matches[0] if len(matches) == 1 else None
    kind: PopMatch = "one" if one else ("several" if matches else "none")
    talk = None
    if pop.talk is not None:
        t = pop.talk
        talk = TalkPart(
            started_at=t.started_at, cap_at=t.cap_at, warn_at=t.warn_at, action=t.action
        )
    ended = None
    if pop.state == "wrapup" and pop.ended_at is not None:
        started = pop.talk.started_at if pop.talk else None
        ended = EndedPart(
            at=pop.ended_at,
            talk_s=max(0.0, pop.ended_at - started) if started is not None else 0.0,
            answered=pop.talk is not None,
        )
    ivr = ring.ivr
    return PopFrame(
        state=pop.state,
        seat=ring.seat_id,
        call_id=ring.call_id,
        number=_text(ring.number, 64),
        cid_name=_text(ring.cid_name),
        queue=ring.queue,
        ivr=IvrPart(ivr.digit, ivr.label, ivr.request_type) if ivr else None,
        entered_at=ring.entered_at,
        waited_s=(
            max(0.0, ring.rang_at - ring.entered_at) if ring.entered_at is not None else None
        ),
        rang_at=ring.rang_at,
        ring_deadline_at=ring.ring_deadline_at,
        match=kind,
        caller=_card(one.card) if one else None,
        open_incidents=(
            tuple(_incident(i) for i in one.open_incidents[:OPEN_INCIDENTS_MAX]) if one else ()
        ),
        recent_contacts=(
            tuple(_contact(c) for c in one.recent_contacts[:RECENT_CONTACTS_MAX]) if one else ()
        ),
        candidates=(
            tuple(
                CandidatePart(_card(m.card), len(m.open_incidents))
                for m in matches[:CANDIDATES_MAX]
            )
            if kind == "several"
            else ()
        ),
        new_caller=(
            NewCallerPart(_text(ring.cid_name), _text(ring.number, 64)) if kind == "none" else None
        ),
        form=_form(ring, one),
        talk=talk,
        sop=SOP_STEPS if talk is not None else (),
        incident_number=pop.incident_number or None,
        ended=ended,
    )


def cap_warning_frame(
    *, seat_id: str, call_id: str, at: float, cap_at: float, action: str
) -> CapWarningFrame:
    """A talk-cap warning (remaining_s == 0: the cap is reached and `action` applies)."""
    return CapWarningFrame(
        seat=seat_id,
        call_id=call_id,
        at=at,
        cap_at=cap_at,
        remaining_s=max(0.0, cap_at - at),
        action=action,
    )


def idle_frame(
    *,
    seat_id: str,
    reason: IdleReason,
    call_id: str = "",
    incident_number: str = "",
    caller: str = "",
) -> IdleFrame:
    """The seat has no call on screen any more; `caller` names who it was (for a missed call)."""
    return IdleFrame(
        seat=seat_id,
        reason=reason,
        call_id=call_id,
        incident_number=incident_number,
        caller=_text(caller),
    )
