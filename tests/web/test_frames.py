"""The wire format of every frame pushed to desktops: each typed frame serialises to exactly the
JSON the browser JS reads (the expected objects are written out by hand, key by key, as the
dict-building code before the typed frames sent them)."""

from __future__ import annotations

import json
from typing import Any

from ctid.calls.seat_desk import SeatToday, SeatView, seat_frame, seat_json
from ctid.calls.seat_state import SeatState
from ctid.config import TalkCapConfig
from ctid.core.frames import (
    AlertFrame,
    AlertsFrame,
    ArticlePart,
    BoardQueue,
    BoardSeat,
    Frame,
    HelloFrame,
    SolvedPart,
    SpyAlertFrame,
    SuggestionsFrame,
    WaitingCaller,
    WallboardFrame,
    to_json,
)
from ctid.i18n import translator
from ctid.screenpop import pop
from ctid.screenpop.hub import PopHub
from ctid.screenpop.pop import (
    CallerCard,
    CallerMatch,
    ContactLine,
    IncidentLine,
    IvrChoice,
    RingInput,
)

T0 = 1_795_000_000.0
SOP = [
    {
        "key": "greet",
        "label": "Greet",
        "budget_s": 10,
        "prompt": "Hello, customer center. How can I help you? (您好,客户中心。请问有什么可以帮您的吗?)",
    },
    {
        "key": "confirm_caller",
        "label": "Confirm caller",
        "budget_s": 60,
        "prompt": "Ask name, phone and office location.",
    },
    {
        "key": "diagnose",
        "label": "Diagnose",
        "budget_s": 180,
        "prompt": "Alarms or noises? The error message? Cables and indicator lights? (with consent)",
    },
    {
        "key": "guided_fix",
        "label": "Guided fix",
        "budget_s": 230,
        "prompt": "Walk the caller through the steps (generally discouraged).",
    },
    {
        "key": "dispatch",
        "label": "Dispatch",
        "budget_s": 120,
        "prompt": "Promise an engineer; re-check name, phone, address; describe the fault in "
        "professional terms.",
    },
]


def wire(frame: Frame) -> Any:
    """What the browser receives: the serializer's text, parsed."""
    return json.loads(to_json(frame))


def _card(caller_id: int, name: str) -> CallerCard:
    return CallerCard(
        caller_id=caller_id,
        name=name,
        phone="13800138000",
        employee_id="A0042",
        department="Finance",
        office="HQ 12F",
        vip=True,
    )


def _ring(*matches: CallerMatch, cid_name: str = "WANG XM") -> RingInput:
    return RingInput(
        call_id="1795000000.17",
        seat_id="seat1",
        number="13800138000",
        cid_name=cid_name,
        queue="shared",
        ivr=IvrChoice(digit="2", label="fault", request_type="fault"),
        entered_at=T0 - 42,
        rang_at=T0,
        ring_deadline_at=T0 + 15,
        matches=matches,
    )


def test_a_ringing_pop_for_one_known_caller() -> None:
    match = CallerMatch(
        card=_card(7, "王小明"),
        open_incidents=(
            IncidentLine(
                number="INC-20261120-0003",
                summary="Printer jams",
                status="dispatched",
                priority="P3",
                opened_at=T0 - 86400,
            ),
        ),
        recent_contacts=(
            ContactLine(at=T0 - 3600, channel="phone", summary="call 0", incident_number="INC-1"),
        ),
    )
    assert wire(pop.to_frame(pop.ringing(_ring(match)))) == {
        "v": 1,
        "type": "pop",
        "state": "ringing",
        "seat": "seat1",
        "call_id": "1795000000.17",
        "number": "13800138000",
        "cid_name": "WANG XM",
        "queue": "shared",
        "ivr": {"digit": "2", "label": "fault", "request_type": "fault"},
        "entered_at": T0 - 42,
        "waited_s": 42.0,
        "rang_at": T0,
        "ring_deadline_at": T0 + 15,
        "match": "one",
        "caller": {
            "caller_id": 7,
            "name": "王小明",
            "phone": "13800138000",
            "employee_id": "A0042",
            "department": "Finance",
            "office": "HQ 12F",
            "vip": True,
        },
        "open_incidents": [
            {
                "number": "INC-20261120-0003",
                "summary": "Printer jams",
                "status": "dispatched",
                "priority": "P3",
                "opened_at": T0 - 86400,
            }
        ],
        "recent_contacts": [
            {"at": T0 - 3600, "channel": "phone", "summary": "call 0", "incident_number": "INC-1"}
        ],
        "candidates": [],
        "new_caller": None,
        "form": {
            "caller_id": 7,
            "caller_name": "王小明",
            "phone": "13800138000",
            "department": "Finance",
            "office": "HQ 12F",
            "request_type": "fault",
        },
        "talk": None,
        "sop": [],
        "incident": None,
        "ended": None,
    }


def test_a_talking_pop_with_several_candidates_then_its_wrapup() -> None:
    ringing = pop.ringing(_ring(CallerMatch(card=_card(1, "A")), CallerMatch(card=_card(2, "B"))))
    talking = pop.answered(
        ringing, at=T0 + 8, talk_cap=TalkCapConfig(), incident_number="INC-20261123-0001"
    )
    expected: dict[str, Any] = {
        "v": 1,
        "type": "pop",
        "state": "talking",
        "seat": "seat1",
        "call_id": "1795000000.17",
        "number": "13800138000",
        "cid_name": "WANG XM",
        "queue": "shared",
        "ivr": {"digit": "2", "label": "fault", "request_type": "fault"},
        "entered_at": T0 - 42,
        "waited_s": 42.0,
        "rang_at": T0,
        "ring_deadline_at": T0 + 15,
        "match": "several",
        "caller": None,
        "open_incidents": [],
        "recent_contacts": [],
        "candidates": [
            {
                "caller_id": 1,
                "name": "A",
                "phone": "13800138000",
                "employee_id": "A0042",
                "department": "Finance",
                "office": "HQ 12F",
                "vip": True,
                "open_incidents": 0,
            },
            {
                "caller_id": 2,
                "name": "B",
                "phone": "13800138000",
                "employee_id": "A0042",
                "department": "Finance",
                "office": "HQ 12F",
                "vip": True,
                "open_incidents": 0,
            },
        ],
        "new_caller": None,
        "form": {
            "caller_id": None,
            "caller_name": "WANG XM",
            "phone": "13800138000",
            "department": "",
            "office": "",
            "request_type": "fault",
        },
        "talk": {
            "started_at": T0 + 8,
            "cap_at": T0 + 608,
            "warn_at": [T0 + 488, T0 + 548],
            "action": "hangup",
        },
        "sop": SOP,
        "incident": {"number": "INC-20261123-0001"},
        "ended": None,
    }
    assert wire(pop.to_frame(talking)) == expected
    wrapup = pop.hung_up(talking, at=T0 + 128)
    assert wire(pop.to_frame(wrapup)) == {
        **expected,
        "state": "wrapup",
        "ended": {"at": T0 + 128, "talk_s": 120.0, "answered": True},
    }


def test_a_ringing_pop_for_an_unknown_number() -> None:
    frame = wire(pop.to_frame(pop.ringing(_ring(cid_name="Visitor"))))
    assert (frame["match"], frame["caller"], frame["candidates"]) == ("none", None, [])
    assert frame["new_caller"] == {"name": "Visitor", "phone": "13800138000"}
    assert frame["form"] == {
        "caller_id": None,
        "caller_name": "Visitor",
        "phone": "13800138000",
        "department": "",
        "office": "",
        "request_type": "fault",
    }


def test_idle_and_cap_warning() -> None:
    idle = pop.idle_frame(seat_id="seat1", reason="saved", call_id="c1", incident_number="INC-9")
    assert wire(idle) == {
        "v": 1,
        "type": "idle",
        "seat": "seat1",
        "reason": "saved",
        "call_id": "c1",
        "incident_number": "INC-9",
        "caller": "",
    }
    warning = pop.cap_warning_frame(
        seat_id="seat1", call_id="c1", at=T0 + 480, cap_at=T0 + 600, action="hangup"
    )
    assert wire(warning) == {
        "v": 1,
        "type": "cap_warning",
        "seat": "seat1",
        "call_id": "c1",
        "at": T0 + 480,
        "cap_at": T0 + 600,
        "remaining_s": 120.0,
        "action": "hangup",
    }


def test_suggestions_carry_no_version() -> None:
    frame = SuggestionsFrame(
        seat="seat1",
        call_id="c1",
        request_type=None,
        articles=(ArticlePart(3, "Printer jams", None),),
        solved_before=(SolvedPart("INC-1", "Jam", ""),),
    )
    assert wire(frame) == {
        "type": "suggestions",
        "seat": "seat1",
        "call_id": "c1",
        "request_type": None,
        "articles": [{"id": 3, "title": "Printer jams", "category": None}],
        "solved_before": [{"number": "INC-1", "summary": "Jam", "resolution": ""}],
    }


def test_seat_state_is_the_seats_api_shape_plus_its_header() -> None:
    view = SeatView(
        seat="seat2",
        name="Seat 2",
        tier="ordinary",
        employee_id="E1002",
        agent_name="李伟",
        state=SeatState.PAUSED,
        reason="rna",
        since=T0 - 90,
        wrapup_ends_at=None,
        wrapup_extended=False,
        call_id=None,
        today=SeatToday(answered=3, missed=1, talk_s=600.0),
    )
    t = translator("en")
    seat = {
        "seat": "seat2",
        "name": "Seat 2",
        "agent": {"employee_id": "E1002", "name": "李伟"},
        "tier": "ordinary",
        "state": "paused",
        "reason": "rna",
        "reason_words": "Missed calls",
        "since": "2026-11-18T11:05:10Z",
        "in_state_s": 90,
        "wrapup_ends_at": None,
        "wrapup_extended": False,
        "call_id": None,
        "today": {"answered": 3, "missed": 1, "avg_talk_s": 200},
    }
    assert seat_json(view, T0, t) == seat
    assert wire(seat_frame(view, T0, t)) == {"v": 1, "type": "seat_state", "server_now": T0, **seat}


def test_wallboard_alerts_and_spy_alert() -> None:
    board = WallboardFrame(
        at=T0,
        seats=(
            BoardSeat(
                seat_id="seat1",
                name="Seat 1",
                tier="ordinary",
                status="on_call",
                pause_reason="",
                ring_started_at=None,
                ring_deadline_at=None,
                talk_started_at=T0 - 60,
                cap_at=T0 + 540,
                caller="Zhang San",
                call_id="c1",
                channel="PJSIP/seat1-00000001",
            ),
        ),
        queues=(BoardQueue("shared", (WaitingCaller("Li Si", T0 - 12),)),),
        kpis={"offered": 3},
        desk={"mode": "open"},
        ami={"connected": True},
    )
    assert wire(board) == {
        "v": 1,
        "type": "wallboard",
        "at": T0,
        "seats": [
            {
                "seat_id": "seat1",
                "name": "Seat 1",
                "tier": "ordinary",
                "status": "on_call",
                "pause_reason": "",
                "ring_started_at": None,
                "ring_deadline_at": None,
                "talk_started_at": T0 - 60,
                "cap_at": T0 + 540,
                "caller": "Zhang San",
                "call_id": "c1",
                "channel": "PJSIP/seat1-00000001",
            }
        ],
        "queues": [{"name": "shared", "waiting": [{"caller": "Li Si", "since": T0 - 12}]}],
        "kpis": {"offered": 3},
        "desk": {"mode": "open"},
        "ami": {"connected": True},
    }
    alert = AlertFrame(kind="ring_miss", message="seat1 missed", seat="seat1", call_id=None, at=T0)
    alert_wire = {
        "v": 1,
        "type": "alert",
        "kind": "ring_miss",
        "message": "seat1 missed",
        "seat": "seat1",
        "call_id": None,
        "at": T0,
    }
    assert wire(alert) == alert_wire
    assert wire(AlertsFrame((alert, alert))) == {
        "v": 1,
        "type": "alerts",
        "alerts": [alert_wire, alert_wire],
    }
    spy = SpyAlertFrame(session=4, supervisor="S9001", seat="seat3", mode="listen", message="m")
    assert wire(spy) == {
        "type": "spy_alert",
        "session": 4,
        "supervisor": "S9001",
        "seat": "seat3",
        "mode": "listen",
        "message": "m",
    }


def test_hello_names_its_channel() -> None:
    assert wire(HelloFrame(server_now=T0, session_expires_at=T0 + 3600, seat="seat1")) == {
        "type": "hello",
        "seat": "seat1",
        "server_now": T0,
        "session_expires_at": T0 + 3600,
    }
    assert wire(HelloFrame(server_now=T0, session_expires_at=T0 + 1, channel="supervisor")) == {
        "type": "hello",
        "channel": "supervisor",
        "server_now": T0,
        "session_expires_at": T0 + 1,
    }


def test_the_text_is_compact_and_keeps_chinese_readable() -> None:
    idle = pop.idle_frame(seat_id="seat1", reason="missed", call_id="c1", caller="王小明")
    assert to_json(idle) == (
        '{"v":1,"type":"idle","seat":"seat1","reason":"missed","call_id":"c1",'
        '"incident_number":"","caller":"王小明"}'
    )


async def test_the_hub_sends_the_serializers_text_and_keeps_the_typed_pop() -> None:
    hub = PopHub()
    sub = hub.subscribe("seat1")
    assert await sub.get() == to_json(pop.idle_frame(seat_id="seat1", reason="none"))
    frame = pop.to_frame(pop.ringing(_ring()))
    hub.publish("seat1", frame)
    assert await sub.get() == to_json(frame)
    assert hub.snapshot("seat1") is frame
    supervisor = hub.subscribe_supervisor()
    assert await supervisor.get() == '{"v":1,"type":"alerts","alerts":[]}'
