"""A process that journals audit writes as fast as it can and prints each accepted sequence
number; the journal tests kill it (SIGKILL) mid-stream. argv: JOURNAL_PATH DATABASE_URL"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from ctid.core.clock import FakeClock
from ctid.db import create_engine, session_factory
from ctid.journal import WriteJournal
from ctid.tickets.journal_ops import RETRY_ON, marker, registry
from ctid.tickets.writes import CallWriter
from tests.tickets.conftest import SECRET, desk_config


async def main(path: str, url: str) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    store = CallWriter.build(sessions, clock, desk_config(), link_secret=SECRET)
    journal = WriteJournal(
        Path(path),
        registry(store, sessions, clock),
        marker(sessions),
        retry_on=RETRY_ON,
        retry_min_s=0.05,
        retry_max_s=0.2,
    )
    runner = asyncio.create_task(journal.run())
    k = 0
    while True:
        await journal.submit("audit", {"actor": "test", "action": "journal_kill", "target": str(k)})
        print(f"accepted {k}", flush=True)
        k += 1
        if runner.done():
            runner.result()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
