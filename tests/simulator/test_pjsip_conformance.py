"""Conformance with the PJSIP recordings: each is replayed (phones and AMI client doing what they did
on the real Asterisk) and must give the same events and headers ctid reads (ids normalised, times
within 0.1 s), the same FastAGI traffic and the same queue_log lines."""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass, field, replace

import pytest

from ctid.asterisk.simulator import AmiUser, PbxSimulator, pjsip_lab_config
from ctid.asterisk.simulator.wire import ALL_CLASSES
from tests.paths import TRANSCRIPTS
from tests.simulator.support import (
    AmiTestClient,
    Normaliser,
    Pairs,
    ScriptedAgiServer,
    Transcript,
    compare,
    get,
    list_blocks,
)

pytestmark = pytest.mark.looptime

EVENTS = frozenset(
    {
        # what ctid's translate reads
        "Newchannel", "Newstate", "Hangup", "DialEnd", "BridgeEnter", "BridgeLeave",
        "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled",
        "AgentRingNoAnswer", "AgentConnect", "AgentComplete", "QueueMemberStatus",
        "QueueMemberPause", "QueueMemberAdded", "QueueMemberRemoved", "ChanSpyStart",
        "ChanSpyStop", "OriginateResponse", "CoreShowChannel", "QueueMember", "QueueParams",
        "QueueEntry", "QueueSummary",
        # what the recordings' README singles out
        "DialBegin", "DialState", "HangupRequest", "SoftHangupRequest", "BridgeCreate",
        "BridgeDestroy", "QueueStatusComplete", "QueueSummaryComplete",
        "CoreShowChannelsComplete",
    }
)  # fmt: skip
VARIABLES = frozenset({"AGISTATUS", "PLAYBACKSTATUS", "ABANDONED"})
HEADERS = frozenset(
    {
        "Event", "Response", "Message", "Channel", "ChannelStateDesc", "CallerIDNum",
        "CallerIDName", "Uniqueid", "Linkedid", "DestChannel", "DestUniqueid", "DialStatus",
        "Queue", "Position", "Count", "OriginalPosition", "HoldTime", "TalkTime", "RingTime",
        "Reason", "Interface", "MemberName", "Membership", "Status", "Paused", "PausedReason",
        "InCall", "Penalty", "Cause", "Cause-txt", "Variable", "Value", "SpyerChannel",
        "SpyeeChannel", "EventList", "ListItems", "Location", "Name",
    }
)  # fmt: skip
UNORDERED = ("QueueMemberStatus",)  # driven by device state: its place varies between runs
CALLER = "PJSIP/13800138000-"
SEAT = re.compile(r"^PJSIP/(seat\d+)-")


def wanted(frame: Pairs) -> bool:
    event = get(frame, "Event")
    if event is None:
        return True  # responses
    if event == "VarSet":
        name = get(frame, "Variable") or ""
        return name.startswith("CTID_") or name in VARIABLES
    return event in EVENTS


def comparable(frame: Pairs) -> Pairs:
    """QueueMemberStatus's InCall races the device state that triggers the event (the same answer
    shows InCall=1 in pjsip_answered and InCall=0 in pjsip_static_member_ops): not compared."""
    if get(frame, "Event") == "QueueMemberStatus":
        return [(k, v) for k, v in frame if k != "InCall"]
    return frame


@dataclass
class CallPlan:
    at: float
    hangup_after_s: float | None
    dtmf_at: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Scenario:
    """What the phones and the AMI client did in one recording, read from the recording itself."""

    tr: Transcript
    calls: list[CallPlan]
    answer_after: dict[str, float | None]
    agi_sessions: list[list[str]]
    restart_at: float | None = None
    reconnect_at: float | None = None

    @classmethod
    def read(cls, name: str) -> Scenario:
        tr = Transcript.load(f"pjsip/{name}")
        ins = tr.ins()
        calls: list[CallPlan] = []
        rang: dict[str, float] = {}
        answer: dict[str, float | None] = {}
        for t, f in ins:
            chan = get(f, "Channel") or ""
            event = get(f, "Event")
            if event == "Newchannel" and chan.startswith(CALLER):
                bye = next(
                    (
                        t2
                        for t2, f2 in ins
                        if get(f2, "Event") == "HangupRequest" and get(f2, "Channel") == chan
                    ),
                    None,
                )
                calls.append(CallPlan(t, None if bye is None else bye - t))
            seat = SEAT.match(chan)
            if event == "Newstate" and seat is not None:
                key = seat.group(1)
                if get(f, "ChannelStateDesc") == "Ringing":
                    rang[key] = t
                    answer.setdefault(key, None)
                elif get(f, "ChannelStateDesc") == "Up" and answer.get(key) is None:
                    answer[key] = round(t - rang[key], 3)
        sessions: list[list[str]] = []
        c = tr.connect_t
        for e in tr.entries:
            raw = str(e["raw"])
            if e["dir"] == "agi-in" and raw.startswith("agi_network:"):
                sessions.append([])
            elif e["dir"] == "agi-out":
                sessions[-1].append(raw)
            if e["dir"] == "agi-in" and re.match(r"200 result=(4[89]|5[0-7])\b", raw):
                call = calls[len(sessions) - 1]
                digit = chr(int(raw.split("=")[1].split()[0]))
                call.dtmf_at.append((float(e["t"]) - c - call.at, digit))  # type: ignore[arg-type]
        eofs = [float(e["t"]) - c for e in tr.entries if e["raw"] == "<EOF>"]  # type: ignore[arg-type]
        scenario = cls(tr, calls, answer, sessions)
        if len(eofs) > 1:
            scenario.restart_at = eofs[0]
            scenario.reconnect_at = next(
                float(e["t"]) - c  # type: ignore[arg-type]
                for e in tr.entries
                if e["dir"] == "in"
                and str(e["raw"]).startswith("Asterisk Call Manager")
                and float(e["t"]) - c > eofs[0]  # type: ignore[arg-type]
            )
        return scenario


@dataclass
class Replay:
    frames: list[tuple[float, Pairs]]
    queue_log: list[str]
    agi_received: list[str]
    agi_port: int
    banners: list[bytes]


def closed_port() -> int:
    """A local port nothing listens on (the FastAGI server that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def replay(name: str) -> tuple[Scenario, Replay]:
    sc = Scenario.read(name)
    agi = ScriptedAgiServer()
    sessions = iter(sc.agi_sessions)
    agi.script_for = lambda env: next(sessions, [])
    await agi.start()
    agi_port = closed_port() if name == "pjsip_agi_down" else agi.port
    cfg = replace(pjsip_lab_config(agi_port=agi_port), prompts=frozenset({"ctid/welcome"}))
    # pjsip_external_pause: a second manager user (read all) pauses seat2 behind ctid's back
    cfg = replace(cfg, users=(*cfg.users, AmiUser("othermgr", "other", ALL_CLASSES)))
    other = AmiTestClient()
    first = AmiTestClient()
    second = AmiTestClient()
    loop = asyncio.get_running_loop()
    try:
        async with PbxSimulator(cfg) as sim:
            if name == "pjsip_pbx_restart":
                # it continued on the PBX pjsip_missing_prompt left: two channels made, rrmemory
                # had rung seat1 last
                sim.engine.pbx.pjsip_seq = sim.engine.pbx.uniq_seq = 2
                sim.set_rr_position("ordinary", 1)
            for seat, after in sc.answer_after.items():
                sim.set_phone(seat, answer_after_s=after, sends_audio=name == "pjsip_spy_rtp")
            if name == "pjsip_external_pause":
                await other.login(sim.ami_port, "othermgr", "other")
                steps_other = [(1.003, "true", "break"), (4.007, "false", "")]
            else:
                steps_other = []
            await first.connect(sim.ami_port)
            t_first, epoch_first = sc.tr.first_epoch()
            sim.set_epoch(epoch_first - t_first + first.now())
            log_from = len(sim.queue_log)
            steps: list[tuple[float, int, object]] = []
            steps += [(t, 0, raw) for t, raw in sc.tr.outs()]
            steps += [(call.at, 1, call) for call in sc.calls]
            steps += [(t, 4, (paused, reason)) for t, paused, reason in steps_other]
            if sc.restart_at is not None and sc.reconnect_at is not None:
                steps.append((sc.restart_at, 2, None))
                steps.append((sc.reconnect_at, 3, None))
            client = first
            restart: asyncio.Task[None] | None = None
            for t, kind, what in sorted(steps, key=lambda s: (s[0], s[1])):
                delay = t - first.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                if kind == 0:
                    assert isinstance(what, str)
                    client.send_raw(what.encode())
                elif kind == 1:
                    assert isinstance(what, CallPlan)
                    sim.place_call(
                        "13800138000",
                        "Zhang San",
                        None,
                        hangup_after_s=what.hangup_after_s,
                        dtmf_at=what.dtmf_at,
                        sends_audio=False,
                    )
                elif kind == 4:
                    assert isinstance(what, tuple)
                    pause = {"Paused": what[0], **({"Reason": what[1]} if what[1] else {})}
                    other.send(Action="QueuePause", Interface="PJSIP/seat2", **pause)
                elif kind == 2:
                    down = (sc.reconnect_at or 0.0) - t - 0.5
                    restart = loop.create_task(sim.restart(down_s=down))
                else:
                    assert restart is not None
                    await restart
                    await second.connect(sim.ami_port)
                    client = second
            await asyncio.wait_for(client.eof.wait(), 10)
            log = sim.queue_log[log_from:]
    finally:
        await first.close()
        await second.close()
        await other.close()
        await agi.stop()
    offset = second.t0 - first.t0
    frames = list(first.frames) + [(t + offset, f) for t, f in second.frames]
    for _, f in frames:
        for i, (k, v) in enumerate(f):
            if f"127.0.0.1:{agi.port}" in v:
                f[i] = (k, v.replace(f"127.0.0.1:{agi.port}", "127.0.0.1:4573"))
    banners = [first.banner] + ([second.banner] if second.banner else [])
    return sc, Replay(frames, log, agi.received, agi.port, banners)


_AGI_IDS = [
    (re.compile(r"\d{9,11}\.\d+"), "UID"),
    (re.compile(r"agi_threadid: \d+"), "agi_threadid: N"),
]


def _norm_agi(line: str) -> str:
    for rx, rep in _AGI_IDS:
        line = rx.sub(rep, line)
    return line


def queue_log_problems(recorded: list[str], simulated: list[str]) -> list[str]:
    """Same lines, ids by order of first appearance, epochs within a second of the recording's,
    RINGCANCELED milliseconds within 150 ms."""
    rec_ids, sim_ids = Normaliser(), Normaliser()
    problems: list[str] = []
    if len(recorded) != len(simulated):
        problems.append(f"{len(recorded)} lines recorded, {len(simulated)} simulated")
    for rec, sim in zip(recorded, simulated, strict=False):
        r, s = rec.split("|"), sim.split("|")
        if abs(int(r[0]) - int(s[0])) > 1:
            problems.append(f"time: {rec!r} vs {sim!r}")
        rn = [rec_ids.value(v) for v in r[1:]]
        sn = [sim_ids.value(v) for v in s[1:]]
        if r[4] == "RINGCANCELED" and s[4] == "RINGCANCELED":
            if abs(int(r[5]) - int(s[5])) > 150:
                problems.append(f"ms: {rec!r} vs {sim!r}")
            rn, sn = rn[:4], sn[:4]
        if rn != sn:
            problems.append(f"line: {rec!r} vs {sim!r}")
    return problems


NAMES = [
    "pjsip_answered",
    "pjsip_ring_cut_client_first",
    "pjsip_ring_timeout_queue_first",
    "pjsip_static_member_ops",
    "pjsip_spy_silent",
    "pjsip_spy_rtp",
    "pjsip_transfer_redirect",
    "pjsip_abandon_in_queue",
    "pjsip_agi_down",
    "pjsip_missing_prompt",
    "pjsip_pbx_restart",
    "pjsip_external_pause",
]


def test_every_pjsip_recording_has_a_conformance_case() -> None:
    recorded = sorted(p.stem for p in (TRANSCRIPTS / "pjsip").glob("*.jsonl"))
    assert recorded == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
async def test_pjsip_recording_conformance(name: str) -> None:
    sc, got = await replay(name)
    assert set(got.banners) == {b"Asterisk Call Manager/11.0.0\r\n"}
    rec = [(t, comparable(f)) for t, f in list_blocks(sc.tr.ins()) if wanted(f)]
    sim = [(t, comparable(f)) for t, f in list_blocks(got.frames) if wanted(f)]
    result = compare(
        rec, sim, time_tol=0.1, race_window=0.005, headers=HEADERS, unordered=UNORDERED
    )
    assert result.ok, f"{name}: {len(result.problems)} problems\n" + "\n".join(result.problems[:40])
    # and nothing the contrib user never receives (its classes and `!Event:` filters)
    rec_names = {get(f, "Event") for _, f in sc.tr.ins()}
    assert {get(f, "Event") for _, f in got.frames} - rec_names == set()
    received = [x.replace(f"127.0.0.1:{got.agi_port}", "127.0.0.1:4573") for x in got.agi_received]
    assert [_norm_agi(x) for x in received] == [_norm_agi(x) for x in sc.tr.agi_in()]
    recorded_log = (TRANSCRIPTS / "pjsip" / f"{name}.queue_log").read_text().splitlines()
    problems = queue_log_problems(recorded_log, got.queue_log)
    assert not problems, "\n".join(problems)
