"""Test helpers: read the recorded Asterisk transcripts into frames and typed events, the desk's
four lab seats, and stream-preserving shuffles of an event sequence."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ctid.asterisk.frame import Frame
from ctid.asterisk.translate import translate
from ctid.calls.seats import SeatRef
from ctid.core.events import (
    BaseEvent,
    ChannelEvent,
    ChannelSnapshot,
    Event,
    MemberEvent,
    QueueEntrySnapshot,
    RingingLegCut,
    SpyEvent,
    TalkCapApplied,
)
from ctid.core.ids import Channel, QueueName, SeatId, UniqueId
from tests.paths import TRANSCRIPTS

LAB_SEATS = (
    SeatRef(SeatId("seat1"), "Local/seat1@phones/n", "ordinary"),
    SeatRef(SeatId("seat2"), "Local/seat2@phones/n", "ordinary"),
    SeatRef(SeatId("seat3"), "Local/seat3@phones/n", "expert"),
    SeatRef(SeatId("seat4"), "Local/seat4@phones/n", "expert"),
)
"""The lab PBX's members (transcripts README): queues ordinary (1, 2) and expert (3, 4)."""


def split_frame(raw: str) -> Frame:
    """A simple AMI frame splitter (the real parser lives in ctid.asterisk)."""
    pairs: list[tuple[str, str]] = []
    for line in raw.split("\r\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        pairs.append((name, value[1:] if value.startswith(" ") else value))
    return Frame(pairs)


@dataclass(frozen=True)
class Line:
    t: float
    dir: str
    frame: Frame


def lines(name: str) -> Iterator[Line]:
    """The whole AMI frames of a transcript (`in` and `out`), banner and EOF left out."""
    with (TRANSCRIPTS / f"{name}.jsonl").open(encoding="utf-8") as fh:
        for text in fh:
            rec = json.loads(text)
            raw = rec["raw"]
            if rec["dir"] in ("in", "out") and raw.endswith("\r\n\r\n"):
                yield Line(rec["t"], rec["dir"], split_frame(raw))


def events(name: str) -> list[Event]:
    """The typed events of a transcript's `in` frames, in wire order."""
    out: list[Event] = []
    for line in lines(name):
        if line.dir == "in":
            ev = translate(line.frame, line.t)
            if ev is not None:
                out.append(ev)
    return out


def with_ctid_facts(name: str, last_at: list[float]) -> Iterator[Event]:
    """The events of a transcript plus the facts ctid would add for its own `out` actions
    (`Hangup` of a ringing leg → RingingLegCut, `AbsoluteTimeout` → TalkCapApplied), stamped with
    the latest event time seen so far (what `CallTracker.last_at` gives the services)."""
    for line in lines(name):
        if line.dir == "in":
            ev = translate(line.frame, line.t)
            if ev is not None:
                if ev.at > last_at[0]:
                    last_at[0] = ev.at
                yield ev
            continue
        action = line.frame.get("Action")
        if action == "Hangup":
            yield RingingLegCut(at=last_at[0], channel=Channel(line.frame["Channel"]))
        elif action == "AbsoluteTimeout":
            yield TalkCapApplied(
                at=last_at[0],
                channel=Channel(line.frame["Channel"]),
                timeout_s=float(line.frame["Timeout"]),
            )


def stream_of(ev: BaseEvent) -> str:
    """Which ordered stream an event belongs to: Asterisk orders the events of one channel (and
    of one queue member) but nothing across them."""
    if isinstance(ev, ChannelEvent):
        return "chan:" + (ev.uniqueid or getattr(ev, "dest_uniqueid", ""))
    if isinstance(ev, MemberEvent):
        return "member:" + ev.interface
    if isinstance(ev, SpyEvent):
        return "chan:" + ev.spyer_uniqueid
    return "other"


def interleave(evs: Sequence[Event], seed: int) -> list[Event]:
    """A random order of `evs` that keeps each stream's own order (each step picks a random
    stream with events left, so streams drift far apart)."""
    streams: dict[str, list[Event]] = {}
    for ev in evs:
        streams.setdefault(stream_of(ev), []).append(ev)
    rng = random.Random(seed)
    queues = [list(reversed(s)) for s in streams.values()]
    out: list[Event] = []
    while queues:
        i = rng.randrange(len(queues))
        out.append(queues[i].pop())
        if not queues[i]:
            queues.pop(i)
    return out


@dataclass(frozen=True)
class RingingAfterRestart:
    """What a resync finds after a restart: Li Si waiting in `shared` 12 s, seat2 ringing 4 s."""

    caller: ChannelSnapshot
    leg: ChannelSnapshot
    entry: QueueEntrySnapshot


def ringing_after_restart() -> RingingAfterRestart:
    caller = ChannelSnapshot(
        at=0.0,
        channel=Channel("PJSIP/trunk-00000010"),
        uniqueid=UniqueId("900.1"),
        linkedid=UniqueId("900.1"),
        state=6,
        application="Queue",
        application_data="shared,,,,120",
        duration_s=30,
        bridge_id="",
        caller_num="13900000000",
        caller_name="Li Si",
        context="hotline",
        exten="4000",
    )
    leg = ChannelSnapshot(
        at=0.0,
        channel=Channel("Local/seat2@phones-00000011;1"),
        uniqueid=UniqueId("900.2"),
        linkedid=UniqueId("900.1"),
        state=5,
        application="AppQueue",
        application_data="(Outgoing Line)",
        duration_s=4,
        bridge_id="",
        caller_num="13900000000",
        caller_name="Li Si",
        context="phones",
        exten="4000",
    )
    entry = QueueEntrySnapshot(
        at=0.0,
        queue=QueueName("shared"),
        position=1,
        channel=caller.channel,
        uniqueid=caller.uniqueid,
        caller_num="13900000000",
        caller_name="Li Si",
        wait_s=12,
    )
    return RingingAfterRestart(caller, leg, entry)
