// The roster's plan form: for every lunch week it shows who is on the phones and refuses, before
// anything is sent, a plan that leaves a tier without a seat at lunch (the rule the server checks
// too: every tier that has an active seat needs an active seat of that tier in the group on duty,
// unless lunch.allow_overflow). Also one person on two seats. Words come from t().
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("plan-form");
  if (!form) return;
  let words = {};
  let rules = { groups: {}, allow_overflow: false, names: {} };
  try {
    words = JSON.parse(($("ctid-words") || {}).textContent || "{}");
    rules = JSON.parse(($("plan-rules") || {}).textContent || "{}");
  } catch (e) {
    // Without the rules the server's check still refuses a bad plan.
  }
  function t(text, values) {
    let out = Object.prototype.hasOwnProperty.call(words, text) ? words[text] : text;
    if (values) out = out.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
    return out;
  }
  const TIER = { ordinary: t("ordinary"), expert: t("expert") };

  function seats() {
    const out = {};
    for (const row of form.querySelectorAll("tr[data-seat]")) {
      const id = row.dataset.seat;
      const staff = row.querySelector("select.staff");
      out[id] = {
        name: row.querySelector("input[name^='name:']").value.trim() || rules.names[id] || id,
        tier: row.querySelector("select.tier").value,
        active: row.querySelector("input.active").checked,
        staff: staff.value,
        staffName: staff.value ? staff.options[staff.selectedIndex].textContent : "",
      };
    }
    return out;
  }

  function check() {
    const all = seats();
    const problems = [];
    const tiers = new Set(Object.values(all).filter((s) => s.active).map((s) => s.tier));
    for (const row of form.querySelectorAll("tr[data-week]")) {
      const week = row.dataset.week;
      const group = row.querySelector("select.week-group").value;
      const members = (rules.groups[group] || []).filter((id) => all[id] && all[id].active);
      row.querySelector(".week-seats").textContent = members.length
        ? members.map((id) => all[id].name + (all[id].staffName ? " · " + all[id].staffName.replace(/ \(.*\)$/, "") : "")).join(", ")
        : "—";
      const have = new Set(members.map((id) => all[id].tier));
      let message = "";
      if (!members.length) {
        message = t("Week {week}: nobody of group {group} is on the phones at lunch.", { week: week, group: group });
      } else if (!rules.allow_overflow) {
        const missing = [...tiers].filter((x) => !have.has(x)).sort();
        if (missing.length) {
          message = t("Week {week}: no {tier} seat on lunch duty (group {group}: {seats}).", {
            week: week,
            tier: missing.map((x) => TIER[x] || x).join(", "),
            group: group,
            seats: (rules.groups[group] || []).map((id) => (all[id] ? all[id].name : id)).join(", "),
          });
        }
      }
      const problemRow = form.querySelector('tr[data-week-problem="' + CSS.escape(week) + '"]');
      problemRow.hidden = !message;
      problemRow.querySelector(".field-error").textContent = message;
      row.classList.toggle("invalid", !!message);
      if (message) problems.push(message);
    }
    const staffed = {};
    for (const [id, s] of Object.entries(all)) {
      if (!s.staff) continue;
      if (staffed[s.staff]) problems.push(t("{person} cannot staff two seats ({a} and {b}).", { person: s.staffName, a: all[staffed[s.staff]].name, b: s.name }));
      else staffed[s.staff] = id;
    }
    for (const input of form.querySelectorAll("input[required]")) {
      if (!input.value.trim()) problems.push(t("{field} is required.", { field: input.getAttribute("aria-label") || input.name }));
      input.classList.toggle("invalid", !input.value.trim());
    }
    const box = $("plan-problems");
    box.hidden = !problems.length;
    box.textContent = problems.length ? t("Not saved yet — fix this first:") + " " + problems.join(" ") : "";
    $("plan-save").disabled = problems.length > 0;
    return problems.length === 0;
  }

  form.addEventListener("change", check);
  form.addEventListener("input", check);
  form.addEventListener("submit", (ev) => {
    if (!check()) ev.preventDefault();
  });
  check();
})();
