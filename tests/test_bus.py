"""The event bus: wire order, `publish_next` ahead of the queue, typed subscriptions, a failing
handler costing only its own item, and the item's call id in the log context while it is handled."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from structlog.testing import capture_logs

from ctid.bus import EventBus


@dataclass(frozen=True)
class Ev:
    n: int
    call_id: str | None = None


@dataclass(frozen=True)
class Other:
    n: int
    linkedid: str | None = None


Item = Ev | Other


async def test_items_reach_handlers_in_order_with_notices_right_after_their_cause() -> None:
    bus: EventBus[Item] = EventBus()
    seen: list[str] = []

    async def tracker(item: Ev) -> None:
        seen.append(f"ev{item.n}")
        if item.n == 1:
            bus.publish_next(Other(10))
            bus.publish_next(Other(11))

    def follower(item: Item) -> None:
        seen.append(f"all{item.n}")

    bus.subscribe(tracker, Ev)
    bus.subscribe(follower)
    for n in (1, 2):
        bus.publish(Ev(n))
    await bus.drain()
    assert seen == ["ev1", "all1", "all10", "all11", "ev2", "all2"]
    assert bus.dispatched == 4 and bus.published == 4 and bus.backlog == 0


async def test_a_failing_handler_is_logged_and_the_rest_carry_on() -> None:
    bus: EventBus[Item] = EventBus()
    seen: list[int] = []

    def broken(item: Ev) -> None:
        if item.n == 1:
            raise RuntimeError("boom")

    bus.subscribe(broken, Ev)
    bus.subscribe(lambda item: seen.append(item.n), Ev)
    bus.publish(Ev(1))
    bus.publish(Ev(2))
    with capture_logs() as logs:
        await bus.drain()
    assert seen == [1, 2]
    failed = [e for e in logs if e["event"] == "bus_handler_failed"]
    assert len(failed) == 1 and "Ev(n=1" in failed[0]["item"]


async def test_call_id_is_bound_while_its_item_is_handled_and_only_then() -> None:
    bus: EventBus[Item] = EventBus()
    contexts: list[object] = []

    def record(item: Item) -> None:
        contexts.append(structlog.contextvars.get_contextvars().get("call_id"))

    bus.subscribe(record)
    for item in (Ev(1, "c1"), Ev(2, "c1"), Other(3), Other(4, "l2"), Ev(5, "c3"), Ev(6)):
        bus.publish(item)
    await bus.drain()
    assert contexts == ["c1", "c1", None, "l2", "c3", None]
    assert "call_id" not in structlog.contextvars.get_contextvars()


async def test_run_dispatches_what_is_published_while_it_waits() -> None:
    bus: EventBus[Item] = EventBus()
    got: asyncio.Queue[int] = asyncio.Queue()
    bus.subscribe(lambda item: got.put_nowait(item.n))
    runner = asyncio.create_task(bus.run())
    try:
        bus.publish(Ev(1))
        assert await asyncio.wait_for(got.get(), 5) == 1
        bus.publish(Ev(2))
        assert await asyncio.wait_for(got.get(), 5) == 2
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_handler_apart_waits_in_its_own_lane_and_never_holds_the_bus() -> None:
    """The intake's case: its handler waits (for the journal's fsync); the next items reach the
    other handlers meanwhile, and the waiting handler still gets its items in order, one at a
    time, with each item's call id in its log context."""
    bus: EventBus[Item] = EventBus()
    gate = asyncio.Event()
    slow_seen: list[tuple[int, object]] = []
    fast_seen: list[int] = []
    in_hand = 0

    async def slow(item: Ev) -> None:
        nonlocal in_hand
        in_hand += 1
        assert in_hand == 1, "a lane hands over one item at a time"
        if item.n == 1:
            await gate.wait()
        slow_seen.append((item.n, structlog.contextvars.get_contextvars().get("call_id")))
        in_hand -= 1

    bus.subscribe(slow, Ev, apart=True)
    bus.subscribe(lambda item: fast_seen.append(item.n), Ev)
    runner = asyncio.create_task(bus.run())
    try:
        for n in (1, 2, 3):
            bus.publish(Ev(n, f"c{n}" if n != 2 else None))
        for _ in range(50):  # the bus dispatches all three while the lane waits on item 1
            if fast_seen == [1, 2, 3] and in_hand:
                break
            await asyncio.sleep(0)
        assert fast_seen == [1, 2, 3] and in_hand == 1
        assert slow_seen == [] and bus.backlog == 2  # 2 and 3 queued in the lane
        gate.set()
        await bus.drain()
        assert slow_seen == [(1, "c1"), (2, None), (3, "c3")]
        assert bus.backlog == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_drain_waits_for_the_lanes_and_what_they_publish_in_turn() -> None:
    bus: EventBus[Item] = EventBus()
    seen: list[str] = []

    async def apart(item: Ev) -> None:
        await asyncio.sleep(0)  # a wait: the lane's task yields mid-item
        seen.append(f"lane{item.n}")
        bus.publish(Other(item.n * 10))  # as the intake tells IncidentOpened

    bus.subscribe(apart, Ev, apart=True)
    bus.subscribe(lambda item: seen.append(f"other{item.n}"), Other)
    bus.publish(Ev(1))
    bus.publish(Ev(2))
    await bus.drain()
    assert seen == ["lane1", "lane2", "other10", "other20"]
    assert bus.backlog == 0


async def test_a_failing_handler_apart_costs_only_its_item() -> None:
    bus: EventBus[Item] = EventBus()
    seen: list[int] = []

    async def broken(item: Ev) -> None:
        if item.n == 1:
            raise RuntimeError("boom")
        seen.append(item.n)

    bus.subscribe(broken, Ev, apart=True)
    bus.publish(Ev(1))
    bus.publish(Ev(2))
    with capture_logs() as logs:
        await bus.drain()
    assert seen == [2]
    failed = [e for e in logs if e["event"] == "bus_handler_failed"]
    assert len(failed) == 1 and "Ev(n=1" in failed[0]["item"]


async def test_on_stop_the_bus_hands_over_what_was_read_before_the_lanes_stop() -> None:
    """`kill -TERM` mid-burst: the items already read still reach a lane's handler (the intake
    journals every call record it was told of), within the stop bound."""
    bus: EventBus[Item] = EventBus()
    got: list[int] = []

    async def apart(item: Ev) -> None:
        await asyncio.sleep(0)  # a wait: the lane's task yields mid-item
        got.append(item.n)

    bus.subscribe(apart, Ev, apart=True)
    runner = asyncio.create_task(bus.run())
    await asyncio.sleep(0)
    for n in range(20):
        bus.publish(Ev(n))
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert got == list(range(20))
    assert bus.backlog == 0


async def test_flush_dispatches_in_the_callers_callback_and_the_task_goes_on_after_a_wait() -> None:
    """The AMI reader flushes after each read: the items are handled before `flush` returns, up
    to a handler that must wait; the bus's task awaits that and goes on in order, and a flush
    meanwhile leaves the newer items to it."""
    bus: EventBus[Item] = EventBus()
    gate = asyncio.Event()
    seen: list[str] = []

    def first(item: Ev) -> asyncio.Future[None] | None:
        seen.append(f"first{item.n}")
        if item.n == 2:
            return asyncio.ensure_future(gate.wait())  # type: ignore[arg-type]
        return None

    bus.subscribe(first, Ev)
    bus.subscribe(lambda item: seen.append(f"second{item.n}"), Ev)
    runner = asyncio.create_task(bus.run())
    try:
        bus.publish(Ev(1))
        bus.flush()
        assert seen == ["first1", "second1"]  # before any other callback ran
        bus.publish(Ev(2))
        bus.publish(Ev(3))
        bus.flush()
        assert seen == ["first1", "second1", "first2"]  # 2 waits; 3 waits behind it
        bus.publish(Ev(4))
        bus.flush()  # a wait is in hand: the task goes on, not this flush
        assert seen == ["first1", "second1", "first2"]
        gate.set()
        await bus.drain()
        assert seen == [
            "first1",
            "second1",
            "first2",
            "second2",
            "first3",
            "second3",
            "first4",
            "second4",
        ]
        assert bus.dispatched == 4 and bus.backlog == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_handler_calling_flush_or_publishing_mid_item_keeps_wire_order() -> None:
    bus: EventBus[Item] = EventBus()
    seen: list[str] = []

    def tracker(item: Ev) -> None:
        seen.append(f"ev{item.n}")
        if item.n == 1:
            bus.publish(Ev(3))
            bus.publish_next(Other(10))
            bus.flush()  # re-entered: must not dispatch anything out of order

    bus.subscribe(tracker, Ev)
    bus.subscribe(lambda item: seen.append(f"other{item.n}"), Other)
    bus.publish(Ev(1))
    bus.publish(Ev(2))
    bus.flush()
    assert seen == ["ev1", "other10", "ev2", "ev3"]
