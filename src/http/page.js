"use strict";
const REFRESH_MS = 5000;
// Key of the expanded group; kept in the address (#open=KEY) so that a link
// opens the page on that group.
let open = fromHash();

function fromHash() {
  const h = location.hash.slice(1);
  if (!h.startsWith("open=")) return null;
  try { return decodeURIComponent(h.slice(5)); } catch (e) { return null; }
}
function toHash(k) {
  history.replaceState(null, "", k == null ? location.pathname + location.search : "#open=" + encodeURIComponent(k));
}

function token() { return sessionStorage.getItem("lagwatch-token"); }
async function api(path) {
  const headers = {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  const r = await fetch(path, { headers });
  if (r.status === 401) {
    const t = prompt("lagwatch API token");
    if (t) { sessionStorage.setItem("lagwatch-token", t); return api(path); }
  }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "onclick") e.onclick = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}
function dur(s) {
  if (s == null) return "–";
  if (s < 1) return "0s";
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = Math.floor(s % 60);
  return d ? `${d}d${h}h` : h ? `${h}h${m}m` : m ? `${m}m${sec}s` : `${sec}s`;
}
function num(n) { return n == null ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 }); }
function behind(t) {
  if (!t) return "–";
  if (t.seconds != null) return dur(t.seconds) + (t.quality === "extrapolated" ? " ~" : "");
  return t.at_least_seconds != null ? "≥ " + dur(t.at_least_seconds) : "?";
}
function spark(points) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark"); svg.setAttribute("viewBox", "0 0 90 22");
  if (points.length > 1) {
    const max = Math.max(1, ...points.map(p => p[1]));
    const pl = document.createElementNS(ns, "polyline");
    pl.setAttribute("points", points.map((p, i) => `${(i * 88 / (points.length - 1) + 1).toFixed(1)},${(21 - p[1] * 20 / max).toFixed(1)}`).join(" "));
    svg.append(pl);
  }
  return svg;
}
// Figures that could not be read at the last poll are the last known ones: say so.
function staleMark(x) {
  if (!x.stale) return "";
  const what = x.partial ? `${x.stale_partitions} partitions stale` : "stale";
  return el("span", { class: "stale", title: "could not be read at the last poll; showing the last known values" },
    `${what} ${dur(x.stale_seconds)}`);
}
// The main cause of a group that is behind, beside its status; the whole
// sentence with the numbers on hover and in the detail ("Why: ...").
function causeTag(x) {
  const c = (x.causes || [])[0];
  if (!c) return "";
  const more = x.causes.length > 1 ? ` +${x.causes.length - 1}` : "";
  return el("span", { class: "cause", title: x.diagnosis || c.evidence }, c.cause.replace(/_/g, " ") + more);
}
// Dead letters within the window: "≥" when part of it was not watched.
function deadTag(x) {
  const d = x.dead_letters;
  if (!d) return "–";
  const n = (d.quality === "lower_bound" ? "≥" : "") + num(d.recent);
  const title = (d.detail || `in the last ${dur(d.window_seconds)}`) + (d.stale ? " (could not be read at the last poll: last known)" : "");
  return el("span", { class: (d.recent > 0 ? "dead" : "") + (d.stale ? " stale" : ""), title }, n + (d.stale ? " (stale)" : ""));
}
function key(g) { return `${g.source}/${g.stream || ""}/${g.group}`; }
function recText(r) { return r ? (r.recommended != null ? `${r.current ?? "?"} → ${r.recommended}` : "") + (r.reason ? ` (${r.reason})` : "") : "–"; }

async function detail(g, row) {
  // The query form: a group named ".." (even as "%2E%2E") in a path would be
  // turned into a step up by the browser's URL parser.
  const q = new URLSearchParams({ source: g.source, group: g.group });
  if (g.stream) q.set("stream", g.stream);
  const d = await api(`/api/v1/group?${q}`);
  const t = el("table", {}, el("thead", {}, el("tr", {},
    el("th", {}, "Topic"), el("th", {}, "Partition"), el("th", {}, "Status"), el("th", { class: "num" }, "Lag"),
    el("th", { class: "num" }, "Behind"), el("th", { class: "num wide" }, "Committed"), el("th", { class: "num wide" }, "Latest"),
    el("th", { class: "num wide" }, "In/s"), el("th", { class: "num wide" }, "Out/s"), el("th", { class: "num" }, "ETA"))));
  const tb = el("tbody");
  for (const p of d.partitions) {
    tb.append(el("tr", {}, el("td", {}, p.topic, p.stale ? el("span", { class: "stale" }, "stale") : ""), el("td", {}, p.partition ?? "–"),
      el("td", {}, el("span", { class: "status " + p.status }, p.status)), el("td", { class: "num" }, num(p.lag)),
      el("td", { class: "num" }, behind(p.lag_seconds)), el("td", { class: "num wide" }, num(p.committed)),
      el("td", { class: "num wide" }, num(p.latest)), el("td", { class: "num wide" }, num(p.produce_rate)),
      el("td", { class: "num wide" }, num(p.consume_rate)), el("td", { class: "num" }, dur(p.eta_seconds))));
  }
  t.append(tb);
  const info = el("div", { class: "mute" }, `state ${d.group.state ?? "unknown"}, members ${d.group.members ?? "unknown"}` +
    (d.group.recommendation ? ` — ${d.group.recommendation.message}` : ""));
  if (d.group.diagnosis) info.append(el("div", { class: "why" }, "Why: " + d.group.diagnosis));
  const dl = d.group.dead_letters;
  if (dl && (dl.recent > 0 || dl.detail)) {
    info.append(el("div", { class: "why" }, `Dead letters in the last ${dur(dl.window_seconds)}: ` +
      `${dl.quality === "lower_bound" ? "at least " : ""}${num(dl.recent)}` + (dl.detail ? ` — ${dl.detail}` : "")));
  }
  if (d.group.redelivered) {
    const r = d.group.redelivered;
    info.append(el("div", { class: "mute" }, `redelivered ${num(r.per_second)}/s` + (r.quality === "exact" ? "" : " (at most)")));
  }
  const cell = el("td", { colspan: "12" }, info, t);
  row.after(el("tr", { class: "detail" }, cell));
}

async function refresh() {
  try {
    const [s, g] = await Promise.all([api("/api/v1/sources"), api("/api/v1/groups")]);
    const src = document.getElementById("sources");
    src.replaceChildren(...s.sources.map(x => el("span", { class: x.up ? "" : "down" },
      `${x.name} (${x.system}) ${x.up ? "up" : "DOWN" + (x.last_error ? ": " + x.last_error.message : "")}`)));
    const tb = document.getElementById("groups");
    const rows = [];
    for (const x of g.groups) {
      const row = el("tr", { class: "group", "data-key": key(x) },
        el("td", {}, x.group + (x.stream ? ` (${x.stream})` : ""), staleMark(x)), el("td", { class: "wide" }, x.source),
        el("td", { class: "wide" }, x.system),
        el("td", {}, el("span", { class: "status " + (x.status || "") }, x.status || (x.state || "–")), causeTag(x)),
        el("td", { class: "num" }, num(x.lag)), el("td", { class: "num" }, behind(x.lag_seconds)),
        el("td", { class: "num" }, deadTag(x)),
        el("td", { class: "wide " + (x.status || "") }, spark(x.trend || [])),
        el("td", { class: "num wide" }, num(x.lag_growth)), el("td", { class: "num" }, dur(x.eta_seconds)),
        el("td", { class: "wide" }, recText(x.recommendation)),
        el("td", { class: "wide" }, (x.incidents || []).map(i => `${i.rule} (${i.severity})`).join(", ") || "–"));
      row.onclick = () => { open = open === key(x) ? null : key(x); toHash(open); refresh(); };
      rows.push(row);
    }
    tb.replaceChildren(...rows);
    const sel = rows.find(r => r.dataset.key === open);
    if (sel) await detail(g.groups.find(x => key(x) === open), sel);
    document.getElementById("meta").textContent = `${g.groups.length} groups · updated ${new Date().toLocaleTimeString()} · data at ${g.at}`;
    document.getElementById("error").hidden = true;
  } catch (e) {
    const err = document.getElementById("error");
    err.textContent = "cannot refresh: " + e.message; err.hidden = false;
  }
}
refresh();
setInterval(refresh, REFRESH_MS);
