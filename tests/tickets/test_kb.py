"""The knowledge base on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm): who may write, versions,
search in Chinese and English (1–2 character terms too), suggestions for a pop, "solved before"
and citing an article; and the search-term rules as a table."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.core.clock import FakeClock
from ctid.db.schema import Incident, IncidentHistory
from ctid.tickets.errors import InvalidInputError, NotAllowedError, VersionConflictError
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.kb import Author, KnowledgeBase, may_write_articles, parse_tags
from ctid.tickets.terms import free_text_terms, search_terms

SUP = Author("S001", "supervisor")
EXPERT = Author("E003", "agent", expert=True)


@pytest.fixture
def kb(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> KnowledgeBase:
    return KnowledgeBase(sessions, clock)


async def seed(kb: KnowledgeBase) -> dict[str, int]:
    arts = {
        "jam": dict(
            title="打印机卡纸怎么处理",
            symptoms="打印时提示卡纸,指示灯闪烁橙色",
            steps="1. 关闭电源\n2. 打开后盖取出纸张\n3. 重新开机",
            category="hardware",
            request_type="fault",
            tags="打印机 printer",
            language="zh",
        ),
        "netprinter": dict(
            title="网络打印机无法打印",
            symptoms="打印任务一直排队",
            steps="检查打印机IP地址,重新添加打印机",
            category="network",
            tags=["打印机", "网络"],
            language="zh",
        ),
        "vpn": dict(
            title="VPN 无法连接",
            symptoms="VPN 客户端提示 809 错误",
            steps="检查家里路由器是否放行 UDP 500/4500",
            category="network",
            request_type="fault",
            tags="vpn",
            language="zh",
        ),
        "outlook": dict(
            title="Outlook cannot send mail",
            symptoms="Messages stay in the Outbox",
            steps="Check the mailbox quota, then restart Outlook in safe mode",
            category="software",
            tags="email outlook",
            language="en",
        ),
        "password": dict(
            title="How to reset your password",
            symptoms="Locked out after expiry",
            steps="Use the self-service portal",
            request_type="consultation",
            language="en",
        ),
    }
    ids = {}
    for key, fields in arts.items():
        ids[key] = (await kb.create(SUP, fields)).id
    return ids


def names(ids: dict[str, int], found: list[object]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[a.id] for a in found]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("role", "expert", "allowed"),
    [
        ("supervisor", False, True),
        ("agent", True, True),
        ("agent", False, False),
        ("ops", False, False),
        ("ops", True, False),
    ],
)
def test_who_may_write_articles(role: str, expert: bool, allowed: bool) -> None:
    assert may_write_articles(role, expert=expert) is allowed


async def test_an_ordinary_agent_cannot_write(kb: KnowledgeBase) -> None:
    with pytest.raises(NotAllowedError):
        await kb.create(Author("E001", "agent"), {"title": "x", "steps": "y", "language": "zh"})
    assert await kb.search("") == []


async def test_every_edit_is_a_version_and_stale_edits_are_refused(
    kb: KnowledgeBase, clock: FakeClock
) -> None:
    a = await kb.create(
        EXPERT, {"title": "打印机卡纸", "steps": "取出纸张", "language": "zh", "tags": "打印机"}
    )
    assert (a.version, a.created_by, a.tags) == (1, "E003", ("打印机",))
    clock.advance(60)
    b = await kb.edit(a.id, SUP, {"steps": "关闭电源后取出纸张"}, expected_version=1)
    assert (b.version, b.updated_by, b.created_by, b.steps) == (
        2,
        "S001",
        "E003",
        "关闭电源后取出纸张",
    )
    with pytest.raises(VersionConflictError, match="changed by S001") as caught:
        await kb.edit(a.id, EXPERT, {"title": "新标题"}, expected_version=1)
    assert caught.value.current_version == 2
    same = await kb.edit(a.id, SUP, {"steps": "关闭电源后取出纸张"})  # nothing changed
    assert same.version == 2
    history = await kb.versions(a.id)
    assert [(v.version, v.author, v.steps) for v in history] == [
        (2, "S001", "关闭电源后取出纸张"),
        (1, "E003", "取出纸张"),
    ]
    # The search index follows the edit: the old text is gone, the new one is found.
    assert [x.id for x in await kb.search("电源")] == [a.id]
    await kb.edit(a.id, SUP, {"steps": "联系桌面支持"})
    assert await kb.search("电源") == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"steps": "y", "language": "zh"}, "title is required"),
        ({"title": "x", "language": "zh"}, "steps is required"),
        ({"title": "x", "steps": "y"}, "language is required"),
        ({"title": "x", "steps": "y", "language": "fr"}, "language must be one of zh, en"),
        ({"title": "x", "steps": "y", "language": "zh", "category": "car"}, "category must be"),
        ({"title": "x", "steps": "y", "language": "zh", "owner": "me"}, "unknown article field"),
        ({"title": "x" * 201, "steps": "y", "language": "zh"}, "longer than 200"),
    ],
)
async def test_bad_articles_are_refused_with_the_field_named(
    kb: KnowledgeBase, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await kb.create(SUP, fields)


# --------------------------------------------------------------------------- search


async def test_search_finds_chinese_and_english_on_both_backends(kb: KnowledgeBase) -> None:
    ids = await seed(kb)
    # Three characters and more: the trigram index (FTS5 / pg_trgm).
    assert set(names(ids, await kb.search("打印机"))) == {"jam", "netprinter"}
    assert names(ids, await kb.search("无法打印")) == ["netprinter"]
    assert names(ids, await kb.search("outlook")) == ["outlook"]
    assert names(ids, await kb.search("OUTBOX")) == ["outlook"]  # case ignored
    assert names(ids, await kb.search("ｖｐｎ")) == ["vpn"]  # full-width letters too
    # One and two characters: the LIKE fallback.
    assert names(ids, await kb.search("卡纸")) == ["jam"]
    assert set(names(ids, await kb.search("网"))) == {"netprinter"}
    assert names(ids, await kb.search("IP")) == ["netprinter"]
    # Every word must match; short and long words mixed.
    assert names(ids, await kb.search("打印机 卡纸")) == ["jam"]
    assert names(ids, await kb.search("vpn 809")) == ["vpn"]
    assert names(ids, await kb.search("打印机 vpn")) == []
    # Filters.
    assert names(ids, await kb.search("打印", category="network")) == ["netprinter"]
    assert names(ids, await kb.search("", language="en")) == ["password", "outlook"]
    # Query syntax is text, never FTS5 syntax.
    assert await kb.search('"打印机" OR NEAR(卡纸') == []
    assert names(ids, await kb.search("4_00")) == []  # LIKE wildcards are escaped
    assert names(ids, await kb.search("500/4500")) == ["vpn"]


async def test_retired_articles_leave_the_search(kb: KnowledgeBase) -> None:
    ids = await seed(kb)
    await kb.edit(ids["vpn"], SUP, {"status": "retired"})
    assert await kb.search("vpn") == []
    assert names(ids, await kb.search("vpn", include_retired=True)) == ["vpn"]
    assert ids["vpn"] not in [a.id for a in await kb.suggest(category="network")]


async def test_pop_suggestions_fit_the_ivr_choice_category_and_text(kb: KnowledgeBase) -> None:
    ids = await seed(kb)
    # The IVR's fault choice and a hardware incident: the jam article, then the general ones.
    got = names(ids, await kb.suggest(request_type="fault", category="hardware"))
    assert got[0] == "jam"
    assert "password" not in got  # a consultation article
    assert "outlook" not in got and "netprinter" not in got  # other categories
    # Free text (Chinese without spaces) ranks by shared terms.
    got = names(ids, await kb.suggest(text_hint="我的打印机经常卡纸"))
    assert got[0] == "jam"
    assert "netprinter" in got
    got = names(ids, await kb.suggest(request_type="consultation", text_hint="password"))
    assert got == ["password"]
    assert await kb.suggest(text_hint="键盘坏了") == []


async def test_solved_before_lists_resolved_incidents_that_match(
    kb: KnowledgeBase, store: IncidentStore
) -> None:
    async def resolved(summary: str, category: str, resolution: str) -> str:
        inc = await store.create(
            actor="E100",
            summary=summary,
            category=category,
            impact="low",
            urgency="low",
            owner_seat="seat1",
        )
        await store.apply(inc.number, "resolve_first_line", "E100", resolution=resolution)
        return inc.number

    jam = await resolved("三楼打印机卡纸", "hardware", "取出卡住的纸")
    await resolved("打印机缺墨", "hardware", "更换墨盒")
    await resolved("Printer driver missing", "software", "Installed the driver")
    still_open = await store.create(
        actor="E100", summary="打印机卡纸又来了", category="hardware", owner_seat="seat1"
    )
    got = await kb.solved_before(category="hardware", text_hint="打印机卡纸")
    assert got[0].number == jam
    assert got[0].resolution == "取出卡住的纸"
    assert still_open.number not in [g.number for g in got]
    assert [g.summary for g in await kb.solved_before(category=None, text_hint="driver")] == [
        "Printer driver missing"
    ]
    assert await kb.solved_before(category="network", text_hint="打印机") == []


async def test_citing_an_article_records_it_on_the_incident(
    kb: KnowledgeBase, store: IncidentStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await seed(kb)
    inc = await store.create(actor="E100", summary="卡纸", owner_seat="seat1")
    await kb.cite(inc.number, ids["jam"], "E100")
    await kb.cite(inc.number, ids["jam"], "E100")  # twice: one entry
    async with sessions() as s:
        row = await s.scalar(select(Incident).where(Incident.number == inc.number))
        assert row is not None and row.kb_article_id == ids["jam"] and row.version == 1
        cites = (
            await s.execute(
                select(IncidentHistory.detail).where(IncidentHistory.action == "cite_article")
            )
        ).scalars()
        assert list(cites) == [{"kb_article_id": ids["jam"]}]


# --------------------------------------------------------------------------- terms (pure)


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("打印机 卡纸", ["打印机", "卡纸"]),
        ("  VPN，无法连接。 ", ["vpn", "无法连接"]),
        ("ＯＵＴＬＯＯＫ outlook", ["outlook"]),
        ('"a" OR NEAR(b', ["a", "or", "near", "b"]),
        ("", []),
        ("1 2 3 4 5 6 7 8 9 10", ["1", "2", "3", "4", "5", "6", "7", "8"]),
    ],
)
def test_search_terms(query: str, terms: list[str]) -> None:
    assert search_terms(query) == terms


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("打印机卡纸", ["打印机", "印机卡", "机卡纸", "打印", "印机", "机卡", "卡纸"]),
        ("VPN 断了", ["vpn", "断了"]),
        ("a 网", ["网"]),
        ("打印", ["打印"]),
    ],
)
def test_free_text_terms(text: str, terms: list[str]) -> None:
    assert free_text_terms(text) == terms


def test_tags_are_words_without_duplicates() -> None:
    assert parse_tags("VPN, 网络 vpn；wifi") == ("vpn", "网络", "wifi")
    assert parse_tags(["a b", "c"]) == ("a", "b", "c")
    with pytest.raises(InvalidInputError, match="at most 20"):
        parse_tags(" ".join(f"t{i}" for i in range(21)))
