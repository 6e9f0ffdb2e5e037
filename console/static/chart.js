// A small SVG line chart for evaluation trends: months along the bottom, 0–100 up the side, the A–E band floors
// as faint lines, a gap where a month has no score.

const NS = "http://www.w3.org/2000/svg";
const BAND_FLOORS = [
  [90, "A"],
  [75, "B"],
  [60, "C"],
  [40, "D"],
];

function el(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

export function lineChart(points, { title = "", width = 640, height = 220 } = {}) {
  const pad = { left: 40, right: 16, top: 16, bottom: 30 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  svg.append(el("title", {}, title));
  const x = (i) => pad.left + (points.length === 1 ? w / 2 : (i * w) / (points.length - 1));
  const y = (v) => pad.top + h - (v / 100) * h;
  for (const [floor, band] of BAND_FLOORS) {
    svg.append(el("line", { x1: pad.left, x2: pad.left + w, y1: y(floor), y2: y(floor), class: "chart-band" }));
    svg.append(el("text", { x: pad.left + w + 4, y: y(floor) + 4, class: "chart-band-label" }, band));
  }
  svg.append(el("line", { x1: pad.left, x2: pad.left, y1: pad.top, y2: pad.top + h, class: "chart-axis" }));
  svg.append(el("line", { x1: pad.left, x2: pad.left + w, y1: pad.top + h, y2: pad.top + h, class: "chart-axis" }));
  for (const v of [0, 50, 100]) {
    svg.append(el("text", { x: pad.left - 6, y: y(v) + 4, class: "chart-tick", "text-anchor": "end" }, String(v)));
  }
  points.forEach((p, i) => {
    if (points.length <= 12 || i % 2 === 0) {
      svg.append(el("text", { x: x(i), y: height - 8, class: "chart-tick", "text-anchor": "middle" }, p.label.slice(2)));
    }
  });
  // One polyline per run of months that have a score.
  let run = [];
  const flush = () => {
    if (run.length > 1) svg.append(el("polyline", { points: run.join(" "), class: "chart-line" }));
    run = [];
  };
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return flush();
    run.push(`${x(i).toFixed(1)},${y(p.value).toFixed(1)}`);
    const dot = el("circle", { cx: x(i), cy: y(p.value), r: 3.5, class: "chart-dot" });
    dot.append(el("title", {}, `${p.label}: ${p.value.toFixed(2)}${p.band ? ` (${p.band})` : ""}`));
    svg.append(dot);
  });
  flush();
  return svg;
}
