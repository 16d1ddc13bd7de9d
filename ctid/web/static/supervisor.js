// The supervisor page: the wallboard from the supervisor WebSocket channel, and the buttons
// that ring the supervisor's phone into a seat's live call. Data is shown with textContent only.
"use strict";

(() => {
  const csrf = document.body.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  let backoffMs = 500;
  let opened = false;

  function setConn(label, live) {
    const el = $("conn");
    el.textContent = label;
    el.className = "conn " + (live ? "conn-up" : "conn-down");
  }

  function renderWallboard(data) {
    const dl = $("wallboard");
    while (dl.firstChild) dl.removeChild(dl.firstChild);
    for (const [key, value] of Object.entries(data || {})) {
      const dt = document.createElement("dt");
      dt.textContent = key.replace(/_/g, " ");
      const dd = document.createElement("dd");
      dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
      dl.append(dt, dd);
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
      if (f.type === "wallboard") renderWallboard(f.data);
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

  for (const btn of document.querySelectorAll("button[data-spy]")) {
    btn.addEventListener("click", async () => {
      const status = $("spy-status");
      status.textContent = "Calling your phone…";
      try {
        const resp = await fetch("/api/spy", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ seat: btn.dataset.spy, mode: btn.dataset.mode }),
        });
        const out = await resp.json().catch(() => ({}));
        status.textContent = resp.ok
          ? "Your phone rings into " + out.seat + " (" + out.mode + ")."
          : "Not possible: " + (out.error || resp.status);
      } catch (e) {
        status.textContent = "The desk is unreachable.";
      }
    });
  }

  connect();
})();
