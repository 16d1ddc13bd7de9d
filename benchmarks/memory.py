"""Memory: RSS after 1,000 and after 100,000 simulated calls through ctid's call pipeline
(parse → translate → bus → track → policy), fed the recorded Asterisk events of the scenarios whose calls
all end (answered, abandoned, capped, hung up in the IVR, spied on), with fresh
ids for every call. Budget (DESIGN.md §6): growth ≤ 10 MB, i.e. no per-call leak.

    python benchmarks/memory.py [--calls 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
from _stream import BANNER, COMPLETE_CALLS, _shift_ids, recorded_events
from ami_pipeline import LAB_SEATS, NullPbx

from ctid.asterisk.ami_protocol import AmiFrameParser
from ctid.asterisk.translate import translate
from ctid.bus import EventBus
from ctid.calls.service import CALL_INPUT, PBX_EFFECTS, BusItem, CallService
from ctid.config import parse_config


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main_async(calls: int) -> None:
    frames = recorded_events(COMPLETE_CALLS)
    # how many hotline calls one pass of the recordings holds (one Linkedid per call)
    per_pass = max(1, sum(1 for f in frames if f.startswith("Event: QueueCallerJoin")))
    cfg = parse_config({"seats": LAB_SEATS})
    bus: EventBus[BusItem] = EventBus()
    service = CallService(cfg, NullPbx(), bus.publish, bus.publish_next, wall_epoch=time.time)
    bus.subscribe(service.handle, *CALL_INPUT)
    bus.subscribe(service.carry_out, *PBX_EFFECTS, apart=True)
    parser = AmiFrameParser()
    parser.feed(BANNER)
    done = 0
    marks: dict[int, float] = {}
    checkpoints = sorted({1_000, calls})
    rep = 0
    while done < calls:
        text = "".join(_shift_ids(f, rep * 100_000) for f in frames)
        for frame in parser.feed(text.encode()):
            event = translate(frame, service.events_now())
            if event is not None:
                bus.publish(event)
        await bus.drain()
        # Let the loop run once, as the daemon's does all the time: asyncio drops cancelled
        # timers (the policies cancel a ring or cap timer when its leg or call ends) only then.
        await asyncio.sleep(0)
        rep += 1
        done += per_pass
        for mark in checkpoints:
            if done >= mark and mark not in marks:
                gc.collect()
                marks[mark] = rss_mb()
    live: Any = service.tracker.stats()
    print(f"calls per pass of the recordings: {per_pass}; passes: {rep}; calls: {done:,}")
    for mark, mb in sorted(marks.items()):
        print(f"RSS after {mark:>7,} calls: {mb:7.1f} MB")
    growth = marks[calls] - marks[1_000]
    print(
        f"growth 1,000 → {calls:,} calls: {growth:+.1f} MB (budget ≤ 10 MB: "
        f"{'MET' if growth <= 10 else 'MISSED'})"
    )
    print(f"tracker tables at the end: {live}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    asyncio.run(main_async(args.calls))


if __name__ == "__main__":
    main()
