// The dashboard's UI: views fed by the silo's JSON endpoints and its server-sent-event stream.
import uPlot from "uplot";

const token = new URLSearchParams(location.search).get("access_token");
const withToken = (path) => (token ? `${path}${path.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(token)}` : path);
const text = (value) => (value === null || value === undefined ? "–" : String(value));
const fixed = (value, digits = 1) => (typeof value === "number" ? value.toFixed(digits) : "–");

function rows(table, items, cells) {
  const body = document.querySelector(`#${table} tbody`);
  body.replaceChildren(...items.map((item) => {
    const row = document.createElement("tr");
    for (const cell of cells(item)) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.append(cell); else td.textContent = text(cell);
      row.append(td);
    }
    return row;
  }));
}

function status(value) {
  const span = document.createElement("span");
  span.textContent = value;
  span.className = `status-${value}`;
  return span;
}

async function getJson(path) {
  const response = await fetch(withToken(path));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// Views and navigation.
function show(view) {
  for (const section of document.querySelectorAll(".view")) section.classList.toggle("active", section.id === view);
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === view);
}
window.addEventListener("hashchange", () => show(location.hash.slice(1) || "cluster"));
show(location.hash.slice(1) || "cluster");

// Cluster: the table, the methods, the membership events, and calls/s per silo over time.
const callsSeries = { times: [], silos: new Map() };
let callsChart = null;

function chart(element, title, seriesNames, data, yLabel) {
  const series = [{}, ...seriesNames.map((name, i) => ({ label: name, stroke: ["#3b6fd8", "#d8733b", "#2f9e5a", "#9b4fd1", "#c23b6a"][i % 5], width: 2 }))];
  return new uPlot({ title, width: 720, height: 240, series, axes: [{}, { label: yLabel }] }, data, document.getElementById(element));
}

function renderCluster(view) {
  rows("silos", view.silos, (s) => [s.address, s.name, status(s.status), fixed(s.cpu), fixed(s.memory_mb), s.activations, fixed(s.calls_per_second), s.errors, typeof s.error_rate === "number" ? `${(100 * s.error_rate).toFixed(2)} %` : "–", fixed(s.latency_p50_ms, 2), fixed(s.latency_p99_ms, 2),
    Object.entries(s.activations_by_type ?? {}).sort((a, b) => b[1] - a[1]).map(([type, count]) => `${type} ${count}`).join(", ")]);
  rows("methods", view.grain_methods.slice(0, 50), (m) => [m.grain_type, m.method, m.calls, m.errors, fixed(m.p50_ms, 2), fixed(m.p99_ms, 2)]);
  rows("membership", [...view.membership_events].reverse(), (e) => [new Date(e.at_utc).toLocaleTimeString(), e.silo, e.from, e.to]);

  const at = Date.parse(view.at_utc) / 1000;
  if (callsSeries.times.length > 0 && at <= callsSeries.times.at(-1)) return; // the same sample again
  callsSeries.times.push(at);
  for (const s of view.silos) if (!callsSeries.silos.has(s.address)) callsSeries.silos.set(s.address, new Array(callsSeries.times.length - 1).fill(null));
  for (const [address, values] of callsSeries.silos) values.push(view.silos.find((s) => s.address === address)?.calls_per_second ?? null);
  if (callsSeries.times.length > 300) { callsSeries.times.shift(); for (const values of callsSeries.silos.values()) values.shift(); }
  const data = [callsSeries.times, ...callsSeries.silos.values()];
  if (!callsChart || callsChart.series.length !== data.length) {
    callsChart?.destroy();
    callsChart = chart("calls-chart", "calls/s per silo", [...callsSeries.silos.keys()], data, "calls/s");
  } else {
    callsChart.setData(data);
  }
}

// Where a round's aggregators ran: "role×count@silo", per silo.
function placement(hierarchy) {
  const bySilo = new Map();
  for (const a of hierarchy) {
    const roles = bySilo.get(a.silo) ?? new Map();
    roles.set(a.role, (roles.get(a.role) ?? 0) + 1);
    bySilo.set(a.silo, roles);
  }
  return [...bySilo].map(([silo, roles]) => `${[...roles].map(([role, count]) => `${role}×${count}`).join(" ")} @${silo}`).join("; ");
}

// FL: jobs, and round / aggregation time per round of the most recent job.
let roundsChart = null;
function renderFl(jobs) {
  rows("jobs", jobs, (j) => [j.job_id ?? j.name, j.algorithm, j.phase ?? j.error, j.round !== undefined ? `${Math.min(j.round, j.rounds)} / ${j.rounds}` : "–",
    j.selected ? `${j.selected.length} / ${j.available_clients}` : "–", j.goal, j.accepted, j.rejected,
    (j.aggregators ?? []).map((a) => `${a.role}@${a.silo}`).join(", ")]);
  const job = jobs.filter((j) => j.history && j.history.length > 0).at(-1);
  if (!job) return;
  rows("rounds", [...job.history].reverse(), (r) => [r.round, r.accepted,
    `${r.rejected}${Object.keys(r.rejected_by_reason ?? {}).length ? ` (${Object.entries(r.rejected_by_reason).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""}`,
    fixed(r.round_milliseconds, 0), fixed(r.aggregation_milliseconds, 1), `${r.aggregators} / ${r.hierarchy_depth}`, placement(r.hierarchy ?? []), `${r.cold_starts} / ${r.warm_starts}`,
    typeof r.accuracy === "number" ? `${(100 * r.accuracy).toFixed(2)} %` : "–"]);
  const data = [job.history.map((r) => r.round), job.history.map((r) => r.round_milliseconds), job.history.map((r) => r.aggregation_milliseconds)];
  roundsChart?.destroy();
  // Aggregation takes a small part of a round: it gets its own axis (right).
  roundsChart = new uPlot({
    title: `job ${job.job_id}`, width: 720, height: 240, scales: { x: { time: false }, round: {}, aggregation: {} },
    series: [{ label: "round" }, { label: "round ms", scale: "round", stroke: "#3b6fd8", width: 2 }, { label: "aggregation ms", scale: "aggregation", stroke: "#d8733b", width: 2 }],
    axes: [{ label: "round" }, { scale: "round", label: "round ms" }, { scale: "aggregation", side: 1, label: "aggregation ms", grid: { show: false } }],
  }, data, document.getElementById("rounds-chart"));
}

// MoE: deployments with their experts per silo, their requests, tokens/s and time between tokens over time, and the failures with their stalls.
let tokensChart = null;
let tokensChartKey = "";
function renderMoe(deployments) {
  rows("deployments", deployments, (d) => [d.deployment ?? d.name, d.problem ? `${d.phase}: ${d.problem}` : d.phase ?? d.error, d.epoch, d.active_sessions,
    (d.expert_silos ?? []).map((s) => `${s.silo} (${s.status}): ${s.primaries} / ${s.shadows}`).join("; ")]);
  const sessions = deployments.flatMap((d) => (d.sessions ?? []).map((s) => ({ ...s, deployment: d.deployment })));
  sessions.sort((a, b) => Date.parse(b.opened_utc) - Date.parse(a.opened_utc));
  rows("sessions", sessions.slice(0, 20), (s) => [s.request_id, s.deployment, s.incarnation, s.silo, status(s.state), `${s.tokens} / ${s.max_tokens}`,
    fixed(s.tokens_per_second), fixed(s.tbt_p50_ms, 2), fixed(s.tbt_p99_ms, 2), fixed(s.max_gap_ms), s.replays]);
  const failures = deployments.flatMap((d) => (d.events ?? []).map((e) => ({ ...e, deployment: d.deployment })));
  failures.sort((a, b) => Date.parse(b.at_utc) - Date.parse(a.at_utc));
  // The longest client wait for a request's next incarnation around the failure, in phases (a session silo's loss).
  const phases = (r) =>
    r ? `${fixed(r.gap_ms)} = noticed ${fixed(r.noticed_ms)} + reopen ${fixed(r.reopen_ms)} (open ${fixed(r.session_open_ms)}) + first token ${fixed(r.first_token_ms)}; ${r.recomputed_tokens} decoded again` : "–";
  rows("failures", failures, (e) => [new Date(e.at_utc).toLocaleTimeString(), e.deployment, e.kind, e.silo, e.promoted_experts, e.new_shadows, fixed(e.recovery_ms), fixed(e.stall_ms), phases(e.resume)]);

  // The deployment that decoded most recently: its tokens/s (left axis) and time between tokens (right axis), second by second.
  const active = deployments.filter((d) => (d.series ?? []).length > 0).sort((a, b) => a.series.at(-1).t - b.series.at(-1).t).at(-1);
  document.getElementById("tokens-title").textContent = active ? `Tokens per second and time between tokens: ${active.deployment}` : "Tokens per second and time between tokens";
  if (!active) return;
  const series = active.series;
  const data = [series.map((s) => s.t), series.map((s) => s.tokens_per_second), series.map((s) => s.tbt_p50_ms), series.map((s) => s.tbt_p99_ms), series.map((s) => s.tbt_max_ms)];
  if (!tokensChart || tokensChartKey !== active.deployment) {
    tokensChart?.destroy();
    tokensChartKey = active.deployment;
    tokensChart = new uPlot({
      width: 720, height: 260,
      scales: { x: { time: true }, tps: {}, ms: {} },
      series: [{}, { label: "tokens/s", scale: "tps", stroke: "#3b6fd8", width: 2 },
        { label: "TBT p50 ms", scale: "ms", stroke: "#2f9e5a", width: 1.5 }, { label: "TBT p99 ms", scale: "ms", stroke: "#d8733b", width: 1.5 },
        { label: "longest gap ms", scale: "ms", stroke: "#c23b6a", width: 1.5, dash: [4, 3] }],
      axes: [{}, { scale: "tps", label: "tokens/s" }, { scale: "ms", side: 1, label: "ms", grid: { show: false } }],
    }, data, document.getElementById("tokens-chart"));
  } else {
    tokensChart.setData(data);
  }
}

function renderDataplane(pool) {
  const entries = [
    ["node", pool.node], ["pool", pool.pool], ["attached", pool.pool_attached], ["capacity MB", fixed(pool.capacity_bytes / 1e6, 0)],
    ["used MB", fixed(pool.used_bytes / 1e6)], ["resident MB", fixed(pool.resident_bytes / 1e6)], ["live buffers", pool.live_buffers],
    ["processes attached", pool.attached_processes], ["bytes handed off", pool.bytes_handed_off], ["bytes copied", pool.bytes_copied],
    ["eBPF redirect", pool.ebpf_active ? "active" : `off (${text(pool.ebpf_unavailable_reason)})`], ["messages redirected", pool.ebpf_messages_redirected],
  ];
  document.getElementById("pool").replaceChildren(...entries.flatMap(([name, value]) => {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = text(value);
    return [dt, dd];
  }));
}

// Live: the event stream carries the cluster and the dataplane; FL and MoE are polled.
const connection = document.getElementById("connection");
const events = new EventSource(withToken("/api/events"));
events.addEventListener("open", () => { connection.textContent = "live"; });
events.addEventListener("error", () => { connection.textContent = "reconnecting…"; });
events.addEventListener("cluster", (e) => renderCluster(JSON.parse(e.data)));
events.addEventListener("dataplane", (e) => renderDataplane(JSON.parse(e.data)));

async function poll() {
  try {
    renderFl((await getJson("/api/fl/jobs")).jobs);
    renderMoe((await getJson("/api/moe")).deployments);
  } catch (error) {
    connection.textContent = `error: ${error.message}`;
  }
}
poll();
setInterval(poll, 1000);
