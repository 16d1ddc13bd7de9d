"""The JSON API of the incident records: knowledge articles, attaching a call to an open incident,
work notes and cited articles on an incident, caller profiles, edits and merges, and a number's
earlier calls (the routes: `RecordApi.add_routes`, docs/web.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from ctid.tickets.errors import NotAllowedError
from ctid.tickets.kb import ARTICLE_FIELDS
from ctid.tickets.profiles import CallerProfile, CallLine
from ctid.tickets.views import CallerView, IncidentView
from ctid.web.edge import Edge, HttpError, int_field, json_response, str_field
from ctid.web.incident_forms import INCIDENT_NUMBER
from ctid.web.record_common import (
    article_json,
    author_of,
    iso,
    may_write,
    need_port,
    version_json,
)
from ctid.web.record_ports import (
    CallAttachPort,
    CallerEditPort,
    KnowledgePort,
    ProfilePort,
    RecordPorts,
    TimelinePort,
)

log = structlog.get_logger(__name__)

STAFF = ("agent", "supervisor")
CALLER_FIELDS = ("name", "employee_id", "department", "office_location", "email", "vip", "notes")


def caller_json(c: CallerView) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "employee_id": c.employee_id,
        "department": c.department,
        "office_location": c.office_location,
        "email": c.email,
        "vip": c.vip,
        "notes": c.notes,
        "phones": [p.raw for p in c.phones],
        "updated_at": iso(c.updated_at),
    }


def call_json(c: CallLine) -> dict[str, Any]:
    return {
        "call_id": c.call_id,
        "started_at": iso(c.started_at),
        "caller_number": c.caller_number,
        "ivr_choice": c.ivr_choice,
        "outcome": c.outcome,
        "answered_by_seat": c.answered_by_seat,
        "talk_s": c.talk_s,
        "incident": c.incident_number,
    }


def incident_line_json(i: IncidentView) -> dict[str, Any]:
    return {
        "number": i.number,
        "status": i.status,
        "summary": i.summary,
        "priority": i.priority,
        "category": i.category,
        "created_at": iso(i.created_at),
    }


def profile_json(p: CallerProfile) -> dict[str, Any]:
    return {
        "caller": caller_json(p.caller),
        "open_incidents": p.open_incidents,
        "incidents": [incident_line_json(i) for i in p.incidents],
        "calls": [call_json(c) for c in p.calls],
    }


def article_fields(data: Mapping[str, Any]) -> dict[str, object]:
    """The article fields present in a JSON object or form (others are ignored)."""
    out: dict[str, object] = {}
    for key in (*ARTICLE_FIELDS, "status"):
        if key in data:
            value = data[key]
            if value is not None and not isinstance(value, (str, list)):
                raise HttpError(400, f"{key} must be text")
            out[key] = value
    return out


class RecordApi:
    """Routes of the JSON API above."""

    def __init__(self, edge: Edge, records: RecordPorts) -> None:
        self._edge = edge
        self._r = records

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/kb", self._kb_search)
        r.add_post("/api/kb", self._kb_create)
        r.add_get("/api/kb/{id:\\d+}", self._kb_get)
        r.add_post("/api/kb/{id:\\d+}", self._kb_edit)
        r.add_post("/api/calls/{call_id}/attach", self._attach)
        r.add_post("/api/incidents/{number}/notes", self._note)
        r.add_post("/api/incidents/{number}/cite", self._cite)
        r.add_get("/api/callers/by-number", self._by_number)
        r.add_post("/api/callers/merge", self._merge)
        r.add_get("/api/callers/{id:\\d+}", self._profile)
        r.add_post("/api/callers/{id:\\d+}", self._edit_caller)

    # ------------------------------------------------------------------ ports

    def _kb(self) -> KnowledgePort:
        return need_port(self._r.kb, "the knowledge base")

    def _timeline(self) -> TimelinePort:
        return need_port(self._r.timeline, "the incident timeline")

    def _attacher(self) -> CallAttachPort:
        return need_port(self._r.attach, "attaching calls")

    def _profiles(self) -> ProfilePort:
        return need_port(self._r.profiles, "caller profiles")

    def _caller_edit(self) -> CallerEditPort:
        return need_port(self._r.caller_edit, "editing callers")

    async def _object(self, request: web.Request) -> dict[str, Any]:
        data = await self._edge.read_json(request)
        if not isinstance(data, dict):
            raise HttpError(400, "expected a JSON object")
        return data

    @staticmethod
    def _number(request: web.Request) -> str:
        number = request.match_info["number"]
        if not INCIDENT_NUMBER.match(number):
            raise HttpError(404, "no such incident")
        return number

    # ------------------------------------------------------------------ knowledge base

    async def _kb_search(self, request: web.Request) -> web.StreamResponse:
        self._edge.need(request)
        q = request.query
        query = q.get("q", "")[:200]
        language = q.get("language") or None
        category = q.get("category") or None
        limit = int_field({"limit": q.get("limit", "20")}, "limit", minimum=1, maximum=200)
        found = await self._kb().search(query, language=language, category=category, limit=limit)
        return json_response({"query": query, "articles": [article_json(a) for a in found]})

    async def _kb_create(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *STAFF)
        if not may_write(ctx.actor, self._edge.cfg):
            raise HttpError(403, "only experts and supervisors write knowledge articles")
        fields = article_fields(await self._object(request))
        try:
            article = await self._kb().create(author_of(ctx.actor, self._edge.cfg), fields)
        except NotAllowedError as exc:
            raise HttpError(403, str(exc)) from None
        return json_response(article_json(article), 201)

    async def _kb_get(self, request: web.Request) -> web.StreamResponse:
        self._edge.need(request)
        article_id = int(request.match_info["id"])
        article = await self._kb().get(article_id)
        if article is None:
            raise HttpError(404, f"no knowledge article {article_id}")
        versions = await self._kb().versions(article_id)
        return json_response(
            {**article_json(article), "versions": [version_json(v) for v in versions]}
        )

    async def _kb_edit(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *STAFF)
        if not may_write(ctx.actor, self._edge.cfg):
            raise HttpError(403, "only experts and supervisors write knowledge articles")
        data = await self._object(request)
        expected = int_field(data, "expected_version", minimum=1)
        try:
            article = await self._kb().edit(
                int(request.match_info["id"]),
                author_of(ctx.actor, self._edge.cfg),
                article_fields(data),
                expected_version=expected,
            )
        except NotAllowedError as exc:
            raise HttpError(403, str(exc)) from None
        return json_response(article_json(article))

    # ------------------------------------------------------------------ incidents and calls

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *STAFF)
        call_id = str_field(request.match_info, "call_id", 64, required=True)
        data = await self._object(request)
        number = str_field(data, "incident", 64, required=True)
        if not INCIDENT_NUMBER.match(number):
            raise HttpError(400, "incident must be an incident number")
        result = await self._attacher().attach(call_id, number, ctx.actor)
        log.info("call_attached_from_web", call_id=call_id, number=result.number)
        return json_response(
            {
                "call_id": call_id,
                "incident": result.number,
                "withdrawn": result.withdrawn,
                "already": result.already,
            }
        )

    async def _note(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *STAFF)
        data = await self._object(request)
        kind = data.get("kind", "internal")
        if kind not in ("internal", "caller"):
            raise HttpError(400, "kind must be internal or caller")
        body = str_field(data, "body", 4000, required=True)
        note = await self._timeline().add_note(
            self._number(request), ctx.actor.employee_id, body, kind=kind
        )
        return json_response(
            {
                "id": note.id,
                "number": note.number,
                "at": iso(note.at),
                "author": note.author,
                "kind": note.kind,
                "body": note.body,
                "mailed": note.mail_key is not None,
            },
            201,
        )

    async def _cite(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *STAFF)
        data = await self._object(request)
        article_id = int_field(data, "article_id", minimum=1)
        number = self._number(request)
        await self._kb().cite(number, article_id, ctx.actor.employee_id)
        return json_response({"number": number, "article_id": article_id})

    # ------------------------------------------------------------------ callers

    async def _profile(self, request: web.Request) -> web.StreamResponse:
        self._edge.need(request)
        caller_id = int(request.match_info["id"])
        found = await self._profiles().profile(caller_id)
        if found is None:
            raise HttpError(404, f"no caller {caller_id}")
        return json_response(profile_json(found))

    async def _edit_caller(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *STAFF)
        data = await self._object(request)
        fields = {k: data[k] for k in (*CALLER_FIELDS, "phones") if k in data}
        if not fields:
            raise HttpError(400, "nothing to change")
        view = await self._caller_edit().update(
            int(request.match_info["id"]), fields, ctx.actor.employee_id
        )
        return json_response(caller_json(view))

    async def _merge(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "supervisor")
        data = await self._object(request)
        keep = int_field(data, "keep", minimum=1)
        drop = int_field(data, "drop", minimum=1)
        view = await self._profiles().merge(keep, drop, ctx.actor.employee_id)
        return json_response(caller_json(view))

    async def _by_number(self, request: web.Request) -> web.StreamResponse:
        self._edge.need(request)
        number = str_field(request.query, "number", 64, required=True)
        calls = await self._profiles().calls_from_number(number)
        return json_response({"number": number, "calls": [call_json(c) for c in calls]})
