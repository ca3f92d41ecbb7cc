"use strict";
// The dashboard: hash routing, polling, the jobs list and the job page (stages, charts, front, detail).
(() => {
  const POLL_MS = 2000;
  const { ACTIVE } = window.NasJobViews;
  const EVENT_PAGE = 100; // a response this long may be one page of many: ask for the rest
  const C = window.NasCharts;
  const Client = window.NasClient;
  const Subnets = window.NasSubnets;
  const Views = window.NasJobViews;
  const Predictors = window.NasPredictors;
  const Assignment = window.NasAssignment;
  const { el, badge, when, pct, setProgress } = window.NasFormat;
  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    generation: 0, // bumped on every route change so stale responses and timers are dropped
    timer: null,
    jobId: null,
    job: null,
    events: [],
    lastEventId: 0,
    subnets: [],
    byId: new Map(),
    pareto: null,
    assignment: null,
    target: null,
    selectedId: null,
    polls: 0,
  };
  let scatter = null;

  /** A request with the current token; a rejected token sends the user back to the token form. */
  async function api(path, options = {}) {
    try {
      return await Client.request(path, { ...options, token: state.token });
    } catch (err) {
      if (err.status === 401) {
        forgetToken();
        showError(err); // after forgetToken: re-routing clears the banner
      }
      throw err;
    }
  }

  function forgetToken() {
    Client.forgetToken();
    state.token = null;
    route();
  }

  function showError(err) {
    const banner = $("error-banner");
    banner.hidden = !err;
    banner.textContent = err ? err.message || String(err) : "";
  }

  /** An informational line above the page (e.g. a link's token that was not used); null hides it. */
  function showNotice(text) {
    const banner = $("notice-banner");
    banner.hidden = !text;
    banner.textContent = text || "";
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
    const { token, notice } = Client.readToken(state.token);
    state.token = token;
    showNotice(notice);
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
    document.title = "Jobs · NAS dashboard";
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
      const share = el("span", { class: "small muted" }, pct(job.progress));
      const progress = el("div", { class: "progress-cell" }, bar, share);
      const link = el("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name);
      return el(
        "tr",
        { "data-job-id": job.id },
        el("td", {}, link, el("div", { class: "muted small mono" }, job.id)),
        el("td", {}, badge(job.status)),
        el("td", {}, job.stage || "–"),
        el("td", {}, progress),
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
    Object.assign(state, {
      jobId: id,
      job: null,
      events: [],
      lastEventId: 0,
      subnets: [],
      byId: new Map(),
      pareto: null,
      assignment: null,
      target: null,
      selectedId: null,
      polls: 0,
    });
    $("crumbs").replaceChildren(el("a", { href: "#/" }, "Jobs"), " / ", el("span", {}, id));
    $("job-title").textContent = "Loading…";
    $("log").replaceChildren();
    renderDetail();
    refreshJob(state.generation);
  }

  async function refreshJob(gen) {
    const id = encodeURIComponent(state.jobId);
    try {
      if (!Views.hasMeta()) Views.setMeta(await api("/meta"));
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
      const fromMeasure = Views.stageIndex("measure");
      const measuring = fresh.some((e) => Views.stageIndex(e.stage) >= fromMeasure) && state.polls % 3 === 0;
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
      api(`/jobs/${id}/pareto${state.target ? `?target=${encodeURIComponent(state.target)}` : ""}`).catch((err) => {
        if (err.status === 404) return null; // no front stored yet
        throw err;
      }),
    ]);
    if (gen !== state.generation) return;
    if (Assignment.applies(state.job)) {
      state.assignment = await api(`/jobs/${id}/assignment`).catch((err) => {
        if (err.status === 404) return null; // no epoch finished yet
        throw err;
      });
      if (gen !== state.generation) return;
    }
    state.subnets = Array.isArray(subnets) ? subnets : subnets.items || [];
    state.pareto = pareto;
    state.byId = new Map(state.subnets.map((s) => [s.id, s]));
    // Should /subnets ever page, the front's points must still be drawn: merge them in.
    for (const p of pareto?.points || []) {
      if (!state.byId.has(p.id)) {
        state.subnets.push(p);
        state.byId.set(p.id, p);
      }
    }
  }

  // ---------------------------------------------------------------- job page: rendering

  function renderJob(fresh) {
    const job = state.job;
    $("job-title").textContent = job.name;
    document.title = `${job.name} · NAS dashboard`;
    const status = $("job-status");
    status.className = `badge ${job.status}`;
    status.textContent = job.status;
    status.dataset.status = job.status;
    $("cancel-job").hidden = !ACTIVE.has(job.status);
    const err = $("job-error");
    err.hidden = !job.error;
    err.textContent = job.error ? `Failed: ${job.error}` : "";
    Views.renderStages(state);
    Views.renderEpochs(state);
    Views.renderHypervolume(state);
    Predictors.renderPredictors(state);
    Assignment.render(state);
    renderTargets();
    renderAxes();
    renderScatter();
    Views.appendLog(fresh);
    renderDetail();
  }

  // ---------------------------------------------------------------- Pareto scatter

  function renderAxes() {
    const choices = Subnets.axisChoices(state.subnets, state.job);
    const objectives = Subnets.objectiveKeys(state.pareto, state.job).filter((k) => choices.has(k));
    const latency = [...choices.keys()].find((k) => k.startsWith("latency_ms@"));
    const defaultY = objectives.includes("accuracy") ? "accuracy" : objectives[0] || "accuracy";
    const defaultX = objectives.find((k) => k !== defaultY) || latency || "params";
    for (const [id, fallback] of [["axis-x", defaultX], ["axis-y", defaultY]]) {
      const select = $(id);
      const keep = select.value && choices.has(select.value) ? select.value : fallback;
      const sameOptions = [...select.options].map((o) => o.value).join() === [...choices.keys()].join();
      if (!sameOptions) {
        const options = [...choices.entries()].map(([key, c]) =>
          el("option", { value: key }, c.label + (objectives.includes(key) ? " (objective)" : "")),
        );
        select.replaceChildren(...options);
      }
      select.value = keep;
    }
  }

  /** The front selector: the job's own front, or one of the spec's named targets. */
  function renderTargets() {
    const names = (state.job?.spec?.targets || []).map((t) => t.name);
    const select = $("front-target");
    $("front-target-label").hidden = names.length === 0;
    const values = ["", ...names];
    if ([...select.options].map((o) => o.value).join() !== values.join()) {
      select.replaceChildren(
        el("option", { value: "" }, "job's own"),
        ...names.map((n) => el("option", { value: n }, n)),
      );
    }
    select.value = state.target || "";
  }

  function renderScatter() {
    const choices = Subnets.axisChoices(state.subnets, state.job);
    const xKey = $("axis-x").value;
    const yKey = $("axis-y").value;
    const xa = choices.get(xKey);
    const ya = choices.get(yKey);
    if (!xa || !ya) return;
    const points = state.subnets.map((s) => {
      const px = xa.predicted(s);
      const py = ya.predicted(s);
      // A prediction on one axis only is drawn against the measured value on the other.
      const predicted = px !== null || py !== null;
      return {
        id: s.id,
        x: xa.get(s),
        y: ya.get(s),
        predX: predicted ? (px ?? xa.get(s)) : null,
        predY: predicted ? (py ?? ya.get(s)) : null,
      };
    });
    scatter.selectedId = state.selectedId;
    scatter.setData({
      points,
      xAxis: { label: xa.label, goal: xa.goal },
      yAxis: { label: ya.label, goal: ya.goal },
      constraints: Subnets.constraintLines(state.job, xKey, yKey, state.target),
      showPredicted: $("show-predicted").checked,
    });
    const onFront = state.subnets.filter((s) => s.on_front).length;
    $("scatter-summary").textContent =
      `${scatter.points.length} measured · ${scatter.frontSize()} non-dominated here · ${onFront} on the job's front`;
  }

  function describeSubnet(id) {
    const s = state.byId.get(id);
    return s ? Subnets.describeSubnet(s) : "";
  }

  // ---------------------------------------------------------------- detail panel and download

  function selectSubnet(id) {
    state.selectedId = id;
    scatter.select(id);
    $("download-status").textContent = "";
    renderDetail();
  }

  function renderDetail() {
    const s = state.selectedId === null ? null : state.byId.get(state.selectedId);
    $("detail-empty").hidden = !!s;
    $("detail-body").hidden = !s;
    $("detail").dataset.subnetId = s ? String(s.id) : "";
    if (!s) return;
    $("detail-hash").textContent = s.arch_hash;
    $("detail-metrics").replaceChildren(
      ...Subnets.metricRows(s).flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-metric": k }, v)]),
    );
    const arch = s.arch || {};
    $("detail-arch").replaceChildren(
      el("p", { class: "small" }, `${arch.family || ""} · input resolution ${arch.resolution ?? "?"}`),
      Subnets.archTable(arch),
    );
  }

  async function download() {
    const s = state.byId.get(state.selectedId);
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

  // ---------------------------------------------------------------- wiring

  function init() {
    scatter = new window.NasScatter.ParetoScatter({
      canvas: $("scatter"),
      overlay: $("scatter-marks"),
      tooltip: $("scatter-tip"),
      onSelect: selectSubnet,
      describe: describeSubnet,
    });
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      Client.saveToken(token);
      state.token = token;
      $("token-input").value = "";
      route();
    });
    $("forget-token").addEventListener("click", forgetToken);
    $("download").addEventListener("click", download);
    $("cancel-job").addEventListener("click", cancelJob);
    $("front-target").addEventListener("change", async () => {
      if (!state.job) return;
      state.target = $("front-target").value || null;
      await loadFront(state.job.id, state.generation);
      renderJob([]);
    });
    for (const id of ["axis-x", "axis-y", "show-predicted"]) {
      $(id).addEventListener("change", () => state.job && renderScatter());
    }
    // Redraw a chart whenever its box changes size (window resize, layout shifts, a view shown).
    let redrawQueued = false;
    const charts = new ResizeObserver(() => {
      if (redrawQueued) return;
      redrawQueued = true;
      requestAnimationFrame(() => {
        redrawQueued = false;
        if (!state.job || $("job-view").hidden) return;
        Views.renderEpochs(state);
        Views.renderHypervolume(state);
        scatter.draw();
      });
    });
    for (const id of ["epoch-chart", "hv-chart", "scatter"]) charts.observe($(id));
    window.addEventListener("hashchange", route);
    // A hook for tests and curious users: where a subnet is drawn, and the state behind the page.
    window.nasDashboard = { pointPosition: (id) => scatter.positionOf(id), state };
    route();
  }

  init();
})();
