// The wallboard: renders `wallboard`, `alert` and `alerts` frames from /ws/supervisor and the seat
// states of GET /api/seats (agent, state and time in state, today's counts): service level, loss
// rate and longest wait coloured against the configured thresholds, lunch duty, pause / unpause
// (POST /api/seats/{seat}/state) and listen/whisper/barge + stop through /api/spy.
// Every value is put on the page with textContent, never as HTML. Words come from t().
"use strict";

(() => {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const lang = body.dataset.lang || document.documentElement.lang || "en";
  const cadence = Number(body.dataset.ringCadence) || 5;
  const maxRings = Number(body.dataset.maxRings) || 3;
  const canSpy = body.dataset.canSpy === "1";
  const canPause = body.dataset.canPause === "1";
  const limits = {
    slTarget: Number(body.dataset.slTarget),
    slRed: Number(body.dataset.slRed),
    lossAmber: Number(body.dataset.lossAmber),
    lossRed: Number(body.dataset.lossRed),
    waitAmber: Number(body.dataset.waitAmber),
    waitRed: Number(body.dataset.waitRed),
  };
  const $ = (id) => document.getElementById(id);
  const MAX_ALERTS = 50;
  const SEATS_EVERY_MS = 3000;

  // ---------------------------------------------------------------- words and formats

  let words = {};
  try {
    words = JSON.parse(($("ctid-words") || {}).textContent || "{}");
  } catch (e) {
    words = {};
  }
  // t("Ring {n} of {limit}", {n: 2, limit: 3}): the page's words, else the English.
  function t(text, values) {
    let out = Object.prototype.hasOwnProperty.call(words, text) ? words[text] : text;
    if (values) out = out.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
    return out;
  }

  const numberFmt = new Intl.NumberFormat(lang);
  const pctFmt = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1, minimumFractionDigits: 1 });
  let timeFormat;
  try {
    timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: body.dataset.tz || undefined });
  } catch (e) {
    timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  let clockOffset = 0; // server epoch - browser epoch, seconds (from the hello frame)
  let board = null; // the last wallboard frame
  let seatStates = {}; // seat id -> GET /api/seats item (with `since` as epoch seconds)
  let seatsApi = true; // false once /api/seats answered 404 (not wired)
  let backoffMs = 500;
  let opened = false;
  let spySession = null; // {session_id, seat, mode}

  const nowS = () => Date.now() / 1000 + clockOffset;

  // Times are epoch seconds; ISO 8601 strings (the desk summary) are accepted too.
  function epoch(v) {
    if (v === null || v === undefined || v === "") return null;
    if (typeof v === "number") return v;
    const ms = Date.parse(String(v));
    return Number.isNaN(ms) ? null : ms / 1000;
  }

  function clock(sec) {
    const s = Math.max(0, Math.round(sec));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + rest : m + ":" + rest;
  }

  function hhmm(ep) {
    return ep === null ? "" : timeFormat.format(new Date(ep * 1000));
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function el(tagName, className, text) {
    const e = document.createElement(tagName);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function banner(message) {
    const b = $("banner");
    b.textContent = message;
    b.className = "banner warn";
    b.hidden = false;
  }

  // ---------------------------------------------------------------- vocabulary

  // The wallboard frame's status in the seat-state words of /api/seats.
  const FROM_FRAME = { available: "ready", ringing: "ringing", on_call: "talking", wrap_up: "wrapup", paused: "paused", offline: "logged_out" };
  const STATE_WORDS = {
    ready: t("Ready"),
    ringing: t("Ringing"),
    talking: t("Talking"),
    wrapup: t("Wrap-up"),
    paused: t("Paused"),
    logged_out: t("Logged out"),
  };
  const REASON_WORDS = {
    rna: t("Missed calls"),
    lunch: t("Lunch rotation"),
    closed: t("Desk closed"),
    wrapup: t("Wrap-up"),
    break: t("Break"),
    meal: t("Meal"),
    training: t("Training"),
    admin: t("Admin work"),
    manual: t("Paused by the agent"),
  };
  const MODE_WORDS = { open: t("Desk open"), lunch: t("Lunch hours"), closed: t("Desk closed") };
  const ALERT_WORDS = {
    ring_miss: t("Missed call"),
    auto_pause: t("Seat paused"),
    ring_missed: t("Missed call"),
    auto_paused: t("Seat paused"),
    cap_warning: t("Call near the cap"),
    cap_reached: t("Call at the cap"),
    ami_down: t("PBX link down"),
    ami_up: t("PBX link back"),
    spy_alert: t("Listen-in"),
  };

  const ALERT_TEXT = {
    ring_miss: t("let a call ring past {limit} rings", { limit: maxRings }),
    auto_pause: t("paused after missed calls in a row: unpause it when the agent is back"),
  };

  // ---------------------------------------------------------------- tiles

  function level(el, name) {
    el.classList.remove("lvl-green", "lvl-amber", "lvl-red");
    if (name) el.classList.add("lvl-" + name);
  }

  function renderKpis(k) {
    k = k || {};
    const set = (key, text) => {
      const e = $("kpi-" + key);
      if (e) e.textContent = text;
    };
    const missing = (v) => v === null || v === undefined;
    for (const key of ["offered", "answered", "abandoned", "over_cap"]) set(key, missing(k[key]) ? "–" : numberFmt.format(k[key]));
    set("asa_s", missing(k.asa_s) ? "–" : clock(k.asa_s));
    set("aht_s", missing(k.aht_s) ? "–" : clock(k.aht_s));
    const sl = missing(k.within_rings_pct) ? null : Number(k.within_rings_pct) / 100;
    set("service_level", sl === null ? "–" : pctFmt.format(sl));
    const slTile = $("tile-service_level");
    level(slTile, sl === null ? "" : sl >= limits.slTarget ? "green" : sl >= limits.slRed ? "amber" : "red");
    slTile.querySelector(".tile-note").textContent = t("target {target}", { target: pctFmt.format(limits.slTarget) });
    const loss = missing(k.loss_rate) ? null : Number(k.loss_rate);
    set("loss_rate", loss === null ? "–" : pctFmt.format(loss));
    level($("tile-loss_rate"), loss === null ? "" : loss > limits.lossRed ? "red" : loss > limits.lossAmber ? "amber" : "green");
  }

  function renderDesk(d, ami) {
    d = d || {};
    const mode = $("desk-mode");
    mode.textContent = MODE_WORDS[d.mode] || "—";
    mode.className = "badge mode-" + (d.mode || "unknown");
    const next = epoch(d.next_transition);
    $("desk-next").textContent = next && MODE_WORDS[d.next_mode] ? t("{mode} at {time}", { mode: MODE_WORDS[d.next_mode], time: hhmm(next) }) : "";
    renderLunch(d);
    const a = $("ami-state");
    ami = ami || {};
    const up = typeof ami.connected === "boolean" ? ami.connected : ami.logged_in;
    a.textContent = up === undefined ? "PBX —" : up ? t("PBX link up") : t("PBX LINK DOWN");
    a.className = "badge " + (up === false ? "ami-down" : "ami-up");
  }

  // Lunch duty: the live group while the desk is at lunch, else today's group from the rota.
  const lunchGroups = {};
  for (const part of (body.dataset.lunchGroups || "").split(";")) {
    const [name, seats] = part.split(":");
    if (name) lunchGroups[name] = (seats || "").split(",").filter(Boolean);
  }

  function seatName(id) {
    const card = seatCard(id);
    return card ? card.querySelector(".seat-name").textContent : id;
  }

  function renderLunch(d) {
    const box = $("lunch-duty");
    const group = d.lunch_group || body.dataset.lunchToday || "";
    if (!group) {
      box.textContent = "";
      return;
    }
    const seats = d.mode === "lunch" && Array.isArray(d.on_duty) ? d.on_duty : lunchGroups[group] || [];
    const who = seats.map((id) => {
      const s = seatStates[id];
      return seatName(id) + (s && s.agent ? " (" + s.agent.name + ")" : "");
    });
    box.textContent = t("Lunch duty: group {group} — {seats}", { group: group, seats: who.join(", ") });
    for (const card of document.querySelectorAll(".seat-card")) {
      card.classList.toggle("on-lunch-duty", seats.includes(card.dataset.seat));
      const head = card.querySelector("header");
      if (head && !head.querySelector(".lunch-badge")) head.append(" ", el("span", "badge lunch-badge", t("Lunch duty")));
    }
  }

  // ---------------------------------------------------------------- seat cards

  function seatCard(seatId) {
    return document.querySelector('.seat-card[data-seat="' + CSS.escape(seatId) + '"]');
  }

  function ensureCard(s) {
    let card = seatCard(s.seat_id);
    if (card) return card;
    // A seat the page did not know (added to the roster since): a card without controls.
    card = el("article", "seat-card");
    card.dataset.seat = s.seat_id;
    const head = el("header");
    head.append(el("strong", "seat-name", s.name || s.seat_id), " ", el("span", "seat-tier badge", s.tier));
    const line = el("div", "seat-state-line");
    line.append(el("span", "seat-status badge", "—"), " ", el("span", "seat-since"));
    card.append(head, el("div", "seat-agent"), line);
    for (const cls of ["seat-reason", "seat-ring", "seat-talk", "seat-caller"]) card.append(el("div", "seat-line " + cls));
    $("seats").append(card);
    return card;
  }

  // The seat's state: /api/seats when it has the seat (it knows reasons and since when), else
  // the wallboard frame's status.
  function stateOf(seatId, frameSeat) {
    const api = seatStates[seatId];
    // The reason in the page's own words first (a pushed frame's reason_words are the site's).
    if (api && api.state) return { state: api.state, reason: api.reason || "", words: REASON_WORDS[api.reason] || api.reason_words || "", since: api.since };
    const status = frameSeat ? frameSeat.status : "offline";
    return { state: FROM_FRAME[status] || "logged_out", reason: frameSeat ? frameSeat.pause_reason || "" : "", words: "", since: null };
  }

  function renderSeats() {
    const frameSeats = {};
    for (const s of (board && board.seats) || []) frameSeats[s.seat_id] = s;
    const ids = new Set([...Object.keys(frameSeats), ...Object.keys(seatStates)]);
    for (const id of ids) {
      const fs = frameSeats[id] || { seat_id: id, name: (seatStates[id] || {}).name || id };
      const card = ensureCard(fs);
      const st = stateOf(id, frameSeats[id]);
      card.className = "seat-card state-" + st.state + (card.classList.contains("on-lunch-duty") ? " on-lunch-duty" : "");
      card.querySelector(".seat-status").textContent = STATE_WORDS[st.state] || st.state;
      card.querySelector(".seat-since").dataset.since = String(epoch(st.since) || "");
      const api = seatStates[id];
      card.querySelector(".seat-agent").textContent = api ? (api.agent ? api.agent.name + " · " + api.agent.employee_id : t("Nobody on this seat")) : "";
      card.querySelector(".seat-reason").textContent = st.state === "paused" ? st.words || REASON_WORDS[st.reason] || st.reason || "" : "";
      card.querySelector(".seat-caller").textContent = fs.caller ? t("Caller: {name}", { name: fs.caller }) : "";
      const today = (api && api.today) || null;
      const put = (cls, text) => {
        const e = card.querySelector(cls);
        if (e) e.textContent = text;
      };
      put(".today-answered", today ? numberFmt.format(today.answered) : "–");
      put(".today-missed", today ? numberFmt.format(today.missed) : "–");
      put(".today-avg", today && today.avg_talk_s !== null && today.avg_talk_s !== undefined ? clock(today.avg_talk_s) : "–");
      const missedEl = card.querySelector(".today-missed");
      if (missedEl) missedEl.classList.toggle("has-missed", !!(today && today.missed));
      const unpause = card.querySelector(".unpause");
      const pauseBox = card.querySelector(".pause-box");
      if (unpause) unpause.hidden = !(canPause && seatsApi && st.state === "paused");
      if (pauseBox) pauseBox.hidden = !(canPause && seatsApi && st.state === "ready");
      const spy = card.querySelector(".spy-buttons");
      if (spy) spy.hidden = st.state !== "talking";
    }
    if (board) renderLunch(board.desk || {});
    tick();
  }

  function renderQueues(queues) {
    const box = $("queues");
    clear(box);
    let any = false;
    for (const q of queues || []) {
      const waiting = q.waiting || [];
      box.append(el("h3", "", t("{queue}: {n} waiting", { queue: q.name, n: numberFmt.format(waiting.length) })));
      const ul = el("ul", "lines waiting");
      for (const w of waiting) {
        any = true;
        const item = el("li");
        item.append(el("span", "", w.caller || t("unknown caller")), " ");
        const wait = el("span", "wait");
        wait.dataset.since = String(epoch(w.since) || "");
        item.append(wait);
        ul.append(item);
      }
      box.append(ul);
    }
    if (!any && !(queues || []).length) box.append(el("p", "muted", t("No queue data.")));
    tick();
  }

  function renderBoard(f) {
    board = f;
    renderKpis(f.kpis);
    renderDesk(f.desk, f.ami);
    renderSeats();
    renderQueues(f.queues);
  }

  // ---------------------------------------------------------------- alerts

  function addAlert(f) {
    const list = $("alerts");
    const item = el("li", "alert kind-" + String(f.kind || "info").replace(/[^a-z0-9_-]/gi, ""));
    const at = epoch(f.at) || nowS();
    item.append(el("span", "muted", hhmm(at)), " ");
    item.append(el("strong", "", ALERT_WORDS[f.kind] || String(f.kind || "").replace(/_/g, " ")), " ");
    if (f.seat) item.append(el("span", "badge", seatName(f.seat)), " ");
    // Known kinds in the page's words; the daemon's own sentence (English) stays as the tooltip.
    const said = ALERT_TEXT[f.kind];
    const text = el("span", "", said || f.message || "");
    if (said && f.message) text.title = f.message;
    item.append(text);
    list.prepend(item);
    while (list.children.length > MAX_ALERTS) list.removeChild(list.lastChild);
    $("alerts-empty").hidden = list.children.length > 0;
  }

  function tick() {
    const now = nowS();
    for (const s of (board && board.seats) || []) {
      const card = seatCard(s.seat_id);
      if (!card) continue;
      const ring = card.querySelector(".seat-ring");
      const talk = card.querySelector(".seat-talk");
      const rs = epoch(s.ring_started_at);
      if (s.status === "ringing" && rs !== null) {
        const deadline = epoch(s.ring_deadline_at) || rs + cadence * maxRings;
        const n = Math.min(maxRings, Math.floor(Math.max(0, now - rs) / cadence) + 1);
        ring.textContent = now >= deadline ? t("Past {limit} rings", { limit: maxRings }) : t("Ring {n} of {limit}", { n: n, limit: maxRings }) + " (" + t("{n} s", { n: Math.floor(now - rs) }) + ")";
        ring.classList.toggle("urgent", n >= maxRings);
      } else {
        ring.textContent = "";
        ring.classList.remove("urgent");
      }
      const ts = epoch(s.talk_started_at);
      const cap = epoch(s.cap_at);
      if (s.status === "on_call" && ts !== null) {
        let text = t("Talking {time}", { time: clock(now - ts) });
        if (cap !== null) text += " · " + (cap > now ? t("cap in {time}", { time: clock(cap - now) }) : t("over the cap"));
        talk.textContent = text;
        talk.classList.toggle("warn", cap !== null && cap - now <= 120 && cap > now);
        talk.classList.toggle("urgent", cap !== null && cap <= now);
      } else {
        talk.textContent = "";
        talk.classList.remove("warn", "urgent");
      }
    }
    for (const since of document.querySelectorAll(".seat-since")) {
      const at = Number(since.dataset.since);
      since.textContent = at ? clock(now - at) : "";
    }
    let longest = null;
    for (const w of document.querySelectorAll("#queues .wait")) {
      const at = Number(w.dataset.since);
      w.textContent = at ? t("waiting {time}", { time: clock(now - at) }) : "";
      if (at && (longest === null || now - at > longest)) longest = now - at;
    }
    const lw = $("kpi-longest_wait");
    if (lw) {
      lw.textContent = longest === null ? (board ? "0:00" : "–") : clock(longest);
      const secs = longest || 0;
      level($("tile-longest_wait"), !board ? "" : secs >= limits.waitRed ? "red" : secs >= limits.waitAmber ? "amber" : "green");
    }
  }

  // ---------------------------------------------------------------- HTTP

  async function post(url, data) {
    const resp = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(data || {}),
    });
    const out = await resp.json().catch(() => ({}));
    if (resp.status === 401) location.assign("/login");
    return [resp, out];
  }

  let seatFrames = {}; // seat id -> seat_state frames taken: a snapshot asked for before one is older

  async function loadSeats() {
    if (!seatsApi) return;
    const asked = Object.assign({}, seatFrames);
    try {
      const resp = await fetch("/api/seats", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.status === 404) {
        seatsApi = false;
        renderSeats();
        return;
      }
      if (resp.status === 401) {
        location.assign("/login");
        return;
      }
      if (!resp.ok) return;
      const items = await resp.json();
      const fetched = nowS();
      const next = {};
      for (const s of Array.isArray(items) ? items : items.seats || []) {
        let since = epoch(s.since);
        if (since === null && typeof s.in_state_s === "number") since = fetched - s.in_state_s;
        next[s.seat] = Object.assign({}, s, { since: since });
        // A frame pushed for this seat while the request was out is newer: keep it.
        if ((seatFrames[s.seat] || 0) !== (asked[s.seat] || 0) && seatStates[s.seat]) next[s.seat] = seatStates[s.seat];
      }
      seatStates = next;
      renderSeats();
    } catch (e) {
      // The desk is unreachable: the socket's state line says so; keep the last states.
    }
  }

  async function setSeatState(seat, state, reason) {
    const msg = $("seat-status-msg");
    msg.textContent = "";
    try {
      const [resp, out] = await post("/api/seats/" + encodeURIComponent(seat) + "/state", { state: state, reason: reason || null });
      if (resp.ok) {
        msg.textContent = state === "ready" ? t("{seat} takes calls again.", { seat: seatName(seat) }) : t("{seat} is paused.", { seat: seatName(seat) });
      } else {
        msg.textContent = t("Not possible: {why}", { why: out.error || resp.status });
      }
    } catch (e) {
      msg.textContent = t("The desk is unreachable.");
    }
    await loadSeats();
  }

  // ---------------------------------------------------------------- listen in

  const MODE_NAMES = { listen: t("Listen"), whisper: t("Whisper"), barge: t("Barge") };

  function showSpy() {
    const panel = $("spy-panel");
    if (!panel) return;
    panel.hidden = !spySession;
    if (spySession) {
      $("spy-what").textContent = t("Your phone is in {seat} ({mode})", { seat: seatName(spySession.seat), mode: MODE_NAMES[spySession.mode] || spySession.mode });
      for (const b of panel.querySelectorAll("button[data-spy-mode]")) b.classList.toggle("chosen", b.dataset.spyMode === spySession.mode);
    }
  }

  async function startSpy(btn) {
    const status = $("spy-status");
    status.textContent = t("Calling your phone…");
    try {
      const [resp, out] = await post("/api/spy", { seat: btn.dataset.spy, mode: btn.dataset.mode });
      if (resp.ok) {
        spySession = { session_id: out.session_id, seat: out.seat, mode: out.mode };
        status.textContent = t("Your phone rings into {seat} ({mode}).", { seat: seatName(out.seat), mode: MODE_NAMES[out.mode] || out.mode });
      } else {
        status.textContent = t("Not possible: {why}", { why: out.error || resp.status });
      }
    } catch (e) {
      status.textContent = t("The desk is unreachable.");
    }
    showSpy();
  }

  async function switchSpy(mode) {
    if (!spySession) return;
    const [resp, out] = await post("/api/spy/" + encodeURIComponent(spySession.session_id) + "/mode", { mode: mode });
    if (resp.ok) spySession.mode = out.mode;
    else $("spy-status").textContent = t("Not possible: {why}", { why: out.error || resp.status });
    if (resp.status === 404) spySession = null;
    showSpy();
  }

  async function stopSpy() {
    if (!spySession) return;
    const [resp, out] = await post("/api/spy/" + encodeURIComponent(spySession.session_id) + "/stop");
    $("spy-status").textContent = resp.ok || resp.status === 404 ? t("Stopped listening.") : t("Not possible: {why}", { why: out.error || resp.status });
    if (resp.ok || resp.status === 404) spySession = null;
    showSpy();
  }

  // ---------------------------------------------------------------- socket & theme

  function setConn(text, live) {
    const c = $("conn");
    c.textContent = text;
    c.className = "conn " + (live ? "conn-up" : "conn-down");
  }

  function handle(f) {
    switch (f.type) {
      case "hello":
        clockOffset = f.server_now - Date.now() / 1000;
        break;
      case "wallboard":
        if (Array.isArray(f.seats) || f.kpis || f.desk) renderBoard(f);
        break;
      case "seat_state": {
        // One seat changed (pushed by the daemon): take it at once, the next poll confirms.
        let since = epoch(f.since);
        if (since === null && typeof f.in_state_s === "number") since = nowS() - f.in_state_s;
        seatStates[f.seat] = Object.assign({}, seatStates[f.seat] || {}, f, { since: since });
        seatFrames[f.seat] = (seatFrames[f.seat] || 0) + 1;
        renderSeats();
        break;
      }
      case "alerts": // the server's kept alerts, oldest first (on every connect)
        clear($("alerts"));
        for (const a of f.alerts || []) addAlert(a);
        $("alerts-empty").hidden = $("alerts").children.length > 0;
        break;
      case "alert":
        addAlert(f);
        if (f.kind === "ami_down") banner(f.message || t("PBX LINK DOWN"));
        if (f.kind === "auto_pause" || f.kind === "ring_miss") loadSeats();
        break;
      default:
        break;
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws/supervisor");
    opened = false;
    ws.onopen = () => {
      opened = true;
      backoffMs = 500;
      setConn(t("live"), true);
    };
    ws.onmessage = (ev) => {
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      handle(f);
    };
    ws.onclose = (ev) => {
      setConn(t("reconnecting…"), false);
      if (ev.code === 4001) {
        location.assign("/login");
        return;
      }
      const delay = backoffMs * (0.5 + Math.random());
      backoffMs = Math.min(backoffMs * 2, 15000);
      setTimeout(connect, opened ? delay : delay * 2);
    };
  }

  function applyTheme(dark) {
    body.classList.toggle("dark", dark);
    $("theme-toggle").textContent = dark ? t("Light theme") : t("Dark theme");
  }

  const params = new URLSearchParams(location.search);
  let dark = params.get("theme") === "dark" || (params.get("theme") !== "light" && localStorage.getItem("ctid-theme") === "dark");
  applyTheme(dark);
  $("theme-toggle").addEventListener("click", () => {
    dark = !dark;
    localStorage.setItem("ctid-theme", dark ? "dark" : "light");
    applyTheme(dark);
  });

  for (const btn of document.querySelectorAll("button[data-spy]")) btn.addEventListener("click", () => startSpy(btn));
  for (const btn of document.querySelectorAll("button[data-spy-mode]")) btn.addEventListener("click", () => switchSpy(btn.dataset.spyMode));
  const stop = $("spy-stop");
  if (stop) stop.addEventListener("click", stopSpy);
  for (const btn of document.querySelectorAll("button[data-unpause]")) btn.addEventListener("click", () => setSeatState(btn.dataset.unpause, "ready"));
  for (const btn of document.querySelectorAll("button[data-pause]")) {
    btn.addEventListener("click", () => {
      const select = btn.parentElement.querySelector(".pause-reason");
      setSeatState(btn.dataset.pause, "paused", select ? select.value : "admin");
    });
  }

  setInterval(tick, 500);
  setInterval(loadSeats, SEATS_EVERY_MS);
  loadSeats();
  connect();
})();
