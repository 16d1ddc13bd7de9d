"""Caller profiles: a page per caller (details editable and audited, every incident open ones
first, every call), merging two callers (supervisors), and the earlier calls of a number the
directory does not know."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from ctid.core.errors import RequestRefusedError
from ctid.i18n import Translator
from ctid.tickets.profiles import CallerProfile, CallLine
from ctid.web.edge import (
    Edge,
    HttpError,
    RequestContext,
    form_fields,
    html_response,
    int_field,
    see_other,
)
from ctid.web.html import Markup, join, render, tag
from ctid.web.kb_api import CALLER_FIELDS
from ctid.web.pages import layout
from ctid.web.record_common import need_port, vocab, words_of
from ctid.web.record_ports import ProfilePort, RecordPorts

_TEXT_FIELDS = ("name", "employee_id", "department", "office_location", "email")


class CallerProfilePages:
    """Routes for `/callers/{id}`, `/callers/{id}/merge` and `/callers/number`."""

    def __init__(self, edge: Edge, records: RecordPorts) -> None:
        self._edge = edge
        self._r = records

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/callers/number", self._by_number)
        r.add_get("/callers/{id:\\d+}", self._page)
        r.add_post("/callers/{id:\\d+}", self._edit)
        r.add_post("/callers/{id:\\d+}/merge", self._merge)

    def _profiles(self) -> ProfilePort:
        return need_port(self._r.profiles, "caller profiles")

    def _html(
        self, t: Translator, ctx: RequestContext, title: str, main: Markup, status: int = 200
    ) -> web.Response:
        return html_response(
            layout(
                site=self._edge.site(),
                title=title,
                main=main,
                actor=ctx.actor,
                csrf=ctx.session.csrf_token,
                main_class="page wide",
                t=t,
            ),
            status,
        )

    def _calls(self, t: Translator, calls: Sequence[CallLine]) -> Markup:
        if not calls:
            return tag("p", t.gettext("No calls."), class_="muted")
        rows = join(
            tag(
                "tr",
                join(
                    [
                        tag("td", t.when(c.started_at)),
                        tag("td", c.caller_number or ""),
                        tag("td", vocab(t, "outcome", c.outcome)),
                        tag("td", c.answered_by_seat or ""),
                        tag("td", t.duration(c.talk_s) if c.talk_s is not None else ""),
                        tag(
                            "td",
                            tag("a", c.incident_number, href=f"/incidents/{c.incident_number}")
                            if c.incident_number
                            else "",
                            class_="mono",
                        ),
                    ]
                ),
            )
            for c in calls
        )
        return render(
            """<table class="results" id="caller-calls"><thead><tr><th>$a</th><th>$b</th><th>$c</th><th>$d</th><th>$e</th><th>$f</th></tr></thead><tbody>$rows</tbody></table>""",
            a=t.gettext("When"),
            b=t.gettext("Number"),
            c=t.gettext("Outcome"),
            d=t.gettext("Seat"),
            e=t.gettext("Talk time"),
            f=t.gettext("Incident"),
            rows=rows,
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        t = words_of(request, self._edge.cfg)
        caller_id = int(request.match_info["id"])
        found = await self._profiles().profile(caller_id)
        if found is None:
            raise HttpError(404, f"no caller {caller_id}")
        notice = t.gettext("Saved.") if request.query.get("saved") else ""
        return self._html(t, ctx, found.caller.name, self._render(ctx, t, found, notice=notice))

    def _render(
        self,
        ctx: RequestContext,
        t: Translator,
        p: CallerProfile,
        *,
        notice: str = "",
        error: str = "",
        typed: dict[str, str] | None = None,
    ) -> Markup:
        c = p.caller
        values = typed or {
            "name": c.name,
            "employee_id": c.employee_id or "",
            "department": c.department or "",
            "office_location": c.office_location or "",
            "email": c.email or "",
            "notes": c.notes or "",
            "phones": ", ".join(ph.raw for ph in c.phones),
            "vip": "1" if c.vip else "",
        }
        labels = {
            "name": t.gettext("Name"),
            "employee_id": t.gettext("Employee ID"),
            "department": t.gettext("Department"),
            "office_location": t.gettext("Office"),
            "email": t.gettext("E-mail"),
        }
        staff = ctx.actor.role in ("agent", "supervisor")
        inputs = join(
            render(
                '<label>$l <input name="$n" value="$v" maxlength="200"$ro></label>',
                l=labels[n],
                n=n,
                v=values.get(n, ""),
                ro=Markup("" if staff else " readonly"),
            )
            for n in _TEXT_FIELDS
        )
        incidents = join(
            tag(
                "tr",
                join(
                    [
                        tag("td", tag("a", i.number, href=f"/incidents/{i.number}"), class_="mono"),
                        tag(
                            "td",
                            tag(
                                "span", vocab(t, "status", i.status), class_=f"badge st-{i.status}"
                            ),
                        ),
                        tag("td", i.summary, class_="wrap"),
                        tag("td", t.when(i.created_at)),
                    ]
                ),
            )
            for i in p.incidents
        )
        merge = Markup("")
        if ctx.actor.role == "supervisor":
            merge = render(
                """<section class="card"><h2>$h</h2><p class="muted">$help</p>
<form method="post" action="/callers/$id/merge" class="merge-form" id="merge-form">
<input type="hidden" name="csrf_token" value="$csrf">
<label>$l <input name="drop" inputmode="numeric" pattern="[0-9]+" required></label>
<button type="submit">$b</button></form></section>""",
                h=t.gettext("Merge a duplicate into this caller"),
                help=t.gettext(
                    "The other caller's phones, calls and incidents move here and the duplicate is deleted (audited)."
                ),
                id=c.id,
                csrf=ctx.session.csrf_token,
                l=t.gettext("Duplicate caller number (ID)"),
                b=t.gettext("Merge"),
            )
        save = tag("button", t.gettext("Save details"), type="submit") if staff else ""
        main = render(
            """<section class="card"><h1 id="caller-name">$name $vip</h1>$banners
<p class="muted">$open_words</p>
<form method="post" action="/callers/$id" class="caller-form" id="caller-form">
<input type="hidden" name="csrf_token" value="$csrf">
$inputs
<label>$phones_l <input name="phones" value="$phones" maxlength="500"></label>
<label>$notes_l <textarea name="notes" rows="2">$notes</textarea></label>
<label class="check"><input type="checkbox" name="vip" value="1"$vip_checked> VIP</label>
$save</form></section>
<section class="card"><h2>$inc_h</h2>$incidents</section>
<section class="card"><h2>$calls_h</h2>$calls</section>
$merge""",
            name=c.name,
            vip=tag("span", "VIP", class_="badge vip") if c.vip else "",
            banners=join(
                [
                    tag("p", error, class_="banner warn", role="alert") if error else "",
                    tag("p", notice, class_="banner info", role="status") if notice else "",
                ]
            ),
            open_words=t.ngettext("{n} open incident", "{n} open incidents", p.open_incidents),
            id=c.id,
            csrf=ctx.session.csrf_token,
            inputs=inputs,
            phones_l=t.gettext("Phones (comma separated)"),
            phones=values.get("phones", ""),
            notes_l=t.gettext("Notes"),
            notes=values.get("notes", ""),
            vip_checked=Markup(" checked" if values.get("vip") else ""),
            save=save,
            inc_h=t.gettext("Incidents (open first)"),
            incidents=render(
                """<table class="results" id="caller-incidents"><tbody>$rows</tbody></table>""",
                rows=incidents,
            )
            if p.incidents
            else tag("p", t.gettext("No incidents."), class_="muted"),
            calls_h=t.gettext("Calls"),
            calls=self._calls(t, p.calls),
            merge=merge,
        )
        return main

    async def _edit(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "agent", "supervisor")
        t = words_of(request, self._edge.cfg)
        caller_id = int(request.match_info["id"])
        form = await form_fields(request)
        edit = need_port(self._r.caller_edit, "editing callers")
        fields: dict[str, object] = {n: form.get(n, "") for n in CALLER_FIELDS if n != "vip"}
        fields["vip"] = form.get("vip") == "1"
        fields["phones"] = [p.strip() for p in form.get("phones", "").split(",") if p.strip()]
        try:
            await edit.update(caller_id, fields, ctx.actor.employee_id)
        except RequestRefusedError as exc:
            found = await self._profiles().profile(caller_id)
            if found is None:
                raise HttpError(404, f"no caller {caller_id}") from None
            return self._html(
                t,
                ctx,
                found.caller.name,
                self._render(ctx, t, found, error=str(exc), typed=form),
                400,
            )
        return see_other(f"/callers/{caller_id}?saved=1")

    async def _merge(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, "supervisor")
        caller_id = int(request.match_info["id"])
        form = await form_fields(request)
        drop = int_field(form, "drop", minimum=1)
        await self._profiles().merge(caller_id, drop, ctx.actor.employee_id)
        return see_other(f"/callers/{caller_id}?saved=1")

    async def _by_number(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        t = words_of(request, self._edge.cfg)
        number = request.query.get("n", "")[:64]
        calls = await self._profiles().calls_from_number(number) if number.strip() else []
        main = render(
            """<section class="card"><h1>$h</h1>
<form method="get" action="/callers/number" class="search"><input name="n" value="$n" maxlength="64" required><button type="submit">$find</button></form>
$calls</section>""",
            h=t.gettext("Earlier calls from a number"),
            n=number,
            find=t.gettext("Search"),
            calls=self._calls(t, calls) if number else "",
        )
        return self._html(t, ctx, t.gettext("Earlier calls from a number"), main)
