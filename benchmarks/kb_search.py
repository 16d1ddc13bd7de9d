"""Knowledge-base search latency over 10,000 generated articles (half Chinese, half English) on
SQLite (FTS5 trigram) and, when reachable, PostgreSQL (pg_trgm): p50/p90/p99/max of
`KnowledgeBase.search` (search box) and `KnowledgeBase.suggest` (pop suggestions), per query kind.

    python benchmarks/kb_search.py [--articles 10000] [--queries 300] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.core.clock import FakeClock
from ctid.db import create_engine, session_factory, upgrade
from ctid.db.schema import KB_FTS_TABLE, KbArticle, KbArticleVersion
from ctid.tickets.kb import KnowledgeBase
from ctid.tickets.terms import normalize

_ZH_CORE = (
    "打印机 卡纸 网络 无法 连接 密码 重置 邮箱 登录 系统 蓝屏 重启 驱动 更新 硬盘 内存 显示器 鼠标 键盘 "
    "服务器 数据库 报表 财务 审批 流程 权限 账号 锁定 无线 交换机 路由器 防火墙 病毒 杀毒 备份 恢复 "
    "会议室 投影仪 电话 耳机 摄像头 浏览器 证书 过期 超时 缓慢 卡顿 黑屏 死机 共享 文件夹 映射 盘符"
)
_EN_CORE = (
    "printer jam network cannot connect password reset mailbox login system crash reboot driver "
    "update disk memory monitor mouse keyboard server database report finance approval workflow "
    "permission account locked wireless switch router firewall virus antivirus backup restore "
    "meeting projector phone headset camera browser certificate expired timeout slow freeze "
    "black screen share folder mapping drive outlook excel vpn"
)
_ZH_CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"
_EN_SYLLABLES = "ka ri to ne su mo la pe di go ba fi lu ra ze xo ny qui tra ble ment ion er ing"


def _vocab(rng: random.Random) -> tuple[list[str], list[str]]:
    """A core of desk words plus 2,000 made-up ones per language (a realistic spread: most words
    are rare)."""
    zh = _ZH_CORE.split() + [
        "".join(rng.choice(_ZH_CHARS) for _ in range(rng.choice((2, 2, 3, 4)))) for _ in range(2000)
    ]
    syl = _EN_SYLLABLES.split()
    en = _EN_CORE.split() + [
        "".join(rng.choice(syl) for _ in range(rng.choice((2, 3, 4)))) for _ in range(2000)
    ]
    return zh, en


ZH_WORDS, EN_WORDS = _vocab(random.Random(3))
# Zipf-like weights, flattened at the head: the commonest word is in about a quarter of the
# articles of its language (a plain 1/k puts the top words in every article).
_ZH_W = [1 / (k + 50) for k in range(len(ZH_WORDS))]
_EN_W = [1 / (k + 50) for k in range(len(EN_WORDS))]
CATEGORIES = ("software", "hardware", "network", "database", "business_application", None)


def _zh_word(rng: random.Random) -> str:
    return rng.choices(ZH_WORDS, _ZH_W)[0]


def _en_word(rng: random.Random) -> str:
    return rng.choices(EN_WORDS, _EN_W)[0]


def _zh(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(ZH_WORDS, _ZH_W, k=n))


def _en(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(EN_WORDS, _EN_W, k=n))


async def load(sessions: async_sessionmaker[AsyncSession], count: int, seed: int = 7) -> None:
    """`count` articles straight into the tables (and the FTS5 table on SQLite), as the store
    would write them, in one transaction."""
    rng = random.Random(seed)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    async with sessions() as s, s.begin():
        sqlite = (await s.connection()).dialect.name == "sqlite"
        for i in range(count):
            zh = i % 2 == 0
            words = _zh if zh else _en
            title, symptoms = words(rng, 3), words(rng, 12)
            steps = "\n".join(words(rng, 8) for _ in range(4))
            tags = " ".join(normalize(words(rng, 1)) for _ in range(3))
            row = KbArticle(
                title=title,
                symptoms=symptoms,
                steps=steps,
                category=rng.choice(CATEGORIES),
                request_type=rng.choice(("fault", "consultation", None)),
                tags=tags,
                language="zh" if zh else "en",
                status="published",
                search_text=normalize(" ".join((title, symptoms, steps, tags))),
                version=1,
                created_by="S001",
                created_at=now,
                updated_by="S001",
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            s.add(
                KbArticleVersion(
                    article_id=row.id,
                    version=1,
                    title=title,
                    symptoms=symptoms,
                    steps=steps,
                    category=row.category,
                    request_type=row.request_type,
                    tags=tags,
                    language=row.language,
                    status="published",
                    author="S001",
                    created_at=now,
                )
            )
            if sqlite:
                await s.execute(
                    text(
                        f"INSERT INTO {KB_FTS_TABLE} (rowid, title, symptoms, steps, tags) "
                        "VALUES (:id, :t, :s, :p, :g)"
                    ),
                    {
                        "id": row.id,
                        "t": normalize(title),
                        "s": normalize(symptoms),
                        "p": normalize(steps),
                        "g": tags,
                    },
                )


QUERY_KINDS = {
    "zh 2 chars (scan)": lambda rng: _zh_word(rng)[:2],
    "zh 3+ chars": lambda rng: _zh(rng, 2)[:4],
    "zh two words": lambda rng: f"{_zh_word(rng)} {_zh_word(rng)}",
    "en word": _en_word,
    "en two words": lambda rng: f"{_en_word(rng)} {_en_word(rng)}",
}


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(name: str, ms: list[float]) -> str:
    return (
        f"| {name} | {statistics.median(ms):.2f} | {_pct(ms, 0.9):.2f} | {_pct(ms, 0.99):.2f} "
        f"| {max(ms):.2f} | {len(ms)} |"
    )


async def measure(url: str, label: str, articles: int, queries: int) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        t0 = time.perf_counter()
        await load(sessions, articles)
        if engine.dialect.name == "postgresql":
            # What autovacuum does soon after a bulk load: fresh statistics for the planner.
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("VACUUM ANALYZE kb_articles")
        print(f"\n{label}: loaded {articles} articles in {time.perf_counter() - t0:.1f} s")
        kb = KnowledgeBase(sessions, FakeClock(datetime(2026, 12, 5, tzinfo=UTC)))
        rng = random.Random(11)
        print("| query | p50 ms | p90 ms | p99 ms | max ms | queries |")
        print("|-------|-------:|-------:|-------:|-------:|--------:|")
        everything: list[float] = []
        for name, make in QUERY_KINDS.items():
            ms: list[float] = []
            for _ in range(queries):
                q = make(rng)
                t = time.perf_counter()
                await kb.search(q)
                ms.append((time.perf_counter() - t) * 1000)
            everything += ms
            print(_line(f"search: {name}", ms))
        print(_line("search: all kinds", everything))
        ms = []
        for _ in range(queries):
            hint = _zh(rng, 3) if rng.random() < 0.5 else _en(rng, 4)
            t = time.perf_counter()
            await kb.suggest(
                request_type="fault", category=rng.choice(CATEGORIES[:5]), text_hint=hint
            )
            ms.append((time.perf_counter() - t) * 1000)
        print(_line("suggest (pop): category + free text", ms))
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "CTID_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'kb.db'}"
        await measure(url, "SQLite (FTS5 trigram)", args.articles, args.queries)
    name = f"ctid_kb_bench_{secrets.token_hex(4)}"
    admin = create_engine(args.pg, pool_size=1)
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # the benchmark still reports SQLite without a server
        print(f"\nPostgreSQL not reachable ({type(exc).__name__}): skipped")
        await admin.dispose()
        return
    try:
        pg = admin.url.set(database=name).render_as_string(hide_password=False)
        await measure(pg, "PostgreSQL (pg_trgm)", args.articles, args.queries)
    finally:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
