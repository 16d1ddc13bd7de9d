"""The agent desk page (server-rendered in the request's language): the seat's state bar, one card
per call, call control, timers, the call script and the card's incident form. `static/desk.js`
fills it live; the words that script needs are found in it and sent as JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from ctid.calls.seat_state import AGENT_PAUSE_WORDS, STATE_WORDS, SYSTEM_PAUSE_REASONS
from ctid.config import Config
from ctid.core.actor import Actor
from ctid.i18n import N_, Translator
from ctid.tickets.vocabulary import (
    CATEGORIES,
    CATEGORY_WORDS,
    LEVEL_WORDS,
    LEVELS,
    REQUEST_TYPE_WORDS,
    REQUEST_TYPES,
    STATUS_WORDS,
)
from ctid.web.html import Markup, join, render, tag
from ctid.web.lang import words_script
from ctid.web.pages import layout

DEFAULT_SOP_WORDS = (
    N_("Greet"),
    N_("Confirm caller"),
    N_("Diagnose"),
    N_("Guided fix"),
    N_("Dispatch"),
    N_("Hello, customer center. How can I help you? (您好,客户中心。请问有什么可以帮您的吗?)"),
    N_("Ask name, phone and office location."),
    N_("Alarms or noises? The error message? Cables and indicator lights? (with consent)"),
    N_("Walk the caller through the steps (generally discouraged)."),
    N_(
        "Promise an engineer; re-check name, phone, address; describe the fault in "
        "professional terms."
    ),
)
"""The example config's call script, marked so it has Chinese (ops' own steps show as written)."""

_SCRIPT = Path(__file__).resolve().parent / "static" / "desk.js"
_KB_SCRIPT = _SCRIPT.with_name("desk_kb.js")
_T_CALL = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""")


@cache
def script_words() -> tuple[str, ...]:
    """Every `t("…")` string of desk.js (the page sends their translations)."""
    text = _SCRIPT.read_text("utf-8") + _KB_SCRIPT.read_text("utf-8")
    return tuple(sorted(set(_T_CALL.findall(text))))


def _options(t: Translator, values: Sequence[str], words: dict[str, str]) -> Markup:
    opts = [tag("option", t.gettext("— choose —"), value="")]
    opts += [tag("option", t.gettext(words.get(v, v)), value=v) for v in values]
    return join(opts)


def _field(t: Translator, name: str, label: str, control: Markup, required: bool) -> Markup:
    mark = tag("span", "*", class_="req", title=t.gettext("required")) if required else ""
    return render(
        """<label class="field" data-field="$name"><span class="field-label">$label $mark</span>
  $control<span class="field-error" role="alert" hidden></span></label>""",
        name=name,
        label=label,
        mark=mark,
        control=control,
    )


def _form(t: Translator, csrf: str) -> Markup:
    def text(name: str, limit: int, required: bool = False) -> Markup:
        return tag("input", name=name, maxlength=limit, required=required)

    def select(name: str, values: Sequence[str], words: dict[str, str]) -> Markup:
        return render(
            '<select name="$name" required>$opts</select>',
            name=name,
            opts=_options(t, values, words),
        )

    fields = [
        _field(t, "caller_name", t.gettext("Caller name"), text("caller_name", 128, True), True),
        _field(t, "phone", t.gettext("Phone"), text("phone", 64), False),
        _field(t, "department", t.gettext("Department"), text("department", 128), False),
        _field(t, "office", t.gettext("Office"), text("office", 128), False),
        _field(
            t,
            "request_type",
            t.gettext("Request type"),
            select("request_type", REQUEST_TYPES, REQUEST_TYPE_WORDS),
            True,
        ),
        _field(
            t,
            "category",
            t.gettext("Category"),
            select("category", CATEGORIES, CATEGORY_WORDS),
            True,
        ),
        _field(t, "impact", t.gettext("Impact"), select("impact", LEVELS, LEVEL_WORDS), True),
        _field(t, "urgency", t.gettext("Urgency"), select("urgency", LEVELS, LEVEL_WORDS), True),
    ]
    return render(
        """<form id="incident-form" class="incident-form" novalidate>
  <input type="hidden" name="csrf_token" value="$csrf">
  <input type="hidden" name="caller_id">
  <div class="form-head">
    <h3>$incident <span id="incident-number" class="mono"></span></h3>
    <button type="submit" id="save-incident" disabled>$save</button>
  </div>
  <p id="save-status" role="status" aria-live="polite"></p>
  <p class="muted small">$required</p>
  <div class="grid2">$fields</div>
  $summary
  $description
</form>""",
        csrf=csrf,
        incident=t.gettext("Incident"),
        save=t.gettext("Save incident"),
        required=t.gettext("Fields marked * are required."),
        fields=join(fields),
        summary=_field(t, "summary", t.gettext("Summary"), text("summary", 200, True), True),
        description=_field(
            t,
            "description",
            t.gettext("Description"),
            tag("textarea", "", name="description", rows=3, maxlength=4000),
            False,
        ),
    )


_DESK = """<div id="banner" class="banner" role="alert" hidden></div>
<section id="seat-bar" class="seat-bar state-logged_out" aria-live="polite">
  <span class="seat-id">$seat_label <strong>$seat</strong></span>
  <span id="seat-state" class="badge state-badge">—</span>
  <span id="seat-time" class="timer"></span>
  <span id="seat-why" class="seat-why"></span>
  <span id="wrapup-left" class="timer" hidden></span>
  <span class="seat-actions">
    <button type="button" id="btn-ready" hidden>$ready</button>
    <button type="button" id="btn-extend" class="secondary" hidden>$extend</button>
    <span id="pause-box" hidden>
      <select id="pause-reason" aria-label="$reason_label">$reasons</select>
      <button type="button" id="btn-pause" class="secondary">$not_ready</button>
    </span>
    <button type="button" id="btn-callback" class="secondary" hidden>$callback</button>
  </span>
  <span id="conn" class="conn conn-down">$connecting</span>
  <button type="button" id="notify-btn" class="link small" hidden>$notify</button>
</section>
<nav id="cards" class="card-tabs" aria-label="$calls_label"></nav>
<div class="desk">
  <section id="pop" class="card pop" aria-live="polite">
    <p id="pop-empty" class="muted">$empty</p>
    <div id="pop-body" hidden>
      <div class="pop-head">
        <span id="pop-state" class="badge"></span>
        <span id="ring-words" class="countdown" hidden></span>
        <span id="talk-words" class="timer" hidden></span>
      </div>
      <div id="talk-bar" class="talk-bar" hidden><div id="talk-fill" class="talk-fill"></div></div>
      <p id="cap-words" class="cap-words" hidden></p>
      <div id="call-actions" class="call-actions" hidden>
        <button type="button" id="btn-hangup" class="danger">$hangup</button>
        <button type="button" id="btn-transfer-expert" class="secondary">$to_expert</button>
        <select id="transfer-seat" aria-label="$seat_label">$seats</select>
        <button type="button" id="btn-transfer-seat" class="secondary">$to_seat</button>
      </div>
      <h2><span id="caller-name"></span> <span id="caller-vip" class="badge vip" hidden>VIP</span></h2>
      <dl class="facts">
        <dt>$number</dt><dd id="caller-number"></dd>
        <dt>$department</dt><dd id="caller-department"></dd>
        <dt>$office</dt><dd id="caller-office"></dd>
        <dt>$employee</dt><dd id="caller-employee"></dd>
        <dt>$ivr</dt><dd id="ivr-choice"></dd>
        <dt>$waited</dt><dd id="waited"></dd>
      </dl>
      <div id="chooser" class="chooser" hidden>
        <h3>$several</h3>
        <ul id="chooser-list"></ul>
      </div>
      <p id="new-caller" class="notice" hidden>$new_caller</p>
      <div class="cols">
        <section><h3>$open_incidents</h3><ul id="open-incidents" class="lines"></ul></section>
        <section><h3>$last_contacts</h3><ul id="recent-contacts" class="lines"></ul></section>
      </div>
      <section id="kb-panel" class="kb-panel" hidden></section>
    </div>
  </section>
  <aside class="side">
    <section class="card form-card">$form</section>
    <section id="sop" class="card" hidden>
      <h3>$script</h3>
      <ol id="sop-list" class="sop">$sop</ol>
    </section>
  </aside>
</div>
$words"""


def desk_page(
    *,
    t: Translator,
    cfg: Config,
    site: str,
    actor: Actor,
    csrf: str,
    seat_id: str,
    seat_ids: Sequence[str],
    locale: str,
) -> Markup:
    reasons = join(
        tag("option", t.gettext(AGENT_PAUSE_WORDS.get(r, r)), value=r)
        for r in cfg.desk.pause_reasons
    )
    seats = join(
        [tag("option", t.gettext("— seat —"), value="")]
        + [tag("option", s, value=s) for s in seat_ids if s != seat_id]
    )
    sop = join(
        render(
            '<li data-budget="$budget"><strong>$label</strong> <span class="muted">$budget_words'
            '</span><br><span class="prompt">$prompt</span></li>',
            budget=step.budget_s,
            label=t.gettext(step.label),
            budget_words=t.duration(step.budget_s),
            prompt=t.gettext(step.prompt) if step.prompt else "",
        )
        for step in cfg.desk.sop
    )
    # The vocabulary the script shows (states, reasons, statuses, types), in words.
    vocab = {
        "state": {k.value: t.gettext(v) for k, v in STATE_WORDS.items()},
        "reason": {
            k: t.gettext(v) for k, v in {**SYSTEM_PAUSE_REASONS, **AGENT_PAUSE_WORDS}.items()
        },
        "status": {k: t.gettext(v) for k, v in STATUS_WORDS.items()},
        "request_type": {k: t.gettext(v) for k, v in REQUEST_TYPE_WORDS.items()},
    }
    data = json.dumps(vocab, ensure_ascii=False).replace("<", "\\u003c")
    vocab_json = render(
        '<script type="application/json" id="ctid-vocab">$data</script>', data=Markup(data)
    )
    main = render(
        _DESK,
        seat=seat_id,
        seat_label=t.gettext("Seat"),
        ready=t.gettext("Ready"),
        extend=t.gettext("Extend wrap-up"),
        reason_label=t.gettext("Reason"),
        reasons=reasons,
        not_ready=t.gettext("Not ready"),
        callback=t.gettext("Take next callback"),
        connecting=t.gettext("connecting…"),
        notify=t.gettext("Enable desktop notifications"),
        calls_label=t.gettext("Calls"),
        empty=t.gettext("No call right now."),
        hangup=t.gettext("Hang up"),
        to_expert=t.gettext("Transfer to expert"),
        seats=seats,
        to_seat=t.gettext("Transfer to seat"),
        number=t.gettext("Number"),
        department=t.gettext("Department"),
        office=t.gettext("Office"),
        employee=t.gettext("Employee ID"),
        ivr=t.gettext("IVR choice"),
        waited=t.gettext("Waited"),
        several=t.gettext("Several callers use this number — who is it?"),
        new_caller=t.gettext(
            "Unknown number: a new caller. The form is prefilled with what the phone sent."
        ),
        open_incidents=t.gettext("Open incidents"),
        last_contacts=t.gettext("Last contacts"),
        form=_form(t, csrf),
        script=t.gettext("Call script"),
        sop=sop,
        words=join([words_script(t, script_words()), vocab_json]),
    )
    return layout(
        site=site,
        title=t.gettext("Desk") + f" {seat_id}",
        main=main,
        actor=actor,
        csrf=csrf,
        scripts=["/static/desk.js", "/static/desk_kb.js"],
        body_attrs={
            "data-seat": seat_id,
            "data-csrf": csrf,
            "data-lang": locale,
            "data-ring-cadence": cfg.ring.ring_cadence_s,
            "data-max-rings": cfg.ring.max_rings,
            "data-cap": cfg.talk_cap.talk_cap_s,
            "data-cap-action": cfg.talk_cap.action,
            "data-warn": ",".join(str(w) for w in cfg.talk_cap.warn_at_s),
            "class": "desk-page",
        },
        main_class="page wide",
        t=t,
    )
