"use strict";
// Canvas primitives shared by the dashboard's charts: sizing, scales, ticks, axes and line charts.
window.NasCharts = (() => {
  const COLORS = {
    axis: "#9aa3b2",
    grid: "#eceff4",
    text: "#4a5468",
    blue: "#2563eb",
    green: "#16a34a",
    orange: "#ea580c",
    red: "#dc2626",
    grey: "#b8bfcc",
  };
  const FONT = "12px system-ui, -apple-system, 'Segoe UI', sans-serif";
  const MARGIN = { top: 12, right: 56, bottom: 40, left: 60 };

  /**
   * Size the backing store to the element's CSS box times devicePixelRatio; returns a cleared context,
   * or null while the canvas has no layout box (hidden, or mid-relayout): its ResizeObserver redraws it.
   */
  function setup(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const rect = canvas.getBoundingClientRect();
    if (rect.width < 2 || rect.height < 2) return null;
    const width = Math.max(1, Math.round(rect.width));
    const height = Math.max(1, Math.round(rect.height));
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;
    return { ctx, width, height };
  }

  /** Finite [min, max] of values, padded by a share of the span; a sane range when empty or flat. */
  function extent(values, pad = 0.05) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (lo === Infinity) return [0, 1];
    if (lo === hi) {
      const d = Math.abs(lo) * 0.1 || 1;
      return [lo - d, hi + d];
    }
    const d = (hi - lo) * pad;
    return [lo - d, hi + d];
  }

  /** A linear map from a data domain onto a pixel range, with its inverse. */
  function scale(domain, range) {
    const [d0, d1] = domain;
    const [r0, r1] = range;
    const k = (r1 - r0) / (d1 - d0 || 1);
    return {
      domain,
      range,
      map: (v) => r0 + (v - d0) * k,
      invert: (p) => d0 + (p - r0) / k,
    };
  }

  /** Round tick values (1, 2, 5 times a power of ten) covering [lo, hi]. */
  function ticks(lo, hi, count = 5) {
    const span = hi - lo;
    if (!(span > 0)) return [lo];
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return out;
  }

  /** Short human form of a number: 12.5k, 3.4M, 0.913. */
  function formatNumber(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
    if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
    if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
    if (a >= 100) return `${Math.round(v)}`;
    if (a === 0) return "0";
    return `${+v.toPrecision(3)}`;
  }

  /** The rectangle inside the margins where data is drawn. */
  function plotArea(width, height, margin = MARGIN) {
    return {
      left: margin.left,
      top: margin.top,
      right: width - margin.right,
      bottom: height - margin.bottom,
    };
  }

  /** Grid lines, tick labels and axis titles; `y2` is an optional right-hand axis. */
  function drawAxes(ctx, area, { x, y, y2, xLabel, yLabel, y2Label, xTicks, yTicks }) {
    const xt = xTicks || ticks(x.domain[0], x.domain[1], 6);
    const yt = yTicks || ticks(y.domain[0], y.domain[1], 5);
    ctx.save();
    ctx.lineWidth = 1;
    ctx.strokeStyle = COLORS.grid;
    ctx.fillStyle = COLORS.text;
    ctx.beginPath();
    for (const v of yt) {
      const py = Math.round(y.map(v)) + 0.5;
      ctx.moveTo(area.left, py);
      ctx.lineTo(area.right, py);
    }
    for (const v of xt) {
      const px = Math.round(x.map(v)) + 0.5;
      ctx.moveTo(px, area.top);
      ctx.lineTo(px, area.bottom);
    }
    ctx.stroke();
    ctx.strokeStyle = COLORS.axis;
    ctx.strokeRect(area.left + 0.5, area.top + 0.5, area.right - area.left, area.bottom - area.top);

    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of xt) ctx.fillText(formatNumber(v), x.map(v), area.bottom + 5);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of yt) ctx.fillText(formatNumber(v), area.left - 6, y.map(v));
    if (y2) {
      ctx.textAlign = "left";
      for (const v of ticks(y2.domain[0], y2.domain[1], 5)) ctx.fillText(formatNumber(v), area.right + 6, y2.map(v));
    }

    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    if (xLabel) ctx.fillText(xLabel, (area.left + area.right) / 2, area.bottom + 36);
    const midY = (area.top + area.bottom) / 2;
    if (yLabel) rotatedText(ctx, yLabel, 14, midY, -Math.PI / 2);
    if (y2 && y2Label) rotatedText(ctx, y2Label, area.right + 48, midY, Math.PI / 2);
    ctx.restore();
  }

  function rotatedText(ctx, text, x, y, angle) {
    ctx.save();
    ctx.translate(x, y);
    ctx.rotate(angle);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(text, 0, 0);
    ctx.restore();
  }

  /** Centered grey text for a chart that has nothing to show yet. */
  function drawEmpty(ctx, width, height, text) {
    ctx.save();
    ctx.fillStyle = COLORS.axis;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(text, width / 2, height / 2);
    ctx.restore();
  }

  /**
   * Line chart of series [{name, color, axis: "left"|"right", points: [[x, y], ...]}].
   * Returns the number of points drawn.
   */
  function lineChart(canvas, { series, xLabel, yLabel, y2Label, emptyText, integerX }) {
    const surface = setup(canvas);
    if (!surface) return 0;
    const { ctx, width, height } = surface;
    const all = series.flatMap((s) => s.points);
    if (all.length === 0) {
      drawEmpty(ctx, width, height, emptyText || "no data yet");
      return 0;
    }
    const hasRight = series.some((s) => s.axis === "right" && s.points.length > 0);
    const area = plotArea(width, height, { ...MARGIN, right: hasRight ? MARGIN.right : 16 });
    const xs = all.map((p) => p[0]);
    const x = scale(extent(xs, 0.02), [area.left, area.right]);
    const leftYs = series.filter((s) => s.axis !== "right").flatMap((s) => s.points.map((p) => p[1]));
    const rightYs = series.filter((s) => s.axis === "right").flatMap((s) => s.points.map((p) => p[1]));
    const y = scale(extent(leftYs, 0.08), [area.bottom, area.top]);
    const y2 = hasRight ? scale(extent(rightYs, 0.08), [area.bottom, area.top]) : null;
    let xTicks;
    if (integerX) {
      xTicks = ticks(x.domain[0], x.domain[1], 6).filter((v) => Number.isInteger(v));
    }
    drawAxes(ctx, area, { x, y, y2, xLabel, yLabel, y2Label, xTicks });

    let drawn = 0;
    ctx.save();
    ctx.beginPath();
    ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
    ctx.clip();
    for (const s of series) {
      const ys = s.axis === "right" ? y2 : y;
      const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dashed ? [5, 4] : []);
      ctx.beginPath();
      pts.forEach((p, i) => {
        if (i === 0) ctx.moveTo(x.map(p[0]), ys.map(p[1]));
        else ctx.lineTo(x.map(p[0]), ys.map(p[1]));
      });
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.beginPath();
      for (const p of pts) {
        ctx.moveTo(x.map(p[0]) + 3, ys.map(p[1]));
        ctx.arc(x.map(p[0]), ys.map(p[1]), 3, 0, Math.PI * 2);
      }
      ctx.fill();
      drawn += pts.length;
    }
    ctx.restore();
    return drawn;
  }

  return { COLORS, MARGIN, setup, extent, scale, ticks, formatNumber, plotArea, drawAxes, drawEmpty, lineChart };
})();
