"""The push hub (no sockets): per-seat delivery, snapshots, slow-subscriber drop, wrap-up end."""

from __future__ import annotations

import asyncio
import json

from ctid.core.frames import AlertFrame, PopFrame
from ctid.screenpop.hub import FANOUT_SLICE, PopHub
from ctid.screenpop.pop import cap_warning_frame, idle_frame
from tests.frames import pop_frame, seat_state, wallboard


def _pop(seat: str, call_id: str, state: str = "ringing") -> PopFrame:
    return pop_frame(seat, call_id, state=state)


async def _next(sub: object) -> dict[str, object]:
    data = await asyncio.wait_for(sub.get(), 2)  # type: ignore[attr-defined]
    assert data is not None
    value: dict[str, object] = json.loads(data)
    return value


async def test_publish_reaches_only_the_seats_own_subscribers() -> None:
    hub = PopHub()
    a1, a2, b = hub.subscribe("seat1"), hub.subscribe("seat1"), hub.subscribe("seat2")
    for sub in (a1, a2, b):
        assert (await _next(sub))["reason"] == "none"  # the state on connect: no call
    assert hub.publish("seat1", _pop("seat1", "c1")) == 2
    assert (await _next(a1))["call_id"] == "c1"
    assert (await _next(a2))["call_id"] == "c1"
    assert b.pending() == 0
    assert hub.publish("seat2", _pop("seat2", "c2")) == 1
    assert (await _next(b))["call_id"] == "c2"
    assert a1.pending() == a2.pending() == 0


async def test_the_frame_is_serialised_once_per_publish() -> None:
    hub = PopHub()
    subs = [hub.subscribe("seat1") for _ in range(3)]
    for sub in subs:
        await sub.get()
    hub.publish("seat1", _pop("seat1", "c1"))
    texts = [await sub.get() for sub in subs]
    assert texts[0] is texts[1] is texts[2]  # the same str object, not three dumps


async def test_a_new_subscriber_gets_the_current_pop_first() -> None:
    hub = PopHub()
    hub.publish("seat1", _pop("seat1", "c1"))
    hub.publish("seat1", _pop("seat1", "c1", "talking"))
    late = hub.subscribe("seat1")
    first = await _next(late)
    assert (first["call_id"], first["state"]) == ("c1", "talking")
    assert hub.snapshot("seat1") == _pop("seat1", "c1", "talking")
    hub.publish("seat1", idle_frame(seat_id="seat1", reason="missed", call_id="c1"))
    assert hub.snapshot("seat1") is None
    assert (await _next(hub.subscribe("seat1")))["reason"] == "none"


async def test_a_transient_frame_does_not_replace_the_snapshot() -> None:
    hub = PopHub()
    hub.publish("seat1", _pop("seat1", "c1", "talking"))
    hub.publish(
        "seat1",
        cap_warning_frame(seat_id="seat1", call_id="c1", at=1.0, cap_at=61.0, action="hangup"),
    )
    assert (await _next(hub.subscribe("seat1")))["type"] == "pop"


async def test_a_slow_subscriber_is_dropped_and_the_others_keep_going() -> None:
    hub = PopHub(queue_frames=3)
    slow, fast = hub.subscribe("seat1"), hub.subscribe("seat1")
    for i in range(5):
        hub.publish("seat1", _pop("seat1", f"c{i}"))
        while fast.pending():
            await fast.get()
    assert slow.dropped
    assert await slow.get() is None  # its queue is freed at once
    assert hub.dropped == 1
    assert hub.subscribers("seat1") == 1
    hub.publish("seat1", _pop("seat1", "c9"))
    assert (await _next(fast))["call_id"] == "c9"


async def test_a_sink_takes_frames_once_the_queue_is_empty_and_order_is_kept() -> None:
    hub = PopHub()
    sub = hub.subscribe("seat1")  # its first frame (the seat's state) is queued
    written: list[str] = []
    accept = [True]

    def sink(data: str) -> bool:
        if accept[0]:
            written.append(json.loads(data)["call_id"])
        return accept[0]

    sub.deliver_to(sink)
    hub.publish("seat1", _pop("seat1", "c1"))
    assert written == [] and sub.pending() == 2  # behind the queued frame, not around it
    assert (await _next(sub))["reason"] == "none"
    sub.written()
    assert (await _next(sub))["call_id"] == "c1"
    sub.written()  # the sender wrote c1: the sink may take the next frame
    assert hub.publish("seat1", _pop("seat1", "c2")) == 1
    assert written == ["c2"] and sub.pending() == 0
    accept[0] = False  # the socket has unsent bytes: queue, and keep queueing behind it
    hub.publish("seat1", _pop("seat1", "c3"))
    accept[0] = True
    hub.publish("seat1", _pop("seat1", "c4"))
    assert written == ["c2"]
    assert (await _next(sub))["call_id"] == "c3"
    sub.written()
    assert (await _next(sub))["call_id"] == "c4"
    # c4 is handed to the sender, not written yet (its write may wait): c5 queues behind it,
    # or a frame published right after a pop (its suggestions) could arrive first
    hub.publish("seat1", _pop("seat1", "c5"))
    assert written == ["c2"] and sub.pending() == 1
    sub.written()
    assert (await _next(sub))["call_id"] == "c5"
    sub.written()
    hub.publish("seat1", _pop("seat1", "c6"))
    assert written == ["c2", "c6"]


async def test_get_waits_for_the_next_frame() -> None:
    hub = PopHub()
    sub = hub.subscribe("seat1")
    await sub.get()
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    hub.publish("seat1", _pop("seat1", "c1"))
    assert json.loads(await asyncio.wait_for(waiter, 2) or "null")["call_id"] == "c1"


async def test_close_ends_the_subscription() -> None:
    hub = PopHub()
    sub = hub.subscribe("seat1")
    await sub.get()
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    hub.close()
    assert await asyncio.wait_for(waiter, 2) is None
    assert hub.subscribers("seat1") == 0
    assert not sub.dropped


async def test_finish_wrapup_clears_only_the_matching_wrapup_pop() -> None:
    hub = PopHub()
    hub.publish("seat1", _pop("seat1", "c1", "talking"))
    assert not hub.finish_wrapup("seat1", "c1", "INC-1")  # still talking
    hub.publish("seat1", _pop("seat1", "c1", "wrapup"))
    assert not hub.finish_wrapup("seat1", "other", "INC-1")
    sub = hub.subscribe("seat1")
    await sub.get()
    assert hub.finish_wrapup("seat1", "c1", "INC-1")
    frame = await _next(sub)
    assert (frame["type"], frame["reason"], frame["incident_number"]) == ("idle", "saved", "INC-1")
    assert hub.snapshot("seat1") is None


async def test_supervisor_channel_is_separate_and_keeps_the_wallboard() -> None:
    hub = PopHub()
    seat = hub.subscribe("seat1")
    await seat.get()
    hub.publish_supervisor(wallboard(offered=2, within_rings_pct=96.0))
    sup = hub.subscribe_supervisor()
    assert (await _next(sup))["kpis"] == {"offered": 2, "within_rings_pct": 96.0}
    assert await _next(sup) == {"v": 1, "type": "alerts", "alerts": []}
    assert seat.pending() == 0
    hub.publish("seat1", _pop("seat1", "c1"))
    assert sup.pending() == 0


def _alert(n: int) -> AlertFrame:
    return AlertFrame(kind="ring_miss", message=f"miss {n}", seat=None, call_id=None, at=n)


def _alert_wire(n: int) -> dict[str, object]:
    return {
        "v": 1,
        "type": "alert",
        "kind": "ring_miss",
        "message": f"miss {n}",
        "seat": None,
        "call_id": None,
        "at": n,
    }


async def test_the_last_alerts_are_kept_for_a_new_wallboard() -> None:
    hub = PopHub(alerts_kept=3)
    live = hub.subscribe_supervisor()
    assert await _next(live) == {"v": 1, "type": "alerts", "alerts": []}
    for n in range(5):
        hub.publish_supervisor(_alert(n))
    assert [(await _next(live))["message"] for _ in range(5)] == [f"miss {n}" for n in range(5)]
    hub.publish_supervisor(wallboard(offered=0))  # not an alert: not kept with them
    reloaded = hub.subscribe_supervisor()
    assert (await _next(reloaded))["type"] == "wallboard"
    kept = await _next(reloaded)
    assert kept["type"] == "alerts"
    assert kept["alerts"] == [_alert_wire(2), _alert_wire(3), _alert_wire(4)]  # oldest first
    assert hub.alerts() == (_alert(2), _alert(3), _alert(4))
    assert reloaded.pending() == 0


def _drained(sub: object) -> list[dict[str, object]]:
    """The frames queued for `sub`, taken without waiting."""
    out = []
    while sub.pending():  # type: ignore[attr-defined]
        item = sub._items.popleft()  # type: ignore[attr-defined]
        out.append(json.loads(item))
    return out


async def test_only_a_ringing_pop_is_written_within_publish_the_rest_follow_in_slices() -> None:
    hub = PopHub(queue_frames=64)
    many = [hub.subscribe("seat1") for _ in range(FANOUT_SLICE * 2 + 3)]
    other = hub.subscribe("seat2")
    for sub in (*many, other):
        _drained(sub)
    assert hub.publish("seat1", seat_state("seat1", "ready")) == len(many)
    assert all(sub.pending() == 0 for sub in many)  # queued in the hub, not written yet
    await asyncio.sleep(0)  # one loop turn: one slice of desktops
    assert sum(sub.pending() for sub in many) == FANOUT_SLICE
    # a ringing pop elsewhere does not wait for the rest of that fan-out
    assert hub.publish("seat2", _pop("seat2", "c2")) == 1
    assert [f["call_id"] for f in _drained(other)] == ["c2"]
    assert sum(sub.pending() for sub in many) == FANOUT_SLICE
    for _ in range(3):
        await asyncio.sleep(0)
    assert all(sub.pending() == 1 for sub in many)


async def test_a_ringing_pop_first_finishes_what_its_own_seat_has_queued() -> None:
    hub = PopHub()
    subs = [hub.subscribe("seat1") for _ in range(FANOUT_SLICE + 2)]
    for sub in subs:
        _drained(sub)
    hub.publish("seat1", _pop("seat1", "c0", "wrapup"))
    hub.publish("seat1", seat_state("seat1", "wrapup", "c0"))
    hub.publish("seat1", _pop("seat1", "c1"))  # within publish: the queued two, then the pop
    for sub in subs:
        got = [(f["type"], f.get("state"), f.get("call_id")) for f in _drained(sub)]
        assert got == [
            ("pop", "wrapup", "c0"),
            ("seat_state", "wrapup", "c0"),
            ("pop", "ringing", "c1"),
        ]


async def test_a_newer_seat_state_replaces_one_not_yet_sent() -> None:
    hub = PopHub()
    desk, sup = hub.subscribe("seat1"), hub.subscribe_supervisor()
    _drained(desk), _drained(sup)
    hub.publish("seat1", seat_state("seat1", "ringing", "c1"))
    hub.publish_supervisor(seat_state("seat1", "ringing", "c1"))
    hub.publish_supervisor(seat_state("seat2", "paused"))
    hub.publish("seat1", seat_state("seat1", "talking", "c1"))
    hub.publish_supervisor(seat_state("seat1", "talking", "c1"))
    await asyncio.sleep(0)
    assert [f["state"] for f in _drained(desk)] == ["talking"]
    # per seat: seat2's frame stays, seat1's newer state takes the place of the older one
    assert [(f["seat"], f["state"]) for f in _drained(sup)] == [
        ("seat2", "paused"),
        ("seat1", "talking"),
    ]


async def test_a_queued_frame_goes_to_the_desktops_subscribed_when_it_was_published() -> None:
    seen: list[tuple[str, str, int]] = []
    hub = PopHub(on_publish=lambda seat, frame, n: seen.append((seat, frame.TYPE, n)))
    early, leaving = hub.subscribe("seat1"), hub.subscribe("seat1")
    _drained(early), _drained(leaving)
    hub.publish("seat1", seat_state("seat1", "paused"))
    late = hub.subscribe("seat1")  # after the publish: its snapshot only
    leaving.close()  # gone before the frame went out: skipped
    await asyncio.sleep(0)
    assert [f["type"] for f in _drained(early)] == ["seat_state"]
    assert [f["reason"] for f in _drained(late)] == ["none"]
    assert leaving.pending() == 0
    assert seen == [("seat1", "seat_state", 1)]  # told once it went out, with the count
