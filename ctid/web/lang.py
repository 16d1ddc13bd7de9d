"""The language of a request (the user's own choice in the `ctid_lang` cookie, else the browser's
`Accept-Language`, else `site.language`), its `Translator`, and `/lang` to choose one."""

from __future__ import annotations

import json
from collections.abc import Iterable

from aiohttp import web

from ctid.config import Config
from ctid.i18n import Translator, negotiate, normalise, translator
from ctid.web.html import Markup, render

LANG_COOKIE = "ctid_lang"


def request_locale(request: web.Request, cfg: Config) -> str:
    return negotiate(
        choice=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("Accept-Language"),
        default=cfg.site.language,
    )


def request_translator(request: web.Request, cfg: Config) -> Translator:
    return translator(request_locale(request, cfg), cfg.site.timezone)


def words_script(t: Translator, messages: Iterable[str]) -> Markup:
    """The words a page's script needs, as JSON its `t()` reads (not executed, so the strict CSP
    allows it). `<` is escaped so no text can close the element."""
    data = json.dumps(dict(t.words(messages)), ensure_ascii=False).replace("<", "\\u003c")
    return render(
        '<script type="application/json" id="ctid-words">$data</script>', data=Markup(data)
    )


async def choose_language(request: web.Request) -> web.StreamResponse:
    """`GET /lang?to=en|zh_CN&next=/desk`: remember the choice (a preference cookie, no
    session state), then go back to a local page."""
    to = normalise(request.query.get("to"))
    nxt = request.query.get("next", "/")
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"
    response = web.HTTPSeeOther(nxt)
    if to:
        response.set_cookie(
            LANG_COOKIE, to, max_age=365 * 86400, path="/", samesite="Lax", httponly=True
        )
    raise response
