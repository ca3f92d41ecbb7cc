"use strict";
// Small DOM and text helpers shared by the dashboard's views.
window.NasFormat = (() => {
  /** An element with attributes (`class`, `data-*`, ...) and children (nodes or text). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function badge(status) {
    return el("span", { class: `badge ${status}`, "data-status": status }, status);
  }

  /** An ISO timestamp in the reader's locale; a dash when absent. */
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);
  const pct = (v) => (finite(v) ? `${(v * 100).toFixed(1)}%` : "–");
  const ms = (v) => (finite(v) ? `${v.toFixed(3)} ms` : "–");

  /** Fill a `.progress` bar to `fraction` (0..1); `data-value` keeps the exact number. */
  function setProgress(bar, fraction) {
    const f = Math.max(0, Math.min(1, Number(fraction) || 0));
    bar.querySelector(".progress-fill").style.width = `${(f * 100).toFixed(1)}%`;
    bar.setAttribute("aria-valuenow", (f * 100).toFixed(0));
    bar.dataset.value = f.toFixed(4);
  }

  return { el, badge, when, finite, pct, ms, setProgress };
})();
