// The usage chart: one bar per bucket, issued tokens stacked under denials,
// drawn as inline SVG (no library, nothing from another origin). Each bar
// has a <title>, so hovering or a screen reader gives the exact counts.

import { h, svg } from "./dom.js";

const W = 720;
const H = 160;
const PAD = 24;

function total(bucket) {
  return Object.values(bucket.denied || {}).reduce((a, b) => a + b, 0);
}

function label(bucket, granularity) {
  const d = new Date(bucket.start);
  return granularity === "day"
    ? d.toLocaleDateString()
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** The chart and a sentence saying what it shows. */
export function usageChart(report) {
  const data = report.data || [];
  const issued = data.reduce((a, b) => a + b.issued, 0);
  const denied = data.reduce((a, b) => a + total(b), 0);
  const max = Math.max(1, ...data.map((b) => b.issued + total(b)));
  const step = (W - PAD) / Math.max(1, data.length);
  const bar = Math.max(1, step * 0.8);
  const y = (n) => H - PAD - (n / max) * (H - 2 * PAD);

  const bars = data.map((b, i) => {
    const x = PAD + i * step;
    const d = total(b);
    const reasons = Object.entries(b.denied || {})
      .map(([r, n]) => `${r} ${n}`)
      .join(", ");
    return svg(
      "g",
      { class: "bucket" },
      svg("title", {}, `${label(b, report.granularity)}: ${b.issued} issued, ${d} denied${reasons ? ` (${reasons})` : ""}`),
      svg("rect", { class: "issued", x, width: bar, y: y(b.issued), height: H - PAD - y(b.issued) }),
      svg("rect", { class: "denied", x, width: bar, y: y(b.issued + d), height: y(b.issued) - y(b.issued + d) }),
    );
  });
  const first = data[0];
  const last = data[data.length - 1];
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "Exchanges per bucket" },
    svg("line", { class: "axis", x1: PAD, x2: W, y1: H - PAD, y2: H - PAD }),
    svg("text", { x: 0, y: PAD, class: "tick" }, String(max)),
    svg("text", { x: 0, y: H - PAD, class: "tick" }, "0"),
    first ? svg("text", { x: PAD, y: H - 6, class: "tick" }, label(first, report.granularity)) : null,
    last ? svg("text", { x: W, y: H - 6, class: "tick", "text-anchor": "end" }, label(last, report.granularity)) : null,
    bars,
  );
  const span = report.granularity === "day" ? "the last 30 days" : "the last 24 hours";
  return h(
    "figure",
    { class: "usage" },
    chart,
    h(
      "figcaption",
      { "data-usage-summary": "" },
      `${issued} issued, ${denied} denied in ${span}. `,
      h("span", { class: "legend issued" }, "issued"),
      " ",
      h("span", { class: "legend denied" }, "denied"),
    ),
  );
}
