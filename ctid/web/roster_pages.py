"""The ops roster page: seats (name, tier, interface, who staffs them, active) with edit forms,
lunch overrides (a group for one day, a week swap, removal), the coming weeks of the rota, and
the holidays file upload. Every refusal of the roster store is shown next to the form."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime

import structlog
from aiohttp import web
from multidict import MultiDictProxy

from ctid.core.errors import (
    RequestRefusedError,
)
from ctid.rotation.admin import (
    RosterView,
    SeatChanges,
)
from ctid.web.edge import (
    Edge,
    HttpError,
    RequestContext,
    form_fields,
    html_response,
    see_other,
    str_field,
)
from ctid.web.html import Markup, join, render, tag
from ctid.web.pages import layout
from ctid.web.ports import (
    RosterPort,
)

log = structlog.get_logger(__name__)

PLAN_WEEKS = 4
MAX_HOLIDAY_FILE = 50_000
"""Bytes; the whole request is capped at 64 KiB (`client_max_size`)."""
_WEEK = re.compile(r"^\d{4}-W\d{2}$")
_SEAT = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
TIERS = ("ordinary", "expert")

_DONE = {
    "seat": "Seat saved.",
    "day": "Lunch override saved.",
    "week": "Week swap saved.",
    "removed": "Override removed.",
    "holidays": "Holidays imported.",
}


class RosterPages:
    """Routes for `/ops/roster*` (ops only)."""

    def __init__(self, edge: Edge, roster: RosterPort | None) -> None:
        self._edge = edge
        self._roster = roster

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/ops/roster", self._page)
        router.add_post("/ops/roster/seats/{seat}", self._seat)
        router.add_post("/ops/roster/lunch/day", self._day)
        router.add_post("/ops/roster/lunch/week", self._week)
        router.add_post("/ops/roster/lunch/remove", self._remove)
        router.add_post("/ops/roster/holidays", self._holidays)

    def _port(self) -> RosterPort:
        if self._roster is None:
            raise HttpError(404, "the roster is not available")
        return self._roster

    def _ctx(self, request: web.Request) -> RequestContext:
        return self._edge.need(request, "ops")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx(request)
        view = await self._port().view(PLAN_WEEKS)
        done = _DONE.get(request.query.get("done", ""), "")
        return html_response(self._render(ctx, view, notice=done))

    async def _refused(self, ctx: RequestContext, where: str, message: str) -> web.Response:
        view = await self._port().view(PLAN_WEEKS)
        return html_response(self._render(ctx, view, errors={where: message}), 400)

    async def _seat(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx(request)
        seat = request.match_info["seat"]
        if not _SEAT.match(seat):
            raise HttpError(404, "no such seat")
        form = await form_fields(request)
        try:
            tier = form.get("tier", "")
            if tier not in TIERS:
                raise HttpError(400, "tier must be ordinary or expert")
            changes = SeatChanges(
                name=str_field(form, "name", 64, required=True),
                tier=tier,
                interface=str_field(form, "interface", 128, required=True),
                staffed_by=str_field(form, "staffed_by", 32),
                active=form.get("active", "") in ("1", "on", "true"),
            )
            await self._port().update_seat(seat, changes, ctx.actor)
        except (HttpError, RequestRefusedError) as exc:
            if isinstance(exc, HttpError) and exc.status != 400:
                raise
            return await self._refused(ctx, f"seat:{seat}", _text(exc))
        log.info("roster_seat_saved_from_web", seat=seat, by=ctx.actor.employee_id)
        return see_other("/ops/roster?done=seat")

    async def _day(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx(request)
        form = await form_fields(request)
        try:
            raw = str_field(form, "day", 10, required=True)
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                raise HttpError(400, f"{raw!r} is not a date written YYYY-MM-DD") from None
            group = str_field(form, "group", 64, required=True)
            note = str_field(form, "note", 200) or None
            await self._port().set_day_override(day, group, ctx.actor, note)
        except (HttpError, RequestRefusedError) as exc:
            return await self._refused(ctx, "lunch", _text(exc))
        return see_other("/ops/roster?done=day")

    async def _week(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx(request)
        form = await form_fields(request)
        try:
            week = str_field(form, "week", 16, required=True)
            if not _WEEK.match(week):
                raise HttpError(400, f"{week!r} is not an ISO week written YYYY-Www")
            group = str_field(form, "group", 64, required=True)
            note = str_field(form, "note", 200) or None
            await self._port().set_week_swap(week, group, ctx.actor, note)
        except (HttpError, RequestRefusedError) as exc:
            return await self._refused(ctx, "lunch", _text(exc))
        return see_other("/ops/roster?done=week")

    async def _remove(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx(request)
        form = await form_fields(request)
        try:
            key = str_field(form, "key", 10, required=True)
            await self._port().remove_override(key, ctx.actor)
        except (HttpError, RequestRefusedError) as exc:
            return await self._refused(ctx, "lunch", _text(exc))
        return see_other("/ops/roster?done=removed")

    async def _holidays(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx(request)
        if request.content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            raise HttpError(400, "expected a form post")
        # The CSRF check has read the body already; aiohttp keeps the parsed form.
        form = await request.post()
        try:
            text, source = _upload(form)
            result = await self._port().import_holidays(text, ctx.actor, source)
        except (HttpError, RequestRefusedError) as exc:
            return await self._refused(ctx, "holidays", _text(exc))
        log.info(
            "holidays_imported_from_web",
            by=ctx.actor.employee_id,
            added=result.added,
            changed=result.changed,
        )
        return see_other("/ops/roster?done=holidays")

    # ------------------------------------------------------------------ rendering

    def _render(
        self,
        ctx: RequestContext,
        view: RosterView,
        *,
        notice: str = "",
        errors: Mapping[str, str] | None = None,
    ) -> Markup:
        errors = errors or {}
        csrf = ctx.session.csrf_token

        def error(where: str) -> Markup:
            msg = errors.get(where)
            return (
                tag("p", msg, class_="banner warn", role="alert", data_error=where)
                if msg
                else Markup("")
            )

        seat_rows = []
        for s in view.seats:
            fid = f"seat-{s.seat_id}"
            seat_rows.append(
                render(
                    """<tr data-seat="$seat"><td class="mono">$seat</td>
<td><input form="$fid" name="name" value="$name" maxlength="64" required></td>
<td><select form="$fid" name="tier">$tiers</select></td>
<td><input form="$fid" name="interface" value="$iface" maxlength="128" required></td>
<td><input form="$fid" name="staffed_by" value="$staff" maxlength="32" placeholder="nobody"></td>
<td><input form="$fid" type="checkbox" name="active" value="1"$active></td>
<td><form method="post" id="$fid" action="/ops/roster/seats/$seat"><input type="hidden" name="csrf_token" value="$csrf"><button type="submit">Save</button></form></td></tr>
$err""",
                    seat=s.seat_id,
                    fid=fid,
                    name=s.name,
                    tiers=join(
                        tag("option", t, value=t, selected=(t == s.tier) or None) for t in TIERS
                    ),
                    iface=s.interface,
                    staff=s.staffed_by or "",
                    active=Markup(" checked") if s.active else "",
                    csrf=csrf,
                    err=render('<tr><td colspan="7">$e</td></tr>', e=error(f"seat:{s.seat_id}"))
                    if f"seat:{s.seat_id}" in errors
                    else "",
                )
            )
        groups = join(tag("option", g, value=g) for g in view.lunch_groups)
        overrides = join(
            render(
                """<tr><td>$kind</td><td class="mono">$key</td><td>$group</td><td>$note</td><td>$by</td>
<td><form method="post" action="/ops/roster/lunch/remove"><input type="hidden" name="csrf_token" value="$csrf"><input type="hidden" name="key" value="$key"><button type="submit" class="secondary">Remove</button></form></td></tr>""",
                kind="day" if o.kind == "day" else "week swap",
                key=o.key,
                group=o.group,
                note=o.note or "",
                by=o.created_by,
                csrf=csrf,
            )
            for o in view.overrides
        ) or render(
            '<tr><td colspan="6" class="muted">No overrides: the rotation runs as planned.</td></tr>'
        )
        desk = view.desk
        desk_line = " · ".join(
            str(x)
            for x in (
                f"mode: {desk.get('mode', '?')}",
                f"lunch group: {desk.get('lunch_group')}" if desk.get("lunch_group") else "",
                f"next: {desk.get('next_mode', '')} at {_at(desk.get('next_transition'))}"
                if desk.get("next_transition")
                else "",
                "uncovered tiers: " + ", ".join(map(str, _seq(desk.get("uncovered_tiers"))))
                if _seq(desk.get("uncovered_tiers"))
                else "",
            )
            if x
        )
        holidays = join(
            tag("li", f"{d.isoformat()} · {kind} · {name}") for d, kind, name in view.holidays
        )
        main = render(
            """<section class="card"><h1>Roster</h1>
$notice
<p id="desk-state">$desk_line</p>
$seat_error
<table class="results roster" id="roster-seats">
<thead><tr><th>Seat</th><th>Name</th><th>Tier</th><th>Interface</th><th>Staffed by</th><th>Active</th><th></th></tr></thead>
<tbody>$seat_rows</tbody></table>
</section>
<section class="card" id="lunch"><h2>Lunch cover</h2>
$lunch_error
<table class="results"><thead><tr><th>Kind</th><th>When</th><th>Group on duty</th><th>Note</th><th>By</th><th></th></tr></thead>
<tbody>$overrides</tbody></table>
<div class="grid2">
<form method="post" action="/ops/roster/lunch/day" class="stack" id="day-form">
  <h3>One day</h3>
  <input type="hidden" name="csrf_token" value="$csrf">
  <label>Day <input type="date" name="day" required></label>
  <label>Group on lunch duty <select name="group" required>$groups</select></label>
  <label>Note <input name="note" maxlength="200"></label>
  <button type="submit">Set day</button>
</form>
<form method="post" action="/ops/roster/lunch/week" class="stack" id="week-form">
  <h3>Week swap</h3>
  <input type="hidden" name="csrf_token" value="$csrf">
  <label>ISO week <input name="week" placeholder="2026-W49" pattern="\\d{4}-W\\d{2}" required></label>
  <label>Group on lunch duty <select name="group" required>$groups</select></label>
  <label>Note <input name="note" maxlength="200"></label>
  <button type="submit">Swap week</button>
</form>
</div>
<h3>The next $weeks weeks</h3>
<pre class="plan" id="plan">$plan</pre>
</section>
<section class="card" id="holidays"><h2>Holidays</h2>
$holiday_error
<ul class="lines">$holidays</ul>
<form method="post" action="/ops/roster/holidays" enctype="multipart/form-data" class="stack" id="holiday-form">
  <input type="hidden" name="csrf_token" value="$csrf">
  <label>Holidays file (lines like “2026-10-01,holiday,National Day”) <input type="file" name="file" accept=".csv,.txt,text/plain,text/csv"></label>
  <label>…or paste the lines <textarea name="text" rows="4"></textarea></label>
  <button type="submit">Import</button>
</form>
</section>""",
            notice=tag("p", notice, class_="banner info", role="status") if notice else "",
            desk_line=desk_line,
            seat_error=Markup(""),
            seat_rows=join(seat_rows, "\n"),
            lunch_error=error("lunch"),
            overrides=overrides,
            csrf=csrf,
            groups=groups,
            weeks=PLAN_WEEKS,
            plan=view.plan_text or "(no lunch rotation)",
            holiday_error=error("holidays"),
            holidays=holidays,
        )
        return layout(
            site=self._edge.site(),
            title="Roster",
            main=main,
            actor=ctx.actor,
            csrf=csrf,
            main_class="page wide",
        )


def _at(value: object) -> str:
    """The desk summary's ISO time as `YYYY-MM-DD HH:MM` (its own, site-local offset)."""
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def _seq(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(exc: Exception) -> str:
    return exc.message if isinstance(exc, HttpError) else str(exc)


def _upload(form: MultiDictProxy[str | bytes | bytearray | web.FileField]) -> tuple[str, str]:
    """The holidays text from the uploaded file, else from the text box; and its name."""
    upload = form.get("file")
    if isinstance(upload, web.FileField) and upload.filename:
        data = upload.file.read(MAX_HOLIDAY_FILE + 1)
        if len(data) > MAX_HOLIDAY_FILE:
            raise HttpError(400, f"the file is larger than {MAX_HOLIDAY_FILE} bytes")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise HttpError(400, "the file is not UTF-8 text") from None
        return text, upload.filename[-100:]
    pasted = form.get("text")
    if isinstance(pasted, str) and pasted.strip():
        if len(pasted) > MAX_HOLIDAY_FILE:
            raise HttpError(400, f"the text is longer than {MAX_HOLIDAY_FILE} characters")
        return pasted, "web form"
    raise HttpError(400, "choose a holidays file or paste its lines")
