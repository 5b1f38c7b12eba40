// nnU-Net sweep dashboard: plain JS, no external code. Live updates come over Server-Sent Events (/api/events).
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (x, d = 4) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : Number(x).toFixed(d);
function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s); const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}

// The action token: from the start-up URL's fragment (#token=...), kept for this tab only.
(function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { sessionStorage.setItem("nnunet-token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
})();
function token() {
  let t = sessionStorage.getItem("nnunet-token");
  if (!t) { t = prompt("Dashboard token (printed by nnunet at start-up):") || ""; if (t) sessionStorage.setItem("nnunet-token", t); }
  return t;
}
function showTokenState() { const el = $("token-state"); if (el) el.textContent = sessionStorage.getItem("nnunet-token") ? "token set" : "no token: actions will ask"; }
async function act(action, job, worker) {
  const url = `/api/actions/${action}` + (job ? `?job=${encodeURIComponent(job)}` : worker ? `?worker=${encodeURIComponent(worker)}` : "");
  const res = await fetch(url, { method: "POST", headers: { "X-Dashboard-Token": token() } });
  let body = {}; try { body = await res.json(); } catch { }
  if (res.status === 401) sessionStorage.removeItem("nnunet-token");
  $("action-result").textContent = `${action}: ${res.status} ${body.message ?? ""}`;
  showTokenState();
  scheduleRefresh(0);
}

// --insecure: a banner on every page, from /api/cluster
(async function showSecurity() {
  const cluster = await getJson("/api/cluster");
  const el = $("security-warning");
  if (cluster && cluster.insecure && el) { el.textContent = "WARNING: " + cluster.warning; el.hidden = false; }
})();

let refreshTimer = null;
function scheduleRefresh(ms) { if (refreshTimer) return; refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, ms); }
/** GET as JSON; null when the server does not answer (it may have stopped with the sweep's process). */
async function getJson(url) {
  try { const res = await fetch(url); return res.ok ? await res.json() : null; } catch { return null; }
}

// The sweep is over (nothing left to run unless an operator retries a job): no ETA, a calm badge, and the stream's end
// is expected (the process that hosts the sweep stops soon after), not a lost link.
const OVER = new Set(["Completed", "FinishedWithFailures"]);
let over = false, streamOpen = false, everOpen = false;
function showLive() {
  const el = $("live");
  const [text, cls, title] = over
    ? ["finished", "done", streamOpen ? "the sweep is over" : "the sweep is over; the server has closed the live stream"]
    : streamOpen ? ["live", "on", "live updates from the server"]
    : everOpen ? ["reconnecting", "off", "the live stream is down; retrying"] : ["connecting", "off", "opening the live stream"];
  el.textContent = text; el.className = `live ${cls}`; el.title = title; el.dataset.stream = streamOpen ? "open" : "closed";
}
function setOver(status) { over = OVER.has(status); showLive(); }

function connect(onChange, onFinished) {
  const es = new EventSource("/api/events");
  es.addEventListener("hello", () => { streamOpen = everOpen = true; showLive(); scheduleRefresh(0); });
  es.addEventListener("change", (e) => onChange(JSON.parse(e.data)));
  es.addEventListener("finished", (e) => onFinished(JSON.parse(e.data)));
  es.onerror = () => {
    streamOpen = false;
    if (over) es.close(); // the end came first: nothing more to wait for
    showLive();
  };
}

// ---------- grid page ----------
let sweep = null;
// a waiting job names what it waits for (the cascade: the low-res folds still open), from the latest snapshot
function waitingFor(j) {
  const deps = j.dependsOn ?? [];
  if (j.status !== "Waiting" || !deps.length) return "";
  const done = new Set((sweep?.jobs ?? []).filter((d) => d.status === "Completed").map((d) => d.jobId));
  const open = deps.filter((d) => !done.has(d));
  const groups = [...new Set(open.map((d) => d.split("/")[0]))];
  return `<div class="waiting-for">for ${open.length} of ${deps.length}: ${esc(groups.join(", "))}</div>`;
}
// the running attempt's phase and its progress (from the worker's liveness reports), e.g. "validating 12/40"
const PHASES = { Training: "training", Validating: "validating", Exporting: "exporting", Selecting: "selecting", Predicting: "predicting" };
function phaseHtml(j) {
  if (j.status !== "Running" || !j.phase) return "";
  const of = j.phaseTotal > 0 ? ` ${j.phaseDone}/${j.phaseTotal}` : "";
  return `<div class="phase">${esc(PHASES[j.phase] ?? j.phase)}${of}</div>`;
}
// A job that ended (completed, failed, cancelled) has no ETA: when it ended and how long its last attempt ran
// (long: the job page; short: a grid cell). Any other job: its ETA.
const ENDED = { Completed: "finished", Failed: "failed", Cancelled: "cancelled" };
function timing(j, long) {
  const ended = ENDED[j.status];
  if (!ended) return `ETA ${duration(j.etaSeconds)}`;
  const took = j.startedAt && j.finishedAt ? `took ${duration((Date.parse(j.finishedAt) - Date.parse(j.startedAt)) / 1000)}` : "";
  if (!long) return took;
  const at = j.finishedAt ? `${ended} ${new Date(j.finishedAt).toLocaleTimeString()}` : ended;
  return took ? `${at} · ${took}` : at;
}
function attemptsHtml(j) {
  const parts = [];
  if (j.attempt > 1) parts.push(`attempt ${j.attempt}`);
  if (j.requeues > 0) parts.push(`re-queued ${j.requeues}×`);
  return parts.length ? `<div class="attempts">${parts.join(" · ")}</div>` : "";
}
function cellHtml(j) {
  const st = j.status.toLowerCase();
  const pct = j.totalEpochs > 0 ? Math.round(100 * j.epoch / j.totalEpochs) : 0;
  return `<a href="/jobs/${esc(j.jobId)}"><span class="state">${esc(st)}</span>${waitingFor(j)}${phaseHtml(j)}${attemptsHtml(j)}` +
    (j.kind === "Train" ? ` ${j.epoch}/${j.totalEpochs}<div class="bar"><i style="width:${pct}%"></i></div>` +
      `Dice ${fmt(j.lastPseudoDice)} · best EMA ${fmt(j.bestEmaPseudoDice)}<br>` : ` ${esc(j.jobId)}<br>`) +
    esc(timing(j, false)) + (j.workerId ? `<br><small>${esc(j.workerId)}</small>` : "") +
    (j.lastError ? `<br><small title="${esc(j.lastError)}">${esc(j.lastError).slice(0, 60)}</small>` : "") + `</a>`;
}
function setCell(j) {
  const td = document.querySelector(`[data-job="${CSS.escape(j.jobId)}"]`);
  if (!td) return false;
  td.className = `cell st-${j.status.toLowerCase()}`; td.dataset.state = j.status.toLowerCase(); td.innerHTML = cellHtml(j);
  return true;
}
function renderGrid(s) {
  const def = s.definition; const grid = $("grid");
  if (!def) { grid.querySelector("thead").innerHTML = "<tr><th>no sweep defined</th></tr>"; return; }
  grid.querySelector("thead").innerHTML = "<tr><th>configuration</th>" + def.folds.map((f) => `<th>fold ${f}</th>`).join("") + "</tr>";
  grid.querySelector("tbody").innerHTML = def.configurations.map((c) =>
    `<tr><th>${esc(c)}</th>` + def.folds.map((f) => `<td class="cell" data-job="${esc(c)}/fold_${f}"></td>`).join("") + "</tr>").join("");
  const stages = s.jobs.filter((j) => j.kind !== "Train");
  $("stages").innerHTML = stages.length ? "<h2>Final stages</h2><table><tr>" + stages.map((j) => `<td class="cell" data-job="${esc(j.jobId)}"></td>`).join("") + "</tr></table>" : "";
  for (const j of s.jobs) setCell(j);
}
/** The selection in one line: the chosen model or ensemble, its CV Dice, the postprocessing decision. */
function resultText(sel, s) {
  if (!sel) return s.status === "FinishedWithFailures" ? "no selection: a job it needs did not complete" : "";
  if (sel.error) return `selection unreadable: ${sel.error}`;
  const chosen = sel.kind === "ensemble" ? `ensemble of ${sel.configurations.join(" + ")}` : sel.configurations.join(" + ");
  const post = sel.postprocessingSteps.length ? sel.postprocessingSteps.join("; ") : "none";
  return `chosen: ${chosen} · CV Dice ${fmt(sel.diceAfterPostprocessing)} · postprocessing: ${post}`;
}
function renderStatus(s, sel) {
  setOver(s.status);
  $("sweep-id").textContent = s.sweepId ?? "";
  $("sweep-status").textContent = s.status;
  $("sweep-counts").textContent = `${s.completedJobs}/${s.totalJobs} done` + (s.failedJobs ? `, ${s.failedJobs} failed` : "");
  $("sweep-eta-part").hidden = over;
  $("sweep-eta").textContent = duration(s.etaSeconds);
  $("sweep-result").textContent = over ? resultText(sel, s) : "";
  $("sweep-waiting").textContent = s.waiting ? `waiting: ${s.waiting}` : "";
  $("pause").disabled = $("resume").disabled = over;
}
function renderSweep({ snapshot, selection }) {
  const shapeChanged = !sweep || sweep.sweepId !== snapshot.sweepId || !document.querySelector("[data-job]");
  sweep = snapshot;
  if (shapeChanged) renderGrid(snapshot); else for (const j of snapshot.jobs) setCell(j);
  renderStatus(snapshot, selection);
  $("events").innerHTML = snapshot.recentEvents.slice().reverse().map((e) => `<li>${esc(new Date(e.at).toLocaleTimeString())} ${esc(e.text)}</li>`).join("");
  renderSelection(selection);
  renderWorkers(snapshot.workers);
}
/** Per worker: its job, quarantined or not (until when, why; a release button), its last failure. */
function renderWorkers(workers) {
  const body = $("workers").querySelector("tbody");
  body.innerHTML = workers.map((w) =>
    `<tr class="${w.quarantined ? "quarantined" : ""}" data-worker="${esc(w.workerId)}"><td>${esc(w.workerId)}</td><td>${esc(w.device)}</td>` +
    `<td>${w.jobId ? `<a href="/jobs/${esc(w.jobId)}">${esc(w.jobId)}</a>` : "none"}</td>` +
    `<td class="worker-state">${w.quarantined ? `quarantined until ${esc(new Date(w.quarantinedUntil).toLocaleTimeString())}${w.registered ? "" : " (not registered)"}` +
      `<br><small>${esc(w.quarantineReason ?? "")}</small> <button class="release">Release</button>` : w.jobId ? "running" : "idle"}</td>` +
    `<td class="last-failure">${w.lastFailure ? `${esc(new Date(w.lastFailureAt).toLocaleTimeString())} ${esc(w.lastFailure)}` + (w.failuresInARow ? ` <small>(${w.failuresInARow} in a row)</small>` : "") : ""}</td></tr>`).join("");
  for (const b of body.querySelectorAll("button.release")) b.onclick = () => act("release", null, b.closest("tr").dataset.worker);
}
async function refreshGrid() {
  const body = await getJson("/api/sweep"); if (!body) return;
  renderSweep(body);
  const cluster = await getJson("/api/cluster"); if (!cluster) return;
  const { members } = cluster;
  $("members").querySelector("tbody").innerHTML = members.map((m) =>
    `<tr><td>${esc(m.address)}${m.isSelf ? " (this node)" : ""}</td><td>${esc(m.status)}</td><td>${esc(m.roles.join(", "))}</td><td>${m.reachable ? "yes" : "<b>NO</b>"}</td></tr>`).join("");
}
function renderSelection(sel) {
  if (!sel) { $("selection-section").hidden = true; return; }
  $("selection-section").hidden = false;
  if (sel.error) { $("selection").textContent = `${sel.path}: ${sel.error}`; return; }
  $("selection").innerHTML = `<p>best: <b>${esc(sel.best)}</b> (${esc(sel.kind)}; ${esc(sel.configurations.join(" + "))}), folds ${esc(sel.folds.join(","))}, ` +
    `CV Dice after postprocessing <b>${fmt(sel.diceAfterPostprocessing)}</b>; postprocessing: ${esc(sel.postprocessingSteps.length ? sel.postprocessingSteps.join("; ") : "none")}</p>` +
    "<table><tr><th>candidate</th><th>kind</th><th>CV Dice</th></tr>" +
    sel.candidates.map((c) => `<tr><td>${esc(c.name)}</td><td>${esc(c.kind)}</td><td>${fmt(c.dice)}</td></tr>`).join("") + "</table>";
}
function onGridChange(ch) {
  if (ch.job && !setCell(ch.job)) scheduleRefresh(0);
  const li = document.createElement("li"); li.textContent = `${new Date(ch.event.at).toLocaleTimeString()} ${ch.event.text}`;
  if (ch.event.kind !== "progress" && ch.event.kind !== "alive") $("events").prepend(li);
  if (sweep) { sweep.status = ch.status; $("sweep-status").textContent = ch.status; }
  setOver(ch.status);
  if (over) $("sweep-eta-part").hidden = true;
  scheduleRefresh(over ? 0 : 1000); // counts, workers, ETA: re-read the snapshot at most once a second, at once at the end
}

// ---------- job page ----------
const jobId = decodeURIComponent(location.pathname.replace(/^\/jobs\//, ""));
let epochs = [];
function chart(el, series, opts = {}) {
  // as wide as its figure (redrawn on resize); the height stays, so the text keeps its size
  const W = Math.max(300, Math.floor(el.clientWidth)), H = 200, L = 50, R = 10, T = 10, B = 24;
  const xs = epochs.map((p) => p.epoch);
  const all = series.flatMap((s) => epochs.map(s.y)).filter((v) => Number.isFinite(v));
  if (!epochs.length || !all.length) { el.innerHTML = `<svg width="${W}" height="${H}"><text x="${W / 2 - 40}" y="${H / 2}">no epochs yet</text></svg>`; return; }
  let lo = Math.min(...all), hi = Math.max(...all); if (opts.zero) lo = Math.min(0, lo); if (hi === lo) { hi += 1; lo -= opts.zero ? 0 : 1; }
  const x0 = Math.min(...xs), x1 = Math.max(x0 + 1, Math.max(...xs));
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), sy = (y) => T + (hi - y) / (hi - lo) * (H - T - B);
  let svg = `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`;
  for (let i = 0; i <= 4; i++) { const v = lo + (hi - lo) * i / 4, y = sy(v); svg += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#eee"/><text x="2" y="${y + 3}">${v.toPrecision(3)}</text>`; }
  svg += `<text x="${L}" y="${H - 6}">epoch ${x0}</text><text x="${W - R - 60}" y="${H - 6}">epoch ${x1}</text>`;
  series.forEach((s, k) => {
    const pts = epochs.filter((p) => Number.isFinite(s.y(p))).map((p) => `${sx(p.epoch).toFixed(1)},${sy(s.y(p)).toFixed(1)}`).join(" ");
    svg += `<polyline fill="none" stroke="${s.color}" stroke-width="1.6" points="${pts}"/><text x="${L + 10 + k * 110}" y="${T + 10}" style="fill:${s.color}">${esc(s.name)}</text>`;
  });
  el.innerHTML = svg + "</svg>";
}
function renderCharts() {
  chart($("chart-loss"), [{ name: "train", color: "#3b7dd8", y: (p) => p.trainLoss }, { name: "validation", color: "#d8573b", y: (p) => p.validationLoss }]);
  chart($("chart-dice"), [{ name: "pseudo-Dice", color: "#999", y: (p) => p.pseudoDice }, { name: "EMA", color: "#2e8b57", y: (p) => p.emaPseudoDice }], { zero: true });
  chart($("chart-lr"), [{ name: "LR", color: "#7a3bd8", y: (p) => p.learningRate }], { zero: true });
  chart($("chart-time"), [{ name: "seconds", color: "#d89a3b", y: (p) => p.epochSeconds }], { zero: true });
}
function renderJob(j) {
  $("job-id").textContent = j.jobId; $("job-status").textContent = j.status;
  $("job-epoch").textContent = `${j.epoch}/${j.totalEpochs}`; $("job-ema").textContent = fmt(j.bestEmaPseudoDice);
  $("job-phase").textContent = j.status === "Running" && j.phase ? `${PHASES[j.phase] ?? j.phase}${j.phaseTotal > 0 ? ` ${j.phaseDone}/${j.phaseTotal}` : ""}` : "–";
  $("job-attempt").textContent = `${j.attempt}${j.requeues > 0 ? ` (re-queued ${j.requeues}×)` : ""}`;
  $("job-worker").textContent = j.workerId ?? "–"; $("job-timing").textContent = timing(j, true);
  $("job-error").textContent = j.lastError ?? "";
}
async function refreshJob() {
  let res;
  try { res = await fetch(`/api/jobs/${jobId}`); } catch { return; } // the server stopped
  if (!res.ok) { $("job-status").textContent = `not found (${res.status})`; return; }
  const body = await res.json(); epochs = body.history; renderJob(body.job); renderCharts();
}
function onJobChange(ch) {
  setOver(ch.status);
  if (!ch.job || ch.job.jobId !== jobId) return;
  renderJob(ch.job);
  if (ch.progress) {
    const p = ch.progress;
    epochs = epochs.filter((h) => h.epoch < p.epoch);
    epochs.push({ attempt: p.attempt, epoch: p.epoch, totalEpochs: p.totalEpochs, trainLoss: p.trainLoss, validationLoss: p.validationLoss,
      pseudoDice: p.pseudoDice, emaPseudoDice: p.emaPseudoDice, learningRate: 1e-2 * Math.pow(1 - Math.max(0, p.epoch - 1) / Math.max(1, p.totalEpochs), 0.9),
      epochSeconds: p.epochSeconds, at: p.at });
    renderCharts();
  }
}

const page = document.body.dataset.page;
const refresh = page === "grid" ? refreshGrid : refreshJob;
if (page === "grid") {
  $("pause").onclick = () => act("pause"); $("resume").onclick = () => act("resume");
} else {
  $("retry").onclick = () => act("retry", jobId); $("cancel").onclick = () => act("cancel", jobId);
}
showTokenState();
refresh();
connect(page === "grid" ? onGridChange : onJobChange, (end) => {
  // the sweep's final state, pushed by the server when it ended (the process may stop right after)
  if (page === "grid") renderSweep(end);
  else {
    setOver(end.snapshot.status);
    const j = end.snapshot.jobs.find((x) => x.jobId === jobId); if (j) renderJob(j);
  }
});
if (page === "job") { let t = null; window.addEventListener("resize", () => { clearTimeout(t); t = setTimeout(renderCharts, 100); }); }
