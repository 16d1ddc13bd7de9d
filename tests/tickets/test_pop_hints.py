"""The pop's suggestions for one IVR choice are looked up once and reused for the next rings with
that choice (no queries on the loop that pushes the next pop), until an article is written."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.calls import SeatRingStarted
from ctid.core.clock import FakeClock
from ctid.core.ids import CallId, Channel, QueueName, SeatId
from ctid.screenpop.hub import PopHub, Subscription
from ctid.screenpop.screens import SeatScreens
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.kb import Author, KnowledgeBase

SUP = Author("S001", "supervisor")


def ring(n: int, digit: str) -> SeatRingStarted:
    return SeatRingStarted(
        call_id=CallId(f"c{n}"),
        seat=SeatId("seat1"),
        seat_channel=Channel(f"PJSIP/seat1-{n:08x}"),
        queue=QueueName("ordinary"),
        at=1000.0 + n,
        caller_num="13900000000",
        caller_name="Bench",
        ivr_choice=digit,
        started_at=999.0 + n,
    )


async def suggestions(screens: SeatScreens, sub: Subscription, item: SeatRingStarted) -> Any:
    screens.on_item(item)
    await asyncio.gather(*screens._tasks)
    frames = []
    while sub.pending():
        frame = await sub.get()
        assert frame is not None
        frames.append(json.loads(frame))
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "pop" and kinds.count("suggestions") == 1, kinds
    return next(f for f in frames if f["type"] == "suggestions")


async def test_suggestions_are_reused_per_ivr_choice_until_an_article_is_written(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    cfg: Config,
    directory: CallerDirectory,
    store: IncidentStore,
) -> None:
    kb = KnowledgeBase(sessions, clock)
    await kb.create(
        SUP, {"title": "VPN drops", "steps": "restart", "request_type": "fault", "language": "en"}
    )
    await kb.create(
        SUP,
        {
            "title": "How to ask for a laptop",
            "steps": "form",
            "request_type": "consultation",
            "language": "en",
        },
    )
    asked: list[str | None] = []
    suggest = kb.suggest

    async def counted(**kw: Any) -> Any:
        asked.append(kw.get("request_type"))
        return await suggest(**kw)

    kb.suggest = counted  # type: ignore[method-assign]
    hub = PopHub()
    sub = hub.subscribe("seat1")
    assert await sub.get() is not None  # the idle frame every new desktop gets first

    async def nothing(_day: Any) -> Any:
        raise AssertionError("no KPIs here")

    screens = SeatScreens(cfg, hub, clock, directory, store, dict, dict, nothing, kb=kb)
    first = await suggestions(screens, sub, ring(1, "2"))
    assert [a["title"] for a in first["articles"]] == ["VPN drops"]
    again = await suggestions(screens, sub, ring(2, "2"))
    assert again["articles"] == first["articles"] and again["call_id"] == "c2"
    other = await suggestions(screens, sub, ring(3, "1"))
    assert [a["title"] for a in other["articles"]] == ["How to ask for a laptop"]
    assert asked == ["fault", "consultation"]  # the second fault ring asked nothing

    await kb.create(
        SUP,
        {
            "title": "Wi-Fi keeps asking for a password",
            "steps": "forget it",
            "request_type": "fault",
            "language": "en",
        },
    )
    fresh = await suggestions(screens, sub, ring(4, "2"))
    assert {a["title"] for a in fresh["articles"]} == {
        "VPN drops",
        "Wi-Fi keeps asking for a password",
    }
    assert asked == ["fault", "consultation", "fault"]
