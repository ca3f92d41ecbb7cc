"use strict";
// The Pareto scatter: thousands of points on one canvas, hit-tested through a grid of screen cells.
window.NasScatter = (() => {
  const C = window.NasCharts;
  const CELL = 16; // px; hit-test grid cell size
  const RADIUS = 4;
  const CROWDED = 2000; // above this many points, draw smaller dots so the cloud keeps its shape
  const HIT_RADIUS = 10;

  /** Flags (1 = not dominated) for 2-D points [{x, y}] under per-axis goals "min" or "max". */
  function nonDominated(points, xGoal, yGoal) {
    const sx = xGoal === "max" ? -1 : 1;
    const sy = yGoal === "max" ? -1 : 1;
    const order = points.map((_, i) => i);
    // Best x first, ties broken by best y; a point is on the front when its y beats every earlier one.
    order.sort((a, b) => sx * (points[a].x - points[b].x) || sy * (points[a].y - points[b].y));
    const flags = new Uint8Array(points.length);
    let best = Infinity;
    let prev = null;
    for (const i of order) {
      const y = sy * points[i].y;
      const same = prev !== null && points[prev].x === points[i].x && points[prev].y === points[i].y;
      if (y < best || (same && flags[prev])) {
        flags[i] = 1;
        best = Math.min(best, y);
      }
      prev = i;
    }
    return flags;
  }

  class ParetoScatter {
    /**
     * canvas: the points; overlay: a canvas stacked on it for the rings; tooltip: an absolutely placed
     * element; onSelect(id) on click; describe(id) -> text.
     */
    constructor({ canvas, overlay, tooltip, onSelect, describe }) {
      this.canvas = canvas;
      this.overlay = overlay;
      this.tooltip = tooltip;
      this.onSelect = onSelect;
      this.describe = describe;
      this.points = [];
      this.flags = new Uint8Array(0);
      this.xAxis = { label: "", goal: "min" };
      this.yAxis = { label: "", goal: "max" };
      this.constraints = [];
      this.showPredicted = false;
      this.selectedId = null;
      this.hoverIndex = -1;
      this.screen = { x: new Float32Array(0), y: new Float32Array(0), ids: [] };
      this.grid = new Map();
      this.cols = 1;
      this.pending = null;
      this.radius = RADIUS;
      canvas.addEventListener("mousemove", (e) => this.queueHover(e));
      canvas.addEventListener("mouseleave", () => this.hover(-1, 0, 0));
      canvas.addEventListener("click", (e) => this.click(e));
    }

    /**
     * points: [{id, x, y, predX, predY}]; xAxis, yAxis: {label, goal: "min"|"max"};
     * constraints: [{axis: "x"|"y", bound: "max"|"min", value, label}].
     */
    setData({ points, xAxis, yAxis, constraints, showPredicted }) {
      this.points = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
      this.xAxis = xAxis;
      this.yAxis = yAxis;
      this.constraints = constraints || [];
      this.showPredicted = !!showPredicted;
      this.flags = nonDominated(this.points, xAxis.goal, yAxis.goal);
      this.draw();
    }

    select(id) {
      this.selectedId = id;
      this.canvas.dataset.selected = id === null ? "" : String(id);
      this.drawMarks();
    }

    /** Number of non-dominated points under the current axes. */
    frontSize() {
      let n = 0;
      for (const f of this.flags) n += f;
      return n;
    }

    draw() {
      const pts = this.points;
      const predicted = this.showPredicted
        ? pts.filter((p) => Number.isFinite(p.predX) && Number.isFinite(p.predY))
        : [];
      this.canvas.dataset.points = String(pts.length);
      this.canvas.dataset.front = String(this.frontSize());
      this.canvas.dataset.predicted = String(predicted.length);
      this.canvas.dataset.selected = this.selectedId === null ? "" : String(this.selectedId);
      const surface = C.setup(this.canvas);
      if (!surface) return;
      const { ctx, width, height } = surface;
      if (pts.length === 0) {
        this.screen = { x: new Float32Array(0), y: new Float32Array(0), ids: [] };
        this.grid = new Map();
        C.drawEmpty(ctx, width, height, "no measured subnets yet");
        this.drawMarks();
        return;
      }
      const area = C.plotArea(width, height, { ...C.MARGIN, right: 16 });
      const xs = pts.map((p) => p.x).concat(predicted.map((p) => p.predX));
      const ys = pts.map((p) => p.y).concat(predicted.map((p) => p.predY));
      const x = C.scale(C.extent(xs), [area.left, area.right]);
      const y = C.scale(C.extent(ys), [area.bottom, area.top]);
      C.drawAxes(ctx, area, {
        x,
        y,
        xLabel: `${this.xAxis.label} (${this.xAxis.goal === "max" ? "higher" : "lower"} is better)`,
        yLabel: `${this.yAxis.label} (${this.yAxis.goal === "max" ? "higher" : "lower"} is better)`,
      });
      this.project(pts, predicted, x, y, width);
      this.radius = pts.length + predicted.length > CROWDED ? 2.5 : RADIUS;

      ctx.save();
      ctx.beginPath();
      ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
      ctx.clip();
      this.drawConstraints(ctx, area, x, y);
      const sx = this.screen.x;
      const sy = this.screen.y;
      // One path per style keeps 10,000 points to a handful of draw calls.
      this.fillDots(ctx, C.COLORS.grey, (i) => !this.flags[i], sx, sy, pts.length);
      if (predicted.length) this.drawPredicted(ctx, pts.length, predicted.length);
      this.drawFrontLine(ctx, sx, sy);
      this.fillDots(ctx, C.COLORS.blue, (i) => this.flags[i], sx, sy, pts.length);
      ctx.restore();
      this.drawMarks();
    }

    /** Screen positions of measured points, then predicted ones, and the hit-test grid over them. */
    project(pts, predicted, x, y, width) {
      const n = pts.length + predicted.length;
      const sx = new Float32Array(n);
      const sy = new Float32Array(n);
      const ids = new Array(n);
      pts.forEach((p, i) => {
        sx[i] = x.map(p.x);
        sy[i] = y.map(p.y);
        ids[i] = p.id;
      });
      predicted.forEach((p, j) => {
        const i = pts.length + j;
        sx[i] = x.map(p.predX);
        sy[i] = y.map(p.predY);
        ids[i] = p.id;
      });
      this.screen = { x: sx, y: sy, ids, predictedFrom: pts.length, predicted };
      this.cols = Math.ceil(width / CELL) + 1;
      this.grid = new Map();
      for (let i = 0; i < n; i++) {
        const key = Math.floor(sy[i] / CELL) * this.cols + Math.floor(sx[i] / CELL);
        const cell = this.grid.get(key);
        if (cell) cell.push(i);
        else this.grid.set(key, [i]);
      }
    }

    fillDots(ctx, color, keep, sx, sy, n) {
      const r = this.radius;
      ctx.fillStyle = color;
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        if (!keep(i)) continue;
        ctx.moveTo(sx[i] + r, sy[i]);
        ctx.arc(sx[i], sy[i], r, 0, Math.PI * 2);
      }
      ctx.fill();
    }

    drawPredicted(ctx, from, count) {
      const { x: sx, y: sy } = this.screen;
      const r = this.radius;
      ctx.strokeStyle = C.COLORS.orange;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (let i = from; i < from + count; i++) {
        ctx.moveTo(sx[i] + r, sy[i]);
        ctx.arc(sx[i], sy[i], r, 0, Math.PI * 2);
      }
      ctx.stroke();
    }

    /** The staircase through the non-dominated points: the attainment boundary. */
    drawFrontLine(ctx, sx, sy) {
      const idx = [];
      for (let i = 0; i < this.points.length; i++) if (this.flags[i]) idx.push(i);
      if (idx.length < 2) return;
      idx.sort((a, b) => sx[a] - sx[b]);
      const xMin = this.xAxis.goal === "min";
      ctx.strokeStyle = "rgba(37, 99, 235, 0.45)";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(sx[idx[0]], sy[idx[0]]);
      for (let k = 1; k < idx.length; k++) {
        const a = idx[k - 1];
        const b = idx[k];
        // Step so the corner sits where a point of the front's worse coordinates would be.
        if (xMin) ctx.lineTo(sx[b], sy[a]);
        else ctx.lineTo(sx[a], sy[b]);
        ctx.lineTo(sx[b], sy[b]);
      }
      ctx.stroke();
    }

    /** Dashed bound lines; the side a bound excludes is tinted. */
    drawConstraints(ctx, area, x, y) {
      ctx.save();
      ctx.fillStyle = "rgba(220, 38, 38, 0.05)";
      for (const c of this.constraints) {
        if (c.axis === "x") {
          const px = x.map(c.value);
          if (c.bound === "max") ctx.fillRect(px, area.top, area.right - px, area.bottom - area.top);
          else ctx.fillRect(area.left, area.top, px - area.left, area.bottom - area.top);
        } else {
          const py = y.map(c.value);
          if (c.bound === "max") ctx.fillRect(area.left, area.top, area.right - area.left, py - area.top);
          else ctx.fillRect(area.left, py, area.right - area.left, area.bottom - py);
        }
      }
      ctx.strokeStyle = C.COLORS.red;
      ctx.fillStyle = C.COLORS.red;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([6, 4]);
      ctx.textBaseline = "top";
      for (const c of this.constraints) {
        ctx.beginPath();
        if (c.axis === "x") {
          const px = x.map(c.value);
          ctx.moveTo(px, area.top);
          ctx.lineTo(px, area.bottom);
          ctx.stroke();
          ctx.textAlign = "left";
          ctx.fillText(c.label, px + 4, area.top + 4);
        } else {
          const py = y.map(c.value);
          ctx.moveTo(area.left, py);
          ctx.lineTo(area.right, py);
          ctx.stroke();
          ctx.textAlign = "right";
          ctx.fillText(c.label, area.right - 4, py + 3);
        }
      }
      ctx.restore();
    }

    /** Rings for the selected and hovered subnet, and its predicted-to-measured link, on the overlay. */
    drawMarks() {
      const surface = C.setup(this.overlay);
      if (!surface) return;
      const ctx = surface.ctx;
      const { x: sx, y: sy, ids } = this.screen;
      const ring = (i, color, r) => {
        ctx.strokeStyle = color;
        ctx.lineWidth = 2.5;
        ctx.beginPath();
        ctx.arc(sx[i], sy[i], r, 0, Math.PI * 2);
        ctx.stroke();
      };
      if (this.selectedId !== null) {
        const i = ids.indexOf(this.selectedId);
        if (i >= 0) {
          const j = ids.indexOf(this.selectedId, this.screen.predictedFrom);
          if (j >= 0) {
            ctx.strokeStyle = C.COLORS.orange;
            ctx.setLineDash([3, 3]);
            ctx.beginPath();
            ctx.moveTo(sx[i], sy[i]);
            ctx.lineTo(sx[j], sy[j]);
            ctx.stroke();
            ctx.setLineDash([]);
          }
          ring(i, C.COLORS.orange, this.radius + 4);
        }
      }
      if (this.hoverIndex >= 0 && this.hoverIndex < ids.length) ring(this.hoverIndex, "#111827", this.radius + 2);
    }

    /** Index of the drawn point nearest to (px, py) in CSS pixels within `radius`, else -1. */
    nearest(px, py, radius = HIT_RADIUS) {
      const { x: sx, y: sy } = this.screen;
      let best = -1;
      let bestD = radius * radius;
      const c0 = Math.floor((px - radius) / CELL);
      const c1 = Math.floor((px + radius) / CELL);
      const r0 = Math.floor((py - radius) / CELL);
      const r1 = Math.floor((py + radius) / CELL);
      for (let r = r0; r <= r1; r++) {
        for (let c = c0; c <= c1; c++) {
          const cell = c >= 0 && c < this.cols ? this.grid.get(r * this.cols + c) : undefined;
          if (!cell) continue;
          for (const i of cell) {
            const d = (sx[i] - px) ** 2 + (sy[i] - py) ** 2;
            if (d <= bestD) {
              bestD = d;
              best = i;
            }
          }
        }
      }
      return best;
    }

    /** Where subnet `id` is drawn, in CSS pixels from the canvas's top-left corner (null if not drawn). */
    positionOf(id) {
      const i = this.screen.ids.indexOf(id);
      return i < 0 ? null : { x: this.screen.x[i], y: this.screen.y[i] };
    }

    local(e) {
      const rect = this.canvas.getBoundingClientRect();
      return [e.clientX - rect.left, e.clientY - rect.top];
    }

    queueHover(e) {
      const [px, py] = this.local(e);
      const first = this.pending === null;
      this.pending = [px, py];
      if (!first) return;
      requestAnimationFrame(() => {
        const [qx, qy] = this.pending;
        this.pending = null;
        this.hover(this.nearest(qx, qy), qx, qy);
      });
    }

    hover(index, px, py) {
      const changed = index !== this.hoverIndex;
      this.hoverIndex = index;
      this.canvas.style.cursor = index >= 0 ? "pointer" : "default";
      if (index < 0) {
        this.tooltip.hidden = true;
      } else {
        const id = this.screen.ids[index];
        const isPred = index >= this.screen.predictedFrom;
        this.tooltip.textContent = (isPred ? "predicted position\n" : "") + this.describe(id);
        this.tooltip.hidden = false;
        const wrap = this.canvas.getBoundingClientRect();
        const left = px + 14 + this.tooltip.offsetWidth > wrap.width ? px - 14 - this.tooltip.offsetWidth : px + 14;
        this.tooltip.style.left = `${Math.max(0, left)}px`;
        this.tooltip.style.top = `${Math.max(0, py + 12)}px`;
      }
      if (changed) this.drawMarks();
    }

    click(e) {
      const [px, py] = this.local(e);
      const i = this.nearest(px, py);
      if (i >= 0) this.onSelect(this.screen.ids[i]);
    }
  }

  return { ParetoScatter, nonDominated };
})();
