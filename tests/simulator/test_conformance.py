"""Conformance: each recorded Asterisk 22 scenario replayed against the simulator must produce the
same AMI frames (compared headers, ids normalised) at the same loop times, and the same FastAGI
traffic."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import pytest

from ctid.asterisk.simulator import PbxSimulator, lab_config
from tests.simulator.support import (
    AmiTestClient,
    Normaliser,
    ScriptedAgiServer,
    Transcript,
    compare,
    list_blocks,
)


@dataclass(frozen=True)
class CarryOver:
    """State the lab PBX carried over from the scenario recorded before it (the transcripts'
    Uptime gives their order): where rrmemory stood (Asterisk's `rrpos`, as store_next_rr left
    it), and the cachable device states Asterisk had already published."""

    rr: dict[str, int] = field(default_factory=dict)
    dev: dict[str, str] = field(default_factory=dict)


AVAIL = {"Queue:ordinary_avail": "NOT_INUSE"}
BOTH_AVAIL = {**AVAIL, "Queue:expert_avail": "NOT_INUSE"}
CARRY_OVER: dict[str, CarryOver] = {
    "answered": CarryOver(rr={"ordinary": 0}),  # first call after boot
    "ring_no_answer": CarryOver(rr={"ordinary": 1}, dev=AVAIL),  # answered rang seat1
    "abandon": CarryOver(rr={"ordinary": 0}, dev=AVAIL),  # its 3rd round rang seat2
    "enforced_hangup": CarryOver(rr={"ordinary": 1}, dev=AVAIL),
    "chanspy": CarryOver(rr={"expert": 0}, dev=AVAIL),  # first expert call
    "call_cap": CarryOver(rr={"ordinary": 0}, dev=BOTH_AVAIL),
    "resync": CarryOver(rr={"ordinary": 1}, dev=BOTH_AVAIL),
    "queue_ops": CarryOver(
        dev={**BOTH_AVAIL, "Queue:expert_pause_Local/seat1@phones/n": "NOT_INUSE"}
    ),  # resync had added (and removed) seat1 in expert
    "hangup_in_ivr": CarryOver(),
    "bad_login": CarryOver(),
}

_NORM_AGI = [
    (re.compile(r"-[0-9a-f]{8};"), "-X;"),
    (re.compile(r"\d{9,11}\.\d+"), "UID"),
    (re.compile(r"agi_threadid: \d+"), "agi_threadid: N"),
]


def _norm_agi(line: str) -> str:
    for rx, rep in _NORM_AGI:
        line = rx.sub(rep, line)
    return line


async def replay(name: str) -> tuple[Transcript, AmiTestClient, ScriptedAgiServer]:
    tr = Transcript.load(name)
    agi = ScriptedAgiServer(tr.agi_out())
    await agi.start()
    # the AGI goes to our scripted server; frames are compared with the lab's URL put back
    cfg = lab_config(agi_port=agi.port)
    carry = CARRY_OVER[name]
    client = AmiTestClient()
    try:
        async with PbxSimulator(cfg) as sim:
            for queue, pos in carry.rr.items():
                sim.set_rr_position(queue, pos)
            for device, state in carry.dev.items():
                sim.prime_device_state(device, state)
            for family, key in tr.existing_db_keys():
                sim.engine.pbx.db[(family, key)] = "1"
            await client.connect(sim.ami_port)
            if name != "bad_login":
                t_first, epoch_first = tr.first_epoch()
                sim.set_epoch(epoch_first - t_first + client.now())
            rec_ids = Normaliser()
            for _, f in tr.ins():
                for _, v in f:
                    rec_ids.value(v)
            for t, raw in tr.outs():
                delay = t - client.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                client.send_raw(_to_sim_names(raw, rec_ids, client).encode())
            await asyncio.wait_for(client.eof.wait(), 10)
    finally:
        await client.close()
        await agi.stop()
    return tr, client, agi


def _to_sim_names(raw: str, rec_ids: Normaliser, client: AmiTestClient) -> str:
    """An action the lab client sent names a recorded channel; name the simulated one instead
    (same order of first appearance)."""
    sim_ids = Normaliser()
    for _, f in client.frames:
        for _, v in f:
            sim_ids.value(v)
    by_index = {idx: seq for seq, idx in sim_ids.seqs.items()}

    def sub(m: re.Match[str]) -> str:
        idx = rec_ids.seqs.get(m.group(1))
        return "-" + by_index.get(idx, m.group(1)) if idx is not None else m.group(0)

    return re.sub(r"-([0-9a-f]{8})(?=;)", sub, raw)


def _with_agi_url(frames: list[tuple[float, list[tuple[str, str]]]], port: int) -> None:
    for _, f in frames:
        for i, (k, v) in enumerate(f):
            if f"127.0.0.1:{port}" in v:
                f[i] = (k, v.replace(f"127.0.0.1:{port}", "127.0.0.1:4573"))


@pytest.mark.looptime
@pytest.mark.parametrize(
    "name",
    [
        "answered",
        "ring_no_answer",
        "abandon",
        "enforced_hangup",
        "chanspy",
        "call_cap",
        "resync",
        "queue_ops",
        "hangup_in_ivr",
        "bad_login",
    ],
)
async def test_transcript_conformance(name: str) -> None:
    tr, client, agi = await replay(name)
    assert client.banner == b"Asterisk Call Manager/11.0.0\r\n"
    sim_frames = list(client.frames)
    _with_agi_url(sim_frames, agi.port)
    result = compare(
        list_blocks(tr.ins()), list_blocks(sim_frames), time_tol=0.1, race_window=0.005
    )
    assert result.ok, f"{name}: {len(result.problems)} problems\n" + "\n".join(result.problems[:40])
    # the connection closes when the recording's did (after Logoff / a failed login)
    rec_eof = [float(e["t"]) - tr.connect_t for e in tr.entries if e["raw"] == "<EOF>"]  # type: ignore[arg-type]
    assert client.eof_at is not None and abs(client.eof_at - rec_eof[0]) < 0.1
    # FastAGI: the same environment block and replies, ids normalised
    got = [
        _norm_agi(line.replace(f"127.0.0.1:{agi.port}", "127.0.0.1:4573")) for line in agi.received
    ]
    assert got == [_norm_agi(line) for line in tr.agi_in()]
