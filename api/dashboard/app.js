"use strict";
// The dashboard: token handling, the /v1 client, hash routing, the jobs list and the job page.
(() => {
  const API = "/v1";
  const POLL_MS = 2000;
  const TOKEN_KEY = "nas.token";
  const STAGES = ["data", "train", "measure", "predict", "search", "verify"];
  const ACTIVE = new Set(["queued", "running"]);
  const MAX_LOG = 300;
  const EVENT_PAGE = 100; // a response this long may be one page of many: ask for the rest
  const C = window.NasCharts;
  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    generation: 0, // bumped on every route change so stale responses and timers are dropped
    timer: null,
    job: null,
    events: [],
    lastEventId: 0,
    subnets: [],
    pareto: null,
    selectedId: null,
    polls: 0,
  };

  // ---------------------------------------------------------------- token

  /** Token from `#token=...` (saved for later), else from localStorage; null when unknown. */
  function readToken() {
    const hash = location.hash.replace(/^#/, "");
    if (hash.includes("token=")) {
      const params = new URLSearchParams(hash.replace(/^\/?\??/, ""));
      const token = params.get("token");
      if (token) {
        localStorage.setItem(TOKEN_KEY, token);
        const job = params.get("job");
        // Drop the token from the address bar so it is not bookmarked or shared by accident.
        history.replaceState(null, "", `${location.pathname}#/${job ? `jobs/${encodeURIComponent(job)}` : ""}`);
        return token;
      }
    }
    return localStorage.getItem(TOKEN_KEY);
  }

  function forgetToken() {
    localStorage.removeItem(TOKEN_KEY);
    state.token = null;
    route();
  }

  // ---------------------------------------------------------------- API client

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, { method = "GET", accept = "application/json" } = {}) {
    // Paths are relative to /v1 unless the server handed out a full one (an artifact's download_url).
    const url = /^https?:\/\//.test(path) || path.startsWith(`${API}/`) ? path : `${API}${path}`;
    const res = await fetch(url, {
      method,
      headers: { Authorization: `Bearer ${state.token}`, Accept: accept },
    });
    if (res.status === 401) {
      const err = new ApiError(401, "The token was rejected (revoked or mistyped); paste a valid one.");
      forgetToken();
      showError(err); // after forgetToken: re-routing clears the banner
      throw err;
    }
    if (!res.ok) {
      let detail = res.statusText;
      try {
        const body = await res.json();
        detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
      } catch (_) {
        // not JSON: keep the status text
      }
      throw new ApiError(res.status, `${method} ${path}: ${res.status} ${detail}`);
    }
    return accept === "application/json" ? res.json() : res.blob();
  }

  function showError(err) {
    const banner = $("error-banner");
    if (!err) {
      banner.hidden = true;
      return;
    }
    banner.textContent = err.message || String(err);
    banner.hidden = false;
  }

  // ---------------------------------------------------------------- small helpers

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function badge(status) {
    return el("span", { class: `badge ${status}`, "data-status": status }, status);
  }

  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  const pct = (v) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(1)}%`);
  const ms = (v) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : `${v.toFixed(3)} ms`);

  function setProgress(bar, fraction) {
    const f = Math.max(0, Math.min(1, Number(fraction) || 0));
    bar.querySelector(".progress-fill").style.width = `${(f * 100).toFixed(1)}%`;
    bar.setAttribute("aria-valuenow", (f * 100).toFixed(0));
    bar.dataset.value = f.toFixed(4);
  }

  // ---------------------------------------------------------------- routing

  function stopPolling() {
    state.generation += 1;
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = null;
  }

  function schedule(fn, gen) {
    if (gen !== state.generation) return;
    state.timer = setTimeout(() => fn(gen), POLL_MS);
  }

  function show(view) {
    for (const id of ["token-view", "jobs-view", "job-view"]) $(id).hidden = id !== view;
    $("forget-token").hidden = view === "token-view";
  }

  function route() {
    stopPolling();
    showError(null);
    state.token = state.token || readToken();
    if (!state.token) {
      show("token-view");
      $("crumbs").textContent = "";
      return;
    }
    const m = location.hash.match(/^#\/jobs\/([^/?]+)/);
    if (m) openJob(decodeURIComponent(m[1]));
    else openJobs();
  }

  // ---------------------------------------------------------------- jobs list

  function openJobs() {
    show("jobs-view");
    $("crumbs").replaceChildren();
    refreshJobs(state.generation);
  }

  async function refreshJobs(gen) {
    let anyActive = true;
    try {
      const list = await api("/jobs");
      if (gen !== state.generation) return;
      showError(null);
      renderJobs(list);
      anyActive = list.items.some((j) => ACTIVE.has(j.status));
    } catch (err) {
      if (gen !== state.generation) return;
      showError(err);
    }
    if (anyActive) schedule(refreshJobs, gen);
  }

  function renderJobs(list) {
    const body = $("jobs-body");
    const rows = list.items.map((job) => {
      const bar = el("div", { class: "progress small" }, el("div", { class: "progress-fill" }));
      setProgress(bar, job.progress);
      const link = el("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name);
      return el(
        "tr",
        { "data-job-id": job.id },
        el("td", {}, link, el("div", { class: "muted small mono" }, job.id)),
        el("td", {}, badge(job.status)),
        el("td", {}, job.stage || "–"),
        el("td", {}, bar),
        el("td", { class: "small" }, when(job.created_at)),
        el("td", { class: "small" }, when(job.finished_at)),
      );
    });
    body.replaceChildren(...rows);
    $("jobs-count").textContent = `${list.count} job${list.count === 1 ? "" : "s"}`;
    $("jobs-empty").hidden = list.items.length > 0;
    $("jobs-table").hidden = list.items.length === 0;
  }

  // ---------------------------------------------------------------- job page: data

  function openJob(id) {
    show("job-view");
    Object.assign(state, { job: null, events: [], lastEventId: 0, subnets: [], pareto: null, selectedId: null });
    state.polls = 0;
    state.jobId = id;
    $("crumbs").replaceChildren(el("a", { href: "#/" }, "Jobs"), " / ", el("span", {}, id));
    $("job-title").textContent = "Loading…";
    $("log").replaceChildren();
    renderDetail();
    refreshJob(state.generation);
  }

  async function refreshJob(gen) {
    const id = encodeURIComponent(state.jobId);
    try {
      const [job, events] = await Promise.all([api(`/jobs/${id}`), loadEvents(id)]);
      if (gen !== state.generation) return;
      const wasActive = state.job === null || ACTIVE.has(state.job.status);
      state.job = job;
      const fresh = events.filter((e) => e.id > state.lastEventId);
      state.events.push(...fresh);
      if (fresh.length) state.lastEventId = fresh[fresh.length - 1].id;
      // Subnets and the front change only from the measure stage on: refetch them at once when a stage
      // ends or a search round is stored, else at most every third poll (they can be 10,000 rows).
      const milestone = fresh.some((e) => e.kind === "front" || e.kind === "stage");
      const measuring = fresh.some((e) => STAGES.indexOf(e.stage) >= 2) && state.polls % 3 === 0;
      const finished = wasActive && !ACTIVE.has(job.status);
      if (state.polls === 0 || milestone || measuring || finished) {
        await loadFront(id, gen);
      }
      if (gen !== state.generation) return;
      state.polls += 1;
      showError(null);
      renderJob(fresh);
    } catch (err) {
      if (gen !== state.generation) return;
      showError(err);
    }
    if (state.job === null || ACTIVE.has(state.job.status)) schedule(refreshJob, gen);
  }

  /** Events after the last one seen; follows on while the server returns full pages. */
  async function loadEvents(id) {
    const out = [];
    let after = state.lastEventId;
    for (;;) {
      const page = await api(`/jobs/${id}/events?after=${after}`);
      out.push(...page);
      if (page.length < EVENT_PAGE) return out;
      after = page[page.length - 1].id;
    }
  }

  async function loadFront(id, gen) {
    const [subnets, pareto] = await Promise.all([
      api(`/jobs/${id}/subnets`),
      api(`/jobs/${id}/pareto`).catch((err) => {
        if (err.status === 404) return null; // no front stored yet
        throw err;
      }),
    ]);
    if (gen !== state.generation) return;
    state.subnets = Array.isArray(subnets) ? subnets : subnets.items || [];
    state.pareto = pareto;
    // Front points may be missing from /subnets when it pages; merge them in.
    const known = new Set(state.subnets.map((s) => s.id));
    for (const p of pareto?.points || []) if (!known.has(p.id)) state.subnets.push(p);
  }

  // ---------------------------------------------------------------- job page: rendering

  function renderJob(fresh) {
    const job = state.job;
    $("job-title").textContent = job.name;
    const status = $("job-status");
    status.className = `badge ${job.status}`;
    status.textContent = job.status;
    status.dataset.status = job.status;
    $("cancel-job").hidden = !ACTIVE.has(job.status);
    const err = $("job-error");
    err.hidden = !job.error;
    err.textContent = job.error ? `Failed: ${job.error}` : "";
    renderStages();
    renderEpochs();
    renderHypervolume();
    renderAxes();
    renderScatter();
    renderLog(fresh);
    renderDetail();
  }

  function renderStages() {
    const job = state.job;
    const status = {};
    for (const e of state.events) if (e.kind === "stage") status[e.payload.stage] = e.payload.status;
    const current = job.stage;
    const items = STAGES.map((name) => {
      let cls = status[name] === "done" || status[name] === "skipped" ? "done" : "";
      if (name === current && ACTIVE.has(job.status)) cls = "current";
      if (name === current && job.status === "failed") cls = "failed";
      if (job.status === "succeeded") cls = "done";
      return el("li", { class: cls, "data-stage": name }, name);
    });
    $("stages").replaceChildren(...items);
    setProgress($("job-progress"), job.progress);
    $("job-progress").dataset.stage = current || "";
    $("job-progress-text").textContent = `${current || "waiting"} · ${pct(job.progress)}`;
    const last = [...state.events].reverse().find((e) => e.kind === "progress");
    let detail = `Created ${when(job.created_at)}`;
    if (job.started_at) detail += ` · started ${when(job.started_at)}`;
    if (job.finished_at) detail += ` · finished ${when(job.finished_at)}`;
    if (last && ACTIVE.has(job.status)) {
      const p = last.payload;
      detail = `${p.stage || last.stage}: ${p.done} / ${p.total}` + (Number.isFinite(p.loss) ? ` · loss ${p.loss.toFixed(4)}` : "");
    }
    $("stage-detail").textContent = detail;
  }

  /** The latest report of each epoch (a resumed job may report an epoch twice). */
  function epochRows() {
    const byEpoch = new Map();
    for (const e of state.events) if (e.kind === "epoch") byEpoch.set(e.payload.epoch, e.payload);
    return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
  }

  function renderEpochs() {
    const rows = epochRows();
    const series = [
      { name: "training loss", color: C.COLORS.red, axis: "left", points: rows.map((r) => [r.epoch, r.loss]) },
      { name: "val acc (largest)", color: C.COLORS.blue, axis: "right", points: rows.map((r) => [r.epoch, r.val_acc_largest]) },
      { name: "val acc (smallest)", color: C.COLORS.green, axis: "right", dashed: true, points: rows.map((r) => [r.epoch, r.val_acc_smallest]) },
    ];
    const canvas = $("epoch-chart");
    C.lineChart(canvas, {
      series,
      xLabel: "epoch",
      yLabel: "loss",
      y2Label: "accuracy",
      integerX: true,
      emptyText: "no finished epoch yet",
    });
    canvas.dataset.epochs = String(rows.length);
    const last = rows[rows.length - 1];
    $("epoch-legend").replaceChildren(
      ...series.map((s) => el("span", {}, el("i", { class: `swatch${s.dashed ? " dashed" : ""}`, style: `background:${s.color}` }), s.name)),
      el("span", { class: "muted" }, last ? `epoch ${last.epoch}: loss ${Number(last.loss).toFixed(4)}, ${pct(last.val_acc_largest)} / ${pct(last.val_acc_smallest)}` : ""),
    );
  }

  function renderHypervolume() {
    const fromFront = (state.pareto?.history || []).map((h) => [h.round, h.hypervolume]);
    // While searching, the events know rounds that the stored front does not have yet.
    const byRound = new Map(fromFront);
    for (const e of state.events) if (e.kind === "front") byRound.set(e.payload.round, e.payload.hypervolume);
    const points = [...byRound.entries()].filter((p) => Number.isFinite(p[1])).sort((a, b) => a[0] - b[0]);
    const canvas = $("hv-chart");
    C.lineChart(canvas, {
      series: [{ name: "hypervolume", color: C.COLORS.blue, axis: "left", points }],
      xLabel: "search round",
      yLabel: "hypervolume",
      integerX: true,
      emptyText: "no search round yet",
    });
    canvas.dataset.rounds = String(points.length);
    const hv = state.pareto?.hypervolume;
    $("hv-value").textContent = Number.isFinite(hv) ? `Hypervolume of the stored front: ${hv.toPrecision(4)}` : "";
  }

  // ---------------------------------------------------------------- scatter axes

  /** Every metric a subnet can be plotted by: key -> {label, goal, get(subnet), predicted(subnet)}. */
  function axisChoices() {
    const choices = new Map();
    const pred = (s, ...keys) => {
      for (const k of keys) {
        const v = s.predicted?.[k];
        if (Number.isFinite(v)) return v;
      }
      return null;
    };
    choices.set("accuracy", {
      label: "validation accuracy",
      goal: "max",
      get: (s) => s.accuracy_val,
      predicted: (s) => pred(s, "accuracy", "accuracy_val"),
    });
    const hardware = new Set();
    for (const s of state.subnets) for (const hw of Object.keys(s.latency || {})) hardware.add(hw);
    for (const hw of state.job?.spec?.hardware || []) hardware.add(hw);
    for (const hw of hardware) {
      choices.set(`latency_ms@${hw}`, {
        label: `latency on ${hw} (ms)`,
        goal: "min",
        get: (s) => s.latency?.[hw]?.median_ms ?? null,
        predicted: (s) => pred(s, `latency_ms@${hw}`, `latency@${hw}`, hw),
      });
    }
    if (state.subnets.some((s) => Number.isFinite(s.accuracy_test))) {
      choices.set("accuracy_test", { label: "test accuracy", goal: "max", get: (s) => s.accuracy_test, predicted: () => null });
    }
    choices.set("params", { label: "parameters", goal: "min", get: (s) => s.params, predicted: (s) => pred(s, "params") });
    choices.set("flops", { label: "FLOPs", goal: "min", get: (s) => s.flops, predicted: (s) => pred(s, "flops") });
    return choices;
  }

  /** The job's objectives as axis keys, in the order the spec lists them. */
  function objectiveKeys() {
    const objectives = state.pareto?.objectives?.length ? state.pareto.objectives : state.job?.spec?.objectives || [];
    return objectives.map((o) => (typeof o === "string" ? o : o.hardware ? `${o.metric}@${o.hardware}` : o.metric));
  }

  function renderAxes() {
    const choices = axisChoices();
    const objectives = objectiveKeys().filter((k) => choices.has(k));
    const latency = [...choices.keys()].find((k) => k.startsWith("latency_ms@"));
    const defaultY = objectives.includes("accuracy") ? "accuracy" : objectives[0] || "accuracy";
    const defaultX = objectives.find((k) => k !== defaultY) || latency || "params";
    for (const [id, fallback] of [["axis-x", defaultX], ["axis-y", defaultY]]) {
      const select = $(id);
      const keep = select.value && choices.has(select.value) ? select.value : fallback;
      const options = [...choices.entries()].map(([key, c]) => {
        const suffix = objectives.includes(key) ? " (objective)" : "";
        return el("option", { value: key }, c.label + suffix);
      });
      const sameOptions = [...select.options].map((o) => o.value).join() === [...choices.keys()].join();
      if (!sameOptions) select.replaceChildren(...options);
      select.value = keep;
    }
  }

  function constraintLines(xKey, yKey) {
    const lines = [];
    for (const c of state.job?.spec?.constraints || []) {
      const key = c.hardware ? `${c.metric}@${c.hardware}` : c.metric;
      for (const bound of ["max", "min"]) {
        if (c[bound] === null || c[bound] === undefined) continue;
        const label = `${bound} ${C.formatNumber(c[bound])}`;
        if (key === xKey) lines.push({ axis: "x", value: c[bound], label });
        if (key === yKey) lines.push({ axis: "y", value: c[bound], label });
      }
    }
    return lines;
  }

  let scatter = null;

  function renderScatter() {
    const choices = axisChoices();
    const xKey = $("axis-x").value;
    const yKey = $("axis-y").value;
    const xa = choices.get(xKey);
    const ya = choices.get(yKey);
    if (!xa || !ya) return;
    const points = state.subnets.map((s) => ({
      id: s.id,
      x: xa.get(s),
      y: ya.get(s),
      predX: xa.predicted(s) ?? xa.get(s),
      predY: ya.predicted(s) ?? ya.get(s),
      hasPrediction: xa.predicted(s) !== null || ya.predicted(s) !== null,
    }));
    for (const p of points) {
      if (!p.hasPrediction) p.predX = p.predY = null;
    }
    scatter.selectedId = state.selectedId;
    scatter.setData({
      points,
      xAxis: { label: xa.label, goal: xa.goal },
      yAxis: { label: ya.label, goal: ya.goal },
      constraints: constraintLines(xKey, yKey),
      showPredicted: $("show-predicted").checked,
    });
    const onFront = state.subnets.filter((s) => s.on_front).length;
    $("scatter-summary").textContent =
      `${scatter.points.length} measured · ${scatter.frontSize()} non-dominated here · ${onFront} on the job's front`;
  }

  function subnetById(id) {
    return state.subnets.find((s) => s.id === id) || null;
  }

  /** Compact text of an architecture: resolution and, per stage, width and blocks. */
  function describeArch(arch) {
    if (!arch) return "";
    const lines = [`${arch.family || "arch"} · resolution ${arch.resolution ?? "?"}`];
    (arch.stages || []).forEach((st, i) => {
      const blocks = (st.blocks || []).map((b) => `${b.op || "blk"} k${b.kernel_size}e${b.expand_ratio}`).join(", ");
      const bits = st.bits ? ` ${st.bits}b` : "";
      lines.push(`stage ${i + 1} ×${st.width_mult ?? 1}${bits}: ${blocks}`);
    });
    return lines.join("\n");
  }

  function describeSubnet(id) {
    const s = subnetById(id);
    if (!s) return "";
    const lat = Object.entries(s.latency || {}).map(([hw, l]) => `${hw} ${ms(l.median_ms)}`).join(", ");
    return `${s.arch_hash.slice(0, 12)} · acc ${pct(s.accuracy_val)} · ${lat}\n${describeArch(s.arch)}`;
  }

  // ---------------------------------------------------------------- detail panel and download

  function selectSubnet(id) {
    state.selectedId = id;
    scatter.select(id);
    $("download-status").textContent = "";
    renderDetail();
  }

  function renderDetail() {
    const s = state.selectedId === null ? null : subnetById(state.selectedId);
    $("detail-empty").hidden = !!s;
    $("detail-body").hidden = !s;
    $("detail").dataset.subnetId = s ? String(s.id) : "";
    if (!s) return;
    $("detail-hash").textContent = s.arch_hash;
    const rows = [
      ["validation accuracy", pct(s.accuracy_val)],
      ["test accuracy", pct(s.accuracy_test)],
      ...Object.entries(s.latency || {}).map(([hw, l]) => [
        `latency ${hw}`,
        `${ms(l.median_ms)} (p10 ${ms(l.p10_ms)}, p90 ${ms(l.p90_ms)}, n=${l.n})`,
      ]),
      ["parameters", C.formatNumber(s.params)],
      ["FLOPs", C.formatNumber(s.flops)],
      ["on the front", s.on_front ? "yes" : "no"],
      ["found by", s.source],
      ...Object.entries(s.predicted || {}).map(([k, v]) => [`predicted ${k}`, Number.isFinite(v) ? C.formatNumber(v) : String(v)]),
    ];
    $("detail-metrics").replaceChildren(
      ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-metric": k }, v)]),
    );
    const arch = s.arch || {};
    const table = el(
      "table",
      { class: "arch" },
      el("thead", {}, el("tr", {}, el("th", {}, "stage"), el("th", {}, "width"), el("th", {}, "bits"), el("th", {}, "blocks (op kernel×expand)"))),
      el(
        "tbody",
        {},
        ...(arch.stages || []).map((st, i) =>
          el(
            "tr",
            {},
            el("td", {}, i + 1),
            el("td", {}, st.width_mult ?? "–"),
            el("td", {}, st.bits ?? "–"),
            el("td", { class: "mono" }, (st.blocks || []).map((b) => `${b.op || "blk"} ${b.kernel_size}×${b.expand_ratio}`).join(" · ")),
          ),
        ),
      ),
    );
    $("detail-arch").replaceChildren(el("p", { class: "small" }, `${arch.family || ""} · input resolution ${arch.resolution ?? "?"}`), table);
  }

  async function download() {
    const s = subnetById(state.selectedId);
    if (!s) return;
    const status = $("download-status");
    const button = $("download");
    button.disabled = true;
    status.textContent = "Exporting… (tracing and ONNX export can take a few seconds)";
    try {
      const art = await api(`/jobs/${encodeURIComponent(state.jobId)}/subnets/${s.id}/export`, { method: "POST" });
      const blob = await api(art.download_url, { accept: "application/zip" });
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: `subnet-${s.arch_hash.slice(0, 12)}.zip` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      status.textContent = `Downloaded ${C.formatNumber(art.size_bytes)} bytes · sha256 ${art.sha256.slice(0, 16)}…`;
    } catch (err) {
      status.textContent = err.message || String(err);
    } finally {
      button.disabled = false;
    }
  }

  async function cancelJob() {
    if (!state.job || !confirm(`Cancel job "${state.job.name}"?`)) return;
    try {
      await api(`/jobs/${encodeURIComponent(state.jobId)}/cancel`, { method: "POST" });
    } catch (err) {
      showError(err);
    }
  }

  function renderLog(fresh) {
    const log = $("log");
    const items = fresh
      .filter((e) => ["log", "stage", "error", "status", "cancel"].includes(e.kind))
      .map((e) => {
        let text = e.payload.message;
        if (e.kind === "stage") text = `stage ${e.payload.stage} ${e.payload.status}`;
        if (e.kind === "status") text = `job ${e.payload.status}${e.payload.error ? `: ${e.payload.error}` : ""}`;
        if (e.kind === "cancel") text = "cancellation requested";
        return el("li", { class: e.kind }, el("time", {}, new Date(e.ts).toLocaleTimeString()), ` ${e.stage ? `[${e.stage}] ` : ""}${text}`);
      });
    const placeholder = log.querySelector("li.placeholder");
    if (placeholder && items.length) placeholder.remove();
    log.append(...items);
    while (log.children.length > MAX_LOG) log.firstChild.remove();
    if (!log.children.length) log.append(el("li", { class: "placeholder muted" }, "no messages yet"));
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    scatter = new window.NasScatter.ParetoScatter({
      canvas: $("scatter"),
      tooltip: $("scatter-tip"),
      onSelect: selectSubnet,
      describe: describeSubnet,
    });
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      localStorage.setItem(TOKEN_KEY, token);
      state.token = token;
      $("token-input").value = "";
      route();
    });
    $("forget-token").addEventListener("click", forgetToken);
    $("download").addEventListener("click", download);
    $("cancel-job").addEventListener("click", cancelJob);
    for (const id of ["axis-x", "axis-y", "show-predicted"]) $(id).addEventListener("change", () => state.job && renderScatter());
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => state.job && !$("job-view").hidden && renderJob([]), 150);
    });
    window.addEventListener("hashchange", route);
    // A hook for tests and curious users: where a subnet is drawn, and the state behind the page.
    window.nasDashboard = { pointPosition: (id) => scatter.positionOf(id), state };
    route();
  }

  init();
})();
