"""The agent desktop and the caller search page, `/api/me`, the caller search,
saving the screen-pop's incident form, and listen-in (start, stop, switch mode)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from ctid.calls.spy_control import ListenInStarted
from ctid.calls.spy_types import SPY_MODES, SpyMode
from ctid.i18n import N_, Translator
from ctid.tickets.forms import IncidentDraft
from ctid.tickets.vocabulary import (
    CATEGORIES,
    LEVELS,
    REQUEST_TYPES,
)
from ctid.web import pages
from ctid.web.desk_page import desk_page
from ctid.web.edge import (
    Edge,
    HttpError,
    choice,
    html_response,
    json_response,
    seat_for,
    str_field,
)
from ctid.web.lang import request_locale, request_translator
from ctid.web.middleware import translator_of
from ctid.web.ports import (
    CallerPort,
    DraftPort,
    IncidentPort,
    PushSource,
    SeatDirectory,
    SpyPort,
)

log = structlog.get_logger(__name__)

_INCIDENT_NUMBER = re.compile(r"^[A-Za-z0-9\-]{1,64}$")
_SPY_SESSION = re.compile(r"^[A-Za-z0-9_.:@;/\-]{1,128}$")


_FIELD_PROBLEMS = {
    "caller_name": N_("Enter the caller's name."),
    "summary": N_("Write a one-line summary of the problem."),
    "request_type": N_("Choose the request type."),
    "category": N_("Choose a category."),
    "impact": N_("Choose the impact."),
    "urgency": N_("Choose the urgency."),
}
_LIMITS = {
    "caller_name": 128,
    "phone": 64,
    "department": 128,
    "office": 128,
    "summary": 200,
    "description": 4000,
}


def incident_problems(data: object, t: Translator) -> dict[str, str]:
    """Every problem of the desk's incident form at once, field → words for the person."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, str] = {}
    allowed = {
        "request_type": REQUEST_TYPES,
        "category": CATEGORIES,
        "impact": LEVELS,
        "urgency": LEVELS,
    }
    for name, words in _FIELD_PROBLEMS.items():
        value = data.get(name)
        if name in allowed:
            if value not in allowed[name]:
                out[name] = t.gettext(words)
        elif not isinstance(value, str) or not value.strip():
            out[name] = t.gettext(words)
    for name, limit in _LIMITS.items():
        value = data.get(name)
        if isinstance(value, str) and len(value.strip()) > limit:
            out[name] = t.gettext("At most {n} characters.", n=limit)
    return out


def parse_incident(data: object) -> IncidentDraft:
    """The incident form's JSON, checked for shape (a 400 names the first bad field)."""
    if not isinstance(data, dict):
        raise HttpError(400, "expected a JSON object")
    caller_id = data.get("caller_id")
    if caller_id in ("", None):
        caller_id = None
    elif isinstance(caller_id, str) and caller_id.isdigit():
        caller_id = int(caller_id)
    elif not isinstance(caller_id, int) or isinstance(caller_id, bool):
        raise HttpError(400, "caller_id must be a number or null")
    number = str_field(data, "number", 64) or None
    if number is not None and not _INCIDENT_NUMBER.match(number):
        raise HttpError(400, "number is not an incident number")
    return IncidentDraft(
        number=number,
        call_id=str_field(data, "call_id", 64) or None,
        caller_id=caller_id,
        caller_name=str_field(data, "caller_name", 128, required=True),
        phone=str_field(data, "phone", 64),
        department=str_field(data, "department", 128),
        office=str_field(data, "office", 128),
        request_type=choice(data, "request_type", REQUEST_TYPES),
        category=choice(data, "category", CATEGORIES),
        impact=choice(data, "impact", LEVELS),
        urgency=choice(data, "urgency", LEVELS),
        summary=str_field(data, "summary", 200, required=True),
        description=str_field(data, "description", 4000),
    )


class ConsolePages:
    """The desktop's and the wallboard's routes. A `spy` left None makes listen-in a 404."""

    def __init__(
        self,
        edge: Edge,
        seats: SeatDirectory,
        hub: PushSource,
        incidents: IncidentPort,
        callers: CallerPort,
        spy: SpyPort | None,
        drafts: DraftPort | None = None,
    ) -> None:
        self._edge = edge
        self._seats = seats
        self._hub = hub
        self._incidents = incidents
        self._callers = callers
        self._spy = spy
        self._drafts = drafts

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/desk", self._desk)
        r.add_get("/callers", self._callers_page)
        r.add_get("/api/me", self._me)
        r.add_get("/api/callers", self._callers_api)
        r.add_post("/api/incidents", self._save_incident)
        r.add_post("/api/spy", self._spy_start)
        r.add_post("/api/spy/{session}/stop", self._spy_stop)
        r.add_post("/api/spy/{session}/mode", self._spy_mode)

    # ------------------------------------------------------------------ pages

    async def _desk(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        seat = seat_for(self._seats, ctx, request.query.get("seat"))
        if seat is not None:
            return html_response(
                desk_page(
                    t=request_translator(request, self._edge.cfg),
                    cfg=self._edge.cfg,
                    site=self._edge.site(),
                    actor=ctx.actor,
                    csrf=ctx.session.csrf_token,
                    seat_id=seat,
                    seat_ids=self._seats.seat_ids(),
                    locale=request_locale(request, self._edge.cfg),
                )
            )
        return html_response(
            pages.desk_page(
                site=self._edge.site(),
                actor=ctx.actor,
                csrf=ctx.session.csrf_token,
                seat_ids=self._seats.seat_ids(),
                t=request_translator(request, self._edge.cfg),
            )
        )

    @staticmethod
    def _query(request: web.Request) -> str:
        q = request.query.get("q", "").strip()
        if len(q) > 64:
            raise HttpError(400, "q is longer than 64 characters")
        return q

    async def _callers_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        q = self._query(request)
        rows = await self._callers.search(q, 50) if q else None
        return html_response(
            pages.callers_page(
                site=self._edge.site(),
                actor=ctx.actor,
                csrf=ctx.session.csrf_token,
                query=q,
                rows=rows,
                t=translator_of(request),
            )
        )

    # ------------------------------------------------------------------ JSON API

    async def _me(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        a = ctx.actor
        return json_response(
            {
                "employee_id": a.employee_id,
                "name": a.name,
                "role": a.role,
                "seat": a.seat_id,
                "expires_at": ctx.session.expires_at.timestamp(),
            }
        )

    async def _callers_api(self, request: web.Request) -> web.StreamResponse:
        self._edge.need(request)
        q = self._query(request)
        if not q:
            raise HttpError(400, "q is required")
        rows = await self._callers.search(q, 20)
        return json_response(
            {
                "callers": [
                    {
                        "caller_id": r.caller_id,
                        "name": r.name,
                        "phones": list(r.phones),
                        "employee_id": r.employee_id,
                        "department": r.department,
                        "office": r.office,
                        "vip": r.vip,
                        "open_incidents": r.open_incidents,
                    }
                    for r in rows
                ]
            }
        )

    async def _save_incident(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "agent", "supervisor")
        data = await self._edge.read_json(request)
        t = request_translator(request, self._edge.cfg)
        problems = incident_problems(data, t)
        if problems:
            return json_response(
                {"error": t.gettext("Some fields need attention."), "fields": problems}, 400
            )
        draft = parse_incident(data)
        saved = await self._incidents.save(draft, ctx.actor)
        if draft.call_id and self._drafts is not None:
            await self._drafts.saved(draft.call_id, saved.number)
        log.info(
            "incident_saved_from_desk",
            number=saved.number,
            employee_id=ctx.actor.employee_id,
            call_id=draft.call_id,
        )
        if draft.call_id and ctx.actor.seat_id:
            self._hub.finish_wrapup(ctx.actor.seat_id, draft.call_id, saved.number)
        return json_response({"number": saved.number, "status": saved.status}, 201)

    # ------------------------------------------------------------------ listen-in

    def _spy_port(self) -> SpyPort:
        if self._spy is None:
            raise HttpError(404, "listening in is not available")
        return self._spy

    @staticmethod
    def _spy_mode_of(data: Mapping[str, Any]) -> SpyMode:
        mode = data.get("mode", "listen")
        for known in SPY_MODES:
            if mode == known:
                return known
        raise HttpError(400, "mode must be listen, whisper or barge")

    @staticmethod
    def _spy_json(started: ListenInStarted) -> dict[str, str]:
        return {
            "seat": started.seat_id,
            "mode": started.mode,
            "detail": started.detail,
            "session_id": started.session_id,
        }

    @staticmethod
    def _spy_session(request: web.Request) -> str:
        session = request.match_info["session"]
        if not _SPY_SESSION.match(session):
            raise HttpError(404, "no such listen-in")
        return session

    async def _spy_start(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "supervisor")
        data = await self._edge.read_json(request)
        if not isinstance(data, dict):
            raise HttpError(400, "expected a JSON object")
        seat = data.get("seat")
        if not isinstance(seat, str) or seat not in self._seats.seat_ids():
            raise HttpError(404, "no such seat")
        mode = self._spy_mode_of(data)
        started = await self._spy_port().spy(ctx.actor, seat, mode)
        log.info("spy_started", seat=seat, mode=mode, employee_id=ctx.actor.employee_id)
        return json_response(self._spy_json(started), 201)

    async def _spy_stop(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "supervisor")
        session = self._spy_session(request)
        await self._spy_port().stop(ctx.actor, session)
        log.info("spy_stopped", session_id=session, employee_id=ctx.actor.employee_id)
        return json_response({"session_id": session, "stopped": True})

    async def _spy_mode(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "supervisor")
        session = self._spy_session(request)
        data = await self._edge.read_json(request)
        if not isinstance(data, dict) or "mode" not in data:
            raise HttpError(400, "mode is required")
        mode = self._spy_mode_of(data)
        switched = await self._spy_port().switch(ctx.actor, session, mode)
        log.info("spy_switched", session_id=session, mode=mode, employee_id=ctx.actor.employee_id)
        return json_response(self._spy_json(switched))
