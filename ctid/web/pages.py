"""Server-side HTML of the shared layout (per-role navigation), login, desktop, caller search,
wallboard and error pages. Every value goes through `ctid.web.html` escaping; live data arrives as
JSON over WebSockets and the scripts render it with `textContent` only."""

from __future__ import annotations

from collections.abc import Sequence

from ctid.core.actor import (
    Actor,
)
from ctid.tickets.forms import (
    CallerRow,
)
from ctid.tickets.vocabulary import (
    CATEGORIES,
    LEVELS,
    REQUEST_TYPES,
)
from ctid.web.html import Markup, attrs, join, render, tag

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · $site</title>
<link rel="stylesheet" href="/static/app.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body$body_attrs>
<header class="topbar">
  <span class="brand">$site</span>
  <nav>$nav</nav>
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
    ("Desk", "/desk", ("agent", "supervisor")),
    ("Incidents", "/incidents", ("agent", "supervisor", "ops")),
    ("Callbacks", "/callbacks", ("agent", "supervisor")),
    ("Callers", "/callers", ("agent", "supervisor", "ops")),
    ("Wallboard", "/supervisor", ("supervisor", "ops")),
    ("Roster", "/ops/roster", ("ops",)),
    ("Reports", "/reports", ("supervisor", "ops")),
)


def nav_links(role: str) -> list[tuple[str, str]]:
    """(label, path) of the pages `role` may open, in menu order."""
    return [(label, href) for label, href, roles in _NAV if role in roles]


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
) -> Markup:
    nav: Markup = Markup("")
    who: Markup = Markup("")
    if actor is not None:
        nav = join((tag("a", label, href=href) for label, href in nav_links(actor.role)), " ")
        seat = f" · {actor.seat_id}" if actor.seat_id else ""
        who = render(
            """<span>$name ($emp$seat)</span>
  <form method="post" action="/logout" class="inline">
    <input type="hidden" name="csrf_token" value="$csrf">
    <button type="submit" class="link">Log out</button>
  </form>""",
            name=actor.name,
            emp=actor.employee_id,
            seat=seat,
            csrf=csrf,
        )
    return render(
        _LAYOUT,
        title=title,
        site=site,
        body_attrs=attrs(body_attrs or {}),
        nav=nav,
        who=who,
        main=main,
        main_class=main_class,
        scripts=join(tag("script", "", src=s, defer=True) for s in scripts),
    )


def login_page(*, site: str, form_token: str, message: str = "", employee_id: str = "") -> Markup:
    main = render(
        """<section class="card login">
  <h1>Sign in</h1>
  $message
  <form method="post" action="/login" autocomplete="on">
    <input type="hidden" name="csrf_token" value="$token">
    <label>Employee ID
      <input name="employee_id" value="$employee_id" autocomplete="username" required maxlength="32" autofocus>
    </label>
    <label>Password
      <input name="password" type="password" autocomplete="current-password" required maxlength="1024">
    </label>
    <button type="submit">Sign in</button>
  </form>
</section>""",
        message=tag("p", message, class_="error", role="alert") if message else "",
        token=form_token,
        employee_id=employee_id,
    )
    return layout(site=site, title="Sign in", main=main)


def _options(values: Sequence[str], blank: str | None = None) -> Markup:
    opts = [tag("option", blank, value="")] if blank is not None else []
    opts += [tag("option", _label(v), value=v) for v in values]
    return join(opts)


def _incident_form(csrf: str) -> Markup:
    return render(
        """<form id="incident-form" class="incident-form" novalidate>
  <input type="hidden" name="csrf_token" value="$csrf">
  <input type="hidden" name="call_id">
  <input type="hidden" name="caller_id">
  <input type="hidden" name="number">
  <div class="grid2">
    <label>Caller name <input name="caller_name" maxlength="128" required></label>
    <label>Phone <input name="phone" maxlength="64"></label>
    <label>Department <input name="department" maxlength="128"></label>
    <label>Office <input name="office" maxlength="128"></label>
    <label>Request type <select name="request_type" required>$request_types</select></label>
    <label>Category <select name="category" required>$categories</select></label>
    <label>Impact <select name="impact" required>$impact</select></label>
    <label>Urgency <select name="urgency" required>$urgency</select></label>
  </div>
  <label>Summary <input name="summary" maxlength="200" required></label>
  <label>Description <textarea name="description" rows="5" maxlength="4000"></textarea></label>
  <div class="actions">
    <button type="submit" id="save-incident">Save incident</button>
    <span id="save-status" role="status" aria-live="polite"></span>
  </div>
</form>""",
        csrf=csrf,
        request_types=_options(REQUEST_TYPES, "—"),
        categories=_options(CATEGORIES, "—"),
        impact=_options(LEVELS, "—"),
        urgency=_options(LEVELS, "—"),
    )


_DESK = """<div id="banner" class="banner" role="alert" hidden></div>
<div class="statusline">
  <span>Seat <strong>$seat</strong></span>
  <span id="conn" class="conn conn-down">connecting…</span>
  <button type="button" id="notify-btn" class="secondary" hidden>Enable desktop notifications</button>
</div>
<div class="desk">
  <section id="pop" class="card pop" aria-live="polite">
    <p id="pop-empty" class="muted">No call right now. The next call for this seat pops here.</p>
    <p id="last-note" class="muted" hidden></p>
    <div id="pop-body" hidden>
      <div class="pop-head">
        <span id="pop-state" class="badge"></span>
        <span id="ring-countdown" class="countdown" hidden></span>
        <span id="talk-timer" class="timer" hidden></span>
        <span id="cap-countdown" class="timer" hidden></span>
      </div>
      <h2><span id="caller-name"></span> <span id="caller-vip" class="badge vip" hidden>VIP</span></h2>
      <dl class="facts">
        <dt>Number</dt><dd id="caller-number"></dd>
        <dt>Department</dt><dd id="caller-department"></dd>
        <dt>Office</dt><dd id="caller-office"></dd>
        <dt>Employee ID</dt><dd id="caller-employee"></dd>
        <dt>IVR choice</dt><dd id="ivr-choice"></dd>
        <dt>Waited</dt><dd id="waited"></dd>
      </dl>
      <div id="chooser" class="chooser" hidden>
        <h3>Several callers use this number — who is it?</h3>
        <ul id="chooser-list"></ul>
      </div>
      <p id="new-caller" class="notice" hidden>Unknown number: a new caller. The form is prefilled with what the phone sent.</p>
      <div class="cols">
        <section><h3>Open incidents</h3><ul id="open-incidents" class="lines"></ul></section>
        <section><h3>Last contacts</h3><ul id="recent-contacts" class="lines"></ul></section>
      </div>
      <section id="wrapup" class="notice" hidden></section>
    </div>
  </section>
  <aside class="side">
    <section id="sop" class="card" hidden>
      <h3>Call script</h3>
      <ol id="sop-list" class="sop"></ol>
    </section>
    <section class="card">
      <h3>Incident <span id="incident-number" class="mono"></span></h3>
      $form
    </section>
  </aside>
</div>"""


def desk_page(
    *, site: str, actor: Actor, csrf: str, seat_id: str | None, seat_ids: Sequence[str]
) -> Markup:
    if seat_id is None:
        if actor.role == "supervisor":
            links = join((tag("li", tag("a", s, href=f"/desk?seat={s}")) for s in seat_ids), "\n")
            main = render(
                '<section class="card"><h1>Desk</h1><p>Pick a seat to follow:</p>'
                "<ul>$links</ul></section>",
                links=links,
            )
        elif actor.role == "ops":
            main = Markup(
                '<section class="card"><h1>Desk</h1><p>Ops take no calls. Open the '
                '<a href="/ops/roster">roster</a>, the <a href="/supervisor">wallboard</a> or the '
                '<a href="/reports">reports</a>.</p></section>'
            )
        else:
            main = Markup(
                '<section class="card"><h1>Desk</h1><p class="notice">You are not assigned to a '
                "seat right now. Ask ops to put you on the roster, then reload.</p></section>"
            )
        return layout(site=site, title="Desk", main=main, actor=actor, csrf=csrf)
    main = render(_DESK, seat=seat_id, form=_incident_form(csrf))
    return layout(
        site=site,
        title=f"Desk {seat_id}",
        main=main,
        actor=actor,
        csrf=csrf,
        scripts=["/static/desk.js"],
        body_attrs={"data-seat": seat_id, "data-csrf": csrf, "class": "desk-page"},
        main_class="page wide",
    )


def callers_page(
    *, site: str, actor: Actor, csrf: str, query: str, rows: Sequence[CallerRow] | None
) -> Markup:
    if rows is None:
        results: Markup = Markup("")
    elif not rows:
        results = tag("p", f"No caller matches “{query}”.", class_="muted")
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
                        tag("td", r.open_incidents),
                    ]
                ),
            )
            for r in rows
        )
        results = render(
            """<table class="results">
<thead><tr><th>Name</th><th>Employee ID</th><th>Phones</th><th>Department</th><th>Office</th><th>Open incidents</th></tr></thead>
<tbody>$body</tbody>
</table>""",
            body=body,
        )
    main = render(
        """<section class="card">
  <h1>Callers</h1>
  <form method="get" action="/callers" class="search">
    <input name="q" value="$query" placeholder="Name, employee ID or phone" maxlength="64" autofocus>
    <button type="submit">Search</button>
  </form>
  $results
</section>""",
        query=query,
        results=results,
    )
    return layout(site=site, title="Callers", main=main, actor=actor, csrf=csrf)


_STATUS_LABELS = {
    "available": "Available",
    "ringing": "Ringing",
    "on_call": "On call",
    "wrap_up": "Wrap-up",
    "paused": "Paused",
    "offline": "Offline",
}

_KPI_TILES = (
    ("offered", "Offered"),
    ("answered", "Answered"),
    ("abandoned", "Abandoned"),
    ("loss_rate", "Loss rate"),
    ("within_rings_pct", "Within 3 rings"),
    ("asa_s", "Avg. answer"),
    ("aht_s", "Avg. talk"),
    ("over_cap", "Over cap"),
)


def _spy_buttons(seat: str) -> Markup:
    return render(
        """<div class="spy-buttons" hidden>
  <button type="button" data-spy="$seat" data-mode="listen">Listen</button>
  <button type="button" class="secondary" data-spy="$seat" data-mode="whisper">Whisper</button>
  <button type="button" class="secondary" data-spy="$seat" data-mode="barge">Barge</button>
</div>""",
        seat=seat,
    )


def supervisor_page(
    *,
    site: str,
    actor: Actor,
    csrf: str,
    seats: Sequence[tuple[str, str, str]],
    ring_cadence_s: float,
    max_rings: int,
    talk_cap_s: int,
    can_spy: bool,
    timezone: str,
) -> Markup:
    """The wallboard: seat cards (filled live by `static/supervisor.js` from `/ws/supervisor`),
    queues, today's KPIs, desk mode, alerts, and listen/whisper/barge for supervisors. `seats`
    are (id, name, tier) from config so the board has its shape before the first frame."""
    cards = join(
        render(
            """<article class="seat-card status-offline" data-seat="$seat">
  <header><strong class="seat-name">$name</strong> <span class="seat-tier badge">$tier</span></header>
  <div class="seat-status badge">—</div>
  <div class="seat-line seat-reason"></div>
  <div class="seat-line seat-ring"></div>
  <div class="seat-line seat-talk"></div>
  <div class="seat-line seat-caller"></div>
  $spy
</article>""",
            seat=seat_id,
            name=name,
            tier=tier,
            spy=_spy_buttons(seat_id) if can_spy else "",
        )
        for seat_id, name, tier in seats
    )
    tiles = join(
        render(
            """<div class="tile"><span class="tile-label">$label</span><span class="tile-value" id="kpi-$key">–</span></div>""",
            key=key,
            label=label,
        )
        for key, label in _KPI_TILES
    )
    spy_panel = Markup(
        """<section id="spy-panel" class="card spy-panel" hidden>
  <span id="spy-what"></span>
  <button type="button" class="secondary" data-spy-mode="listen">Listen</button>
  <button type="button" class="secondary" data-spy-mode="whisper">Whisper</button>
  <button type="button" class="secondary" data-spy-mode="barge">Barge</button>
  <button type="button" id="spy-stop">Stop</button>
</section>"""
        if can_spy
        else ""
    )
    main = render(
        """<div id="banner" class="banner" role="alert" hidden></div>
<div class="wb-head">
  <h1>Wallboard</h1>
  <span id="desk-mode" class="badge">desk —</span>
  <span id="desk-next" class="muted"></span>
  <span id="ami-state" class="badge">AMI —</span>
  <span id="conn" class="conn conn-down">connecting…</span>
  <button type="button" id="theme-toggle" class="secondary">Dark theme</button>
</div>
<section class="wb-kpis" aria-label="Today">$tiles</section>
<p id="spy-status" role="status" class="muted"></p>
$spy_panel
<div class="wb-body">
  <section class="seat-grid" id="seats" aria-label="Seats">$cards</section>
  <aside class="wb-side">
    <section class="card"><h2>Waiting</h2><div id="queues"><p class="muted">No data yet.</p></div></section>
    <section class="card"><h2>Alerts</h2><ol id="alerts" class="alerts"></ol></section>
  </aside>
</div>""",
        tiles=tiles,
        cards=cards,
        spy_panel=spy_panel,
    )
    return layout(
        site=site,
        title="Wallboard",
        main=main,
        actor=actor,
        csrf=csrf,
        scripts=["/static/supervisor.js"],
        body_attrs={
            "data-csrf": csrf,
            "data-ring-cadence": ring_cadence_s,
            "data-max-rings": max_rings,
            "data-talk-cap": talk_cap_s,
            "data-can-spy": "1" if can_spy else "0",
            "data-tz": timezone,
            "class": "wallboard-page",
        },
        main_class="page wall",
    )


def error_page(
    *, site: str, status: int, message: str, actor: Actor | None = None, csrf: str = ""
) -> Markup:
    main = render(
        """<section class="card"><h1>$status</h1><p>$message</p><p><a href="/">Back to the start page</a></p></section>""",
        status=status,
        message=message,
    )
    return layout(site=site, title=str(status), main=main, actor=actor, csrf=csrf)
