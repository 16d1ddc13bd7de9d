"""The ops roster page: one plan form (seats with tier and staff chosen from lists, and a calendar
of the lunch weeks) saved with one Save and checked for lunch cover in the page before it is
sent; single-day lunch overrides and the holidays upload. Every refusal is shown at its form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime

import structlog
from aiohttp import web
from multidict import MultiDictProxy

from ctid.core.errors import (
    RequestRefusedError,
)
from ctid.i18n import N_, Translator
from ctid.rotation.admin import (
    RosterSeatRow,
    RosterView,
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
from ctid.web.middleware import translator_of
from ctid.web.pages import layout, script_messages
from ctid.web.ports import (
    RosterPort,
)

log = structlog.get_logger(__name__)

PLAN_WEEKS = 4
MAX_HOLIDAY_FILE = 50_000
"""Bytes; the whole request is capped at 64 KiB (`client_max_size`)."""
TIERS = ("ordinary", "expert")

_DONE = {
    "plan": N_("The plan is saved."),
    "day": N_("Lunch override saved."),
    "removed": N_("Override removed."),
    "holidays": N_("Holidays imported."),
}
TIER_WORDS = {"ordinary": N_("Ordinary"), "expert": N_("Expert")}
DAY_KINDS = {"holiday": N_("holiday"), "workday": N_("make-up workday")}


class RosterPages:
    """Routes for `/ops/roster*` (ops only)."""

    def __init__(self, edge: Edge, roster: RosterPort | None) -> None:
        self._edge = edge
        self._roster = roster

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/ops/roster", self._page)
        router.add_post("/ops/roster/plan", self._plan)
        router.add_post("/ops/roster/lunch/day", self._day)
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
        t = translator_of(request)
        done = _DONE.get(request.query.get("done", ""), "")
        return html_response(self._render(ctx, view, t, notice=t.gettext(done) if done else ""))

    async def _refused(
        self,
        request: web.Request,
        ctx: RequestContext,
        where: str,
        message: str,
        submitted: Mapping[str, str] | None = None,
    ) -> web.Response:
        view = await self._port().view(PLAN_WEEKS)
        t = translator_of(request)
        return html_response(
            self._render(
                ctx, view, t, errors={where: t.gettext(message)}, submitted=submitted or {}
            ),
            400,
        )

    async def _plan(self, request: web.Request) -> web.StreamResponse:
        """The one Save of the plan form: every seat row and each week's lunch group."""
        ctx = self._ctx(request)
        form = await form_fields(request)
        view = await self._port().view(PLAN_WEEKS)
        try:
            seats = []
            for s in view.seats:
                tier = form.get(f"tier:{s.seat_id}", s.tier)
                if tier not in TIERS:
                    raise HttpError(400, N_("tier must be ordinary or expert"))
                seats.append(
                    RosterSeatRow(
                        seat_id=s.seat_id,
                        name=str_field(form, f"name:{s.seat_id}", 64, required=True),
                        tier=tier,
                        interface=str_field(form, f"interface:{s.seat_id}", 128, required=True),
                        staffed_by=str_field(form, f"staffed_by:{s.seat_id}", 32) or None,
                        active=form.get(f"active:{s.seat_id}", "") in ("1", "on", "true"),
                    )
                )
            weeks: dict[str, str | None] = {}
            for w in view.weeks:
                group = form.get(f"week:{w.week}")
                if group is None:
                    continue
                if group and group not in view.lunch_groups:
                    raise HttpError(400, N_("choose a lunch group from the list"))
                weeks[w.week] = group or None
            await self._port().save_plan(seats, weeks, ctx.actor)
        except (HttpError, RequestRefusedError) as exc:
            if isinstance(exc, HttpError) and exc.status != 400:
                raise
            return await self._refused(request, ctx, "plan", _text(exc), form)
        log.info("roster_plan_saved_from_web", by=ctx.actor.employee_id)
        return see_other("/ops/roster?done=plan")

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
            return await self._refused(request, ctx, "lunch", _text(exc))
        return see_other("/ops/roster?done=day")

    async def _remove(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx(request)
        form = await form_fields(request)
        try:
            key = str_field(form, "key", 10, required=True)
            await self._port().remove_override(key, ctx.actor)
        except (HttpError, RequestRefusedError) as exc:
            return await self._refused(request, ctx, "lunch", _text(exc))
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
            return await self._refused(request, ctx, "holidays", _text(exc))
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
        t: Translator,
        *,
        notice: str = "",
        errors: Mapping[str, str] | None = None,
        submitted: Mapping[str, str] | None = None,
    ) -> Markup:
        errors = errors or {}
        sent = submitted or {}
        csrf = ctx.session.csrf_token
        required = render('<abbr class="req" title="$r">*</abbr>', r=t.gettext("required"))

        def error(where: str) -> Markup:
            msg = errors.get(where)
            return (
                tag("p", msg, class_="banner warn", role="alert", data_error=where)
                if msg
                else Markup("")
            )

        def value(key: str, stored: str) -> str:
            return sent.get(key, stored) if sent else stored

        staff_names = dict(view.staff)
        seat_rows = []
        for s in view.seats:
            sid = s.seat_id
            staffed = value(f"staffed_by:{sid}", s.staffed_by or "")
            people = list(view.staff)
            if staffed and staffed not in staff_names:
                people.append((staffed, t.gettext("{id} (no login)", id=staffed)))
            staff_options = join(
                [tag("option", t.gettext("nobody"), value="")]
                + [
                    tag(
                        "option",
                        f"{name} ({emp})",
                        value=emp,
                        selected=(emp == staffed) or None,
                    )
                    for emp, name in people
                ]
            )
            tier = value(f"tier:{sid}", s.tier)
            active = (f"active:{sid}" in sent) if sent else s.active
            seat_rows.append(
                render(
                    """<tr data-seat="$seat"><td class="mono">$seat</td>
<td><input name="name:$seat" value="$name" maxlength="64" required aria-label="$l_name"></td>
<td><select name="tier:$seat" class="tier" aria-label="$l_tier">$tiers</select></td>
<td><input name="interface:$seat" value="$iface" maxlength="128" required aria-label="$l_iface"></td>
<td><select name="staffed_by:$seat" class="staff" aria-label="$l_staff">$staff</select></td>
<td><input type="checkbox" class="active" name="active:$seat" value="1"$active aria-label="$l_active"></td></tr>""",
                    seat=sid,
                    name=value(f"name:{sid}", s.name),
                    tiers=join(
                        tag(
                            "option",
                            t.gettext(TIER_WORDS[x]),
                            value=x,
                            selected=(x == tier) or None,
                        )
                        for x in TIERS
                    ),
                    iface=value(f"interface:{sid}", s.interface),
                    staff=staff_options,
                    active=Markup(" checked") if active else "",
                    l_name=t.gettext("Name"),
                    l_tier=t.gettext("Tier"),
                    l_iface=t.gettext("Interface"),
                    l_staff=t.gettext("Staffed by"),
                    l_active=t.gettext("Active"),
                )
            )
        week_rows = []
        for w in view.weeks:
            chosen = value(f"week:{w.week}", w.on_duty)
            options = join(
                tag(
                    "option",
                    t.gettext("group {name}", name=g)
                    + (" " + t.gettext("(rotation)") if g == w.scheduled else ""),
                    value=g,
                    selected=(g == chosen) or None,
                )
                for g in view.lunch_groups
            )
            days = ", ".join(
                t.gettext("{day}: group {name}", day=t.day(d, "short"), name=g) for d, g in w.days
            )
            week_rows.append(
                render(
                    """<tr data-week="$week"><td class="mono">$week</td><td>$dates</td>
<td><select name="week:$week" class="week-group" aria-label="$l_group">$options</select></td>
<td class="week-seats"></td><td>$days</td></tr>
<tr class="week-problem" data-week-problem="$week" hidden><td colspan="5"><p class="field-error" role="alert"></p></td></tr>""",
                    week=w.week,
                    dates=f"{t.day(w.monday, 'short')} – {t.day(w.friday, 'short')}",
                    options=options,
                    days=days,
                    l_group=t.gettext("Group on lunch duty"),
                )
            )
        groups = join(tag("option", g, value=g) for g in view.lunch_groups)
        overrides = join(
            render(
                """<tr><td>$kind</td><td class="mono">$key</td><td>$group</td><td>$note</td><td>$by</td>
<td><form method="post" action="/ops/roster/lunch/remove"><input type="hidden" name="csrf_token" value="$csrf"><input type="hidden" name="key" value="$key"><button type="submit" class="secondary">$remove</button></form></td></tr>""",
                kind=t.gettext("day") if o.kind == "day" else t.gettext("week swap"),
                key=o.key,
                group=o.group,
                note=o.note or "",
                by=o.created_by,
                csrf=csrf,
                remove=t.gettext("Remove"),
            )
            for o in view.overrides
        ) or render(
            '<tr><td colspan="6" class="muted">$none</td></tr>',
            none=t.gettext("No overrides: the rotation runs as planned."),
        )
        desk = view.desk
        mode_words = {
            "open": N_("Desk open"),
            "lunch": N_("Lunch hours"),
            "closed": N_("Desk closed"),
        }
        mode = str(desk.get("mode", ""))
        next_mode = str(desk.get("next_mode", ""))
        desk_line = " · ".join(
            x
            for x in (
                t.gettext(mode_words[mode]) if mode in mode_words else "",
                t.gettext("lunch group {name}", name=desk.get("lunch_group"))
                if desk.get("lunch_group")
                else "",
                t.gettext(
                    "next: {mode} at {time}",
                    mode=t.gettext(mode_words[next_mode]),
                    time=_at(desk.get("next_transition")),
                )
                if desk.get("next_transition") and next_mode in mode_words
                else "",
                t.gettext(
                    "uncovered tiers: {tiers}",
                    tiers=", ".join(
                        t.gettext(TIER_WORDS.get(str(x), str(x)))
                        for x in _seq(desk.get("uncovered_tiers"))
                    ),
                )
                if _seq(desk.get("uncovered_tiers"))
                else "",
            )
            if x
        )
        holidays = join(
            tag("li", f"{t.day(d)} · {t.gettext(DAY_KINDS.get(kind, kind))} · {name}")
            for d, kind, name in view.holidays
        )
        seat_names = {s.seat_id: s.name for s in view.seats}
        refused = _refused_changes(view, t, seat_names)
        plan_rules = json.dumps(
            {
                "groups": {g: list(seats) for g, seats in view.group_seats},
                "allow_overflow": view.allow_overflow,
                "names": seat_names,
            },
            ensure_ascii=False,
        ).replace("<", "\\u003c")
        main = render(
            """<section class="card"><h1>$title</h1>
$notice
$refused
<p id="desk-state">$desk_line</p>
<form method="post" action="/ops/roster/plan" id="plan-form" novalidate>
<input type="hidden" name="csrf_token" value="$csrf">
<h2>$l_seats</h2>
<table class="results roster" id="roster-seats">
<thead><tr><th>$h_seat</th><th>$h_name $required</th><th>$h_tier</th><th>$h_iface $required</th><th>$h_staff</th><th>$h_active</th></tr></thead>
<tbody>$seat_rows</tbody></table>
<h2 id="lunch-weeks">$l_weeks</h2>
<table class="results calendar" id="lunch-calendar">
<thead><tr><th>$h_week</th><th>$h_dates</th><th>$h_group</th><th>$h_on_duty</th><th>$h_days</th></tr></thead>
<tbody>$week_rows</tbody></table>
<div class="plan-save">
  $plan_error
  <p id="plan-problems" class="field-error" role="alert" hidden></p>
  <button type="submit" id="plan-save">$save</button>
  <span class="muted">$save_note</span>
</div>
</form>
<script type="application/json" id="plan-rules">$rules</script>
</section>
<section class="card" id="lunch"><h2>$l_cover</h2>
$lunch_error
<table class="results"><thead><tr><th>$h_kind</th><th>$h_when</th><th>$h_group</th><th>$h_note</th><th>$h_by</th><th></th></tr></thead>
<tbody>$overrides</tbody></table>
<form method="post" action="/ops/roster/lunch/day" class="stack" id="day-form">
  <h3>$l_one_day</h3>
  <input type="hidden" name="csrf_token" value="$csrf">
  <label>$h_day $required <input type="date" name="day" required></label>
  <label>$h_group $required <select name="group" required>$groups</select></label>
  <label>$h_note <input name="note" maxlength="200"></label>
  <button type="submit">$set_day</button>
</form>
</section>
<section class="card" id="holidays"><h2>$l_holidays</h2>
$holiday_error
<ul class="lines">$holidays</ul>
<form method="post" action="/ops/roster/holidays" enctype="multipart/form-data" class="stack" id="holiday-form">
  <input type="hidden" name="csrf_token" value="$csrf">
  <label>$l_file <input type="file" name="file" accept=".csv,.txt,text/plain,text/csv"></label>
  <label>$l_paste <textarea name="text" rows="4"></textarea></label>
  <button type="submit">$import_</button>
</form>
</section>""",
            title=t.gettext("Roster"),
            notice=tag("p", notice, class_="banner info", role="status") if notice else "",
            desk_line=desk_line,
            csrf=csrf,
            required=required,
            l_seats=t.gettext("Seats"),
            h_seat=t.gettext("Seat"),
            h_name=t.gettext("Name"),
            h_tier=t.gettext("Tier"),
            h_iface=t.gettext("Interface"),
            h_staff=t.gettext("Staffed by"),
            h_active=t.gettext("Active"),
            seat_rows=join(seat_rows, "\n"),
            l_weeks=t.gettext("Lunch duty, week by week"),
            h_week=t.gettext("Week"),
            h_dates=t.gettext("Dates"),
            h_group=t.gettext("Group on lunch duty"),
            h_on_duty=t.gettext("On the phones at lunch"),
            h_days=t.gettext("Single days"),
            week_rows=join(week_rows, "\n")
            or render(
                '<tr><td colspan="5" class="muted">$x</td></tr>',
                x=t.gettext("No lunch rotation (lunch.groups is empty)."),
            ),
            plan_error=error("plan"),
            save=t.gettext("Save the plan"),
            save_note=t.gettext("Seats and lunch weeks are saved together."),
            rules=Markup(plan_rules),
            l_cover=t.gettext("Lunch overrides"),
            lunch_error=error("lunch"),
            h_kind=t.gettext("Kind"),
            h_when=t.gettext("When"),
            h_note=t.gettext("Note"),
            h_by=t.gettext("Set by"),
            overrides=overrides,
            l_one_day=t.gettext("One day"),
            h_day=t.gettext("Day"),
            groups=groups,
            set_day=t.gettext("Set day"),
            refused=refused,
            l_holidays=t.gettext("Holidays"),
            holiday_error=error("holidays"),
            holidays=holidays,
            l_file=t.gettext("Holidays file (lines like “2026-10-01,holiday,National Day”)"),
            l_paste=t.gettext("…or paste the lines"),
            import_=t.gettext("Import"),
        )
        return layout(
            t=t,
            site=self._edge.site(),
            title=t.gettext("Roster"),
            main=main,
            actor=ctx.actor,
            csrf=csrf,
            main_class="page wide",
            scripts=["/static/roster.js"],
            script_words=script_messages("roster.js"),
        )


_REFUSED_KINDS = {
    "add": N_("add to queue"),
    "remove": N_("remove from queue"),
    "pause": N_("pause"),
    "unpause": N_("unpause"),
}


def _refused_changes(view: RosterView, t: Translator, names: Mapping[str, str]) -> Markup:
    """The roster changes the PBX refused (still wanted), with Asterisk's own words: ops must fix
    the PBX side (e.g. a static `member =>` line) — ctid retries on every apply."""
    if not view.refused:
        return Markup("")
    rows = join(
        tag(
            "li",
            t.gettext(
                "{seat}: {change}{queue} refused by the PBX: {message} ({attempts}×, last {at})",
                seat=names.get(r.seat_id, r.seat_id),
                change=t.gettext(_REFUSED_KINDS.get(r.kind, r.kind)),
                queue=f" {r.queue}" if r.queue else "",
                message=r.message,
                attempts=r.attempts,
                at=t.clock(r.last_at),
            ),
        )
        for r in view.refused
    )
    return render(
        '<div class="notice error" id="pbx-refused" role="alert"><strong>$head</strong>'
        '<ul class="lines">$rows</ul></div>',
        head=t.gettext("The PBX refused these roster changes; fix the PBX side:"),
        rows=rows,
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
