"""The knowledge base pages: list and search (Chinese too), an article with its versions, and the
create/edit form for experts and supervisors (a stale edit keeps what was typed)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ctid.core.errors import RequestRefusedError, StateConflictError
from ctid.i18n import Translator
from ctid.tickets.kb import LANGUAGES, ArticleView
from ctid.tickets.vocabulary import CATEGORIES, REQUEST_TYPES
from ctid.web.edge import (
    Edge,
    HttpError,
    RequestContext,
    form_fields,
    html_response,
    see_other,
)
from ctid.web.html import Markup, join, render, tag
from ctid.web.kb_api import article_fields
from ctid.web.pages import layout
from ctid.web.record_common import author_of, may_write, need_port, vocab, words_of
from ctid.web.record_ports import KnowledgePort, RecordPorts


class KbPages:
    """Routes for `/kb*`."""

    def __init__(self, edge: Edge, records: RecordPorts) -> None:
        self._edge = edge
        self._r = records

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/kb", self._list)
        r.add_get("/kb/new", self._new)
        r.add_post("/kb/new", self._create)
        r.add_get("/kb/{id:\\d+}", self._article)
        r.add_get("/kb/{id:\\d+}/edit", self._edit_page)
        r.add_post("/kb/{id:\\d+}/edit", self._edit)

    def _kb(self) -> KnowledgePort:
        return need_port(self._r.kb, "the knowledge base")

    def _page(self, t: Translator, ctx: RequestContext, title: str, main: Markup) -> web.Response:
        return html_response(
            layout(
                site=self._edge.site(),
                title=title,
                main=main,
                actor=ctx.actor,
                csrf=ctx.session.csrf_token,
                t=t,
            )
        )

    async def _get(self, request: web.Request) -> ArticleView:
        article_id = int(request.match_info["id"])
        found = await self._kb().get(article_id)
        if found is None:
            raise HttpError(404, f"no knowledge article {article_id}")
        return found

    # ------------------------------------------------------------------ list

    async def _list(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        t = words_of(request, self._edge.cfg)
        q = request.query.get("q", "")[:200]
        category = request.query.get("category", "")
        found = await self._kb().search(
            q, category=category if category in CATEGORIES else None, limit=50
        )
        rows = join(
            tag(
                "tr",
                join(
                    [
                        tag("td", tag("a", a.title, href=f"/kb/{a.id}")),
                        tag("td", vocab(t, "category", a.category) or t.gettext("any")),
                        tag("td", vocab(t, "language", a.language)),
                        tag("td", t.when(a.updated_at)),
                    ]
                ),
            )
            for a in found
        )
        table = (
            render(
                """<table class="results" id="kb-results"><thead><tr><th>$h1</th><th>$h2</th><th>$h3</th><th>$h4</th></tr></thead><tbody>$rows</tbody></table>""",
                h1=t.gettext("Title"),
                h2=t.gettext("Category"),
                h3=t.gettext("Language"),
                h4=t.gettext("Last change"),
                rows=rows,
            )
            if found
            else tag("p", t.gettext("No article matches."), class_="muted", id="kb-none")
        )
        new = (
            tag("a", t.gettext("Write an article"), href="/kb/new", class_="button", id="kb-new")
            if may_write(ctx.actor, self._edge.cfg)
            else Markup("")
        )
        cats = [tag("option", t.gettext("any category"), value="")] + [
            tag("option", vocab(t, "category", c), value=c, selected=(c == category) or None)
            for c in CATEGORIES
        ]
        main = render(
            """<section class="card"><h1>$h</h1>
<form method="get" action="/kb" class="search" id="kb-search">
<input name="q" value="$q" placeholder="$ph" maxlength="200" autofocus>
<select name="category">$cats</select>
<button type="submit">$find</button> $new</form>
$table</section>""",
            h=t.gettext("Knowledge base"),
            q=q,
            ph=t.gettext("Words from the title, symptoms or steps"),
            cats=join(cats),
            find=t.gettext("Search"),
            new=new,
            table=table,
        )
        return self._page(t, ctx, t.gettext("Knowledge base"), main)

    # ------------------------------------------------------------------ one article

    async def _article(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request)
        t = words_of(request, self._edge.cfg)
        a = await self._get(request)
        versions = await self._kb().versions(a.id)
        history = join(
            tag(
                "li",
                t.gettext(
                    "{when} by {who}: {title}",
                    when=t.when(v.created_at),
                    who=v.author,
                    title=v.title,
                ),
            )
            for v in versions
        )
        edit = (
            tag("a", t.gettext("Edit"), href=f"/kb/{a.id}/edit", class_="button", id="kb-edit")
            if may_write(ctx.actor, self._edge.cfg)
            else Markup("")
        )
        saved = (
            tag("p", t.gettext("Saved."), class_="banner info")
            if request.query.get("saved")
            else ""
        )
        facts = [
            (t.gettext("Category"), vocab(t, "category", a.category) or t.gettext("any")),
            (
                t.gettext("Request type"),
                vocab(t, "request_type", a.request_type) or t.gettext("any"),
            ),
            (t.gettext("Language"), vocab(t, "language", a.language)),
            (t.gettext("Tags"), " ".join(a.tags)),
            (t.gettext("Written by"), a.created_by),
            (
                t.gettext("Last change"),
                t.gettext("{when} by {who}", when=t.when(a.updated_at), who=a.updated_by),
            ),
        ]
        if a.status != "published":
            facts.append((t.gettext("State"), t.gettext("Retired")))
        main = render(
            """<section class="card"><h1 id="kb-title">$title</h1>$saved
<dl class="facts">$facts</dl>
<h3>$sym_h</h3><div class="prewrap" id="kb-symptoms">$symptoms</div>
<h3>$steps_h</h3><div class="prewrap" id="kb-steps">$steps</div>
<p>$edit</p></section>
<section class="card"><h2>$hist_h</h2><ol class="timeline" id="kb-versions">$history</ol></section>
<p><a href="/kb">$back</a></p>""",
            title=a.title,
            saved=saved,
            facts=join(join([tag("dt", k), tag("dd", v)]) for k, v in facts if v),
            sym_h=t.gettext("Symptoms"),
            symptoms=a.symptoms or "—",
            steps_h=t.gettext("Steps"),
            steps=a.steps,
            edit=edit,
            hist_h=t.gettext("Earlier versions"),
            history=history,
            back=t.gettext("← Knowledge base"),
        )
        return self._page(t, ctx, a.title, main)

    # ------------------------------------------------------------------ writing

    def _need_writer(self, request: web.Request) -> RequestContext:
        ctx = self._edge.need(request, "agent", "supervisor")
        if not may_write(ctx.actor, self._edge.cfg):
            raise HttpError(403, "only experts and supervisors write knowledge articles")
        return ctx

    def _form(
        self,
        ctx: RequestContext,
        t: Translator,
        action: str,
        values: Mapping[str, str],
        *,
        version: int | None = None,
        error: str = "",
    ) -> Markup:
        def select(name: str, kind: str, options: tuple[str, ...], blank: str | None) -> Markup:
            current = values.get(name, "")
            opts = [tag("option", blank, value="")] if blank is not None else []
            opts += [
                tag("option", vocab(t, kind, o), value=o, selected=(o == current) or None)
                for o in options
            ]
            return tag("select", join(opts), name=name)

        return render(
            """<form method="post" action="$action" class="kb-form" id="kb-form">
$banner<input type="hidden" name="csrf_token" value="$csrf">$version
<label>$title_l <input name="title" value="$title" maxlength="200" required></label>
<label>$sym_l <textarea name="symptoms" rows="4">$symptoms</textarea></label>
<label>$steps_l <textarea name="steps" rows="8" required>$steps</textarea></label>
<label>$cat_l $cat</label>
<label>$rt_l $rt</label>
<label>$tags_l <input name="tags" value="$tags" maxlength="500"></label>
<label>$lang_l $lang</label>
<button type="submit">$save</button></form>""",
            action=action,
            banner=tag("p", error, class_="banner warn", role="alert", id="kb-error")
            if error
            else "",
            csrf=ctx.session.csrf_token,
            version=render('<input type="hidden" name="expected_version" value="$v">', v=version)
            if version
            else "",
            title_l=t.gettext("Title"),
            title=values.get("title", ""),
            sym_l=t.gettext("Symptoms"),
            symptoms=values.get("symptoms", ""),
            steps_l=t.gettext("Steps"),
            steps=values.get("steps", ""),
            cat_l=t.gettext("Category"),
            cat=select("category", "category", CATEGORIES, t.gettext("any")),
            rt_l=t.gettext("Request type"),
            rt=select("request_type", "request_type", REQUEST_TYPES, t.gettext("any")),
            tags_l=t.gettext("Tags"),
            tags=values.get("tags", ""),
            lang_l=t.gettext("Language"),
            lang=select("language", "language", LANGUAGES, None),
            save=t.gettext("Save"),
        )

    async def _new(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need_writer(request)
        t = words_of(request, self._edge.cfg)
        lang = "zh" if t.locale.startswith("zh") else "en"
        form = self._form(ctx, t, "/kb/new", {"language": lang})
        return self._page(
            t,
            ctx,
            t.gettext("New article"),
            render(
                '<section class="card"><h1>$h</h1>$f</section>', h=t.gettext("New article"), f=form
            ),
        )

    async def _create(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need_writer(request)
        t = words_of(request, self._edge.cfg)
        typed = await form_fields(request)
        try:
            a = await self._kb().create(author_of(ctx.actor, self._edge.cfg), article_fields(typed))
        except RequestRefusedError as exc:
            form = self._form(ctx, t, "/kb/new", typed, error=str(exc))
            resp = self._page(
                t,
                ctx,
                t.gettext("New article"),
                render(
                    '<section class="card"><h1>$h</h1>$f</section>',
                    h=t.gettext("New article"),
                    f=form,
                ),
            )
            resp.set_status(400)
            return resp
        return see_other(f"/kb/{a.id}?saved=1")

    async def _edit_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need_writer(request)
        t = words_of(request, self._edge.cfg)
        a = await self._get(request)
        values = {
            "title": a.title,
            "symptoms": a.symptoms,
            "steps": a.steps,
            "category": a.category or "",
            "request_type": a.request_type or "",
            "tags": " ".join(a.tags),
            "language": a.language,
        }
        form = self._form(ctx, t, f"/kb/{a.id}/edit", values, version=a.version)
        return self._page(
            t,
            ctx,
            a.title,
            render(
                '<section class="card"><h1>$h</h1>$f</section>',
                h=t.gettext("Edit the article"),
                f=form,
            ),
        )

    async def _edit(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need_writer(request)
        t = words_of(request, self._edge.cfg)
        article_id = int(request.match_info["id"])
        typed = await form_fields(request)
        version = typed.get("expected_version", "")
        fields = article_fields(typed)
        for key in ("category", "request_type"):
            fields.setdefault(key, "")
        try:
            a = await self._kb().edit(
                article_id,
                author_of(ctx.actor, self._edge.cfg),
                fields,
                expected_version=int(version) if version.isdigit() else None,
            )
        except (RequestRefusedError, StateConflictError) as exc:
            current = await self._get(request)
            message = str(exc)
            if isinstance(exc, StateConflictError):
                message = t.gettext(
                    "Not saved: {reason} What you typed is kept; the article now reads: {title}",
                    reason=message,
                    title=current.title,
                )
            form = self._form(
                ctx, t, f"/kb/{article_id}/edit", typed, version=current.version, error=message
            )
            resp = self._page(
                t,
                ctx,
                current.title,
                render(
                    '<section class="card"><h1>$h</h1>$f</section>',
                    h=t.gettext("Edit the article"),
                    f=form,
                ),
            )
            resp.set_status(409 if isinstance(exc, StateConflictError) else 400)
            return resp
        return see_other(f"/kb/{a.id}?saved=1")
