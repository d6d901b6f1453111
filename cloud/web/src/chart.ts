// Time-series charts with uPlot (canvas, small and fast).

import uPlot from "uplot";

export interface SeriesSpec {
  label: string;
  colour: string;
  scale?: string;
  unit: string;
  stepped?: boolean;
}

export interface ChartOptions {
  title: string;
  height?: number;
  series: SeriesSpec[];
  /** Extra drawing after the series (bands, a cursor line). */
  draw?: (u: uPlot) => void;
  /** Clicked at x (seconds). */
  onClick?: (x: number) => void;
}

const fmt = (unit: string) => (_u: uPlot, v: number | null) => (v === null || v === undefined ? "–" : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1)) + (unit ? " " + unit : ""));

/** chart makes a uPlot chart in el that follows el's width. */
export function chart(el: HTMLElement, o: ChartOptions, data: uPlot.AlignedData): uPlot {
  const scales: Record<string, uPlot.Scale> = { x: { time: true } };
  const axes: uPlot.Axis[] = [{ stroke: "#4b5563", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#e5e7eb" } }];
  const seen = new Set<string>();
  for (const s of o.series) {
    const scale = s.scale ?? "y";
    if (!seen.has(scale)) {
      scales[scale] = { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, (max ?? 1) * 1.1)] };
      axes.push({ scale, label: s.unit, stroke: s.colour, side: seen.size === 0 ? 3 : 1, grid: { show: seen.size === 0, stroke: "#e5e7eb" }, size: 55 });
      seen.add(scale);
    }
  }
  const opts: uPlot.Options = {
    title: o.title,
    width: Math.max(200, el.clientWidth || 600),
    height: o.height ?? 180,
    scales,
    axes,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    series: [
      {},
      ...o.series.map(
        (s): uPlot.Series => ({
          label: s.label,
          stroke: s.colour,
          width: 2,
          scale: s.scale ?? "y",
          value: fmt(s.unit),
          spanGaps: false,
          paths: s.stepped ? uPlot.paths.stepped!({ align: 1 }) : undefined,
          points: { show: false },
        }),
      ),
    ],
    hooks: o.draw ? { draw: [o.draw] } : {},
  };
  const u = new uPlot(opts, data, el);
  if (o.onClick) {
    const click = o.onClick;
    u.over.addEventListener("click", () => {
      if (u.cursor.left !== undefined && u.cursor.left >= 0) {
        click(u.posToVal(u.cursor.left, "x"));
      }
    });
  }
  new ResizeObserver(() => {
    const w = el.clientWidth;
    if (w > 0 && Math.abs(w - u.width) > 2) {
      u.setSize({ width: w, height: u.height });
    }
  }).observe(el);
  return u;
}

/** vline draws a vertical line at x (seconds) across u's plot area. */
export function vline(u: uPlot, x: number, colour: string): void {
  const left = u.valToPos(x, "x", true);
  const { top, height, left: l0, width } = u.bbox;
  if (left < l0 || left > l0 + width) {
    return;
  }
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.beginPath();
  ctx.moveTo(left, top);
  ctx.lineTo(left, top + height);
  ctx.stroke();
  ctx.restore();
}

/** band shades the time from x0 to x1 (seconds). */
export function band(u: uPlot, x0: number, x1: number, colour: string): void {
  const a = Math.max(u.bbox.left, u.valToPos(x0, "x", true));
  const b = Math.min(u.bbox.left + u.bbox.width, u.valToPos(x1, "x", true));
  if (b <= a) {
    return;
  }
  u.ctx.save();
  u.ctx.fillStyle = colour;
  u.ctx.fillRect(a, u.bbox.top, b - a, u.bbox.height);
  u.ctx.restore();
}
