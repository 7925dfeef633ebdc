// Charts drawn as SVG, exact and testable: every bar is a `rect.bar` and every point of a
// line a `circle.point`, carrying their data as JSON in `data-label` / `data-series`,
// `data-value` and (points) `data-offset`.

import type { Value } from "./client";
import { s } from "./dom";
import { compareValues } from "./values";

const W = 560;
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/** A series' colour: the label itself where it names a CSS colour (the game's teams), else
 * one of a palette, picked by the label's text so it is the same in every chart. */
export function colourOf(label: string): string {
  if (/^[a-z]+$/i.test(label) && typeof CSS !== "undefined" && CSS.supports("color", label)) return label;
  let h = 0;
  for (const ch of label) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

function text(v: Value): string {
  return v === null ? "NULL" : String(v);
}

function num(v: Value): number {
  return typeof v === "number" ? v : 0;
}

/** Round steps for an axis from lo to hi. */
function ticks(lo: number, hi: number, count = 4): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function short(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  return String(+n.toFixed(3));
}

/** Horizontal bars, one per row, in label order. */
export function barChart(rows: Value[][], label: number, value: number): SVGSVGElement {
  const sorted = [...rows].sort((a, b) => compareValues(a[label] ?? null, b[label] ?? null) || compareValues(a[value] ?? null, b[value] ?? null));
  const barH = 26;
  const left = 130;
  const right = 70;
  const top = 8;
  const height = top * 2 + Math.max(1, sorted.length) * barH + 18;
  const vals = sorted.map((r) => num(r[value] ?? null));
  const lo = Math.min(0, ...vals);
  const hi = Math.max(0, ...vals, lo === 0 ? 1 : 0);
  const x = (v: number) => left + ((v - lo) / (hi - lo || 1)) * (W - left - right);
  const svg = s("svg", { class: "chart bars", viewBox: `0 0 ${W} ${height}`, "data-testid": "bar-chart", role: "img" });
  for (const t of ticks(lo, hi)) {
    svg.append(
      s("line", { class: "grid", x1: x(t), x2: x(t), y1: top, y2: height - 18 }),
      s("text", { class: "tick", x: x(t), y: height - 4, "text-anchor": "middle" }, short(t)),
    );
  }
  sorted.forEach((r, i) => {
    const v = r[value] ?? null;
    const l = text(r[label] ?? null);
    const y = top + i * barH;
    const x0 = x(Math.min(0, num(v)));
    const x1 = x(Math.max(0, num(v)));
    svg.append(
      s("text", { class: "bar-label", x: left - 8, y: y + barH / 2 + 4, "text-anchor": "end" }, l.length > 18 ? l.slice(0, 17) + "…" : l),
      s(
        "rect",
        {
          class: "bar",
          x: x0,
          y: y + 3,
          width: Math.max(1, x1 - x0),
          height: barH - 6,
          rx: 3,
          fill: colourOf(l),
          "data-label": JSON.stringify(r[label] ?? null),
          "data-value": JSON.stringify(v),
        },
        s("title", null, `${l}: ${text(v)}`),
      ),
      s("text", { class: "bar-value", x: x1 + 6, y: y + barH / 2 + 4 }, text(v)),
    );
  });
  if (sorted.length === 0) svg.append(s("text", { class: "empty", x: W / 2, y: top + barH / 2 + 4, "text-anchor": "middle" }, "no rows"));
  return svg;
}

export interface Point {
  offset: number;
  timeMicros: number;
  value: Value;
}

/** A numeric column over time: one line per series, x the offset; a series has a point at
 * each offset where its value changed, and holds the value until the next. */
export class LineHistory {
  /** Points kept per series. */
  static readonly MAX_POINTS = 150;
  readonly series = new Map<string, { label: Value; points: Point[]; seen: number }>();
  private last = -1;
  private previous = -1;
  /** Where the chart starts: once a series dropped old points, what is known of all. */
  private from = -1;

  /** Records the result at an offset: per label (or one series, the column's sum, without one). */
  sample(rows: Value[][], label: number | null, value: number, offset: number, timeMicros: number): void {
    if (offset <= this.last) return;
    this.previous = this.last;
    this.last = offset;
    const now = new Map<string, { label: Value; value: number | null }>();
    for (const r of rows) {
      const l = label === null ? null : (r[label] ?? null);
      const k = label === null ? "" : JSON.stringify(l);
      const v = r[value] ?? null;
      const cur = now.get(k);
      if (typeof v !== "number") {
        if (!cur) now.set(k, { label: l, value: null });
      } else {
        now.set(k, { label: l, value: (cur?.value ?? 0) + v });
      }
    }
    if (label === null && !now.has("")) now.set("", { label: null, value: null });
    for (const [k, { label: l, value: v }] of now) {
      let ser = this.series.get(k);
      if (!ser) this.series.set(k, (ser = { label: l, points: [], seen: -1 }));
      // A point where the value changed (or the series began or came back).
      const prev = ser.points[ser.points.length - 1];
      if (prev && prev.value === v && ser.seen === this.previous) {
        ser.seen = offset;
        continue;
      }
      ser.points.push({ offset, timeMicros, value: v });
      ser.seen = offset;
      if (ser.points.length > LineHistory.MAX_POINTS) {
        ser.points.shift();
        this.from = Math.max(this.from, ser.points[0].offset);
      }
    }
    // A series whose row left the result ends: it gets no point at this offset.
  }

  render(valueName: string): SVGSVGElement {
    const height = 220;
    const left = 56;
    const right = 16;
    const top = 12;
    const bottom = 40;
    // Each series from the chart's start: the point holding there moved to it, older ones gone.
    const shown = [...this.series.values()].map((ser) => {
      if (this.from < 0) return ser;
      const i = ser.points.findIndex((p) => p.offset > this.from);
      const upto = i < 0 ? ser.points.length : i;
      const points = ser.points.slice(Math.max(0, upto - 1));
      if (upto > 0) points[0] = { ...points[0], offset: Math.max(points[0].offset, this.from) };
      return { ...ser, points };
    });
    const all = shown.flatMap((s) => s.points);
    const offsets = all.map((p) => p.offset);
    const vals = all.map((p) => p.value).filter((v): v is number => typeof v === "number");
    const x0 = Math.min(...offsets);
    const x1 = Math.max(...offsets, this.last);
    const lo = vals.length ? Math.min(...vals) : 0;
    const hi = vals.length ? Math.max(...vals) : 1;
    const pad = hi === lo ? Math.max(1, Math.abs(hi) * 0.1) : 0;
    const [ylo, yhi] = [lo - pad, hi + pad];
    const x = (o: number) => left + (x1 === x0 ? (W - left - right) / 2 : ((o - x0) / (x1 - x0)) * (W - left - right));
    const y = (v: number) => top + (1 - (v - ylo) / (yhi - ylo)) * (height - top - bottom);
    const svg = s("svg", { class: "chart line", viewBox: `0 0 ${W} ${height}`, "data-testid": "line-chart", role: "img" });
    if (all.length === 0) {
      svg.append(s("text", { class: "empty", x: W / 2, y: height / 2, "text-anchor": "middle" }, "no data yet"));
      return svg;
    }
    for (const t of ticks(ylo, yhi)) {
      svg.append(
        s("line", { class: "grid", x1: left, x2: W - right, y1: y(t), y2: y(t) }),
        s("text", { class: "tick", x: left - 6, y: y(t) + 4, "text-anchor": "end" }, short(t)),
      );
    }
    svg.append(
      s("text", { class: "tick", x: left, y: height - bottom + 16, "text-anchor": "start" }, `offset ${x0}`),
      s("text", { class: "tick", x: W - right, y: height - bottom + 16, "text-anchor": "end" }, `offset ${x1}`),
    );
    let lx = left;
    for (const ser of shown) {
      const name = ser.label === null && this.series.size === 1 ? valueName : text(ser.label);
      const colour = colourOf(name);
      const pts = ser.points.filter((p) => typeof p.value === "number");
      // A step line: a value holds until the next offset that changed it.
      let d = "";
      pts.forEach((p, i) => {
        const px = x(p.offset).toFixed(1);
        const py = y(p.value as number).toFixed(1);
        d += i === 0 ? `M${px},${py}` : `H${px}V${py}`;
      });
      // A series still in the result holds its value up to the latest offset.
      if (pts.length && ser.seen === this.last) d += `H${x(x1).toFixed(1)}`;
      svg.append(s("path", { class: "series", d, stroke: colour, "data-series": JSON.stringify(ser.label) }));
      ser.points.forEach((p, i) => {
        const v = typeof p.value === "number" ? p.value : null;
        svg.append(
          s(
            "circle",
            {
              class: i === ser.points.length - 1 ? "point last" : "point",
              cx: x(p.offset),
              cy: v === null ? height - bottom : y(v),
              r: 3,
              fill: colour,
              "data-series": JSON.stringify(ser.label),
              "data-offset": p.offset,
              "data-value": JSON.stringify(p.value),
            },
            s("title", null, `${name} = ${text(p.value)} at offset ${p.offset}, ${new Date(p.timeMicros / 1000).toLocaleTimeString()}`),
          ),
        );
      });
      const lastV = ser.points[ser.points.length - 1]?.value ?? null;
      svg.append(
        s("rect", { x: lx, y: height - 16, width: 10, height: 10, fill: colour, rx: 2 }),
        s("text", { class: "legend", x: lx + 14, y: height - 7 }, `${name}: ${text(lastV)}`),
      );
      lx += 28 + 7 * `${name}: ${text(lastV)}`.length;
    }
    return svg;
  }
}
