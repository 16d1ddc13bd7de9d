"""Seat state over HTTP: `GET /api/seats`, `POST /api/seats/{seat}/state` (ready / paused with a
reason) and `POST /api/seats/{seat}/wrapup` (end / extend), through `SeatStatePort`."""

from __future__ import annotations

import structlog
from aiohttp import web

from ctid.calls.seat_desk import seat_json
from ctid.web.edge import Edge, HttpError, RequestContext, json_response
from ctid.web.middleware import translator_of
from ctid.web.ports import SeatDirectory, SeatStatePort

log = structlog.get_logger(__name__)


class SeatApi:
    """Agents see and change only their own seat; supervisors any seat (and may end an `rna`
    pause); ops may look but not change. A port left None makes these a 404."""

    def __init__(self, edge: Edge, seats: SeatDirectory, port: SeatStatePort | None) -> None:
        self._edge = edge
        self._seats = seats
        self._port = port

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/seats", self._list)
        r.add_post("/api/seats/{seat}/state", self._state)
        r.add_post("/api/seats/{seat}/wrapup", self._wrapup)

    def _need_port(self) -> SeatStatePort:
        if self._port is None:
            raise HttpError(404, "seat state is not available")
        return self._port

    def _seat(self, request: web.Request, ctx: RequestContext) -> str:
        seat = request.match_info["seat"]
        if seat not in self._seats.seat_ids():
            raise HttpError(404, "no such seat")
        if ctx.actor.role == "agent" and ctx.actor.seat_id != seat:
            raise HttpError(403, "that is not your seat")
        return seat

    async def _list(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        port = self._need_port()
        if ctx.actor.role == "agent":
            ids = [ctx.actor.seat_id] if ctx.actor.seat_id else []
        else:
            ids = list(self._seats.seat_ids())
        t = translator_of(request)
        now = port.now()
        views = await port.views(ids)
        return json_response([seat_json(v, now, t) for v in views])

    async def _body(self, request: web.Request) -> dict[str, object]:
        data = await self._edge.read_json(request)
        if not isinstance(data, dict):
            raise HttpError(400, "expected a JSON object")
        return data

    async def _state(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "agent", "supervisor")
        seat = self._seat(request, ctx)
        data = await self._body(request)
        state = data.get("state")
        if state not in ("ready", "paused"):
            raise HttpError(400, "state must be ready or paused")
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise HttpError(400, "reason must be a string")
        view = await self._need_port().set_state(ctx.actor, seat, str(state), reason or None)
        t = translator_of(request)
        return json_response(seat_json(view, self._need_port().now(), t))

    async def _wrapup(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "agent", "supervisor")
        seat = self._seat(request, ctx)
        data = await self._body(request)
        action = data.get("action")
        if action not in ("end", "extend"):
            raise HttpError(400, "action must be end or extend")
        view = await self._need_port().wrapup(ctx.actor, seat, str(action))
        t = translator_of(request)
        return json_response(seat_json(view, self._need_port().now(), t))
