// The operator page: plain JavaScript, no build step. Data from /api/*, live updates from /api/events (SSE).
"use strict";
const $ = (sel) => document.querySelector(sel);
const VERDICTS = ["accept", "reject", "no-read", "fault"];
let recentRows = [];
let recentLimit = 12;

function fmt(x, digits) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) if (c !== null) e.append(c);
  return e;
}

function card(p, withButtons) {
  const img = p.has_image
    ? el("img", { src: `/api/image/${p.id}/overlay`, alt: `part ${p.part_id}`, loading: "lazy",
                  onerror: function () { if (!this.dataset.fallback) { this.dataset.fallback = 1; this.src = `/api/image/${p.id}/image`; } } })
    : el("div", { class: "noimg" }, "no image archived");
  const meta = el("div", { class: "meta" },
    el("span", { class: "verdict" }, p.verdict), ` · part ${p.part_id}`, el("br"),
    `score ${fmt(p.score, 3)} · ${fmt(p.total_ms, 1)} ms`, el("br"),
    el("span", { class: "muted" }, p.t_utc.replace("T", " ").slice(0, 23) + (p.recipe ? ` · ${p.recipe}` : "")),
    p.shadow_verdict ? el("div", { class: "muted" }, `shadow: ${p.shadow_verdict} (${fmt(p.shadow_score, 3)})`) : null,
    p.label ? el("div", { class: "label" }, `labelled ${p.label} by ${p.labelled_by}`) : null);
  if (withButtons) {
    meta.append(el("br"),
      el("button", { type: "button", class: "mark-good", onclick: () => relabel(p.id, "good") }, "mark good"),
      el("button", { type: "button", class: "mark-defect", onclick: () => relabel(p.id, "defect") }, "mark defect"));
  }
  return el("div", { class: `card ${p.verdict}`, "data-row": p.id, "data-part": p.part_id }, img, meta);
}

function renderRecent() {
  $("#recent").replaceChildren(...recentRows.map((p) => card(p, true)));
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

async function refreshSummary() {
  const s = await getJSON("/api/summary");
  $("#name").textContent = `edgead · ${s.name}`;
  const st = s.station || {};
  const state = $("#state");
  state.textContent = st.status || "unknown";
  state.className = `badge ${st.status || "unknown"}`;
  const problem = $("#problem");
  problem.textContent = st.problem || "";
  problem.classList.toggle("hidden", !st.problem);
  const drift = $("#drift");
  const alarms = (st.drift && st.drift.alarms) || [];
  drift.textContent = alarms.length ? `drift: ${alarms.join(", ")}` : "";
  drift.className = alarms.length ? "badge alarm" : "badge hidden";
  const values = (st.drift && st.drift.values) || {};
  const shown = { score: ["score rank", (v) => fmt(v, 2)], brightness: ["brightness", (v) => `${(100 * v).toFixed(1)} %`],
                  contrast: ["contrast", (v) => `${(100 * v).toFixed(1)} %`], alignment: ["alignment", (v) => fmt(v, 3)] };
  const rows = Object.entries(shown).filter(([k]) => values[k] !== null && values[k] !== undefined)
    .map(([k, [label, f]]) => el("tr", { class: alarms.includes(k) ? "alarm-row" : "" },
      el("td", {}, label), el("td", {}, f(values[k])), el("td", {}, alarms.includes(k) ? "ALARM" : "ok")));
  if (rows.length) $("#drift-values tbody").replaceChildren(...rows);
  $("#counts tbody").replaceChildren(...VERDICTS.map((v) =>
    el("tr", {}, el("td", {}, v), el("td", { class: `count-${v}` }, String(s.counts[v])))));
  const recipes = Object.entries(s.by_recipe || {});
  $("#recipes").classList.toggle("hidden", recipes.length === 0);
  $("#recipes tbody").replaceChildren(...recipes.map(([name, c]) =>
    el("tr", {}, el("td", {}, name), ...VERDICTS.map((v) => el("td", {}, String(c[v] || 0))))));
  const sel = $("#f-recipe");
  const known = new Set([...sel.options].map((o) => o.value));
  for (const r of s.recipes || []) if (!known.has(r)) sel.append(el("option", { value: r }, r));
  $("#lat-p50").textContent = fmt(s.latency_ms.p50, 1);
  $("#lat-p99").textContent = fmt(s.latency_ms.p99, 1);
  $("#lat-max").textContent = fmt(s.latency_ms.max, 1);
  $("#lat-n").textContent = `over the last ${s.latency_ms.parts} parts`;
  if (!s.writable) $("#label-status").textContent = "labelling is off (no ui.operators_file)";
}

async function refreshShadow() {
  const c = await getJSON("/api/compare");
  if (!c.shadowed) return;
  const truth = c.labelled ? ` · labelled ${c.labelled}: live right ${c.live_correct}, shadow right ${c.shadow_correct}` : "";
  $("#shadow").textContent = `agreement ${(100 * c.agreement).toFixed(1)} % of ${c.shadowed} · new accepts ` +
    `${c.new_accepts} · new rejects ${c.new_rejects} · not scored ${c.skipped}${truth}`;
  $("#shadow").className = "";
}

function localToISO(value) { return value ? value : ""; }  // datetime-local is read as UTC by the server

async function refreshGallery(ev) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams();
  q.set("verdict", [...document.querySelectorAll(".f-verdict:checked")].map((c) => c.value).join(","));
  for (const [key, id] of [["since", "#f-since"], ["until", "#f-until"], ["score_min", "#f-score-min"],
                           ["score_max", "#f-score-max"], ["recipe", "#f-recipe"]]) {
    const v = $(id).value;
    if (v) q.set(key, key === "since" || key === "until" ? localToISO(v) : v);
  }
  if ($("#f-shadow").checked) q.set("shadow", "disagrees");
  try {
    const rows = await getJSON(`/api/gallery?${q}`);
    $("#gallery").replaceChildren(...rows.map((p) => card(p, true)));
    $("#f-count").textContent = `${rows.length} parts`;
  } catch (e) {
    $("#f-count").textContent = String(e);
  }
}

async function relabel(row, label) {
  const name = $("#login-name").value, password = $("#login-password").value;
  const headers = { "Content-Type": "application/json", "X-Edgead-Page": "1" };
  if (name) headers.Authorization = "Basic " + btoa(unescape(encodeURIComponent(`${name}:${password}`)));
  const note = label === "good" ? "false reject (operator page)" : "escape found downstream (operator page)";
  const r = await fetch("/api/label", { method: "POST", headers, body: JSON.stringify({ row, label, note }) });
  const body = await r.json().catch(() => ({}));
  const status = $("#label-status");
  if (r.ok) {
    status.textContent = `row ${row} labelled ${body.label} by ${body.who}`;
    status.className = "ok";
    await Promise.all([refreshGallery(), reloadRecent(), refreshShadow()]);
  } else {
    status.textContent = `not labelled (${r.status}): ${body.error || r.statusText}`;
    status.className = "problem";
  }
}

async function reloadRecent() {
  recentRows = await getJSON(`/api/parts?limit=${recentLimit}`);
  renderRecent();
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("hello", () => { $("#live").textContent = "live"; });
  es.addEventListener("part", (ev) => {
    const data = JSON.parse(ev.data);
    recentRows = [...data.parts, ...recentRows.filter((p) => !data.parts.some((n) => n.id === p.id))]
      .slice(0, recentLimit);
    renderRecent();
    $("#live").textContent = `live · last part ${new Date().toISOString().slice(11, 19)} UTC`;
    refreshSummary().catch(() => {});
    refreshShadow().catch(() => {});
    // an image is archived after its row: fetch the rows again shortly so their overlays show
    setTimeout(() => reloadRecent().catch(() => {}), 700);
  });
  es.onerror = () => { $("#live").textContent = "reconnecting…"; };
}

$("#filters").addEventListener("submit", refreshGallery);
Promise.all([refreshSummary(), reloadRecent(), refreshGallery(), refreshShadow()]).catch((e) => {
  $("#live").textContent = String(e);
});
// ?live=0: no event stream and no timers (a one-shot screenshot waits for the network to go idle)
if (new URLSearchParams(location.search).get("live") === "0") {
  $("#live").textContent = "snapshot";
} else {
  setInterval(() => refreshSummary().catch(() => {}), 5000);
  connect();
}
