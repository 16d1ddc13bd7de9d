"""The wallboard page (`/supervisor`): seat cards, the desk's figures against their thresholds,
lunch duty, pause/unpause and listen-in, with the words `static/supervisor.js` renders the live
data in (from `/ws/supervisor` and `GET /api/seats`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from aiohttp import web

from ctid.calls.seat_state import AGENT_PAUSE_WORDS
from ctid.config import Config
from ctid.core.actor import Actor
from ctid.i18n import N_, Translator
from ctid.rotation.lunch import LunchRotation, RotationError
from ctid.web.edge import Edge, html_response
from ctid.web.html import Markup, join, render, tag
from ctid.web.middleware import translator_of
from ctid.web.pages import layout, script_messages
from ctid.web.ports import SeatDirectory, SpyPort
from ctid.web.sockets import WALLBOARD_ROLES

_TILES: tuple[tuple[str, str, str], ...] = (
    ("service_level", N_("Service level"), N_("answered within {rings} rings")),
    ("loss_rate", N_("Loss rate"), N_("offered, not answered")),
    ("longest_wait", N_("Longest wait"), N_("in the queues now")),
    ("offered", N_("Offered"), ""),
    ("answered", N_("Answered"), ""),
    ("abandoned", N_("Abandoned"), ""),
    ("asa_s", N_("Avg. answer"), ""),
    ("aht_s", N_("Avg. talk"), ""),
    ("over_cap", N_("Over cap"), ""),
)


def _pause_controls(t: Translator, seat: str) -> Markup:
    options = join(
        tag("option", t.gettext(words), value=reason) for reason, words in AGENT_PAUSE_WORDS.items()
    )
    return render(
        """<div class="seat-actions">
  <button type="button" class="unpause" data-unpause="$seat" hidden>$unpause</button>
  <span class="pause-box" hidden>
    <select class="pause-reason" aria-label="$why">$options</select>
    <button type="button" class="secondary" data-pause="$seat">$pause</button>
  </span>
</div>""",
        seat=seat,
        unpause=t.gettext("Unpause"),
        pause=t.gettext("Pause"),
        why=t.gettext("Reason for the pause"),
        options=options,
    )


def _spy_buttons(t: Translator, seat: str) -> Markup:
    return render(
        """<div class="spy-buttons" hidden>
  <button type="button" data-spy="$seat" data-mode="listen">$listen</button>
  <button type="button" class="secondary" data-spy="$seat" data-mode="whisper">$whisper</button>
  <button type="button" class="secondary" data-spy="$seat" data-mode="barge">$barge</button>
</div>""",
        seat=seat,
        listen=t.gettext("Listen"),
        whisper=t.gettext("Whisper"),
        barge=t.gettext("Barge"),
    )


def wallboard_page(
    *,
    t: Translator,
    cfg: Config,
    actor: Actor,
    csrf: str,
    seats: Sequence[tuple[str, str, str]],
    can_spy: bool,
    can_pause: bool,
    today: date,
) -> Markup:
    """One card per seat (agent, state and time in it, today's answered/missed/average talk), the
    desk's tiles (service level, loss rate, longest wait against the configured thresholds,
    today's counts), lunch duty, and the spy panel. `seats` are (id, name, tier) so the board
    has its shape before the first frame."""
    tier_words = {"ordinary": t.gettext("Ordinary"), "expert": t.gettext("Expert")}
    cards = join(
        render(
            """<article class="seat-card state-logged_out" data-seat="$seat">
  <header><strong class="seat-name">$name</strong> <span class="seat-tier badge">$tier</span></header>
  <div class="seat-agent"></div>
  <div class="seat-state-line"><span class="seat-status badge">—</span> <span class="seat-since"></span></div>
  <div class="seat-line seat-reason"></div>
  <div class="seat-line seat-ring"></div>
  <div class="seat-line seat-talk"></div>
  <div class="seat-line seat-caller"></div>
  <dl class="seat-today" aria-label="$today">
    <div><dt>$answered</dt><dd class="today-answered">–</dd></div>
    <div><dt>$missed</dt><dd class="today-missed">–</dd></div>
    <div><dt>$avg_talk</dt><dd class="today-avg">–</dd></div>
  </dl>
  $pause
  $spy
</article>""",
            seat=seat_id,
            name=name,
            tier=tier_words.get(tier, tier),
            today=t.gettext("Today"),
            answered=t.gettext("Answered"),
            missed=t.gettext("Missed"),
            avg_talk=t.gettext("Avg. talk"),
            pause=_pause_controls(t, seat_id) if can_pause else "",
            spy=_spy_buttons(t, seat_id) if can_spy else "",
        )
        for seat_id, name, tier in seats
    )
    tiles = join(
        render(
            """<div class="tile" id="tile-$key"><span class="tile-label">$label</span><span class="tile-value" id="kpi-$key">–</span><span class="tile-note">$note</span></div>""",
            key=key,
            label=t.gettext(label),
            note=t.gettext(note, rings=cfg.ring.max_rings) if note else "",
        )
        for key, label, note in _TILES
    )
    wb = cfg.wallboard
    spy_panel = (
        render(
            """<section id="spy-panel" class="card spy-panel" hidden>
  <span id="spy-what"></span>
  <button type="button" class="secondary" data-spy-mode="listen">$listen</button>
  <button type="button" class="secondary" data-spy-mode="whisper">$whisper</button>
  <button type="button" class="secondary" data-spy-mode="barge">$barge</button>
  <button type="button" id="spy-stop">$stop</button>
</section>""",
            listen=t.gettext("Listen"),
            whisper=t.gettext("Whisper"),
            barge=t.gettext("Barge"),
            stop=t.gettext("Stop"),
        )
        if can_spy
        else ""
    )
    main = render(
        """<div id="banner" class="banner" role="alert" hidden></div>
<div class="wb-head">
  <h1>$title</h1>
  <span id="desk-mode" class="badge">—</span>
  <span id="desk-next" class="muted"></span>
  <span id="lunch-duty" class="lunch-duty"></span>
  <span id="ami-state" class="badge">AMI —</span>
  <span id="conn" class="conn conn-down">$connecting</span>
  <button type="button" id="theme-toggle" class="secondary">$dark</button>
</div>
<section class="wb-kpis" aria-label="$today">$tiles</section>
<p id="spy-status" role="status" class="muted"></p>
<p id="seat-status-msg" role="status" class="muted"></p>
$spy_panel
<div class="wb-body">
  <section class="seat-grid" id="seats" aria-label="$seats_label">$cards</section>
  <aside class="wb-side">
    <section class="card side-card"><h2>$waiting</h2><div id="queues"><p class="muted">$no_data</p></div></section>
    <section class="card side-card"><h2>$alerts</h2><p id="alerts-empty" class="muted">$no_alerts</p><ol id="alerts" class="alerts"></ol></section>
  </aside>
</div>""",
        title=t.gettext("Wallboard"),
        connecting=t.gettext("connecting…"),
        dark=t.gettext("Dark theme"),
        today=t.gettext("Today"),
        tiles=tiles,
        cards=cards,
        seats_label=t.gettext("Seats"),
        waiting=t.gettext("Waiting"),
        no_data=t.gettext("No data yet."),
        alerts=t.gettext("Alerts"),
        no_alerts=t.gettext("No alerts."),
        spy_panel=spy_panel,
    )
    return layout(
        t=t,
        site=cfg.site.name,
        title=t.gettext("Wallboard"),
        main=main,
        actor=actor,
        csrf=csrf,
        scripts=["/static/supervisor.js"],
        styles=["/static/wallboard.css"],
        script_words=script_messages("supervisor.js"),
        body_attrs={
            "data-csrf": csrf,
            "data-ring-cadence": cfg.ring.ring_cadence_s,
            "data-max-rings": cfg.ring.max_rings,
            "data-talk-cap": cfg.talk_cap.talk_cap_s,
            "data-can-spy": "1" if can_spy else "0",
            "data-can-pause": "1" if can_pause else "0",
            "data-tz": cfg.site.timezone,
            "data-lang": t.locale.replace("_", "-"),
            "data-sl-target": wb.service_level_target,
            "data-sl-red": wb.service_level_red_below,
            "data-loss-amber": wb.loss_rate_amber,
            "data-loss-red": wb.loss_rate_red,
            "data-wait-amber": wb.longest_wait_amber_s,
            "data-wait-red": wb.longest_wait_red_s,
            "data-lunch-today": _lunch_group_on(cfg, today),
            "data-lunch-groups": ";".join(
                f"{g.name}:{','.join(g.seats)}" for g in cfg.lunch.groups
            ),
            "class": "wallboard-page",
        },
        main_class="page wall",
    )


def _lunch_group_on(cfg: Config, day: date) -> str:
    """The rota's lunch group for `day` from config (day overrides show once lunch starts: the
    live desk state names the group then)."""
    try:
        rotation = LunchRotation.from_config(cfg.lunch, cfg.seats)
        return rotation.duty_on(day).group.name if rotation.active else ""
    except RotationError:
        return ""


class WallboardPages:
    """`GET /supervisor` for supervisors and ops; supervisors also pause, unpause and listen in
    (ops watch)."""

    def __init__(self, edge: Edge, seats: SeatDirectory, spy: SpyPort | None) -> None:
        self._edge = edge
        self._seats = seats
        self._spy = spy

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/supervisor", self._page)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._edge.need(request, *WALLBOARD_ROLES)
        cfg = self._edge.cfg
        by_id = {s.id: s for s in cfg.seats}
        seats = [
            (sid, by_id[sid].name if sid in by_id else sid, by_id[sid].tier if sid in by_id else "")
            for sid in self._seats.seat_ids()
        ]
        supervisor = ctx.actor.role == "supervisor"
        return html_response(
            wallboard_page(
                t=translator_of(request),
                cfg=cfg,
                actor=ctx.actor,
                csrf=ctx.session.csrf_token,
                seats=seats,
                can_spy=supervisor and self._spy is not None,
                can_pause=supervisor,
                today=self._edge.clock.now().date(),
            )
        )
