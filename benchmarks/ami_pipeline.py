"""AMI pipeline throughput: the recorded Asterisk event mix, unfiltered, over loopback, through
ctid's parse → translate → bus → track → policy; panoramisk's own parser and a bare asyncio frame
reader measured in the same run, printed as ratios. Budget (DESIGN.md §6): ≥ 40,000 events/s.

    python benchmarks/ami_pipeline.py [--events 200000] [--runs 3]
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

from ctid.asterisk.ami_protocol import AmiFrameParser
from ctid.asterisk.translate import translate
from ctid.bus import EventBus
from ctid.calls.service import CALL_INPUT, BusItem, CallService
from ctid.config import parse_config

LAB_SEATS = [
    {
        "id": f"seat{i}",
        "name": f"Seat {i}",
        "tier": "ordinary" if i < 3 else "expert",
        "interface": f"Local/seat{i}@phones/n",
    }
    for i in range(1, 5)
]


class NullPbx:
    async def cut_ringing_leg(self, channel: str) -> None: ...

    async def hang_up(self, channel: str) -> None: ...

    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None: ...

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None: ...


async def run_ctid(port: int, expected: int) -> float:
    cfg = parse_config({"seats": LAB_SEATS})
    bus: EventBus[BusItem] = EventBus()
    calls = CallService(cfg, NullPbx(), bus.publish, bus.publish_next, wall_epoch=time.time)
    bus.subscribe(calls.handle, *CALL_INPUT)
    parser = AmiFrameParser()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    frames = 0

    class Proto(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            nonlocal frames
            now = calls.events_now()
            for frame in parser.feed(data):
                frames += 1
                event = translate(frame, now)
                if event is not None:
                    bus.publish(event)

        def connection_lost(self, exc: Exception | None) -> None:
            done.set()

    start = time.perf_counter()
    runner = asyncio.create_task(bus.run())
    transport, _ = await loop.create_connection(Proto, "127.0.0.1", port)
    await done.wait()
    await bus.drain()
    elapsed = time.perf_counter() - start
    runner.cancel()
    transport.close()
    calls.close()
    assert frames == expected, (frames, expected)
    return expected / elapsed


async def run_panoramisk(port: int, expected: int) -> float:
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

    start = time.perf_counter()
    transport, _ = await loop.create_connection(Proto, "127.0.0.1", port)
    await done.wait()
    elapsed = time.perf_counter() - start
    transport.close()
    return count / elapsed


async def run_bare(port: int, expected: int) -> float:
    start = time.perf_counter()
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
    elapsed = time.perf_counter() - start
    writer.close()
    return count / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    payload, n = event_stream(args.events)
    results: dict[str, list[float]] = {"ctid": [], "panoramisk": [], "bare": []}
    for _ in range(args.runs):
        for name, fn in (("ctid", run_ctid), ("panoramisk", run_panoramisk), ("bare", run_bare)):
            port, proc = start_server(payload, 1)
            results[name].append(asyncio.run(fn(port, n)))
            proc.join(timeout=30)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        f"events per run: {n:,} ({len(payload) / 1e6:.1f} MB, recorded mix, unfiltered); runs: {args.runs}"
    )
    for name, label in (
        ("ctid", "ctid parse→translate→bus→track→policy"),
        ("panoramisk", "panoramisk 1.4 AMIProtocol parse only"),
        ("bare", "bare asyncio readuntil + dict"),
    ):
        spread = ", ".join(f"{v:,.0f}" for v in results[name])
        print(f"{label:42s} median {med[name]:>10,.0f} ev/s   ({spread})")
    print(
        f"ratio ctid/panoramisk: {med['ctid'] / med['panoramisk']:.2f}   "
        f"ctid/bare: {med['ctid'] / med['bare']:.2f}"
    )
    print(f"budget 40,000 ev/s: {'MET' if med['ctid'] >= 40_000 else 'MISSED'}")


if __name__ == "__main__":
    main()
