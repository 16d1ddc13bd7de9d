// The desk card's incident helpers: "this call is about …" (attach the call to one of the
// caller's open incidents instead of the automatic new one), the knowledge articles and earlier
// solutions suggested while it rings, and a number's earlier calls when nobody is matched.
// Reads the frames desk.js passes on (ctid:frame) and which card is shown (ctid:card).
"use strict";

(() => {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const panel = document.getElementById("kb-panel");
  if (!panel) return;
  let WORDS = {};
  try {
    WORDS = JSON.parse((document.getElementById("ctid-words") || {}).textContent || "{}");
  } catch (e) {
    WORDS = {};
  }
  function t(text, values) {
    let out = WORDS[text] || text;
    for (const [k, v] of Object.entries(values || {})) out = out.split("{" + k + "}").join(String(v));
    return out;
  }
  const calls = new Map(); // call_id -> {pop, suggestions, attached, error}
  let shown = null;

  function el(name, text, cls) {
    const e = document.createElement(name);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function entry(call_id) {
    if (!calls.has(call_id)) calls.set(call_id, { pop: null, suggestions: null, attached: null, error: "" });
    return calls.get(call_id);
  }

  async function attach(call_id, number) {
    const c = entry(call_id);
    c.error = "";
    let resp;
    try {
      resp = await fetch("/api/calls/" + encodeURIComponent(call_id) + "/attach", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ incident: number }),
      });
    } catch (e) {
      c.error = t("The desk is unreachable.");
      render();
      return;
    }
    let out = {};
    try {
      out = await resp.json();
    } catch (e) {
      out = {};
    }
    if (resp.ok) {
      c.attached = out.incident;
      c.withdrawn = out.withdrawn || null;
    } else {
      c.error = out.error || t("Not attached.");
    }
    render();
  }

  function render() {
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    const c = shown ? calls.get(shown) : null;
    const pop = c && c.pop;
    if (!c || !pop) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    const open = pop.open_incidents || [];
    if (pop.state !== "wrapup" && open.length) {
      panel.appendChild(el("h3", t("This call is about")));
      if (c.attached) {
        const p = el("p", t("Attached to {number}: the call is a contact on it.", { number: c.attached }), "notice");
        p.id = "attached-to";
        panel.appendChild(p);
        if (c.withdrawn) panel.appendChild(el("p", t("{number} was withdrawn as a duplicate.", { number: c.withdrawn }), "muted"));
      } else {
        const list = el("ul", null, "lines");
        list.id = "attach-list";
        for (const i of open) {
          const item = el("li");
          const btn = el("button", t("Attach to {number}", { number: i.number }), "secondary attach");
          btn.type = "button";
          btn.dataset.incident = i.number;
          btn.addEventListener("click", () => attach(pop.call_id, i.number));
          item.appendChild(btn);
          item.appendChild(el("span", " " + i.summary));
          list.appendChild(item);
        }
        panel.appendChild(list);
      }
      if (c.error) panel.appendChild(el("p", c.error, "error"));
    }
    if (pop.match === "none" && pop.number) {
      const a = el("a", t("Earlier calls from this number"));
      a.href = "/callers/number?n=" + encodeURIComponent(pop.number);
      a.id = "earlier-calls";
      panel.appendChild(el("p")).appendChild(a);
    }
    const s = c.suggestions;
    if (s && (s.articles.length || s.solved_before.length)) {
      panel.appendChild(el("h3", t("Knowledge base")));
      const list = el("ul", null, "lines");
      list.id = "kb-suggestions";
      for (const a of s.articles) {
        const item = el("li");
        const link = el("a", a.title);
        link.href = "/kb/" + encodeURIComponent(a.id);
        link.target = "_blank";
        link.rel = "noopener";
        item.appendChild(link);
        list.appendChild(item);
      }
      panel.appendChild(list);
      if (s.solved_before.length) {
        panel.appendChild(el("h3", t("Solved before")));
        const solved = el("ul", null, "lines");
        solved.id = "kb-solved";
        for (const i of s.solved_before) {
          const item = el("li");
          const link = el("a", i.number, "mono");
          link.href = "/incidents/" + encodeURIComponent(i.number);
          item.appendChild(link);
          item.appendChild(el("span", " " + i.summary + (i.resolution ? " — " + i.resolution : "")));
          solved.appendChild(item);
        }
        panel.appendChild(solved);
      }
    }
    if (!panel.firstChild) panel.hidden = true;
  }

  document.addEventListener("ctid:frame", (ev) => {
    const f = ev.detail || {};
    if (f.type === "pop") {
      entry(f.call_id).pop = f;
      if (f.incident && f.incident.number && calls.get(f.call_id).attached) calls.get(f.call_id).attached = f.incident.number;
      if (shown === null) shown = f.call_id;
    } else if (f.type === "suggestions") {
      entry(f.call_id).suggestions = f;
    } else if (f.type === "idle" && f.reason === "missed") {
      calls.delete(f.call_id);
    } else {
      return;
    }
    if (f.call_id === shown) render();
  });
  document.addEventListener("ctid:card", (ev) => {
    shown = ev.detail;
    render();
  });
})();
