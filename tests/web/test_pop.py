"""The screen-pop model (pure): ring, answer, hang-up and cap-warning frames from plain inputs."""

from __future__ import annotations

import json

import pytest

from ctid.config import TalkCapConfig
from ctid.screenpop import pop
from ctid.screenpop.pop import (
    CallerCard,
    CallerMatch,
    ContactLine,
    IncidentLine,
    IvrChoice,
    RingInput,
)

T0 = 1_795_000_000.0


def _match(caller_id: int = 7, name: str = "王小明", contacts: int = 0) -> CallerMatch:
    return CallerMatch(
        card=CallerCard(
            caller_id=caller_id,
            name=name,
            phone="13800138000",
            employee_id="A0042",
            department="Finance",
            office="HQ 12F",
            vip=True,
        ),
        open_incidents=(
            IncidentLine(number="INC-20261120-0003", summary="Printer jams", status="dispatched"),
        ),
        recent_contacts=tuple(
            ContactLine(at=T0 - 3600 * i, channel="phone", summary=f"call {i}")
            for i in range(contacts)
        ),
    )


def _ring(
    *matches: CallerMatch, cid_name: str = "WANG XM", number: str = "13800138000"
) -> RingInput:
    return RingInput(
        call_id="1795000000.17",
        seat_id="seat1",
        number=number,
        cid_name=cid_name,
        queue="shared",
        ivr=IvrChoice(digit="2", label="fault", request_type="fault"),
        entered_at=T0 - 42,
        rang_at=T0,
        ring_deadline_at=T0 + 15,
        matches=matches,
    )


def test_ring_pop_for_a_known_caller_carries_card_incidents_and_last_five_contacts() -> None:
    frame = pop.to_frame(pop.ringing(_ring(_match(contacts=8)))).to_wire()
    assert frame["type"] == "pop" and frame["state"] == "ringing" and frame["v"] == 1
    assert frame["match"] == "one"
    assert frame["caller"]["name"] == "王小明" and frame["caller"]["vip"] is True
    assert frame["caller"]["department"] == "Finance" and frame["caller"]["office"] == "HQ 12F"
    assert [i["number"] for i in frame["open_incidents"]] == ["INC-20261120-0003"]
    assert [c["summary"] for c in frame["recent_contacts"]] == [f"call {i}" for i in range(5)]
    assert frame["ivr"] == {"digit": "2", "label": "fault", "request_type": "fault"}
    assert frame["waited_s"] == 42
    assert frame["ring_deadline_at"] == T0 + 15
    assert frame["candidates"] == [] and frame["new_caller"] is None
    assert frame["form"]["caller_id"] == 7 and frame["form"]["caller_name"] == "王小明"
    assert frame["form"]["request_type"] == "fault"
    assert frame["talk"] is None and frame["sop"] == []
    json.dumps(frame)  # JSON-ready as it is


def test_several_matches_give_a_chooser_and_no_caller() -> None:
    frame = pop.to_frame(pop.ringing(_ring(_match(1, "A"), _match(2, "B")))).to_wire()
    assert frame["match"] == "several"
    assert frame["caller"] is None
    assert [c["caller_id"] for c in frame["candidates"]] == [1, 2]
    assert frame["candidates"][0]["open_incidents"] == 1
    assert frame["form"]["caller_id"] is None and frame["form"]["caller_name"] == "WANG XM"


def test_unknown_number_prefills_a_new_caller_form() -> None:
    frame = pop.to_frame(
        pop.ringing(_ring(cid_name="Visitor", number="+86 10 5555 0101"))
    ).to_wire()
    assert frame["match"] == "none"
    assert frame["new_caller"] == {"name": "Visitor", "phone": "+86 10 5555 0101"}
    assert frame["form"]["phone"] == "+86 10 5555 0101"
    assert frame["open_incidents"] == [] and frame["recent_contacts"] == []


def test_answer_starts_the_talk_timer_with_cap_warnings_and_the_sop_script() -> None:
    ringing = pop.ringing(_ring(_match()))
    talking = pop.answered(
        ringing, at=T0 + 8, talk_cap=TalkCapConfig(), incident_number="INC-20261123-0001"
    )
    frame = pop.to_frame(talking).to_wire()
    assert frame["state"] == "talking"
    assert frame["talk"] == {
        "started_at": T0 + 8,
        "cap_at": T0 + 8 + 600,
        "warn_at": [T0 + 8 + 480, T0 + 8 + 540],
        "action": "hangup",
    }
    assert [(s["key"], s["budget_s"]) for s in frame["sop"]] == [
        ("greet", 10),
        ("confirm_caller", 60),
        ("diagnose", 180),
        ("guided_fix", 230),
        ("dispatch", 120),
    ]
    assert frame["incident"] == {"number": "INC-20261123-0001"}
    assert frame["caller"]["name"] == "王小明"  # the caller stays on screen


def test_hangup_turns_the_pop_into_the_incident_with_the_call_attached() -> None:
    talking = pop.answered(pop.ringing(_ring(_match())), at=T0 + 5, talk_cap=TalkCapConfig())
    frame = pop.to_frame(
        pop.hung_up(talking, at=T0 + 125, incident_number="INC-20261123-0002")
    ).to_wire()
    assert frame["state"] == "wrapup"
    assert frame["ended"] == {"at": T0 + 125, "talk_s": 120, "answered": True}
    assert frame["incident"] == {"number": "INC-20261123-0002"}
    assert frame["call_id"] == "1795000000.17"


def test_cap_warning_and_idle_frames() -> None:
    warn = pop.cap_warning_frame(
        seat_id="seat1", call_id="c1", at=T0 + 480, cap_at=T0 + 600, action="hangup"
    ).to_wire()
    assert warn["type"] == "cap_warning" and warn["remaining_s"] == 120
    reached = pop.cap_warning_frame(
        seat_id="seat1", call_id="c1", at=T0 + 601, cap_at=T0 + 600, action="notify"
    ).to_wire()
    assert reached["remaining_s"] == 0
    idle = pop.idle_frame(
        seat_id="seat1", reason="missed", call_id="c1", caller="Li\x07 Lei"
    ).to_wire()
    assert idle == {
        "v": 1,
        "type": "idle",
        "seat": "seat1",
        "reason": "missed",
        "call_id": "c1",
        "incident_number": "",
        "caller": "Li Lei",
    }


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),  # data, not markup
        ("Eve\u202etxt.exe", "Evetxt.exe"),  # a bidi override could spoof what the agent reads
        ("bell\x07\r\nname", "bell name"),
        ("x" * 500, "x" * 128),
    ],
)
def test_caller_text_is_kept_as_plain_data(raw: str, shown: str) -> None:
    frame = pop.to_frame(pop.ringing(_ring(cid_name=raw))).to_wire()
    assert frame["cid_name"] == shown
    assert frame["form"]["caller_name"] == shown
