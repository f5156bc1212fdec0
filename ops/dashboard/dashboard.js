// The dashboard: reads the JSON API with the session cookie and redraws when the journal changes (server-sent
// events from /api/stream). No build step, no framework: plain DOM and plotly's bundled JS.
"use strict";

const $ = (id) => document.getElementById(id);
const usd = (x) => (x == null ? "–" : (x < 0 ? "-$" : "$") +
  Math.abs(x).toLocaleString(undefined, {maximumFractionDigits: 2}));
const pct = (x, d = 1) => (x == null ? "–" : (100 * x).toFixed(d) + "%");
const num = (x, d = 2) => (x == null ? "–" : Number(x).toFixed(d));
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
  '"': "&quot;", "'": "&#39;"}[c]));
const dark = {paper_bgcolor: "#1e293b", plot_bgcolor: "#1e293b", font: {color: "#e2e8f0"},
  margin: {l: 50, r: 10, t: 10, b: 30}};

async function api(path, options = {}) {
  const r = await fetch(path, {credentials: "same-origin", ...options,
    headers: {"X-Dashboard": "1", ...(options.headers || {})}});
  if (r.status === 401) { location.reload(); throw new Error("signed out"); }
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

function renderStatus(s) {
  const mode = $("mode");
  mode.textContent = (s.mode || "unknown").toUpperCase();
  mode.className = "badge " + (s.mode || "").toLowerCase().split(" ")[0];
  $("account").textContent = s.account ? "account " + s.account : "";
  const risk = $("risk-mode");
  risk.textContent = s.risk.mode;
  risk.className = "badge " + s.risk.mode;
  $("risk-why").textContent = s.risk.mode === "ACTIVE" ? "ACTIVE: no hold" : s.risk.why;
  const v = s.account_values || {};
  $("equity").textContent = usd(v.equity);
  $("cash").textContent = usd(v.cash);
  const day = s.day || {};
  $("day-pnl").textContent = day.pnl_usd == null ? "–" : `${usd(day.pnl_usd)} (${pct(day.pnl_pct, 2)})`;
  $("day-pnl").className = "big " + ((day.pnl_usd || 0) >= 0 ? "pos" : "neg");
  $("npos").textContent = s.positions + (s.unprotected.length ? ` (${s.unprotected.length} unprotected)` : "");
  const broker = s.broker.reachable === false ? " · BROKER UNREACHABLE" : "";
  $("iteration").textContent = `last iteration ${s.time || "–"} · next ${s.next_iteration || "–"} · ` +
    `${s.iterations ?? "–"} iterations${broker}`;
  $("model").textContent = s.model.describe ? `confidence: ${s.model.describe}` +
    (s.model.age_days != null ? ` (age ${s.model.age_days} days)` : "") : "";
  renderHedge(s.hedge || {});
  const st = s.streams;
  $("streams").textContent = !st ? "streams off: fills and stops checked at each iteration" :
    ["trade_updates", "prices"].map((k) => `${k.replace("_", " ")} ${st[k].connected ? "connected" :
      "DOWN"} (last message ${st[k].last_message ? st[k].last_message.slice(11, 19) : "none"})`).join(" · ");
}

function renderPositions(p) {
  const rows = p.positions.map((r) => {
    const cls = r.protected ? "" : "unprotected";
    const stop = r.protected ? num(r.stop) : '<span class="flag">UNPROTECTED</span>';
    const flags = [r.hedge ? "hedge" : "", r.near_stop ? "NEAR STOP" : "", r.short ? "SHORT" : ""]
      .filter(Boolean).join(" ");
    return `<tr class="${cls}" data-symbol="${esc(r.symbol)}"><td>${esc(r.symbol)} <span class="small">` +
      `${esc(flags)}</span></td><td>${r.qty}</td><td>${num(r.entry)}</td><td>${num(r.last)}</td>` +
      `<td class="${(r.pnl_pct || 0) >= 0 ? "pos" : "neg"}">${pct(r.pnl_pct)}</td><td>${stop}</td>` +
      `<td>${pct(r.stop_dist_pct)}</td><td>${num(r.target)}</td><td>${pct(r.target_dist_pct)}</td>` +
      `<td>${pct(r.share_pct)}</td></tr>`;
  });
  $("positions").tBodies[0].innerHTML = rows.join("") ||
    '<tr><td colspan="10" class="small">no positions</td></tr>';
}

function renderHedge(h) {
  if (h.breadth === undefined) return;
  Plotly.react("hedge-gauge", [{type: "indicator", mode: "gauge+number", value: 100 * (h.breadth ?? 0),
    number: {suffix: "%"}, title: {text: "bellwethers overbought"},
    gauge: {axis: {range: [0, 100]}, bar: {color: "#e2e8f0"}, steps: [
      {range: [0, 100 * h.exit_below], color: "#14532d"},
      {range: [100 * h.exit_below, 100 * h.enter_at], color: "#334155"},
      {range: [100 * h.enter_at, 100 * h.leveraged_at], color: "#92400e"},
      {range: [100 * h.leveraged_at, 100], color: "#7f1d1d"}]}}],
    {...dark, margin: {l: 25, r: 25, t: 45, b: 10}}, {displayModeBar: false, responsive: true});
  $("hedge-text").textContent = `${h.describe || ""} · hedge on at ${pct(h.enter_at, 0)}, off below ` +
    `${pct(h.exit_below, 0)} · held: ${h.held.length ? h.held.join(", ") : "none"}`;
}

function renderEquity(e) {
  const traces = [{x: e.time, y: e.equity, name: "equity", line: {color: "#60a5fa"}},
    {x: e.time, y: e.benchmark, name: e.benchmark_symbol + " (scaled)", line: {color: "#94a3b8", dash: "dot"}},
    {x: e.time, y: e.drawdown.map((d) => (d == null ? null : 100 * d)), name: "drawdown %", yaxis: "y2",
      fill: "tozeroy", line: {color: "#f87171", width: 1}}];
  Plotly.react("equity-chart", traces, {...dark, showlegend: true, legend: {orientation: "h", y: 1.1},
    yaxis: {domain: [0.32, 1], title: "USD"}, yaxis2: {domain: [0, 0.25], title: "DD %"}},
    {displayModeBar: false, responsive: true});
}

function renderGates(perf) {
  const g = perf.blocked_by_gate || {};
  Plotly.react("gates", [{type: "bar", orientation: "h", x: Object.values(g), y: Object.keys(g),
    marker: {color: "#f59e0b"}}], {...dark, margin: {l: 110, r: 10, t: 10, b: 30}},
    {displayModeBar: false, responsive: true});
}

function table(id, rows, cells) {
  $(id).tBodies[0].innerHTML = rows.map((r) => "<tr>" + cells(r).map((c) => `<td>${esc(c)}</td>`).join("") +
    "</tr>").join("") || '<tr><td class="small">none yet</td></tr>';
}

async function refresh() {
  try {
    const [s, p, e, d, perf, a, c] = await Promise.all([api("/api/status"), api("/api/positions"),
      api("/api/equity"), api("/api/decisions?limit=40"), api("/api/performance"), api("/api/alerts?limit=20"),
      api("/api/controls?limit=20")]);
    renderStatus(s);
    renderPositions(p);
    renderEquity(e);
    renderGates(perf);
    table("decisions", d, (r) => [String(r.time).slice(0, 16), r.step, r.symbol, r.action, r.reason]);
    table("alerts", a, (r) => [String(r.time).slice(0, 16), r.level, r.status, r.text]);
    table("controls", c, (r) => [String(r.time).slice(0, 16), r.source, r.action, `${r.detail} ${r.result}`]);
    $("last-update").textContent = new Date().toLocaleTimeString();
  } catch (err) {
    $("control-result").textContent = "could not refresh: " + err.message;
  }
}

const CONFIRM = {halt: "Halt the bot? It keeps protective orders and sends nothing else until you resume.",
  resume: "Resume trading?",
  flatten: "FLATTEN: cancel every order and close EVERY position at market, then halt. Are you sure?"};

for (const b of document.querySelectorAll("button[data-cmd]")) {
  b.addEventListener("click", async () => {
    const cmd = b.dataset.cmd;
    if (!window.confirm(CONFIRM[cmd])) return;
    try {
      const r = await api("/api/" + cmd, {method: "POST"});
      $("control-result").textContent = `${cmd} sent: ${r.effect}`;
    } catch (err) {
      $("control-result").textContent = `${cmd} failed: ${err.message}`;
    }
    refresh();
  });
}

function listen() {
  const es = new EventSource("/api/stream");
  es.addEventListener("change", refresh);
  es.onopen = () => $("live").classList.add("on");
  es.onerror = () => $("live").classList.remove("on");
}

refresh();
listen();
