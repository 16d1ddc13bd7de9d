"""Call control and the call cards from the desk: hang up, transfer (expert tier or a named seat),
take the next callback, and each call's incident draft (`/api/desk/drafts`)."""

from __future__ import annotations

import re

import structlog
from aiohttp import web

from ctid.web.edge import Edge, HttpError, RequestContext, json_response, seat_for
from ctid.web.ports import CallbackPort, CallControlPort, DraftPort, SeatDirectory

log = structlog.get_logger(__name__)

_CALL_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
DESK_ROLES = ("agent", "supervisor")


class CallApi:
    """A port left None makes its routes a 404 "not available"."""

    def __init__(
        self,
        edge: Edge,
        seats: SeatDirectory,
        calls: CallControlPort | None,
        callbacks: CallbackPort | None,
        drafts: DraftPort | None,
    ) -> None:
        self._edge = edge
        self._seats = seats
        self._calls = calls
        self._callbacks = callbacks
        self._drafts = drafts

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_post("/api/calls/{call_id}/hangup", self._hangup)
        r.add_post("/api/calls/{call_id}/transfer", self._transfer)
        r.add_post("/api/callbacks/next", self._next_callback)
        r.add_get("/api/desk/drafts", self._list_drafts)
        r.add_put("/api/desk/drafts/{call_id}", self._put_draft)
        r.add_delete("/api/desk/drafts/{call_id}", self._discard_draft)

    # ------------------------------------------------------------------ helpers

    def _call_port(self) -> CallControlPort:
        if self._calls is None:
            raise HttpError(404, "call control is not available")
        return self._calls

    def _draft_port(self) -> DraftPort:
        if self._drafts is None:
            raise HttpError(404, "drafts are not available")
        return self._drafts

    @staticmethod
    def _call_id(request: web.Request) -> str:
        call_id = request.match_info["call_id"]
        if not _CALL_ID.match(call_id):
            raise HttpError(404, "no such call")
        return call_id

    async def _body(self, request: web.Request) -> dict[str, object]:
        data = await self._edge.read_json(request)
        if not isinstance(data, dict):
            raise HttpError(400, "expected a JSON object")
        return data

    def _seat(self, ctx: RequestContext, requested: object) -> str:
        seat = seat_for(self._seats, ctx, requested if isinstance(requested, str) else None)
        if seat is None:
            raise HttpError(403, "you are not assigned to a seat")
        return seat

    # ------------------------------------------------------------------ call control

    async def _hangup(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *DESK_ROLES)
        call_id = self._call_id(request)
        await self._call_port().hang_up(ctx.actor, call_id)
        return json_response({"call_id": call_id, "hung_up": True})

    async def _transfer(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *DESK_ROLES)
        call_id = self._call_id(request)
        data = await self._body(request)
        port = self._call_port()
        match data.get("to"):
            case "expert":
                moved = await port.transfer_to_expert(ctx.actor, call_id, "expert")
            case "seat":
                seat = data.get("seat")
                if not isinstance(seat, str) or seat not in self._seats.seat_ids():
                    raise HttpError(400, "choose the seat to transfer to")
                moved = await port.transfer_to_seat(ctx.actor, call_id, seat)
            case _:
                raise HttpError(400, 'to must be "expert" or "seat"')
        return json_response({"call_id": call_id, "target": moved.target, "detail": moved.detail})

    async def _next_callback(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *DESK_ROLES)
        if self._callbacks is None:
            raise HttpError(404, "callbacks are not available")
        waiting = [r for r in await self._callbacks.list_open() if r.status == "open"]
        if not waiting:
            raise HttpError(409, "no callback is waiting")
        row = await self._callbacks.start(waiting[0].callback_id, ctx.actor)
        detail = ""
        dialled = False
        if self._calls is not None:
            try:
                started = await self._calls.click_to_call(ctx.actor, row.number)
                detail, dialled = started.detail, True
            except HttpError:
                raise
            except Exception as exc:  # the callback is started; the agent dials by hand
                log.warning("click_to_call_failed", callback_id=row.callback_id, error=str(exc))
                detail = str(exc)
        log.info("callback_taken_from_desk", callback_id=row.callback_id, by=ctx.actor.employee_id)
        return json_response(
            {
                "callback_id": row.callback_id,
                "number": row.number,
                "caller_name": row.caller_name,
                "reason": row.reason,
                "dialled": dialled,
                "detail": detail,
            },
            201,
        )

    # ------------------------------------------------------------------ drafts

    async def _list_drafts(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *DESK_ROLES)
        seat = self._seat(ctx, request.query.get("seat"))
        drafts = await self._draft_port().for_seat(seat)
        return json_response(
            [
                {
                    "call_id": d.call_id,
                    "fields": dict(d.fields),
                    "number": d.number,
                    "saved": d.saved,
                    "updated_at": d.updated_at.timestamp(),
                }
                for d in drafts
            ]
        )

    async def _put_draft(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *DESK_ROLES)
        call_id = self._call_id(request)
        data = await self._body(request)
        seat = self._seat(ctx, data.get("seat"))
        fields = data.get("fields")
        if not isinstance(fields, dict):
            raise HttpError(400, "fields must be an object")
        view = await self._draft_port().put(ctx.actor, seat, call_id, fields)
        return json_response({"call_id": view.call_id, "saved": view.saved})

    async def _discard_draft(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *DESK_ROLES)
        call_id = self._call_id(request)
        seat = self._seat(ctx, request.query.get("seat"))
        await self._draft_port().discard(seat, call_id)
        return json_response({"call_id": call_id, "closed": True})
