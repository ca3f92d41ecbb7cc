"use strict";
// The job page's progress views: the stage strip, the training and hypervolume charts, and the log.
window.NasJobViews = (() => {
  // The service's facts from GET /v1/meta (the job's stages in order, the hardware profiles), set by
  // the app before it shows a job: the dashboard keeps no copy of its own.
  const meta = { stages: [], profiles: new Map() };
  const ACTIVE = new Set(["queued", "running"]);
  const MAX_LOG = 300;
  const C = window.NasCharts;
  const { el, when, pct, setProgress } = window.NasFormat;
  const $ = (id) => document.getElementById(id);

  function setMeta(m) {
    meta.stages = m.stages;
    meta.profiles = new Map(m.hardware_profiles.map((p) => [p.name, p]));
  }

  const hasMeta = () => meta.stages.length > 0;
  const stageIndex = (name) => meta.stages.indexOf(name);

  /** "cpu-fp32" -> "cpu, fp32, batch 1, 1 thread, torch-eager": what a latency on that profile means. */
  function describeProfile(name) {
    const p = meta.profiles.get(name);
    if (!p) return name;
    return `${p.device}, ${p.precision}, batch ${p.batch_size}, ${p.threads} thread${p.threads === 1 ? "" : "s"}, ${p.runtime}`;
  }

  /** The stage strip, the progress bar and the line under it. */
  function renderStages(state) {
    const job = state.job;
    const status = {};
    for (const e of state.events) if (e.kind === "stage") status[e.payload.stage] = e.payload.status;
    const current = job.stage;
    const items = meta.stages.map((name) => {
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
      detail = `${p.stage || last.stage}: ${p.done} / ${p.total}`;
      if (Number.isFinite(p.loss)) detail += ` · loss ${p.loss.toFixed(4)}`;
    }
    $("stage-detail").textContent = detail;
  }

  /** The latest report of each epoch (a resumed job may report an epoch twice). */
  function epochRows(state) {
    const byEpoch = new Map();
    for (const e of state.events) if (e.kind === "epoch") byEpoch.set(e.payload.epoch, e.payload);
    return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
  }

  /** Loss and validation accuracy per epoch; `data-epochs` counts the epochs drawn. */
  function renderEpochs(state) {
    const rows = epochRows(state);
    const series = [
      { name: "training loss", color: C.COLORS.red, axis: "left", points: rows.map((r) => [r.epoch, r.loss]) },
      {
        name: "val acc (largest)",
        color: C.COLORS.blue,
        axis: "right",
        points: rows.map((r) => [r.epoch, r.val_acc_largest]),
      },
      {
        name: "val acc (smallest)",
        color: C.COLORS.green,
        axis: "right",
        dashed: true,
        points: rows.map((r) => [r.epoch, r.val_acc_smallest]),
      },
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
      ...series.map((s) => {
        const line = s.dashed ? `border-top: 2px dashed ${s.color}` : `border-top: 2px solid ${s.color}`;
        return el("span", {}, el("i", { class: "swatch", style: line }), s.name);
      }),
      el("span", { class: "muted" }, last ? lastEpochText(last) : ""),
    );
  }

  function lastEpochText(r) {
    const loss = Number.isFinite(r.loss) ? r.loss.toFixed(4) : "–";
    return `epoch ${r.epoch}: loss ${loss}, val acc ${pct(r.val_acc_largest)} / ${pct(r.val_acc_smallest)}`;
  }

  /** Hypervolume per search round; `data-rounds` counts the rounds drawn. */
  function renderHypervolume(state) {
    const fromFront = (state.pareto?.history || []).map((h) => [h.round, h.hypervolume]);
    // While searching, the events know rounds that the stored front does not have yet.
    const byRound = new Map(fromFront);
    // Only the events of the front on show: the job's own, or the chosen target's.
    const target = state.target ?? null;
    for (const e of state.events) {
      if (e.kind === "front" && (e.payload.target ?? null) === target) {
        byRound.set(e.payload.round, e.payload.hypervolume);
      }
    }
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

  /** Append the log-worthy events among `fresh` to the log list (keeping the last MAX_LOG). */
  function appendLog(fresh) {
    const log = $("log");
    const items = fresh
      .filter((e) => ["log", "stage", "error", "status", "cancel"].includes(e.kind))
      .map((e) => {
        let text = e.payload.message;
        if (e.kind === "stage") text = `stage ${e.payload.stage} ${e.payload.status}`;
        if (e.kind === "status") text = `job ${e.payload.status}${e.payload.error ? `: ${e.payload.error}` : ""}`;
        if (e.kind === "cancel") text = "cancellation requested";
        const where = e.stage ? `[${e.stage}] ` : "";
        return el("li", { class: e.kind }, el("time", {}, new Date(e.ts).toLocaleTimeString()), ` ${where}${text}`);
      });
    const placeholder = log.querySelector("li.placeholder");
    if (placeholder && items.length) placeholder.remove();
    log.append(...items);
    while (log.children.length > MAX_LOG) log.firstChild.remove();
    if (!log.children.length) log.append(el("li", { class: "placeholder muted" }, "no messages yet"));
  }

  return { ACTIVE, setMeta, hasMeta, stageIndex, describeProfile, renderStages, renderEpochs, renderHypervolume, appendLog };
})();
