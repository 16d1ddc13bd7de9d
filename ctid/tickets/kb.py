"""The knowledge base: articles written by experts and supervisors, every edit a new version,
full-text search that works for Chinese (SQLite FTS5 trigram / PostgreSQL pg_trgm, LIKE for 1–2
character terms), suggestions for a ringing call, "solved before", and citing an article."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import structlog
from sqlalchemy import (
    ColumnElement,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from ctid.core.clock import Clock
from ctid.db.schema import KB_FTS_TABLE, Incident, IncidentHistory, KbArticle, KbArticleVersion
from ctid.tickets._db import write_unit
from ctid.tickets.errors import (
    InvalidInputError,
    NotAllowedError,
    TicketNotFoundError,
    VersionConflictError,
)
from ctid.tickets.terms import (
    TRIGRAM,
    free_text_terms,
    fts_phrase,
    like_pattern,
    normalize,
    search_terms,
)
from ctid.tickets.text import block_field, line_field, one_line
from ctid.tickets.vocabulary import CATEGORIES, REQUEST_TYPES

log = structlog.get_logger(__name__)

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
ArticleStatus = Literal["published", "retired"]
ARTICLE_STATUSES: tuple[ArticleStatus, ...] = get_args(ArticleStatus)
ARTICLE_FIELDS = ("title", "symptoms", "steps", "category", "request_type", "tags", "language")

MAX_TITLE = 200
MAX_BODY = 20_000
MAX_TAGS = 20
MAX_TAG = 32
RESOLVED = ("resolved", "closed")
RESOLVE_ACTIONS = ("resolve", "resolve_first_line")
_FTS = table(KB_FTS_TABLE, column("rowid"))
# bm25 weights of the FTS columns: title, symptoms, steps, tags.
_BM25 = (10.0, 4.0, 1.0, 4.0)


def may_write_articles(role: str, *, expert: bool) -> bool:
    """Who writes the knowledge base: supervisors, and agents who sit at an expert seat."""
    return role == "supervisor" or (role == "agent" and expert)


@dataclass(frozen=True, slots=True)
class Author:
    """Who is writing: employee id, web role (agent|supervisor|ops), and whether they staff an
    expert seat (the web knows from the roster)."""

    employee_id: str
    role: str
    expert: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticleView:
    id: int
    title: str
    symptoms: str
    steps: str
    category: str | None
    request_type: str | None
    tags: tuple[str, ...]
    language: str
    status: str
    version: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticleVersionView:
    article_id: int
    version: int
    title: str
    symptoms: str
    steps: str
    category: str | None
    request_type: str | None
    tags: tuple[str, ...]
    language: str
    status: str
    author: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SolvedBefore:
    """A resolved incident like the one at hand, and how it was resolved."""

    number: str
    summary: str
    category: str | None
    resolved_at: datetime | None
    resolution: str | None
    kb_article_id: int | None


def _article_view(r: KbArticle) -> ArticleView:
    return ArticleView(
        id=r.id,
        title=r.title,
        symptoms=r.symptoms,
        steps=r.steps,
        category=r.category,
        request_type=r.request_type,
        tags=tuple(r.tags.split()),
        language=r.language,
        status=r.status,
        version=r.version,
        created_by=r.created_by,
        created_at=r.created_at,
        updated_by=r.updated_by,
        updated_at=r.updated_at,
    )


def _version_view(r: KbArticleVersion) -> ArticleVersionView:
    return ArticleVersionView(
        article_id=r.article_id,
        version=r.version,
        title=r.title,
        symptoms=r.symptoms,
        steps=r.steps,
        category=r.category,
        request_type=r.request_type,
        tags=tuple(r.tags.split()),
        language=r.language,
        status=r.status,
        author=r.author,
        created_at=r.created_at,
    )


def parse_tags(value: object) -> tuple[str, ...]:
    """Tags from `"vpn, 网络 wifi"` or a list: normalised, one word each, no duplicates."""
    items = [value] if isinstance(value, str) else list(value or ())  # type: ignore[call-overload]
    tags: dict[str, None] = {}
    for item in items:
        for word in search_terms(str(item), max_terms=MAX_TAGS + 1):
            if len(word) > MAX_TAG:
                raise InvalidInputError(f"tag {word[:40]!r} is longer than {MAX_TAG} characters")
            tags.setdefault(word)
    if len(tags) > MAX_TAGS:
        raise InvalidInputError(f"an article has at most {MAX_TAGS} tags")
    return tuple(tags)


def _validate(fields: Mapping[str, object], partial: bool) -> dict[str, Any]:
    unknown = sorted(set(fields) - {*ARTICLE_FIELDS, "status"})
    if unknown:
        raise InvalidInputError(f"unknown article field(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "title":
            out[key] = line_field("title", value, MAX_TITLE, required=True)
        elif key in ("symptoms", "steps"):
            out[key] = block_field(key, value, MAX_BODY, required=key == "steps") or ""
        elif key in ("category", "request_type"):
            allowed = CATEGORIES if key == "category" else REQUEST_TYPES
            choice = one_line(value) or None
            if choice is not None and choice not in allowed:
                raise InvalidInputError(f"{key} must be one of {', '.join(allowed)} or empty")
            out[key] = choice
        elif key == "tags":
            out[key] = " ".join(parse_tags(value))
        elif key == "language":
            if value not in LANGUAGES:
                raise InvalidInputError(f"language must be one of {', '.join(LANGUAGES)}")
            out[key] = value
        elif key == "status":
            if value not in ARTICLE_STATUSES:
                raise InvalidInputError(f"status must be one of {', '.join(ARTICLE_STATUSES)}")
            out[key] = value
    if not partial:
        for key in ("title", "steps", "language"):
            if key not in out:
                raise InvalidInputError(f"{key} is required")
    return out


def _search_text(row: KbArticle) -> str:
    return normalize(" ".join((row.title, row.symptoms, row.steps, row.tags)))


class KnowledgeBase:
    """Articles, their versions and search. One transaction per method call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self.generation = 0
        """Counts the articles written through this instance (readers keep what they derived
        from the articles until it changes)."""

    # ----------------------------------------------------------------------- writing

    @staticmethod
    def _check(author: Author) -> str:
        if not may_write_articles(author.role, expert=author.expert):
            raise NotAllowedError("only experts and supervisors write knowledge articles")
        who = one_line(author.employee_id)[:64]
        if not who:
            raise InvalidInputError("author is required")
        return who

    async def create(self, author: Author, fields: Mapping[str, object]) -> ArticleView:
        """A new article (version 1). Fields: title, symptoms, steps, category, request_type,
        tags, language (zh|en); title, steps and language are required."""
        who = self._check(author)
        values = _validate(fields, partial=False)
        now = self._clock.utcnow()
        async with write_unit(self._sessions) as s:
            row = KbArticle(
                title=values["title"],
                symptoms=values.get("symptoms", ""),
                steps=values["steps"],
                category=values.get("category"),
                request_type=values.get("request_type"),
                tags=values.get("tags", ""),
                language=values["language"],
                status=values.get("status", "published"),
                search_text="",
                version=1,
                created_by=who,
                created_at=now,
                updated_by=who,
                updated_at=now,
            )
            row.search_text = _search_text(row)
            s.add(row)
            await s.flush()
            await self._record(s, row, who, now)
            view = _article_view(row)
        self.generation += 1
        log.info("kb_article_created", article_id=view.id, author=who)
        return view

    async def edit(
        self,
        article_id: int,
        author: Author,
        fields: Mapping[str, object],
        *,
        expected_version: int | None = None,
    ) -> ArticleView:
        """Change some fields (or `status` published|retired): a new version; the old ones stay.
        `expected_version` is the version the writer started from: if someone saved since,
        `VersionConflictError` names who, and nothing is overwritten."""
        who = self._check(author)
        values = _validate(fields, partial=True)
        now = self._clock.utcnow()
        async with write_unit(self._sessions, lock=f"kb:{article_id}") as s:
            row = await s.get(KbArticle, article_id)
            if row is None:
                raise TicketNotFoundError(f"no knowledge article {article_id}")
            if expected_version is not None and row.version != expected_version:
                raise VersionConflictError(
                    f"article {article_id} was changed by {row.updated_by} (version "
                    f"{row.version}) since you opened version {expected_version}",
                    current_version=row.version,
                )
            if all(getattr(row, k) == v for k, v in values.items()):
                return _article_view(row)
            for key, value in values.items():
                setattr(row, key, value)
            row.search_text = _search_text(row)
            row.version += 1
            row.updated_by = who
            row.updated_at = now
            await s.flush()
            await self._record(s, row, who, now)
            view = _article_view(row)
        self.generation += 1
        log.info("kb_article_edited", article_id=article_id, version=view.version, author=who)
        return view

    async def _record(self, s: AsyncSession, row: KbArticle, who: str, now: datetime) -> None:
        s.add(
            KbArticleVersion(
                article_id=row.id,
                version=row.version,
                title=row.title,
                symptoms=row.symptoms,
                steps=row.steps,
                category=row.category,
                request_type=row.request_type,
                tags=row.tags,
                language=row.language,
                status=row.status,
                author=who,
                created_at=now,
            )
        )
        conn = await s.connection()
        if conn.dialect.name == "sqlite":
            await s.execute(text(f"DELETE FROM {KB_FTS_TABLE} WHERE rowid = :id"), {"id": row.id})
            await s.execute(
                text(
                    f"INSERT INTO {KB_FTS_TABLE} (rowid, title, symptoms, steps, tags) "
                    "VALUES (:id, :title, :symptoms, :steps, :tags)"
                ),
                {
                    "id": row.id,
                    "title": normalize(row.title),
                    "symptoms": normalize(row.symptoms),
                    "steps": normalize(row.steps),
                    "tags": normalize(row.tags),
                },
            )
        await s.flush()

    # ----------------------------------------------------------------------- reading

    async def get(self, article_id: int) -> ArticleView | None:
        async with self._sessions() as s:
            row = await s.get(KbArticle, article_id)
            return _article_view(row) if row else None

    async def versions(self, article_id: int) -> list[ArticleVersionView]:
        """Every version of the article, newest first."""
        async with self._sessions() as s:
            rows = await s.execute(
                select(KbArticleVersion)
                .where(KbArticleVersion.article_id == article_id)
                .order_by(KbArticleVersion.version.desc())
            )
            return [_version_view(r) for r in rows.scalars()]

    async def search(
        self,
        query: str,
        *,
        language: str | None = None,
        category: str | None = None,
        include_retired: bool = False,
        limit: int = 20,
    ) -> list[ArticleView]:
        """Articles containing every word of `query` (substrings: 网络 finds 网络打印机; case and
        full-width letters ignored), best first: title hits, then by relevance, then newest.
        An empty query lists the newest articles."""
        terms = search_terms(query)
        filters = self._filters(language, category, include_retired)
        limit = max(1, min(limit, 200))
        async with self._sessions() as s:
            sqlite = (await s.connection()).dialect.name == "sqlite"
            long_terms = [t for t in terms if len(t) >= TRIGRAM]
            stmt = select(KbArticle).where(*filters)
            for t in terms:
                if not (sqlite and len(t) >= TRIGRAM):
                    stmt = stmt.where(_contains(t, sqlite=sqlite))
            title_hits = _title_hits(terms)
            if sqlite and long_terms:
                fts: ColumnElement[Any] = literal_column(KB_FTS_TABLE)
                stmt = stmt.join(_FTS, _FTS.c.rowid == KbArticle.id).where(
                    fts.op("MATCH")(" AND ".join(fts_phrase(t) for t in long_terms))
                )
                stmt = stmt.order_by(title_hits.desc(), func.bm25(fts, *_BM25))
            elif terms:
                # Title hits, then symptom hits: cheap LIKEs on short columns (a similarity score
                # over every match's whole text cost 10x more on PostgreSQL for common words).
                symptom_hits = _hits(func.lower(KbArticle.symptoms), terms)
                stmt = stmt.order_by(title_hits.desc(), symptom_hits.desc())
            stmt = stmt.order_by(KbArticle.updated_at.desc(), KbArticle.id.desc()).limit(limit)
            return [_article_view(r) for r in (await s.execute(stmt)).scalars()]

    @staticmethod
    def _filters(
        language: str | None, category: str | None, include_retired: bool
    ) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if not include_retired:
            out.append(KbArticle.status == "published")
        if language:
            out.append(KbArticle.language == language)
        if category:
            out.append(KbArticle.category == category)
        return out

    async def suggest(
        self,
        *,
        request_type: str | None = None,
        category: str | None = None,
        text_hint: str | None = None,
        language: str | None = None,
        limit: int = 5,
    ) -> list[ArticleView]:
        """Articles for a ringing or talking call: those that fit the IVR choice's request type
        and the incident's category (articles without one fit any), ranked by how many terms of
        `text_hint` (free text, e.g. the summary) they contain, exact category first, newest."""
        terms = free_text_terms(text_hint or "")
        stmt = select(KbArticle).where(*self._filters(language, None, False))
        if request_type:
            stmt = stmt.where(
                or_(KbArticle.request_type.is_(None), KbArticle.request_type == request_type)
            )
        if category:
            stmt = stmt.where(or_(KbArticle.category.is_(None), KbArticle.category == category))
            stmt = stmt.order_by(case((KbArticle.category == category, 0), else_=1))
        limit = max(1, min(limit, 50))
        async with self._sessions() as s:
            sqlite = (await s.connection()).dialect.name == "sqlite"
            long_terms = [t for t in terms if len(t) >= TRIGRAM]
            if sqlite and long_terms:
                # FTS5 cannot OR a MATCH with other conditions: the short terms only rank.
                fts: ColumnElement[Any] = literal_column(KB_FTS_TABLE)
                stmt = stmt.join(_FTS, _FTS.c.rowid == KbArticle.id).where(
                    fts.op("MATCH")(" OR ".join(fts_phrase(t) for t in long_terms))
                )
            elif terms:
                # Candidates contain one of the indexed (3+ character) terms when there are any;
                # the shorter ones only rank.
                wanted = long_terms or terms
                stmt = stmt.where(or_(*(_contains(t, sqlite=sqlite) for t in wanted)))
            if terms:
                stmt = stmt.order_by(_hits(KbArticle.search_text, terms).desc())
            stmt = stmt.order_by(KbArticle.updated_at.desc(), KbArticle.id.desc()).limit(limit)
            return [_article_view(r) for r in (await s.execute(stmt)).scalars()]

    async def solved_before(
        self,
        *,
        category: str | None,
        text_hint: str,
        exclude_number: str | None = None,
        limit: int = 5,
    ) -> list[SolvedBefore]:
        """Resolved incidents of `category` (any, when None) whose summary or description
        contains terms of `text_hint`, most matching terms first, then most recent; each with
        the resolution its last resolve step recorded. Merged duplicates are left out."""
        terms = free_text_terms(text_hint)
        if not terms:
            return []
        body = func.lower(Incident.summary + " " + func.coalesce(Incident.description, ""))
        stmt = select(Incident).where(
            Incident.status.in_(RESOLVED),
            Incident.merged_into_id.is_(None),
            or_(*(body.like(like_pattern(t), escape="\\") for t in terms)),
        )
        if category:
            stmt = stmt.where(Incident.category == category)
        if exclude_number:
            stmt = stmt.where(Incident.number != exclude_number)
        stmt = stmt.order_by(
            _hits(body, terms).desc(), Incident.resolved_at.desc(), Incident.id.desc()
        ).limit(max(1, min(limit, 50)))
        async with self._sessions() as s:
            rows = list((await s.execute(stmt)).scalars())
            resolutions: dict[int, str] = {}
            if rows:
                hist = await s.execute(
                    select(IncidentHistory.incident_id, IncidentHistory.detail)
                    .where(
                        IncidentHistory.incident_id.in_([r.id for r in rows]),
                        IncidentHistory.action.in_(RESOLVE_ACTIONS),
                    )
                    .order_by(IncidentHistory.id)
                )
                for inc_id, detail in hist:
                    if isinstance(detail, dict) and detail.get("resolution"):
                        resolutions[inc_id] = str(detail["resolution"])  # the last one wins
        return [
            SolvedBefore(
                number=r.number,
                summary=r.summary,
                category=r.category,
                resolved_at=r.resolved_at,
                resolution=r.resolution or resolutions.get(r.id),
                kb_article_id=r.kb_article_id,
            )
            for r in rows
        ]

    # ----------------------------------------------------------------------- citing

    async def cite(self, number: str, article_id: int, actor: str) -> None:
        """Record that the incident was resolved with this article (first-line resolution by
        article): sets `incidents.kb_article_id` and writes a `cite_article` history entry.
        Not a lifecycle step: the incident's version is left alone."""
        who = one_line(actor)[:64]
        if not who:
            raise InvalidInputError("actor is required")
        async with write_unit(self._sessions) as s:
            row = await s.scalar(select(Incident).where(Incident.number == one_line(number)))
            if row is None:
                raise TicketNotFoundError(f"no incident {one_line(number)[:40]!r}")
            if await s.get(KbArticle, article_id) is None:
                raise TicketNotFoundError(f"no knowledge article {article_id}")
            if row.kb_article_id == article_id:
                return
            await s.execute(
                update(Incident)
                .where(Incident.id == row.id)
                .values(kb_article_id=article_id)
                .execution_options(synchronize_session=False)
            )
            s.add(
                IncidentHistory(
                    incident_id=row.id,
                    at=self._clock.utcnow(),
                    actor=who,
                    action="cite_article",
                    from_status=row.status,
                    to_status=row.status,
                    detail={
                        k: v
                        for k, v in (("kb_article_id", article_id), ("was", row.kb_article_id))
                        if v is not None
                    },
                )
            )
        log.info("kb_article_cited", number=row.number, article_id=article_id, actor=who)


def _contains(term: str, *, sqlite: bool) -> ColumnElement[bool]:
    """`search_text` contains `term` (both normalised, so a plain substring test is exact).
    3+ characters: LIKE, which PostgreSQL answers from the trigram index. Shorter: instr/strpos,
    a plain scan — LIKE '%卡纸%' has no trigram to look up, and PostgreSQL would then read the
    whole GIN index (measured 8x slower than scanning the table)."""
    if len(term) >= TRIGRAM:
        return KbArticle.search_text.like(like_pattern(term), escape="\\")
    position = func.instr if sqlite else func.strpos
    return position(KbArticle.search_text, term) > 0


def _hits(
    col: ColumnElement[str] | InstrumentedAttribute[str], terms: Sequence[str]
) -> ColumnElement[int]:
    """How many of `terms` the column contains (a rank for any-of matches)."""
    total: ColumnElement[int] = literal(0)
    for t in terms:
        total = total + case((col.like(like_pattern(t), escape="\\"), 1), else_=0)
    return total


def _title_hits(terms: Sequence[str]) -> ColumnElement[int]:
    """How many terms the title contains (lower() folds ASCII only: a rank, not a filter)."""
    return _hits(func.lower(KbArticle.title), terms)
