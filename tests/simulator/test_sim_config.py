"""Building the simulated PBX from ctid's configuration, and the lab factory."""

from __future__ import annotations

import asyncio

import pytest

from ctid.asterisk.simulator import PbxSimulator, SimulatorConfig, lab, lab_config
from ctid.config import parse_config
from tests.simulator.support import AmiTestClient, IvrServer, get

pytestmark = pytest.mark.looptime


def ctid_config(agi_port: int = 4573) -> object:
    return parse_config(
        {
            "ami": {"username": "ctid", "secret": "s3cret"},
            "agi": {"listen_port": agi_port},
            "seats": [
                {"id": "s1", "name": "Desk 1", "tier": "ordinary", "interface": "PJSIP/agent1"},
                {"id": "s2", "name": "Desk 2", "tier": "ordinary", "interface": "PJSIP/agent2"},
                {"id": "s3", "name": "Desk 3", "tier": "expert", "interface": "PJSIP/agent3"},
                {"id": "s4", "name": "Desk 4", "tier": "expert", "interface": "PJSIP/agent4"},
            ],
            "supervisors": [
                {"employee_id": "E9", "name": "Lead", "phone": "PJSIP/lead"},
            ],
        }
    )


def test_queues_and_penalties_follow_tiers() -> None:
    cfg = SimulatorConfig.from_ctid_config(ctid_config(), agi_port=5000)  # type: ignore[arg-type]
    queues = {q.name: q for q in cfg.queues}
    assert set(queues) == {"ordinary", "expert", "shared"}
    assert [(m.interface, m.penalty) for m in queues["shared"].members] == [
        ("PJSIP/agent1", 0),
        ("PJSIP/agent2", 0),
        ("PJSIP/agent3", 1),
        ("PJSIP/agent4", 1),
    ]
    assert [m.interface for m in queues["expert"].members] == ["PJSIP/agent3", "PJSIP/agent4"]
    assert cfg.agi_url == "agi://127.0.0.1:5000/ivr"
    assert cfg.users[0].secret == "s3cret"
    assert cfg.supervisor_endpoints == ("lead",)
    assert [s.device_key for s in cfg.seats] == ["agent1", "agent2", "agent3", "agent4"]


def test_lab_config_matches_the_recordings() -> None:
    cfg = lab_config()
    assert {q.name: [m.name for m in q.members] for q in cfg.queues} == {
        "ordinary": ["Seat 1", "Seat 2"],
        "expert": ["Seat 3", "Seat 4"],
    }
    q = cfg.queues[0]
    assert (q.strategy, q.timeout_s, q.retry_s, q.ringinuse) == ("rrmemory", 15, 1, False)
    assert (cfg.users[0].username, cfg.users[0].secret) == ("ctid", "ctidlab")
    assert isinstance(lab(), PbxSimulator)


async def test_ctid_seat_ids_name_the_phones() -> None:
    async with IvrServer() as ivr:
        sim = PbxSimulator.from_ctid_config(ctid_config(), agi_port=ivr.port)  # type: ignore[arg-type]
        async with sim:
            ami = AmiTestClient()
            resp = await ami.login(sim.ami_port, "ctid", "s3cret")
            assert get(resp, "Response") == "Success"
            sim.set_phone("s2", answer_after_s=1, talk_s=1)
            await ami.action(Action="QueuePause", Interface="PJSIP/agent1", Paused="1")
            call = sim.place_call("13800138000", "Zhang San")
            await asyncio.wait_for(call.ended.wait(), 30)
            assert call.seat == "s2"
            await ami.close()
