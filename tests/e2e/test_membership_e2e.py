"""ctid owns queue membership, end to end on the PBX simulator: queues without static members
(contrib's queues.conf) get the roster's active seats on login — penalty, member name, state
interface — and lose a seat the roster deactivates; with a static member the PBX refuses the
removal (`Member not dynamic`), which is an error log line and a refusal ops can see."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ctid.asterisk.simulator import QueueSpec
from ctid.i18n import translator
from ctid.rotation.admin import RosterAdmin
from ctid.web.roster_pages import _refused_changes
from tests.e2e.harness import running_desk

pytestmark = pytest.mark.looptime(noop_cycles=20_000)

NO_STATIC_MEMBERS = {
    "queues": (QueueSpec("ordinary"), QueueSpec("expert"), QueueSpec("shared")),
}


def _members(desk: object, queue: str) -> dict[str, tuple[str, int, str, bool]]:
    engine = desk.sim.engine  # type: ignore[attr-defined]
    return {
        m.interface: (m.name, m.penalty, m.state_interface, m.dynamic)
        for m in engine.pbx.queues[queue].members
    }


async def test_login_adds_the_active_seats_and_deactivation_removes_one(tmp_path: Path) -> None:
    overflow = {"allow_overflow": True}  # seat2 leaves: lunch group B has no ordinary seat then
    async with running_desk(tmp_path, sim_overrides=NO_STATIC_MEMBERS, lunch=overflow) as desk:
        await desk.wait_for(desk.daemon.rota_applied.is_set)
        assert _members(desk, "ordinary") == {
            "PJSIP/seat1": ("Seat 1", 0, "PJSIP/seat1", True),
            "PJSIP/seat2": ("Seat 2", 0, "PJSIP/seat2", True),
        }
        assert _members(desk, "shared") == {
            "PJSIP/seat1": ("Seat 1", 0, "PJSIP/seat1", True),
            "PJSIP/seat2": ("Seat 2", 0, "PJSIP/seat2", True),
            "PJSIP/seat3": ("Seat 3", 1, "PJSIP/seat3", True),
            "PJSIP/seat4": ("Seat 4", 1, "PJSIP/seat4", True),
        }
        await desk.daemon.roster.set_active("seat2", False, "E0001")
        await desk.daemon.rota.roster_changed()
        await desk.wait_for(lambda: "PJSIP/seat2" not in _members(desk, "shared"))
        assert set(_members(desk, "ordinary")) == {"PJSIP/seat1"}
        assert desk.daemon.rota.refused() == ()
        # a call still reaches the remaining seat
        desk.sim.set_phone("seat1", answer_after_s=1, talk_s=1)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1")
        await desk.wait_for(call.ended.is_set)
        assert (call.seat, call.outcome) == ("seat1", "answered")


async def test_a_static_member_refuses_deactivation_loudly(tmp_path: Path) -> None:
    with capture_logs() as logs:
        # the simulator built from config has static members, like the old contrib queues.conf
        async with running_desk(tmp_path, lunch={"allow_overflow": True}) as desk:
            await desk.wait_for(desk.daemon.rota_applied.is_set)
            await desk.daemon.roster.set_active("seat2", False, "E0001")
            await desk.daemon.rota.roster_changed()
            refused = desk.daemon.rota.refused()
            assert [(r.seat_id, r.kind, r.queue, r.message) for r in refused] == [
                ("seat2", "remove", "ordinary", "Member not dynamic"),
                ("seat2", "remove", "shared", "Member not dynamic"),
            ]
            assert "PJSIP/seat2" in _members(desk, "ordinary")
            # ...and ops see them on the roster page, in their language, with Asterisk's words.
            admin = RosterAdmin(desk.daemon.roster, desk.daemon.rota, desk.daemon.clock)
            view = await admin.view(1)
            assert view.refused == refused
            names = {s.seat_id: s.name for s in view.seats}
            en = str(_refused_changes(view, translator("en"), names))
            assert 'id="pbx-refused"' in en and en.count("<li>") == 2
            assert "remove from queue ordinary refused by the PBX: Member not dynamic" in en
            zh = str(_refused_changes(view, translator("zh_CN"), names))
            assert "移出队列 ordinary 被交换机拒绝：Member not dynamic" in zh
    ami = [e for e in logs if e["event"] == "ami_action_refused"]
    assert {(e["log_level"], e["action"], e["message"]) for e in ami} == {
        ("error", "QueueRemove", "Member not dynamic")
    }
    assert len(ami) == 2
    rota = [e for e in logs if e["event"] == "rota_change_refused"]
    assert [(e["log_level"], e["seat"], e["queue"]) for e in rota] == [
        ("error", "seat2", "ordinary"),
        ("error", "seat2", "shared"),
    ]
