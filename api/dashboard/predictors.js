"use strict";
// The job page's predictor card: how well each predictor ranks and estimates subnets it never saw.
window.NasPredictors = (() => {
  const { el, finite, pct } = window.NasFormat;
  const $ = (id) => document.getElementById(id);

  const fixed = (v, digits) => (finite(v) ? v.toFixed(digits) : "–");
  const count = (v) => (finite(v) ? String(Math.round(v)) : "–");

  /** "latency_ms@cpu-fp32" -> "latency on cpu-fp32"; other targets keep their name. */
  function targetLabel(target) {
    const [metric, hardware] = target.split("@");
    return metric === "latency_ms" && hardware ? `latency on ${hardware}` : target;
  }

  /** The target's key, and for latency what its profile measures (from GET /v1/meta). */
  function targetTitle(target) {
    const [metric, hardware] = target.split("@");
    return metric === "latency_ms" && hardware ? `${target}: ${window.NasJobViews.describeProfile(hardware)}` : target;
  }

  /** RMSE in the target's unit: milliseconds for latency, a share (0..1) for accuracy. */
  function rmseText(target, v) {
    if (!finite(v)) return "–";
    const text = `${+v.toPrecision(3)}`;
    return target.startsWith("latency_ms@") ? `${text} ms` : text;
  }

  /** Accuracy first, then latency per profile; cross-validation before the search rounds, in order. */
  function compareRows(a, b) {
    const targetRank = (t) => (t === "accuracy" ? "0" : `1${t}`);
    const sourceRank = (s) => {
      const round = s.match(/^search round (\d+)$/);
      return s === "cross-validation" ? -1 : round ? Number(round[1]) : Number.MAX_SAFE_INTEGER;
    };
    const byTarget = targetRank(a.target).localeCompare(targetRank(b.target));
    if (byTarget) return byTarget;
    return sourceRank(a.source) - sourceRank(b.source) || a.source.localeCompare(b.source);
  }

  /** The latest "predictor" event of each (target, source), in table order. */
  function predictorRows(events) {
    const latest = new Map();
    for (const e of events) {
      if (e.kind !== "predictor" || !e.payload?.target) continue;
      const p = { ...e.payload, source: e.payload.source || e.stage };
      latest.set(`${p.target}\u0000${p.source}`, p);
    }
    return [...latest.values()].sort(compareRows);
  }

  function row(p) {
    const cell = (metric, text) => el("td", { class: "num", "data-metric": metric }, text);
    const source = el("td", {}, p.source);
    if (finite(p.n_samples)) source.append(el("div", { class: "muted small" }, `fitted on ${count(p.n_samples)} subnets`));
    return el(
      "tr",
      { "data-target": p.target, "data-source": p.source },
      el("td", { title: targetTitle(p.target) }, targetLabel(p.target)),
      source,
      cell("n", count(p.n)),
      cell("kendall_tau", fixed(p.kendall_tau, 2)),
      cell("spearman", fixed(p.spearman, 2)),
      cell("mape", finite(p.mape) ? `${p.mape.toFixed(1)}%` : "–"),
      cell("within_10pct", pct(p.within_10pct)),
      cell("rmse", rmseText(p.target, p.rmse)),
    );
  }

  /** Fill the card; `data-rows` on `#predictors` counts the rows shown. */
  function renderPredictors(state) {
    const table = $("predictors");
    const events = state.events.filter((e) => e.kind === "predictor");
    // Rebuild only when a predictor event arrived (or the job changed): keeps a text selection alive.
    const key = `${state.jobId}:${events.length}:${events.length ? events[events.length - 1].id : 0}`;
    if (table.dataset.key === key) return;
    table.dataset.key = key;
    const rows = predictorRows(events);
    $("predictors-body").replaceChildren(...rows.map(row));
    table.dataset.rows = String(rows.length);
    table.hidden = rows.length === 0;
    $("predictors-empty").hidden = rows.length > 0;
  }

  return { predictorRows, renderPredictors };
})();
