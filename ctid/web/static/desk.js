// The agent desk: the seat's own state (ready / not ready with a reason / wrap-up), one card per
// call with its own incident draft (kept on the server as the agent types), call control, and
// timers that speak (rings counted like everywhere else, the talk time against the cap).
// Every caller-controlled value is put on the page with textContent, never as HTML.
"use strict";

(() => {
  const body = document.body;
  const seat = body.dataset.seat;
  const csrf = body.dataset.csrf;
  const cadence = Number(body.dataset.ringCadence) || 5;
  const maxRings = Number(body.dataset.maxRings) || 3;
  const capS = Number(body.dataset.cap) || 600;
  const capAction = body.dataset.capAction || "hangup";
  const $ = (id) => document.getElementById(id);
  const form = $("incident-form");
  const FIELDS = ["caller_id", "caller_name", "phone", "department", "office", "request_type",
    "category", "impact", "urgency", "summary", "description"];

  function readJson(id) {
    try {
      return JSON.parse(($(id) || {}).textContent || "{}");
    } catch (e) {
      return {};
    }
  }
  const WORDS = readJson("ctid-words");
  const VOCAB = readJson("ctid-vocab");
  // t("English {x}", {x: 1}): the page's words in its language, English when there are none.
  function t(text, values) {
    let out = WORDS[text] || text;
    for (const [k, v] of Object.entries(values || {})) out = out.split("{" + k + "}").join(String(v));
    return out;
  }
  const word = (kind, key) => ((VOCAB[kind] || {})[key]) || String(key || "").replace(/_/g, " ");

  let clockOffset = 0; // server epoch - browser epoch, seconds (from the hello frame)
  let backoffMs = 500;
  let opened = false;
  let bannerTimer = null;
  let seatView = null; // the seat as /api/seats and seat_state frames say
  let seatSinceS = null;
  const cards = new Map(); // call_id -> {call_id, frame, fields, number, saved, missed, touched}
  let selected = null; // call_id on screen

  const nowS = () => Date.now() / 1000 + clockOffset;
  const clock = (sec) => {
    const s = Math.max(0, Math.round(sec));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  };
  const show = (el, on) => { el.hidden = !on; };
  const clear = (el) => { while (el.firstChild) el.removeChild(el.firstChild); };
  const setText = (el, v) => { el.textContent = v === null || v === undefined || v === "" ? "—" : String(v); };

  async function api(method, path, data) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (data !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, body: { error: t("The desk is unreachable.") } };
    }
    if (resp.status === 401) location.assign("/login");
    let out = {};
    try {
      out = await resp.json();
    } catch (e) {
      out = {};
    }
    return { ok: resp.ok, status: resp.status, body: out };
  }

  // ---------------------------------------------------------------- banner, sound, notifications

  function banner(message, level) {
    const el = $("banner");
    el.textContent = message;
    el.className = "banner " + (level || "info");
    el.hidden = false;
    if (bannerTimer) clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => { el.hidden = true; }, 15000);
  }

  let audio = null;
  function beep(times) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      for (let i = 0; i < times; i++) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.frequency.value = 880;
        gain.gain.value = 0.15;
        osc.connect(gain).connect(audio.destination);
        const at = audio.currentTime + i * 0.3;
        osc.start(at);
        osc.stop(at + 0.18);
      }
    } catch (e) {
      // No audio device (or not allowed yet): the banner and the notification still show.
    }
  }

  function notify(title, text, tag) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const n = new Notification(title, { body: text, tag: tag });
      n.onclick = () => window.focus();
    } catch (e) {
      // Some browsers only allow notifications from a service worker; the banner still shows.
    }
  }

  function setupNotifications() {
    const btn = $("notify-btn");
    if (!("Notification" in window) || Notification.permission !== "default") return;
    btn.hidden = false;
    btn.addEventListener("click", async () => {
      try {
        await Notification.requestPermission();
      } finally {
        btn.hidden = Notification.permission === "default";
      }
    });
  }

  // ---------------------------------------------------------------- the seat's own state

  function renderSeat(v) {
    seatView = v;
    // The seat's own state is authoritative: a card still ringing or talking for a call this
    // seat no longer has (transferred away, answered elsewhere) has ended here.
    let changed = false;
    for (const c of cards.values()) {
      const f = c.frame;
      if (f && (f.state === "ringing" || f.state === "talking") && f.call_id !== v.call_id
          && v.state !== "ringing" && v.state !== "talking") {
        c.frame = Object.assign({}, f, { state: f.state === "talking" ? "wrapup" : f.state });
        if (f.state === "ringing") c.missed = true;
        c.gone = true;
        changed = true;
      }
    }
    if (changed) {
      renderTabs();
      if (selected && cards.get(selected)) renderCard(cards.get(selected), false);
    }
    seatSinceS = v.since ? Date.parse(v.since) / 1000 : null;
    const bar = $("seat-bar");
    bar.className = "seat-bar state-" + v.state;
    $("seat-state").textContent = word("state", v.state);
    const why = $("seat-why");
    const paused = v.state === "paused";
    if (paused) {
      const reason = v.reason ? word("reason", v.reason) : t("no reason given");
      let how = t("Press Ready to take calls again.");
      if (v.reason === "rna") how = t("Only the shift leader can put this seat back in service.");
      else if (v.reason === "lunch" || v.reason === "closed") how = t("It comes back by itself when that ends.");
      why.textContent = t("Not taking calls: {reason}.", { reason }) + " " + how;
    } else if (v.state === "logged_out") {
      why.textContent = t("This seat takes no calls: nobody is logged in or the phone is off.");
    } else if (v.state === "wrapup") {
      why.textContent = t("Wrap-up: no calls until it ends.");
    } else {
      why.textContent = "";
    }
    const agentReasons = !["rna", "lunch", "closed"].includes(v.reason || "");
    show($("btn-ready"), v.state === "wrapup" || (paused && agentReasons && v.reason !== null) || (paused && v.reason === null));
    show($("btn-extend"), v.state === "wrapup" && !v.wrapup_extended);
    show($("pause-box"), ["ready", "wrapup", "ringing", "talking"].includes(v.state));
    show($("btn-callback"), v.state === "ready" || v.state === "wrapup");
    show($("wrapup-left"), v.state === "wrapup" && !!v.wrapup_ends_at);
    tick();
  }

  let seatFrames = 0; // seat_state frames rendered: a snapshot asked for before one is older

  async function loadSeat() {
    const asked = seatFrames;
    const r = await api("GET", "/api/seats");
    // data-seat-loads counts the answers handled (drawn or not): the browser tests wait on it.
    document.body.dataset.seatLoads = String(Number(document.body.dataset.seatLoads || 0) + 1);
    if (!r.ok || !Array.isArray(r.body)) return;
    // A frame pushed while the request was out is newer than this answer: keep it.
    if (seatFrames !== asked) return;
    const mine = r.body.find((s) => s.seat === seat);
    if (mine) renderSeat(mine);
  }

  async function setState(state, reason) {
    // The seat_state frame that follows the PBX's confirmation renders the change (the answer
    // may come after it and would be older).
    const r = await api("POST", "/api/seats/" + encodeURIComponent(seat) + "/state", { state, reason });
    if (!r.ok) banner(r.body.error || t("Not changed."), "warn");
  }

  $("btn-ready").addEventListener("click", () => setState("ready"));
  $("btn-pause").addEventListener("click", () => setState("paused", $("pause-reason").value));
  $("btn-extend").addEventListener("click", async () => {
    const r = await api("POST", "/api/seats/" + encodeURIComponent(seat) + "/wrapup", { action: "extend" });
    if (!r.ok) banner(r.body.error || t("Not changed."), "warn");
  });
  $("btn-callback").addEventListener("click", async () => {
    const r = await api("POST", "/api/callbacks/next", {});
    if (!r.ok) banner(r.body.error || t("Not changed."), "warn");
    else banner(t("Calling back {number}.", { number: r.body.number }) + " " + (r.body.detail || ""), "info");
  });

  // ---------------------------------------------------------------- cards (one per call)

  function cardTitle(c) {
    const f = c.frame;
    if (f && f.caller) return f.caller.name;
    if (c.fields.caller_name) return c.fields.caller_name;
    if (f && f.cid_name) return f.cid_name;
    return (f && f.number) || t("Unknown caller");
  }

  function cardState(c) {
    if (c.saved) return t("Saved");
    if (c.missed) return t("Missed");
    const f = c.frame;
    if (!f) return t("Draft");
    return { ringing: t("Ringing"), talking: t("On call"), wrapup: t("Ended") }[f.state] || f.state;
  }

  function renderTabs() {
    const nav = $("cards");
    clear(nav);
    for (const c of cards.values()) {
      const tab = document.createElement("button");
      tab.type = "button";
      tab.className = "card-tab" + (c.call_id === selected ? " selected" : "") + (c.saved ? " saved" : "");
      tab.dataset.call = c.call_id;
      const name = document.createElement("strong");
      name.textContent = cardTitle(c);
      const st = document.createElement("span");
      st.className = "tab-state";
      st.textContent = " · " + cardState(c);
      tab.append(name, st);
      tab.addEventListener("click", () => select(c.call_id));
      nav.appendChild(tab);
      if (c.saved || c.missed || (c.frame && c.frame.state === "wrapup") || !c.frame) {
        const close = document.createElement("button");
        close.type = "button";
        close.className = "tab-close link";
        close.title = t("Close this card");
        close.textContent = "×";
        close.addEventListener("click", () => closeCard(c.call_id));
        nav.appendChild(close);
      }
    }
    show(nav, cards.size > 0);
  }

  function newCard(call_id) {
    const c = { call_id, frame: null, fields: {}, number: null, saved: false, missed: false, touched: false, timer: null };
    cards.set(call_id, c);
    return c;
  }

  function prefill(c, f) {
    // The pop's prefill fills only what the agent has not typed (the directory match arrives
    // just after the first frame of the call).
    const p = f.form || {};
    const onScreen = selected === c.call_id;
    for (const k of FIELDS) {
      const v = p[k];
      if (v === null || v === undefined || v === "") continue;
      const el = form.elements[k];
      const typed = onScreen && el ? el.value : c.fields[k];
      const prev = c.prefilled ? c.prefilled[k] : undefined;
      if (typed === undefined || typed === "" || typed === null || (prev !== undefined && String(typed) === String(prev))) {
        c.fields[k] = v;
        if (onScreen && el) el.value = v;
      }
    }
    c.prefilled = Object.assign({}, p);
  }

  function onPop(f) {
    let c = cards.get(f.call_id);
    const fresh = !c;
    if (!c) c = newCard(f.call_id);
    const was = c.frame ? c.frame.state : null;
    // A late frame of a call this seat no longer has (an incident number arriving after a
    // transfer, say) brings its news, not the call back.
    if (c.gone && f.state === "ringing") c.gone = false; // the queue rang this seat again
    if (c.gone && f.state === "talking") f = Object.assign({}, f, { state: was || "wrapup" });
    c.frame = f;
    if (!c.gone) c.missed = false;
    if (f.incident && f.incident.number) c.number = f.incident.number;
    prefill(c, f);
    if (fresh && f.state === "ringing") {
      notify(t("Call for {seat}", { seat }), cardTitle(c) + " " + (f.number || ""), f.call_id);
      beep(1);
    }
    // A new ring takes the screen; the card being typed keeps its draft (and its own tab).
    if (fresh || selected === null) select(f.call_id, true);
    else if (selected === f.call_id) renderCard(c, false);
    if (was === "ringing" && f.state === "talking") banner(t("Call answered."), "info");
    renderTabs();
  }

  function onIdle(f) {
    const c = cards.get(f.call_id);
    if (!c) return;
    if (f.reason === "missed") {
      c.missed = true;
      banner(t("Missed call") + (f.caller ? ": " + f.caller : "") + ".", "warn");
      if (!c.touched) {
        cards.delete(c.call_id);
        if (selected === c.call_id) selected = null;
        selectNext();
      }
    } else if (f.reason === "saved") {
      c.saved = true;
      if (f.incident_number) c.number = f.incident_number;
    }
    if (selected === f.call_id) renderCard(c, false);
    renderTabs();
  }

  function selectNext() {
    const rest = [...cards.keys()];
    if (rest.length) select(rest[rest.length - 1], true);
    else renderEmpty();
  }

  async function closeCard(call_id) {
    const c = cards.get(call_id);
    if (!c) return;
    if (!c.saved && c.touched && !confirm(t("This card's incident is not saved. Close it anyway?"))) return;
    await api("DELETE", "/api/desk/drafts/" + encodeURIComponent(call_id) + "?seat=" + encodeURIComponent(seat));
    cards.delete(call_id);
    if (selected === call_id) {
      selected = null;
      selectNext();
    }
    renderTabs();
  }

  function select(call_id, fromServer) {
    if (selected && selected !== call_id) captureForm();
    selected = call_id;
    document.dispatchEvent(new CustomEvent("ctid:card", { detail: call_id }));
    const c = cards.get(call_id);
    if (c) renderCard(c, true);
    renderTabs();
  }

  function renderEmpty() {
    document.dispatchEvent(new CustomEvent("ctid:card", { detail: null }));
    show($("pop-empty"), true);
    show($("pop-body"), false);
    show($("sop"), false);
    form.reset();
    clearErrors();
    $("incident-number").textContent = "";
    $("save-status").textContent = "";
    $("save-incident").disabled = true;
    tick();
  }

  function li(parts) {
    const item = document.createElement("li");
    for (const [cls, value, href] of parts) {
      const el = document.createElement(href ? "a" : "span");
      el.className = cls;
      if (href) el.href = href;
      el.textContent = value === null || value === undefined ? "" : String(value);
      item.appendChild(el);
    }
    return item;
  }

  function renderCard(c, fillFields) {
    const f = c.frame;
    show($("pop-empty"), false);
    show($("pop-body"), true);
    const state = $("pop-state");
    state.textContent = cardState(c);
    state.className = "badge state-" + (f ? f.state : "draft");
    $("caller-name").textContent = cardTitle(c);
    const caller = f && f.caller;
    show($("caller-vip"), !!(caller && caller.vip));
    setText($("caller-number"), f ? f.number : c.fields.phone);
    setText($("caller-department"), caller ? caller.department : c.fields.department);
    setText($("caller-office"), caller ? caller.office : c.fields.office);
    setText($("caller-employee"), caller ? caller.employee_id : "");
    setText($("ivr-choice"), f && f.ivr ? word("request_type", f.ivr.request_type) + " (" + f.ivr.digit + ")" : "");
    setText($("waited"), f && f.waited_s !== null && f.waited_s !== undefined ? clock(f.waited_s) : "");
    renderChooser(c);
    show($("new-caller"), !!f && f.match === "none");
    const open = $("open-incidents");
    clear(open);
    for (const i of (f && f.open_incidents) || []) {
      open.appendChild(li([["mono", i.number, "/incidents/" + encodeURIComponent(i.number)],
        ["", " " + i.summary + " "], ["badge", word("status", i.status)]]));
    }
    if (!open.firstChild) open.appendChild(li([["muted", t("none")]]));
    const recent = $("recent-contacts");
    clear(recent);
    for (const r of (f && f.recent_contacts) || []) {
      const when = r.at ? new Date(r.at * 1000).toLocaleString(body.dataset.lang === "en" ? "en" : "zh-CN") : "";
      recent.appendChild(li([["muted", when + " · "], ["", r.summary]]));
    }
    if (!recent.firstChild) recent.appendChild(li([["muted", t("none")]]));
    if (fillFields) {
      clearErrors();
      $("save-status").textContent = c.saved ? t("Saved {number}.", { number: c.number }) : "";
      for (const k of FIELDS) {
        const el = form.elements[k];
        if (el) el.value = c.fields[k] === undefined || c.fields[k] === null ? "" : c.fields[k];
      }
    }
    $("incident-number").textContent = c.number || "";
    $("save-incident").disabled = false;
    tick();
  }

  function renderChooser(c) {
    const f = c.frame;
    const box = $("chooser");
    const list = $("chooser-list");
    clear(list);
    const several = !!f && f.match === "several";
    show(box, several);
    if (!several) return;
    for (const cand of f.candidates || []) {
      const item = document.createElement("li");
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "secondary";
      btn.textContent = cand.name;
      btn.addEventListener("click", () => {
        c.fields.caller_id = cand.caller_id;
        c.fields.caller_name = cand.name;
        c.fields.department = cand.department || "";
        c.fields.office = cand.office || "";
        c.touched = true;
        renderCard(c, true);
        saveDraftSoon(c);
      });
      const dept = document.createElement("span");
      dept.className = "muted";
      dept.textContent = cand.department ? " " + cand.department : "";
      item.append(btn, dept);
      list.appendChild(item);
    }
  }

  // ---------------------------------------------------------------- drafts

  function captureForm() {
    const c = cards.get(selected);
    if (!c) return;
    for (const k of FIELDS) {
      const el = form.elements[k];
      if (el) c.fields[k] = el.value;
    }
  }

  function saveDraftSoon(c) {
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => saveDraft(c), 600);
  }

  async function saveDraft(c) {
    c.timer = null;
    const fields = {};
    for (const k of FIELDS) if (c.fields[k] !== undefined && c.fields[k] !== null) fields[k] = String(c.fields[k]);
    await api("PUT", "/api/desk/drafts/" + encodeURIComponent(c.call_id), { seat, fields });
  }

  // A reload or a closed tab must not lose what was typed in the last moment.
  window.addEventListener("pagehide", () => {
    for (const c of cards.values()) {
      if (!c.timer) continue;
      clearTimeout(c.timer);
      c.timer = null;
      const fields = {};
      for (const k of FIELDS) if (c.fields[k] !== undefined && c.fields[k] !== null) fields[k] = String(c.fields[k]);
      fetch("/api/desk/drafts/" + encodeURIComponent(c.call_id), {
        method: "PUT", credentials: "same-origin", keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ seat, fields }),
      });
    }
  });

  form.addEventListener("input", () => {
    const c = cards.get(selected);
    if (!c) return;
    captureForm();
    c.touched = true;
    saveDraftSoon(c);
  });

  async function loadDrafts() {
    const r = await api("GET", "/api/desk/drafts?seat=" + encodeURIComponent(seat));
    if (!r.ok || !Array.isArray(r.body)) return;
    for (const d of r.body) {
      let c = cards.get(d.call_id);
      if (!c) c = newCard(d.call_id);
      c.fields = Object.assign({}, d.fields, c.touched ? c.fields : {});
      c.touched = true;
      c.saved = d.saved;
      if (d.number) c.number = d.number;
    }
    if (selected === null && cards.size) selectNext();
    else if (selected && cards.get(selected)) renderCard(cards.get(selected), true);
    renderTabs();
  }

  // ---------------------------------------------------------------- saving the incident

  function clearErrors() {
    for (const el of form.querySelectorAll(".field-error")) {
      el.textContent = "";
      el.hidden = true;
    }
    for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
  }

  function showErrors(problems) {
    clearErrors();
    for (const [name, text] of Object.entries(problems || {})) {
      const field = form.querySelector('.field[data-field="' + name + '"]');
      if (!field) continue;
      field.classList.add("invalid");
      const err = field.querySelector(".field-error");
      err.textContent = text;
      err.hidden = false;
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const c = cards.get(selected);
    if (!c) return;
    captureForm();
    const data = { call_id: c.call_id, number: c.number || "" };
    for (const k of FIELDS) data[k] = c.fields[k] === undefined ? "" : c.fields[k];
    data.caller_id = data.caller_id === "" || data.caller_id === null ? null : Number(data.caller_id);
    const status = $("save-status");
    status.textContent = t("Saving…");
    if (c.timer) {
      clearTimeout(c.timer);
      await saveDraft(c);
    }
    const r = await api("POST", "/api/incidents", data);
    if (r.ok) {
      c.number = r.body.number;
      c.saved = true;
      clearErrors();
      if (selected === c.call_id) {
        $("incident-number").textContent = c.number;
        status.textContent = t("Saved {number}.", { number: c.number });
      }
      renderTabs();
    } else if (r.status === 400 && r.body.fields) {
      showErrors(r.body.fields);
      status.textContent = r.body.error;
    } else {
      status.textContent = t("Not saved:") + " " + (r.body.error || r.status);
    }
  });

  // ---------------------------------------------------------------- call control

  function selectedLive() {
    const c = cards.get(selected);
    return c && c.frame && c.frame.state === "talking" ? c : null;
  }

  $("btn-hangup").addEventListener("click", async () => {
    const c = selectedLive();
    if (!c || !confirm(t("Hang up this call?"))) return;
    const r = await api("POST", "/api/calls/" + encodeURIComponent(c.call_id) + "/hangup", {});
    banner(r.ok ? t("Call hung up.") : r.body.error || t("Not changed."), r.ok ? "info" : "warn");
  });
  $("btn-transfer-expert").addEventListener("click", async () => {
    const c = selectedLive();
    if (!c) return;
    const r = await api("POST", "/api/calls/" + encodeURIComponent(c.call_id) + "/transfer", { to: "expert" });
    banner(r.ok ? t("Call transferred to the expert seats.") : r.body.error || t("Not changed."), r.ok ? "info" : "warn");
  });
  $("btn-transfer-seat").addEventListener("click", async () => {
    const c = selectedLive();
    const target = $("transfer-seat").value;
    if (!c) return;
    if (!target) {
      banner(t("Choose the seat to transfer to."), "warn");
      return;
    }
    const r = await api("POST", "/api/calls/" + encodeURIComponent(c.call_id) + "/transfer", { to: "seat", seat: target });
    banner(r.ok ? t("Call transferred to {seat}.", { seat: target }) : r.body.error || t("Not changed."), r.ok ? "info" : "warn");
  });

  // ---------------------------------------------------------------- timers that speak

  function capWords(capAt) {
    const at = new Date(capAt * 1000);
    const mm = clock(capS);
    if (capAction === "hangup") return t("The call ends at {cap} (talk-time cap).", { cap: mm });
    if (capAction === "transfer_expert") return t("At {cap} the call goes to the expert seats.", { cap: mm });
    return t("At {cap} the shift leader is told.", { cap: mm }) + (at ? "" : "");
  }

  const warned = new Set();

  function tick() {
    const now = nowS();
    if (seatView) {
      setText($("seat-time"), seatSinceS ? clock(now - seatSinceS) : "");
      const left = $("wrapup-left");
      if (seatView.state === "wrapup" && seatView.wrapup_ends_at) {
        left.textContent = t("{left} left", { left: clock(Date.parse(seatView.wrapup_ends_at) / 1000 - now) });
      }
    }
    const c = cards.get(selected);
    const f = c && !c.saved && !c.missed ? c.frame : null;
    const ring = $("ring-words");
    if (f && f.state === "ringing") {
      const rang = now - f.rang_at;
      const n = Math.max(1, Math.ceil(rang / cadence));
      ring.textContent = n > maxRings
        ? t("Past {limit} rings", { limit: maxRings })
        : t("Ring {n} of {limit}", { n, limit: maxRings }) + " (" + Math.floor(rang) + " s)";
      ring.classList.toggle("urgent", n >= maxRings);
      ring.hidden = false;
    } else {
      ring.hidden = true;
    }
    const talking = !!(f && f.talk && f.state === "talking");
    show($("talk-words"), talking);
    show($("talk-bar"), talking);
    show($("cap-words"), talking);
    show($("call-actions"), talking);
    show($("sop"), talking);
    if (talking) {
      const elapsed = now - f.talk.started_at;
      const left = f.talk.cap_at - now;
      $("talk-words").textContent = t("Talking {time}", { time: clock(elapsed) }) + " / " + clock(capS);
      const fill = $("talk-fill");
      fill.style.width = Math.min(100, (100 * elapsed) / capS) + "%";
      const warnedNow = (f.talk.warn_at || []).filter((w) => now >= w).length;
      fill.className = "talk-fill" + (left <= 0 ? " over" : warnedNow ? " warn" : "");
      markWarnings(f);
      $("cap-words").textContent = left > 0
        ? capWords(f.talk.cap_at) + " " + t("{left} to go.", { left: clock(left) })
        : t("The talk-time cap is reached.");
      tickSop(f, elapsed);
    }
  }

  function markWarnings(f) {
    const bar = $("talk-bar");
    const key = f.call_id;
    if (bar.dataset.call === key) return;
    bar.dataset.call = key;
    for (const m of bar.querySelectorAll(".talk-mark")) m.remove();
    for (const w of f.talk.warn_at || []) {
      const mark = document.createElement("span");
      mark.className = "talk-mark";
      mark.style.left = (100 * (w - f.talk.started_at)) / capS + "%";
      mark.title = clock(w - f.talk.started_at);
      bar.appendChild(mark);
    }
  }

  function tickSop(f, elapsed) {
    let start = 0;
    let active = false;
    for (const item of $("sop-list").children) {
      const budget = Number(item.dataset.budget) || 0;
      const end = start + budget;
      item.className = elapsed >= end ? "done" : !active && elapsed >= start ? "active" : "";
      if (!active && elapsed < end && elapsed >= start) active = true;
      start = end;
    }
  }

  function onCapWarning(f) {
    const id = f.call_id + ":" + Math.round(f.remaining_s);
    if (warned.has(id)) return;
    warned.add(id);
    const msg = f.remaining_s > 0
      ? t("{left} to the talk-time cap.", { left: clock(f.remaining_s) })
      : t("The talk-time cap is reached.");
    banner(msg, "warn");
    beep(f.remaining_s > 0 ? 2 : 3);
    notify(t("Talk-time cap"), msg, "cap-" + f.call_id + "-" + Math.round(f.remaining_s));
  }

  // ---------------------------------------------------------------- the socket

  function setConn(label, live) {
    const el = $("conn");
    el.textContent = label;
    el.className = "conn " + (live ? "conn-up" : "conn-down");
  }

  function handle(f) {
    switch (f.type) {
      case "hello":
        clockOffset = f.server_now - Date.now() / 1000;
        break;
      case "pop":
        onPop(f);
        break;
      case "idle":
        if (f.reason !== "none") onIdle(f);
        break;
      case "cap_warning":
        onCapWarning(f);
        break;
      case "seat_state":
        // Seat and pop times are on the events' clock: follow it.
        if (typeof f.server_now === "number") clockOffset = f.server_now - Date.now() / 1000;
        if (f.seat === seat) {
          seatFrames += 1;
          renderSeat(f);
        }
        break;
      default:
        break;
    }
  }

  async function sessionGone() {
    try {
      const r = await fetch("/api/me", { credentials: "same-origin" });
      return r.status === 401;
    } catch (e) {
      return false;
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws/seat?seat=" + encodeURIComponent(seat));
    opened = false;
    setConn(t("connecting…"), false);
    ws.onopen = () => {
      opened = true;
      backoffMs = 500;
      setConn(t("live"), true);
      loadSeat();
    };
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      handle(frame);
      // desk_kb.js (attach to an open incident, knowledge suggestions) reads the frames too.
      document.dispatchEvent(new CustomEvent("ctid:frame", { detail: frame }));
    };
    ws.onclose = async (ev) => {
      setConn(t("reconnecting…"), false);
      if (ev.code === 4001 || (!opened && (await sessionGone()))) {
        location.assign("/login");
        return;
      }
      const delay = backoffMs * (0.5 + Math.random());
      backoffMs = Math.min(backoffMs * 2, 15000);
      setTimeout(connect, delay);
    };
  }

  setupNotifications();
  setInterval(tick, 250);
  loadDrafts().then(connect);
})();
