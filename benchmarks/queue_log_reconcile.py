"""Benchmark: reconcile a generated Asterisk queue_log (default 1,000,000 lines) into a fresh,
migrated SQLite database, the whole file, streamed as `ctid reconcile` does it; prints the parse
rate, the reconcile rate (lines/s end to end) and the peak RSS of the process.

    python benchmarks/queue_log_reconcile.py [--lines N] [--keep DIR]

The log mixes the recorded event shapes: answered calls (ENTERQUEUE, RINGNOANSWER, CONNECT,
COMPLETECALLER/COMPLETEAGENT), abandoned ones (RINGCANCELED, ABANDON), timeouts, redirect
transfers, pauses and member changes, and a PBX restart (QUEUESTART) now and then.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ctid.config import Config, SeatConfig  # noqa: E402
from ctid.core.clock import SystemClock  # noqa: E402
from ctid.db import create_engine, session_factory, upgrade  # noqa: E402
from ctid.log import configure_logging  # noqa: E402
from ctid.tickets.queue_log import QueueLogReader  # noqa: E402
from ctid.tickets.queue_log_follow import reconcile_file  # noqa: E402
from ctid.tickets.reconcile import CallReconciler, QueueLogLedger  # noqa: E402
from ctid.tickets.writes import CallWriter  # noqa: E402

SEATS = ("Seat 1", "Seat 2", "Seat 3", "Seat 4")


def generate(path: Path, lines: int, seed: int = 7) -> int:
    """Write about `lines` lines; returns how many calls they hold."""
    rng = random.Random(seed)
    t = 1_796_400_000
    n = calls = 0
    seq = 0
    with path.open("w", encoding="utf-8") as fh:
        while n < lines:
            t += rng.randint(1, 20)
            r = rng.random()
            if r < 0.03:
                seat = rng.choice(SEATS)
                fh.write(f"{t}|NONE|NONE|{seat}|PAUSEALL|lunch\n")
                fh.write(f"{t}|NONE|ordinary|{seat}|PAUSE|lunch\n")
                fh.write(f"{t + 1}|NONE|NONE|{seat}|UNPAUSEALL|\n")
                n += 3
                continue
            if r < 0.031:
                fh.write(f"{t}|NONE|NONE|NONE|QUEUESTART|\n")
                n += 1
                continue
            calls += 1
            seq += 1
            cid = f"{t - 2}.{seq % 500}"
            caller = f"138{rng.randint(0, 99_999_999):08d}"
            fh.write(f"{t}|{cid}|ordinary|NONE|ENTERQUEUE||{caller}|1\n")
            n += 1
            wait = rng.randint(1, 20)
            if rng.random() < 0.2:
                fh.write(f"{t + 15}|{cid}|ordinary|Seat 1|RINGNOANSWER|15000\n")
                n += 1
                wait += 16
            outcome = rng.random()
            seat = rng.choice(SEATS)
            if outcome < 0.12:
                fh.write(f"{t + wait}|{cid}|ordinary|{seat}|RINGCANCELED|{wait * 1000}\n")
                fh.write(f"{t + wait}|{cid}|ordinary|NONE|ABANDON|1|1|{wait}\n")
                n += 2
            elif outcome < 0.15:
                fh.write(f"{t + 120}|{cid}|ordinary|NONE|EXITWITHTIMEOUT|1|1|120\n")
                n += 1
                t += 120
            else:
                talk = rng.randint(20, 600)
                connect = t + wait
                fh.write(f"{connect}|{cid}|ordinary|{seat}|CONNECT|{wait}|{cid}1|{wait}\n")
                n += 1
                if outcome < 0.2:
                    fh.write(f"{connect + 5}|{cid}|expert|NONE|ENTERQUEUE||{caller}|1\n")
                    fh.write(f"{connect + 8}|{cid}|expert|Seat 3|CONNECT|3|{cid}2|3\n")
                    fh.write(
                        f"{connect + talk}|{cid}|ordinary|{seat}|COMPLETECALLER|{wait}|{talk}|1\n"
                    )
                    fh.write(
                        f"{connect + talk}|{cid}|expert|Seat 3|COMPLETECALLER|3|{talk - 8}|1\n"
                    )
                    n += 4
                else:
                    who = "COMPLETECALLER" if rng.random() < 0.6 else "COMPLETEAGENT"
                    fh.write(f"{connect + talk}|{cid}|ordinary|{seat}|{who}|{wait}|{talk}|1\n")
                    n += 1
                t = connect
    return calls


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(lines: int, work: Path) -> None:
    log = work / "queue_log"
    t0 = time.perf_counter()
    calls = generate(log, lines)
    gen_s = time.perf_counter() - t0
    size_mb = log.stat().st_size / 1e6
    print(f"generated {lines:,} lines ({size_mb:.1f} MB, {calls:,} calls) in {gen_s:.1f} s")

    t0 = time.perf_counter()
    reader = QueueLogReader(str(log), None)
    assembled = sum(1 for _ in reader.calls())
    parse_s = time.perf_counter() - t0
    print(
        f"parse + assemble (streamed): {reader.lines:,} lines, {assembled:,} calls in "
        f"{parse_s:.1f} s = {reader.lines / parse_s:,.0f} lines/s; peak RSS {peak_rss_mb():.0f} MB"
    )

    url = f"sqlite+aiosqlite:///{work / 'ctid.db'}"
    await upgrade(url)
    engine = create_engine(url)
    cfg = Config(
        seats=tuple(
            SeatConfig(id=f"seat{i}", name=f"Seat {i}", tier="ordinary", interface=f"PJSIP/seat{i}")
            for i in range(1, 5)
        )
    )
    sessions = session_factory(engine)
    clock = SystemClock(cfg.site.timezone)
    store = CallWriter.build(sessions, clock, cfg, link_secret=b"x" * 32)
    reconciler = CallReconciler(store, QueueLogLedger(sessions, clock))
    t0, cpu0 = time.perf_counter(), time.process_time()
    report = await reconcile_file(cfg, reconciler, str(log))
    rec_s, rec_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    t0 = time.perf_counter()
    again = await reconcile_file(cfg, reconciler, str(log))
    again_s = time.perf_counter() - t0
    await engine.dispose()
    print(
        f"reconcile into SQLite (read + parse + write): {len(report.added):,} calls added, "
        f"{len(report.incidents):,} incidents, {len(report.callbacks):,} callbacks, "
        f"{report.failed} failed in {rec_s:.1f} s = {reader.lines / rec_s:,.0f} lines/s "
        f"({assembled / rec_s:,.0f} calls/s); peak RSS {peak_rss_mb():.0f} MB"
    )
    # On a shared machine the wall time is mostly waiting for a core: say what it cost.
    print(
        f"  CPU time of this process: {rec_cpu:.1f} s = {reader.lines / rec_cpu:,.0f} lines per "
        f"CPU-second (its worker threads included); load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"second run: {len(again.added)} added, {again.already:,} already reconciled in "
        f"{again_s:.1f} s = {reader.lines / again_s:,.0f} lines/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    args = parser.parse_args()
    configure_logging("warning", "console")
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args.lines, work))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(args.lines, Path(tmp)))


if __name__ == "__main__":
    main()
