// The wallboard: renders `wallboard` and `alert` frames from /ws/supervisor (seat states with the
// ring count against the three rings and the talk timer against the cap, callers waiting, today's
// KPIs, desk mode, AMI link, alerts) and drives listen/whisper/barge + stop through /api/spy.
// Every value from a frame is put on the page with textContent, never as HTML.
"use strict";

(() => {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const cadence = Number(body.dataset.ringCadence) || 5;
  const maxRings = Number(body.dataset.maxRings) || 3;
  const canSpy = body.dataset.canSpy === "1";
  const $ = (id) => document.getElementById(id);
  const MAX_ALERTS = 50;

  let clockOffset = 0; // server epoch - browser epoch, seconds (from the hello frame)
  let board = null; // the last wallboard frame
  let backoffMs = 500;
  let opened = false;
  let spySession = null; // {session_id, seat, mode}

  const nowS = () => Date.now() / 1000 + clockOffset;

  // Times are epoch seconds; ISO 8601 strings (the desk summary) are accepted too.
  function epoch(v) {
    if (v === null || v === undefined || v === "") return null;
    if (typeof v === "number") return v;
    const t = Date.parse(String(v));
    return Number.isNaN(t) ? null : t / 1000;
  }

  function clock(sec) {
    const s = Math.max(0, Math.round(sec));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // Clock times in the site's zone (the wall display's own zone may differ).
  let timeFormat;
  try {
    timeFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: body.dataset.tz || undefined });
  } catch (e) {
    timeFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  function hhmm(ep) {
    if (ep === null) return "";
    return timeFormat.format(new Date(ep * 1000));
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function el(tagName, className, text) {
    const e = document.createElement(tagName);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function label(v) {
    return String(v || "").replace(/_/g, " ");
  }

  function banner(message) {
    const b = $("banner");
    b.textContent = message;
    b.className = "banner warn";
    b.hidden = false;
  }

  // ---------------------------------------------------------------- rendering

  const STATUS = {
    available: "Available",
    ringing: "Ringing",
    on_call: "On call",
    wrap_up: "Wrap-up",
    paused: "Paused",
    offline: "Offline",
  };
  const PAUSE = { lunch: "Lunch", rna: "Ring no answer (auto)", manual: "Paused by the agent", closed: "Desk closed" };

  function pct(v) {
    return v === null || v === undefined ? "–" : (Number(v) * 100).toFixed(1) + "%";
  }

  function renderKpis(k) {
    k = k || {};
    const set = (key, text) => {
      const e = $("kpi-" + key);
      if (e) e.textContent = text;
    };
    for (const key of ["offered", "answered", "abandoned", "over_cap"]) {
      set(key, k[key] === null || k[key] === undefined ? "–" : String(k[key]));
    }
    set("loss_rate", pct(k.loss_rate));
    set(
      "within_rings_pct",
      k.within_rings_pct === null || k.within_rings_pct === undefined
        ? "–"
        : Number(k.within_rings_pct).toFixed(1) + "%",
    );
    set("asa_s", k.asa_s === null || k.asa_s === undefined ? "–" : clock(k.asa_s));
    set("aht_s", k.aht_s === null || k.aht_s === undefined ? "–" : clock(k.aht_s));
  }

  function renderDesk(d, ami) {
    d = d || {};
    const mode = $("desk-mode");
    mode.textContent = "desk " + (d.mode || "—") + (d.mode === "lunch" && d.lunch_group ? " (group " + d.lunch_group + " on duty)" : "");
    mode.className = "badge mode-" + (d.mode || "unknown");
    const next = epoch(d.next_transition);
    $("desk-next").textContent = next ? "next: " + label(d.next_mode) + " at " + hhmm(next) : "";
    const a = $("ami-state");
    ami = ami || {};
    const up = typeof ami.connected === "boolean" ? ami.connected : ami.logged_in;
    a.textContent = up === undefined ? "AMI —" : up ? "AMI up" : "AMI DOWN";
    a.className = "badge " + (up === false ? "ami-down" : "ami-up");
  }

  function seatCard(seatId) {
    return document.querySelector('.seat-card[data-seat="' + CSS.escape(seatId) + '"]');
  }

  function ensureCard(s) {
    let card = seatCard(s.seat_id);
    if (card) return card;
    // A seat the page did not know (added to the roster since): build the same card.
    card = el("article", "seat-card");
    card.dataset.seat = s.seat_id;
    const head = el("header");
    head.append(el("strong", "seat-name", s.name || s.seat_id), " ", el("span", "seat-tier badge", s.tier));
    card.append(head, el("div", "seat-status badge", "—"));
    for (const cls of ["seat-reason", "seat-ring", "seat-talk", "seat-caller"]) card.append(el("div", "seat-line " + cls));
    if (canSpy) {
      const box = el("div", "spy-buttons");
      box.hidden = true;
      for (const mode of ["listen", "whisper", "barge"]) {
        const b = el("button", mode === "listen" ? "" : "secondary", mode[0].toUpperCase() + mode.slice(1));
        b.type = "button";
        b.dataset.spy = s.seat_id;
        b.dataset.mode = mode;
        b.addEventListener("click", () => startSpy(b));
        box.append(b);
      }
      card.append(box);
    }
    $("seats").append(card);
    return card;
  }

  function renderSeats(seats) {
    for (const s of seats || []) {
      const card = ensureCard(s);
      const status = s.status || "offline";
      card.className = "seat-card status-" + status;
      card.querySelector(".seat-name").textContent = s.name || s.seat_id;
      card.querySelector(".seat-status").textContent = STATUS[status] || label(status);
      const reason = card.querySelector(".seat-reason");
      reason.textContent = status === "paused" ? PAUSE[s.pause_reason] || label(s.pause_reason) || "Paused" : "";
      card.querySelector(".seat-caller").textContent = s.caller ? "Caller: " + s.caller : "";
      const spy = card.querySelector(".spy-buttons");
      if (spy) spy.hidden = status !== "on_call";
    }
    tick();
  }

  function renderQueues(queues) {
    const box = $("queues");
    clear(box);
    let any = false;
    for (const q of queues || []) {
      const waiting = q.waiting || [];
      const h = el("h3", "", q.name + " · " + waiting.length + " waiting");
      box.append(h);
      const ul = el("ul", "lines waiting");
      for (const w of waiting) {
        any = true;
        const item = el("li");
        item.append(el("span", "", w.caller || "unknown caller"), " ");
        const wait = el("span", "wait");
        wait.dataset.since = String(epoch(w.since) || "");
        item.append(wait);
        ul.append(item);
      }
      box.append(ul);
    }
    if (!any && !(queues || []).length) box.append(el("p", "muted", "No queue data."));
    tick();
  }

  function renderBoard(f) {
    board = f;
    renderKpis(f.kpis);
    renderDesk(f.desk, f.ami);
    renderSeats(f.seats);
    renderQueues(f.queues);
  }

  function addAlert(f) {
    const list = $("alerts");
    const item = el("li", "alert kind-" + String(f.kind || "info").replace(/[^a-z0-9_-]/gi, ""));
    const at = epoch(f.at) || nowS();
    item.append(el("span", "muted", hhmm(at)), " ");
    item.append(el("strong", "", label(f.kind || "alert")), " ");
    if (f.seat) item.append(el("span", "badge", f.seat), " ");
    item.append(el("span", "", f.message || ""));
    list.prepend(item);
    while (list.children.length > MAX_ALERTS) list.removeChild(list.lastChild);
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
        ring.textContent = now >= deadline ? "Past " + maxRings + " rings" : "Ring " + n + " of " + maxRings;
        ring.classList.toggle("urgent", n >= maxRings);
      } else {
        ring.textContent = "";
        ring.classList.remove("urgent");
      }
      const ts = epoch(s.talk_started_at);
      const cap = epoch(s.cap_at);
      if (s.status === "on_call" && ts !== null) {
        let text = "Talk " + clock(now - ts);
        if (cap !== null) text += cap > now ? " · cap in " + clock(cap - now) : " · over the cap";
        talk.textContent = text;
        talk.classList.toggle("warn", cap !== null && cap - now <= 120 && cap > now);
        talk.classList.toggle("urgent", cap !== null && cap <= now);
      } else {
        talk.textContent = "";
        talk.classList.remove("warn", "urgent");
      }
    }
    for (const w of document.querySelectorAll("#queues .wait")) {
      const since = Number(w.dataset.since);
      w.textContent = since ? "waiting " + clock(now - since) : "";
    }
  }

  // ---------------------------------------------------------------- listen in

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

  function showSpy() {
    const panel = $("spy-panel");
    if (!panel) return;
    panel.hidden = !spySession;
    if (spySession) {
      $("spy-what").textContent = "Your phone is in " + spySession.seat + " (" + spySession.mode + ")";
      for (const b of panel.querySelectorAll("button[data-spy-mode]")) {
        b.classList.toggle("chosen", b.dataset.spyMode === spySession.mode);
      }
    }
  }

  async function startSpy(btn) {
    const status = $("spy-status");
    status.textContent = "Calling your phone…";
    try {
      const [resp, out] = await post("/api/spy", { seat: btn.dataset.spy, mode: btn.dataset.mode });
      if (resp.ok) {
        spySession = { session_id: out.session_id, seat: out.seat, mode: out.mode };
        status.textContent = "Your phone rings into " + out.seat + " (" + out.mode + ").";
      } else {
        status.textContent = "Not possible: " + (out.error || resp.status);
      }
    } catch (e) {
      status.textContent = "The desk is unreachable.";
    }
    showSpy();
  }

  async function switchSpy(mode) {
    if (!spySession) return;
    const [resp, out] = await post("/api/spy/" + encodeURIComponent(spySession.session_id) + "/mode", { mode: mode });
    if (resp.ok) spySession.mode = out.mode;
    else $("spy-status").textContent = "Not possible: " + (out.error || resp.status);
    if (resp.status === 404) spySession = null;
    showSpy();
  }

  async function stopSpy() {
    if (!spySession) return;
    const [resp, out] = await post("/api/spy/" + encodeURIComponent(spySession.session_id) + "/stop");
    $("spy-status").textContent = resp.ok || resp.status === 404 ? "Stopped listening." : "Not possible: " + (out.error || resp.status);
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
      case "alert":
        addAlert(f);
        if (f.kind === "ami_down") banner(f.message || "The AMI link is down.");
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
      setConn("live", true);
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
      setConn("reconnecting…", false);
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
    $("theme-toggle").textContent = dark ? "Light theme" : "Dark theme";
  }

  const params = new URLSearchParams(location.search);
  let dark = params.get("theme") === "dark" || (params.get("theme") !== "light" && localStorage.getItem("ctid-theme") === "dark");
  applyTheme(dark);
  $("theme-toggle").addEventListener("click", () => {
    dark = !dark;
    localStorage.setItem("ctid-theme", dark ? "dark" : "light");
    applyTheme(dark);
  });

  for (const btn of document.querySelectorAll("button[data-spy]")) {
    btn.addEventListener("click", () => startSpy(btn));
  }
  for (const btn of document.querySelectorAll("button[data-spy-mode]")) {
    btn.addEventListener("click", () => switchSpy(btn.dataset.spyMode));
  }
  const stop = $("spy-stop");
  if (stop) stop.addEventListener("click", stopSpy);

  setInterval(tick, 500);
  connect();
})();
