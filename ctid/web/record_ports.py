"""What the incident page, caller profiles, knowledge base and incident reports need from the
features (`RecordPorts`, one field of `WebPorts`): narrow Protocols the tickets' and reports'
services fit, in their own view types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from ctid.core.actor import Actor
from ctid.reports.incident_tables import IncidentReportTables
from ctid.tickets.kb import ArticleVersionView, ArticleView, Author, SolvedBefore
from ctid.tickets.profiles import CallerProfile, CallLine
from ctid.tickets.timeline import AttachResult, NoteView, TimelineEntry
from ctid.tickets.views import CallerView


class KnowledgePort(Protocol):
    """The knowledge base (`ctid.tickets.kb.KnowledgeBase`). Refusals: `NotAllowedError` (not an
    expert or supervisor), `InvalidInputError`, `VersionConflictError`."""

    async def create(self, author: Author, fields: Mapping[str, object]) -> ArticleView: ...

    async def edit(
        self,
        article_id: int,
        author: Author,
        fields: Mapping[str, object],
        *,
        expected_version: int | None = None,
    ) -> ArticleView: ...

    async def get(self, article_id: int) -> ArticleView | None: ...

    async def versions(self, article_id: int) -> list[ArticleVersionView]: ...

    async def search(
        self,
        query: str,
        *,
        language: str | None = None,
        category: str | None = None,
        include_retired: bool = False,
        limit: int = 20,
    ) -> list[ArticleView]: ...

    async def solved_before(
        self,
        *,
        category: str | None,
        text_hint: str,
        exclude_number: str | None = None,
        limit: int = 5,
    ) -> list[SolvedBefore]: ...

    async def cite(self, number: str, article_id: int, actor: str) -> None: ...


class TimelinePort(Protocol):
    """Notes and the merged timeline (`ctid.tickets.timeline.IncidentTimeline`)."""

    async def add_note(
        self, number: str, author: str, body: str, *, kind: str = "internal"
    ) -> NoteView: ...

    async def timeline(self, number: str) -> list[TimelineEntry]: ...

    async def contact_count(self, number: str) -> int: ...


class CallAttachPort(Protocol):
    """Attach a (ringing or talking) call to an open incident (`ctid.tickets.attach.CallAttach`)."""

    async def attach(self, call_id: str, number: str, actor: Actor) -> AttachResult: ...


class ProfilePort(Protocol):
    """Caller profiles (`ctid.tickets.profiles.CallerProfiles`)."""

    async def profile(self, caller_id: int) -> CallerProfile | None: ...

    async def open_incident_counts(self, caller_ids: Iterable[int]) -> dict[int, int]: ...

    async def calls_from_number(
        self, number: str, *, before: datetime | None = None, limit: int = 20
    ) -> list[CallLine]: ...

    async def merge(self, keep_id: int, drop_id: int, actor: str) -> CallerView: ...


class CallerEditPort(Protocol):
    """Editing a caller (`ctid.tickets.directory.CallerDirectory.update`, audited there)."""

    async def update(
        self, caller_id: int, fields: Mapping[str, object], actor: str
    ) -> CallerView: ...


class IncidentReportPort(Protocol):
    """The incident reports (`ctid.reports.incident_tables.IncidentReports`)."""

    async def tables(self, start: date, end: date) -> IncidentReportTables: ...

    async def csv(self, start: date, end: date, table: str) -> str: ...


@dataclass(frozen=True, slots=True)
class RecordPorts:
    """The incident records' services; a None field turns its pages into a 404."""

    kb: KnowledgePort | None = None
    timeline: TimelinePort | None = None
    attach: CallAttachPort | None = None
    profiles: ProfilePort | None = None
    caller_edit: CallerEditPort | None = None
    reports: IncidentReportPort | None = None
