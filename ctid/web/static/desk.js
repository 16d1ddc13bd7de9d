// The agent desktop: follows this seat's WebSocket, renders the current pop (ring countdown,
// talk timer with the cap, SOP checklist, incident form) and saves the incident with fetch().
// Every caller-controlled value is put on the page with textContent, never as HTML.
"use strict";

(() => {
  const body = document.body;
  const seat = body.dataset.seat;
  const csrf = body.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const form = $("incident-form");

  let clockOffset = 0; // server epoch - browser epoch, seconds (from the hello frame)
  let current = null; // the pop frame on screen
  let backoffMs = 500;
  let opened = false;
  let bannerTimer = null;

  const nowS = () => Date.now() / 1000 + clockOffset;

  function setText(el, value) {
    el.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function show(el, on) {
    el.hidden = !on;
  }

  function clock(sec) {
    const s = Math.max(0, Math.round(sec));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function li(parts, className) {
    const item = document.createElement("li");
    if (className) item.className = className;
    for (const [cls, value] of parts) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = value === null || value === undefined ? "" : String(value);
      item.appendChild(span);
    }
    return item;
  }

  function day(epoch) {
    if (!epoch) return "";
    return new Date(epoch * 1000).toLocaleString();
  }

  // ---------------------------------------------------------------- banner & notifications

  function banner(message, level) {
    const el = $("banner");
    el.textContent = message;
    el.className = "banner " + (level || "info");
    el.hidden = false;
    if (bannerTimer) clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => {
      el.hidden = true;
    }, 15000);
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

  // ---------------------------------------------------------------- rendering

  function callerTitle(f) {
    if (f.caller) return f.caller.name;
    if (f.match === "several") return f.cid_name || "Several possible callers";
    return f.cid_name || "Unknown caller";
  }

  function fillForm(f, reset) {
    if (reset) {
      form.reset();
      $("save-status").textContent = "";
    }
    const p = f.form || {};
    form.elements.call_id.value = f.call_id || "";
    if (reset) {
      form.elements.caller_id.value = p.caller_id === null || p.caller_id === undefined ? "" : p.caller_id;
      form.elements.caller_name.value = p.caller_name || "";
      form.elements.phone.value = p.phone || "";
      form.elements.department.value = p.department || "";
      form.elements.office.value = p.office || "";
      form.elements.request_type.value = p.request_type || "";
    }
    else if (p.caller_id !== null && p.caller_id !== undefined && !form.elements.caller_id.value) {
      // The directory match arrives just after the first frame of the call: take it, but never
      // overwrite what the agent has already typed.
      form.elements.caller_id.value = p.caller_id;
      const keep = (el, v) => { if (!el.value || el.value === el.defaultValue) el.value = v || ""; };
      form.elements.caller_name.value = p.caller_name || form.elements.caller_name.value;
      keep(form.elements.phone, p.phone);
      keep(form.elements.department, p.department);
      keep(form.elements.office, p.office);
    }
    if (f.incident && f.incident.number) form.elements.number.value = f.incident.number;
    $("incident-number").textContent = form.elements.number.value || "(new)";
  }

  function pickCandidate(c) {
    form.elements.caller_id.value = c.caller_id;
    form.elements.caller_name.value = c.name || "";
    form.elements.phone.value = c.phone || (current ? current.number : "");
    form.elements.department.value = c.department || "";
    form.elements.office.value = c.office || "";
    setText($("caller-name"), c.name);
    setText($("caller-department"), c.department);
    setText($("caller-office"), c.office);
    setText($("caller-employee"), c.employee_id);
    show($("caller-vip"), !!c.vip);
    for (const b of $("chooser-list").querySelectorAll("button")) {
      b.classList.toggle("chosen", b.dataset.callerId === String(c.caller_id));
    }
  }

  function renderChooser(f) {
    const list = $("chooser-list");
    clear(list);
    for (const c of f.candidates || []) {
      const item = document.createElement("li");
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "secondary";
      btn.dataset.callerId = String(c.caller_id);
      btn.textContent = c.name;
      const info = document.createElement("span");
      info.className = "muted";
      info.textContent = " " + [c.department, c.office].filter(Boolean).join(" · ") +
        (c.open_incidents ? " · " + c.open_incidents + " open" : "");
      btn.addEventListener("click", () => pickCandidate(c));
      item.appendChild(btn);
      item.appendChild(info);
      list.appendChild(item);
    }
    show($("chooser"), f.match === "several");
  }

  function sopKey(f) {
    return "ctid-sop:" + f.call_id;
  }

  function sopDone(f) {
    try {
      return JSON.parse(sessionStorage.getItem(sopKey(f)) || "{}");
    } catch (e) {
      return {};
    }
  }

  function renderSop(f) {
    const list = $("sop-list");
    clear(list);
    const steps = f.sop || [];
    show($("sop"), steps.length > 0);
    const done = sopDone(f);
    for (const step of steps) {
      const item = document.createElement("li");
      item.dataset.key = step.key;
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = !!done[step.key];
      box.addEventListener("change", () => {
        const now = sopDone(f);
        if (box.checked) now[step.key] = nowS();
        else delete now[step.key];
        sessionStorage.setItem(sopKey(f), JSON.stringify(now));
        tick();
      });
      const name = document.createElement("strong");
      name.textContent = step.label;
      const budget = document.createElement("span");
      budget.className = "budget";
      budget.textContent = " " + clock(step.budget_s);
      const spent = document.createElement("span");
      spent.className = "spent";
      const prompt = document.createElement("div");
      prompt.className = "prompt";
      prompt.textContent = step.prompt;
      label.append(box, " ", name, budget, spent);
      item.append(label, prompt);
      list.appendChild(item);
    }
  }

  function render(f) {
    const newCall = !current || current.call_id !== f.call_id;
    const wasRinging = current && current.call_id === f.call_id && current.state === "ringing";
    current = f;
    show($("pop-empty"), false);
    show($("last-note"), false);
    show($("pop-body"), true);
    const state = $("pop-state");
    state.textContent = { ringing: "Ringing", talking: "On call", wrapup: "Wrap-up" }[f.state] || f.state;
    state.className = "badge state-" + f.state;
    $("caller-name").textContent = callerTitle(f);
    const c = f.caller;
    show($("caller-vip"), !!(c && c.vip));
    setText($("caller-number"), f.number);
    setText($("caller-department"), c ? c.department : "");
    setText($("caller-office"), c ? c.office : "");
    setText($("caller-employee"), c ? c.employee_id : "");
    setText($("ivr-choice"), f.ivr ? f.ivr.label + " (" + f.ivr.digit + ")" : "");
    setText($("waited"), f.waited_s === null || f.waited_s === undefined ? "" : clock(f.waited_s));
    renderChooser(f);
    show($("new-caller"), f.match === "none");
    const open = $("open-incidents");
    clear(open);
    for (const i of f.open_incidents || []) {
      open.appendChild(li([["mono", i.number], ["", " " + i.summary + " "], ["badge", i.status]]));
    }
    if (!open.firstChild) open.appendChild(li([["muted", "none"]]));
    const recent = $("recent-contacts");
    clear(recent);
    for (const r of f.recent_contacts || []) {
      recent.appendChild(li([["muted", day(r.at) + " · " + r.channel + " "], ["", r.summary]]));
    }
    if (!recent.firstChild) recent.appendChild(li([["muted", "none"]]));
    renderSop(f);
    const wrap = $("wrapup");
    if (f.state === "wrapup" && f.ended) {
      wrap.textContent = f.ended.answered
        ? "Call ended after " + clock(f.ended.talk_s) + ". Complete and save the incident."
        : "Call ended before it was answered.";
      wrap.hidden = false;
    } else {
      wrap.hidden = true;
    }
    fillForm(f, newCall);
    if (newCall && f.state === "ringing") {
      notify("Call for " + seat, callerTitle(f) + " " + (f.number || ""), f.call_id);
    }
    if (wasRinging && f.state === "talking") banner("Call answered.", "info");
    tick();
  }

  function renderIdle(f) {
    current = null;
    show($("pop-body"), false);
    show($("pop-empty"), true);
    show($("sop"), false);
    const note = $("last-note");
    if (f.reason === "missed") {
      note.textContent = "Missed call" + (f.caller ? " from " + f.caller : "") + ".";
      note.hidden = false;
      banner(note.textContent, "warn");
    } else if (f.reason === "saved") {
      note.textContent = "Incident " + f.incident_number + " saved.";
      note.hidden = false;
    }
    if (f.reason !== "none") {
      form.reset();
      form.elements.call_id.value = "";
      form.elements.number.value = "";
      $("incident-number").textContent = "";
    }
    tick();
  }

  function tick() {
    const ring = $("ring-countdown");
    const talk = $("talk-timer");
    const cap = $("cap-countdown");
    const f = current;
    if (!f) {
      ring.hidden = talk.hidden = cap.hidden = true;
      return;
    }
    const now = nowS();
    if (f.state === "ringing") {
      const left = f.ring_deadline_at - now;
      ring.textContent = left > 0 ? "Answer within " + Math.ceil(left) + " s" : "Ring time is up";
      ring.classList.toggle("urgent", left <= 5);
      ring.hidden = false;
    } else {
      ring.hidden = true;
    }
    if (f.talk && f.state === "talking") {
      const elapsed = now - f.talk.started_at;
      const left = f.talk.cap_at - now;
      talk.textContent = "Talk " + clock(elapsed);
      cap.textContent = left > 0 ? "Cap in " + clock(left) : "Cap reached";
      const warned = (f.talk.warn_at || []).filter((w) => now >= w).length;
      cap.classList.toggle("warn", warned > 0 && left > 0);
      cap.classList.toggle("urgent", left <= 0);
      talk.hidden = cap.hidden = false;
      tickSop(f, now);
    } else {
      talk.hidden = cap.hidden = true;
    }
  }

  function tickSop(f, now) {
    const done = sopDone(f);
    let start = f.talk.started_at;
    let activeSeen = false;
    for (const item of $("sop-list").children) {
      const key = item.dataset.key;
      const step = (f.sop || []).find((s) => s.key === key);
      const spent = item.querySelector(".spent");
      if (done[key]) {
        item.className = "done";
        spent.textContent = " ✓ " + clock(done[key] - start);
        start = done[key];
      } else if (!activeSeen) {
        activeSeen = true;
        const used = now - start;
        item.className = used > step.budget_s ? "active over" : "active";
        spent.textContent = " · " + clock(used);
      } else {
        item.className = "";
        spent.textContent = "";
      }
    }
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
        render(f);
        break;
      case "idle":
        renderIdle(f);
        break;
      case "cap_warning": {
        const msg = f.remaining_s > 0
          ? "Talk-time cap in " + clock(f.remaining_s) + "."
          : "Talk-time cap reached (" + f.action.replace("_", " ") + ").";
        banner(msg, "warn");
        notify("Talk-time cap", msg, "cap-" + f.call_id);
        break;
      }
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
    setConn("connecting…", false);
    ws.onopen = () => {
      opened = true;
      backoffMs = 500;
      setConn("live", true);
    };
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      handle(frame);
    };
    ws.onclose = async (ev) => {
      setConn("reconnecting…", false);
      if (ev.code === 4001 || (!opened && (await sessionGone()))) {
        location.assign("/login");
        return;
      }
      const delay = backoffMs * (0.5 + Math.random());
      backoffMs = Math.min(backoffMs * 2, 15000);
      setTimeout(connect, delay);
    };
  }

  // ---------------------------------------------------------------- saving the incident

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    delete data.csrf_token;
    data.caller_id = data.caller_id === "" ? null : Number(data.caller_id);
    const status = $("save-status");
    status.textContent = "Saving…";
    let resp;
    try {
      resp = await fetch("/api/incidents", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(data),
      });
    } catch (e) {
      status.textContent = "Not saved: the desk is unreachable.";
      return;
    }
    let out = {};
    try {
      out = await resp.json();
    } catch (e) {
      out = {};
    }
    if (resp.ok) {
      form.elements.number.value = out.number;
      $("incident-number").textContent = out.number;
      status.textContent = "Saved " + out.number + ".";
    } else if (resp.status === 401) {
      location.assign("/login");
    } else {
      status.textContent = "Not saved: " + (out.error || "error " + resp.status);
    }
  });

  setupNotifications();
  setInterval(tick, 250);
  connect();
})();
