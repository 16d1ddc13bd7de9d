"""AMI pipeline throughput over loopback, through ctid's real path (`AmiProtocol` → translate →
bus, flushed after each read as the daemon does → track → policy); panoramisk's own parser and a bare asyncio frame reader measured in the same
run on the same bytes, printed as ratios. Two mixes: the first recordings (Local phones, every event
class, unfiltered) and the PJSIP ones (SIP phones, the contrib manager user's filters, so mostly
events ctid handles). Budget (DESIGN.md §6): ≥ 2× panoramisk and ≥ 0.75× the bare reader.

    python benchmarks/ami_pipeline.py [--events 200000] [--runs 5] [--mix recorded|pjsip|both]
        [--profile FILE]   (cProfile of one ctid run per mix, top entries printed)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
from _stream import event_stream, start_server

from ctid.asterisk.ami_protocol import AmiProtocol, LinkStats
from ctid.asterisk.frame import Frame
from ctid.asterisk.translate import EVENT_FILTER, translate
from ctid.bus import EventBus
from ctid.calls.service import CALL_INPUT, PBX_EFFECTS, BusItem, CallService
from ctid.config import parse_config


def lab_seats(interface: str) -> list[dict[str, str]]:
    return [
        {
            "id": f"seat{i}",
            "name": f"Seat {i}",
            "tier": "ordinary" if i < 3 else "expert",
            "interface": interface.format(i),
        }
        for i in range(1, 5)
    ]


LAB_SEATS = lab_seats("Local/seat{}@phones/n")
SEATS_OF_MIX = {"recorded": LAB_SEATS, "pjsip": lab_seats("PJSIP/seat{}")}
BUDGET_PANORAMISK = 2.0
BUDGET_BARE = 0.75


class NullPbx:
    async def cut_ringing_leg(self, channel: str) -> None: ...

    async def hang_up(self, channel: str) -> None: ...

    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None: ...

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None: ...


async def run_ctid(port: int, expected: int, mix: str) -> tuple[float, float]:
    cfg = parse_config({"seats": SEATS_OF_MIX[mix]})
    bus: EventBus[BusItem] = EventBus()
    calls = CallService(cfg, NullPbx(), bus.publish, bus.publish_next, wall_epoch=time.time)
    bus.subscribe(calls.handle, *CALL_INPUT)
    bus.subscribe(calls.carry_out, *PBX_EFFECTS, apart=True)
    loop = asyncio.get_running_loop()
    read_at = 0.0
    stats = LinkStats()

    def on_read() -> None:
        # What the daemon's callbacks do: the clock once per socket read, translate per frame.
        nonlocal read_at
        read_at = calls.events_now()

    def on_frame(frame: Frame) -> None:
        event = translate(frame, read_at)
        if event is not None:
            bus.publish(event)

    start, cpu = time.perf_counter(), time.process_time()
    runner = asyncio.create_task(bus.run())
    transport, proto = await loop.create_connection(
        lambda: AmiProtocol(
            on_frame, stats, events=EVENT_FILTER, on_read=on_read, after_read=bus.flush
        ),
        "127.0.0.1",
        port,
    )
    await proto.lost
    await bus.drain()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    runner.cancel()
    transport.close()
    calls.close()
    assert stats.events_total == expected, (stats.events_total, expected)
    return expected / elapsed, expected / cpu


async def run_panoramisk(port: int, expected: int, mix: str) -> tuple[float, float]:
    from panoramisk.ami_protocol import AMIProtocol

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    count = 0

    class Factory:
        save_stream = None

        def dispatch(self, message: Any) -> None:
            nonlocal count
            count += 1

        def connection_lost(self, exc: Any) -> None:
            done.set()

    class Proto(AMIProtocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.factory = Factory()
            self.encoding = "utf-8"

    start, cpu = time.perf_counter(), time.process_time()
    transport, _ = await loop.create_connection(Proto, "127.0.0.1", port)
    await done.wait()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    transport.close()
    return count / elapsed, count / cpu


async def run_bare(port: int, expected: int, mix: str) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    await reader.readline()  # banner
    count = 0
    while True:
        try:
            block = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            break
        headers = {}
        for line in block.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(": ")
            if name:
                headers[name] = value
        count += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    writer.close()
    return count / elapsed, count / cpu


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def measure(mix: str, events: int, runs: int, profile: str | None) -> None:
    payload, n = event_stream(events, mix)
    results: dict[str, list[float]] = {"ctid": [], "panoramisk": [], "bare": []}
    cpu: dict[str, list[float]] = {"ctid": [], "panoramisk": [], "bare": []}
    for _ in range(runs):
        # Interleaved, so a burst of load from the machine's other tenants hits all three.
        for name, fn in (("ctid", run_ctid), ("panoramisk", run_panoramisk), ("bare", run_bare)):
            port, proc = start_server(payload, 1)
            wall, busy = asyncio.run(fn(port, n, mix))
            results[name].append(wall)
            cpu[name].append(busy)
            proc.join(timeout=30)
    print(f"\nmix: {mix} — {n:,} events per run ({len(payload) / 1e6:.1f} MB); runs: {runs}")
    for name, label in (
        ("ctid", "ctid AmiProtocol→translate→bus→track→policy"),
        ("panoramisk", "panoramisk 1.4 AMIProtocol parse only"),
        ("bare", "bare asyncio readuntil + dict"),
    ):
        spread = ", ".join(f"{v:,.0f}" for v in results[name])
        print(
            f"{label:45s} median {statistics.median(results[name]):>10,.0f} ev/s   ({spread}); "
            f"per CPU-second {statistics.median(cpu[name]):,.0f}"
        )
    # Each round's three readers ran back to back: the ratio of one round is the least disturbed
    # by the machine's other tenants; the median over the rounds is the figure.
    x = statistics.median(
        c / p for c, p in zip(results["ctid"], results["panoramisk"], strict=True)
    )
    y = statistics.median(c / b for c, b in zip(results["ctid"], results["bare"], strict=True))
    cx = statistics.median(cpu["ctid"]) / statistics.median(cpu["panoramisk"])
    cy = statistics.median(cpu["ctid"]) / statistics.median(cpu["bare"])
    print(f"ratio ctid/panoramisk: {x:.2f}   ctid/bare: {y:.2f}")
    print(f"(per CPU-second, reader process only: ctid/panoramisk {cx:.2f}, ctid/bare {cy:.2f})")
    print(
        f"budget ctid/panoramisk ≥ {BUDGET_PANORAMISK}: {verdict(x >= BUDGET_PANORAMISK)}; "
        f"ctid/bare ≥ {BUDGET_BARE}: {verdict(y >= BUDGET_BARE)}"
    )
    if profile:
        import cProfile
        import pstats

        port, proc = start_server(payload, 1)
        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(run_ctid(port, n, mix))
        prof.disable()
        proc.join(timeout=30)
        path = f"{profile}.{mix}"
        prof.dump_stats(path)
        print(f"profile of one ctid run ({path}), top 25 by own time:")
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mix", choices=("recorded", "pjsip", "both"), default="both")
    ap.add_argument("--profile", metavar="FILE", help="also profile one ctid run per mix")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    for mix in ("recorded", "pjsip") if args.mix == "both" else (args.mix,):
        measure(mix, args.events, args.runs, args.profile)


if __name__ == "__main__":
    main()
