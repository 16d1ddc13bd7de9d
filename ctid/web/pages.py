"""Server-side HTML of the shared layout (per-role navigation, language switch, the words a page's
script needs), login, desk, caller search and error pages. Every value goes through `ctid.web.html` escaping; live data arrives as
JSON over WebSockets and the scripts render it with `textContent` only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from babel.messages.extract import extract

from ctid.core.actor import (
    Actor,
)
from ctid.i18n import N_, Translator, translator
from ctid.tickets.forms import (
    CallerRow,
)
from ctid.web.html import Markup, attrs, join, render, tag

_LAYOUT = """<!doctype html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · $site</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
<link rel="stylesheet" href="/static/forms.css">
$styles
$words
</head>
<body$body_attrs>
<header class="topbar">
  <span class="brand">$site</span>
  <nav>$nav</nav>
  <span class="lang-switch">$lang_switch</span>
  <span class="who">$who</span>
</header>
<main class="$main_class">
$main
</main>
$scripts
</body>
</html>
"""


def _label(value: str) -> str:
    return value.replace("_", " ")


_NAV: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (N_("Desk"), "/desk", ("agent", "supervisor")),
    (N_("Incidents"), "/incidents", ("agent", "supervisor", "ops")),
    (N_("Callbacks"), "/callbacks", ("agent", "supervisor")),
    (N_("Callers"), "/callers", ("agent", "supervisor", "ops")),
    (N_("Knowledge base"), "/kb", ("agent", "supervisor", "ops")),
    (N_("Wallboard"), "/supervisor", ("supervisor", "ops")),
    (N_("Roster"), "/ops/roster", ("ops",)),
    (N_("Reports"), "/reports", ("supervisor", "ops")),
)

LANGUAGES: tuple[tuple[str, str], ...] = (("zh_CN", "中文"), ("en", "English"))
"""The language switch: each language named in itself, so anyone finds their own."""

_ENGLISH = translator("en")
STATIC_DIR = Path(__file__).resolve().parent / "static"


@cache
def script_messages(name: str) -> tuple[str, ...]:
    """Every `t("…")` text of the page script `static/<name>` (read once): the words the page
    embeds for it, so a string added to the script needs no second list here."""
    found: list[str] = []
    with (STATIC_DIR / name).open("rb") as fh:
        for _line, message, _comments, _context in extract(
            "javascript", fh, keywords={"t": None}, comment_tags=()
        ):
            first = message[0] if isinstance(message, tuple) else message
            if first and first not in found:
                found.append(first)
    return tuple(found)


def nav_links(role: str, t: Translator = _ENGLISH) -> list[tuple[str, str]]:
    """(label, path) of the pages `role` may open, in menu order."""
    return [(t.gettext(label), href) for label, href, roles in _NAV if role in roles]


def language_switch(t: Translator) -> Markup:
    """Links to `/lang?to=…` for the languages other than the page's own."""
    return join(
        (
            tag("a", name, href=f"/lang?to={code}", lang=code.replace("_", "-"), hreflang=code)
            if code != t.locale
            else tag("span", name, class_="current", aria_current="true")
            for code, name in LANGUAGES
        ),
        " · ",
    )


def words_json(t: Translator, messages: Sequence[str]) -> Markup:
    """The words a page's script needs (`t("…")` in JS) as JSON in a non-executed script tag,
    which the strict CSP allows; `<` is escaped so no text can close the tag."""
    data = json.dumps(dict(t.words(messages)), ensure_ascii=False).replace("<", "\\u003c")
    return Markup(f'<script type="application/json" id="ctid-words">{data}</script>')


def layout(
    *,
    site: str,
    title: str,
    main: Markup,
    actor: Actor | None = None,
    csrf: str = "",
    scripts: Sequence[str] = (),
    body_attrs: dict[str, object] | None = None,
    main_class: str = "page",
    t: Translator | None = None,
    script_words: Sequence[str] = (),
    styles: Sequence[str] = (),
) -> Markup:
    """The page around `main`. `t` is the request's translator (`translator_of(request)`);
    `script_words` are the English texts the page's script asks `t("…")` for."""
    t = t or _ENGLISH
    nav: Markup = Markup("")
    who: Markup = Markup("")
    if actor is not None:
        nav = join((tag("a", label, href=href) for label, href in nav_links(actor.role, t)), " ")
        seat = f" · {actor.seat_id}" if actor.seat_id else ""
        who = render(
            """<span>$name ($emp$seat)</span>
  <form method="post" action="/logout" class="inline">
    <input type="hidden" name="csrf_token" value="$csrf">
    <button type="submit" class="link">$logout</button>
  </form>""",
            name=actor.name,
            emp=actor.employee_id,
            seat=seat,
            csrf=csrf,
            logout=t.gettext("Log out"),
        )
    return render(
        _LAYOUT,
        lang=t.locale.replace("_", "-"),
        words=words_json(t, script_words) if script_words else "",
        lang_switch=language_switch(t),
        styles=join(tag("link", rel="stylesheet", href=h) for h in styles),
        title=title,
        site=site,
        body_attrs=attrs(body_attrs or {}),
        nav=nav,
        who=who,
        main=main,
        main_class=main_class,
        scripts=join(tag("script", "", src=s, defer=True) for s in scripts),
    )


def login_page(
    *,
    site: str,
    form_token: str,
    message: str = "",
    employee_id: str = "",
    t: Translator = _ENGLISH,
) -> Markup:
    main = render(
        """<section class="card login">
  <h1>$sign_in</h1>
  $message
  <form method="post" action="/login" autocomplete="on">
    <input type="hidden" name="csrf_token" value="$token">
    <label>$l_emp <abbr class="req" title="$required">*</abbr>
      <input name="employee_id" value="$employee_id" autocomplete="username" required maxlength="32" autofocus>
    </label>
    <label>$l_pw <abbr class="req" title="$required">*</abbr>
      <input name="password" type="password" autocomplete="current-password" required maxlength="1024">
    </label>
    <button type="submit">$sign_in</button>
  </form>
</section>""",
        message=tag("p", message, class_="error", role="alert") if message else "",
        token=form_token,
        employee_id=employee_id,
        sign_in=t.gettext("Sign in"),
        l_emp=t.gettext("Employee ID"),
        l_pw=t.gettext("Password"),
        required=t.gettext("required"),
    )
    return layout(site=site, title=t.gettext("Sign in"), main=main, t=t)


def _options(values: Sequence[str], blank: str | None = None) -> Markup:
    opts = [tag("option", blank, value="")] if blank is not None else []
    opts += [tag("option", _label(v), value=v) for v in values]
    return join(opts)


def desk_page(
    *, site: str, actor: Actor, csrf: str, seat_ids: Sequence[str], t: Translator
) -> Markup:
    """`/desk` for someone with no seat to work: a supervisor picks one to follow, ops are sent to
    their pages, an agent off the roster is told what to do (the seat's own desk is
    `desk_page.desk_page`)."""
    title = t.gettext("Desk")
    if actor.role == "supervisor":
        links = join((tag("li", tag("a", s, href=f"/desk?seat={s}")) for s in seat_ids), "\n")
        body = render(
            "<p>$pick</p><ul>$links</ul>", pick=t.gettext("Pick a seat to follow:"), links=links
        )
    elif actor.role == "ops":
        body = render(
            '<p>$text <a href="/ops/roster">$roster</a> · <a href="/supervisor">$board</a> · '
            '<a href="/reports">$reports</a></p>',
            text=t.gettext("Ops take no calls. Open:"),
            roster=t.gettext("Roster"),
            board=t.gettext("Wallboard"),
            reports=t.gettext("Reports"),
        )
    else:
        body = tag(
            "p",
            t.gettext(
                "You are not assigned to a seat right now. Ask ops to put you on the roster, "
                "then reload."
            ),
            class_="notice",
        )
    main = render('<section class="card"><h1>$title</h1>$body</section>', title=title, body=body)
    return layout(site=site, title=title, main=main, actor=actor, csrf=csrf, t=t)


def callers_page(
    *,
    site: str,
    actor: Actor,
    csrf: str,
    query: str,
    rows: Sequence[CallerRow] | None,
    t: Translator = _ENGLISH,
) -> Markup:
    if rows is None:
        results: Markup = Markup("")
    elif not rows:
        results = tag("p", t.gettext("No caller matches “{query}”.", query=query), class_="muted")
    else:
        body = join(
            tag(
                "tr",
                join(
                    [
                        tag(
                            "td",
                            join(
                                [
                                    tag("a", r.name, href=f"/callers/{r.caller_id}"),
                                    tag("span", "VIP", class_="badge vip") if r.vip else "",
                                ],
                                " ",
                            ),
                        ),
                        tag("td", r.employee_id),
                        tag("td", ", ".join(r.phones)),
                        tag("td", r.department),
                        tag("td", r.office),
                        tag("td", t.number(r.open_incidents), class_="num"),
                    ]
                ),
            )
            for r in rows
        )
        heads = (
            N_("Name"),
            N_("Employee ID"),
            N_("Phones"),
            N_("Department"),
            N_("Office"),
            N_("Open incidents"),
        )
        results = render(
            """<table class="results">
<thead><tr>$heads</tr></thead>
<tbody>$body</tbody>
</table>""",
            heads=join(tag("th", t.gettext(h)) for h in heads),
            body=body,
        )
    main = render(
        """<section class="card">
  <h1>$title</h1>
  <form method="get" action="/callers" class="search">
    <input name="q" value="$query" placeholder="$placeholder" aria-label="$placeholder" maxlength="64" autofocus>
    <button type="submit">$search</button>
  </form>
  $results
</section>""",
        title=t.gettext("Callers"),
        placeholder=t.gettext("Name, employee ID or phone"),
        search=t.gettext("Search"),
        query=query,
        results=results,
    )
    return layout(site=site, title=t.gettext("Callers"), main=main, actor=actor, csrf=csrf, t=t)


_STATUS_WORDS = {
    400: N_("The request was refused"),
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Changed meanwhile"),
    410: N_("This link has expired"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
}


def error_page(
    *,
    site: str,
    status: int,
    message: str,
    actor: Actor | None = None,
    csrf: str = "",
    t: Translator = _ENGLISH,
) -> Markup:
    heading = t.gettext(_STATUS_WORDS[status]) if status in _STATUS_WORDS else str(status)
    main = render(
        """<section class="card"><h1>$heading <span class="muted">($status)</span></h1><p>$message</p><p><a href="/">$back</a></p></section>""",
        heading=heading,
        status=status,
        message=message,
        back=t.gettext("Back to the start page"),
    )
    return layout(site=site, title=heading, main=main, actor=actor, csrf=csrf, t=t)
