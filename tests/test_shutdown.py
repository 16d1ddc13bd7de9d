"""The daemon's bounded second shutdown phase (`ctid.app.daemon.stop_tasks`): a loop that ignores
its cancellation is logged and abandoned, a loop that failed is logged and returned."""

from __future__ import annotations

import asyncio
import contextlib

from structlog.testing import capture_logs

from ctid.app.daemon import SHUTDOWN_GRACE_S, stop_tasks


async def _polite(started: asyncio.Event) -> None:
    started.set()
    await asyncio.Event().wait()  # ends when cancelled, as every loop should


async def _stubborn(started: asyncio.Event, release: asyncio.Event) -> None:
    started.set()
    while not release.is_set():
        # Swallows its cancellation (the bug the second phase guards against).
        with contextlib.suppress(asyncio.CancelledError):
            await release.wait()


async def _broken(started: asyncio.Event) -> None:
    started.set()
    raise RuntimeError("loop broke")


async def test_a_loop_that_ignores_cancellation_is_logged_and_abandoned() -> None:
    assert SHUTDOWN_GRACE_S > 0
    release = asyncio.Event()
    started = [asyncio.Event() for _ in range(3)]
    polite = asyncio.create_task(_polite(started[0]), name="ctid-bus")
    stubborn = asyncio.create_task(_stubborn(started[1], release), name="ctid-stuck")
    broken = asyncio.create_task(_broken(started[2]), name="ctid-web")
    for event in started:
        await asyncio.wait_for(event.wait(), 10)
    await asyncio.wait([broken], timeout=10)
    assert broken.done()
    try:
        with capture_logs() as logs:
            # A short grace keeps the test quick; which loops end does not depend on its length:
            # the polite loop ends on the loop turn after its cancel, the stubborn one never does.
            errors = await stop_tasks([polite, stubborn, broken], grace_s=0.01)

        assert polite.cancelled()
        assert not stubborn.done()  # left behind, and stop_tasks still returned
        abandoned = [e for e in logs if e["event"] == "ctid_task_abandoned"]
        assert abandoned == [
            {
                "event": "ctid_task_abandoned",
                "log_level": "error",
                "task": "ctid-stuck",
                "grace_s": 0.01,
            }
        ]
        failed = [e for e in logs if e["event"] == "ctid_task_failed"]
        assert [e["task"] for e in failed] == ["ctid-web"]
        assert isinstance(failed[0]["exc_info"], RuntimeError)
        assert [str(e) for e in errors] == ["loop broke"]
    finally:
        release.set()
        await asyncio.wait_for(stubborn, 10)


async def test_loops_that_end_when_cancelled_are_not_abandoned() -> None:
    started = [asyncio.Event() for _ in range(2)]
    tasks = [asyncio.create_task(_polite(ev), name=f"ctid-loop{i}") for i, ev in enumerate(started)]
    for event in started:
        await asyncio.wait_for(event.wait(), 10)
    with capture_logs() as logs:
        errors = await stop_tasks(tasks, grace_s=SHUTDOWN_GRACE_S)
    assert errors == []
    assert all(t.cancelled() for t in tasks)
    assert [e["event"] for e in logs] == []
