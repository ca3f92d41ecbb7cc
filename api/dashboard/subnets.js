"use strict";
// What the dashboard knows about subnets: the metrics they can be plotted by, and how to describe them.
window.NasSubnets = (() => {
  const C = window.NasCharts;
  const { el, pct, ms } = window.NasFormat;

  /** The first of `keys` that the subnet's predictions hold as a number, else null. */
  function predictedValue(subnet, ...keys) {
    for (const k of keys) {
      const v = subnet.predicted?.[k];
      if (Number.isFinite(v)) return v;
    }
    return null;
  }

  /**
   * Every metric the subnets can be plotted by, keyed like the job's objectives (`accuracy`,
   * `latency_ms@cpu-fp32`, `params`, `flops`): key -> {label, goal, get(subnet), predicted(subnet)}.
   */
  function axisChoices(subnets, job) {
    const choices = new Map();
    choices.set("accuracy", {
      label: "validation accuracy",
      goal: "max",
      get: (s) => s.accuracy_val,
      predicted: (s) => predictedValue(s, "accuracy", "accuracy_val"),
    });
    const hardware = new Set(job?.spec?.hardware || []);
    for (const s of subnets) for (const hw of Object.keys(s.latency || {})) hardware.add(hw);
    for (const hw of hardware) {
      choices.set(`latency_ms@${hw}`, {
        label: `latency on ${hw} (ms)`,
        goal: "min",
        get: (s) => s.latency?.[hw]?.median_ms ?? null,
        predicted: (s) => predictedValue(s, `latency_ms@${hw}`, `latency@${hw}`, hw),
      });
    }
    if (subnets.some((s) => Number.isFinite(s.accuracy_test))) {
      choices.set("accuracy_test", {
        label: "test accuracy",
        goal: "max",
        get: (s) => s.accuracy_test,
        predicted: () => null,
      });
    }
    choices.set("params", {
      label: "parameters",
      goal: "min",
      get: (s) => s.params,
      predicted: (s) => predictedValue(s, "params"),
    });
    choices.set("flops", {
      label: "FLOPs",
      goal: "min",
      get: (s) => s.flops,
      predicted: (s) => predictedValue(s, "flops"),
    });
    return choices;
  }

  /** The job's objectives as axis keys, in the order the front (else the spec) lists them. */
  function objectiveKeys(pareto, job) {
    const objectives = pareto?.objectives?.length ? pareto.objectives : job?.spec?.objectives || [];
    return objectives.map((o) => (typeof o === "string" ? o : o.hardware ? `${o.metric}@${o.hardware}` : o.metric));
  }

  /** The job's constraint bounds that lie on the chosen axes: [{axis, bound, value, label}]. */
  /** The constraints a front answers: the job's own, plus those of the chosen target (if any). */
  function frontConstraints(job, target) {
    const own = job?.spec?.constraints || [];
    const t = (job?.spec?.targets || []).find((x) => x.name === target);
    return t ? own.concat(t.constraints || []) : own;
  }

  function constraintLines(job, xKey, yKey, target = null) {
    const lines = [];
    for (const c of frontConstraints(job, target)) {
      const key = c.hardware ? `${c.metric}@${c.hardware}` : c.metric;
      for (const bound of ["max", "min"]) {
        if (c[bound] === null || c[bound] === undefined) continue;
        const label = `${bound} ${C.formatNumber(c[bound])}`;
        if (key === xKey) lines.push({ axis: "x", bound, value: c[bound], label });
        if (key === yKey) lines.push({ axis: "y", bound, value: c[bound], label });
      }
    }
    return lines;
  }

  const blockText = (b) => `${b.op || "block"} k${b.kernel_size}e${b.expand_ratio}`;

  /** Plain text of an architecture for the hover tooltip: resolution, then per stage width and blocks. */
  function describeArch(arch) {
    if (!arch) return "";
    const lines = [`${arch.family || "arch"} · resolution ${arch.resolution ?? "?"}`];
    (arch.stages || []).forEach((st, i) => {
      const bits = st.bits ? ` ${st.bits}-bit` : "";
      lines.push(`stage ${i + 1} ×${st.width_mult ?? 1}${bits}: ${(st.blocks || []).map(blockText).join(", ")}`);
    });
    return lines.join("\n");
  }

  function describeSubnet(s) {
    const lat = Object.entries(s.latency || {}).map(([hw, l]) => `${hw} ${ms(l.median_ms)}`).join(", ");
    return `${s.arch_hash.slice(0, 12)} · acc ${pct(s.accuracy_val)} · ${lat}\n${describeArch(s.arch)}`;
  }

  /** [label, text] rows of a subnet's measured (and predicted) metrics for the detail panel. */
  function metricRows(s) {
    return [
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
      ...Object.entries(s.predicted || {}).map(([k, v]) => [
        `predicted ${k}`,
        Number.isFinite(v) ? C.formatNumber(v) : String(v),
      ]),
    ];
  }

  /** A table of the architecture, one row per stage. */
  function archTable(arch) {
    const head = ["stage", "width", "bits", "blocks (k: kernel, e: expand)"].map((h) => el("th", {}, h));
    const rows = (arch.stages || []).map((st, i) =>
      el(
        "tr",
        {},
        el("td", {}, i + 1),
        el("td", {}, st.width_mult ?? "–"),
        el("td", {}, st.bits ?? "–"),
        el("td", { class: "mono" }, (st.blocks || []).map(blockText).join(" · ")),
      ),
    );
    return el("table", { class: "arch" }, el("thead", {}, el("tr", {}, ...head)), el("tbody", {}, ...rows));
  }

  return { axisChoices, objectiveKeys, frontConstraints, constraintLines, describeArch, describeSubnet, metricRows, archTable };
})();
