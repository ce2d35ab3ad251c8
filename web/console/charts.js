// Charts on uPlot (from npm, served at /vendor/uplot/). Each chart sits in a
// <figure> with a caption, and the numbers it draws are also in a table or
// a text summary beside it: the chart is never the only way to read them.
import uPlot from "/vendor/uplot/uPlot.esm.js";

const COLORS = ["#2f6db5", "#b3001b", "#11663a", "#8a4b00"];

function width(el) {
  return Math.max(280, Math.floor(el.getBoundingClientRect().width || el.parentElement.clientWidth || 600) - 8);
}

/**
 * A time-series chart in el: xs are seconds since the epoch, series is
 * [{label, values, bars?, scale?, format?}], pad: seconds of room at both
 * ends. Returns {update(xs, series), destroy()}.
 */
export function timeChart(el, { title, series, xs, height = 220, axes = [], pad = 0 }) {
  const opts = {
    title,
    width: width(el),
    height,
    cursor: { drag: { x: false, y: false } },
    // One point has no extent: show the minute before it rather than years around it.
    // pad: room at both ends (half a bar).
    scales: { x: { time: true, range: (u, min, max) => [min - pad, max + pad] } },
    series: [{}, ...series.map((s, i) => ({
      label: s.label,
      stroke: COLORS[i % COLORS.length],
      fill: s.bars ? COLORS[i % COLORS.length] + "55" : undefined,
      width: 2,
      scale: s.scale || "y",
      paths: s.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined,
      points: { show: !!s.bars ? false : undefined },
      value: s.format ? (u, v) => (v === null || v === undefined ? "—" : s.format(v)) : undefined,
    }))],
    axes: [{}, ...axes.map((a, i) => ({
      scale: a.scale || "y",
      side: i === 0 ? 3 : 1,
      label: a.label,
      size: 70,
      grid: { show: i === 0 },
      values: a.format ? (u, vals) => vals.map((v) => (v === null ? "" : a.format(v))) : undefined,
    }))],
  };
  if (!axes.length) opts.axes = [{}, { size: 60 }];
  const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
  const onResize = () => plot.setSize({ width: width(el), height });
  window.addEventListener("resize", onResize);
  return {
    update(newXs, newSeries) {
      plot.setData([newXs, ...newSeries.map((s) => s.values)]);
    },
    destroy() {
      window.removeEventListener("resize", onResize);
      plot.destroy();
    },
  };
}
