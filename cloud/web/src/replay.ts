// Trip replay: the trip's matched track (its raw fixes when it was not
// matched) on the map, its speed (and engine RPM where the vehicle reports
// it) on a chart under it, and a cursor moving along both.

import L from "leaflet";
import type uPlot from "uplot";
import { type HistoryPosition, type OBDSample, type TripDetail, get, pages, vehiclePath } from "./api";
import { chart, vline } from "./chart";
import { h, setText } from "./dom";
import { age, clock, kmh, km, time } from "./format";
import { newMap } from "./map";

const rates = [1, 5, 10, 30, 60, 120, 300];

type XY = [number, number];

/** nearestOn returns the point of the polylines nearest p (in a local flat projection). */
function nearestOn(lines: XY[][], p: XY): XY {
  const k = Math.cos((p[1] * Math.PI) / 180);
  let best: XY = p;
  let bestD = Infinity;
  for (const line of lines) {
    for (let i = 1; i < line.length; i++) {
      const [ax, ay] = line[i - 1];
      const [bx, by] = line[i];
      const dx = (bx - ax) * k;
      const dy = by - ay;
      const px = (p[0] - ax) * k;
      const py = p[1] - ay;
      const len = dx * dx + dy * dy;
      const f = len > 0 ? Math.max(0, Math.min(1, (px * dx + py * dy) / len)) : 0;
      const ex = px - f * dx;
      const ey = py - f * dy;
      const d = ex * ex + ey * ey;
      if (d < bestD) {
        bestD = d;
        best = [ax + f * (bx - ax), ay + f * (by - ay)];
      }
    }
  }
  return best;
}

/** at returns the index i with ts[i] <= t < ts[i+1] (binary search). */
function at(ts: number[], t: number): number {
  let lo = 0;
  let hi = ts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ts[mid] <= t) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

export class ReplayView {
  readonly el: HTMLElement;
  private mapEl = h("div", { class: "rmap" });
  private chartEl = h("div", { class: "chart", "data-chart": "speed" });
  private summary = h("dl", { class: "kv summary" });
  private playBtn = h("button", { type: "button", class: "button play", "aria-label": "play" }, "▶ Play");
  private rateSel = h("select", { "aria-label": "replay speed" }, ...rates.map((r) => h("option", { value: r }, r + "×")));
  private scrub = h("input", { type: "range", class: "scrub", min: 0, max: 1, step: 0.1, value: 0, "aria-label": "replay position" });
  private readout = h("span", { class: "readout", "data-readout": "cursor" });
  private msg = h("p", { class: "hint" });
  private map: L.Map | null = null;
  private cursor: L.CircleMarker | null = null;
  private u: uPlot | null = null;
  private ts: number[] = []; // fix times, seconds
  private lls: XY[] = []; // [lon, lat] per fix
  private speeds: (number | null)[] = [];
  private rpmAt: (number | null)[] = [];
  private matched: XY[][] = [];
  private t0 = 0;
  private t = 0; // seconds since t0
  private playing = false;
  private frame = 0;
  private last = 0;
  private destroyed = false; // async work finishing later must leave the removed map alone

  constructor(
    private vehicle: string,
    private tripID: string,
  ) {
    this.playBtn.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.scrub.addEventListener("input", () => this.seek(Number(this.scrub.value)));
    this.el = h(
      "div",
      { class: "replay", "data-playing": "false" },
      h("header", { class: "vhead" }, h("a", { href: "#/vehicles/" + encodeURIComponent(vehicle), class: "back" }, "‹ " + vehicle), h("h1", {}, "Trip " + tripID), this.msg),
      h("div", { class: "replay-body" }, h("div", { class: "replay-main" }, this.mapEl, h("div", { class: "controls" }, this.playBtn, this.rateSel, this.scrub, this.readout), this.chartEl), h("aside", { class: "card" }, h("h2", {}, "Trip"), this.summary)),
    );
  }

  async attached(): Promise<void> {
    const { map, renderer } = newMap(this.mapEl);
    this.map = map;
    let d: TripDetail;
    try {
      d = await get<TripDetail>(vehiclePath(this.vehicle) + "/trips/" + encodeURIComponent(this.tripID));
    } catch (e) {
      setText(this.msg, "Trip: " + (e instanceof Error ? e.message : String(e)));
      return;
    }
    if (this.destroyed) {
      return;
    }
    const trip = d.trip;
    const from = trip.start.time;
    const to = new Date(Date.parse(trip.end.time) + 1).toISOString();
    const [ps, obd] = await Promise.all([
      pages<HistoryPosition>(vehiclePath(this.vehicle) + "/positions", { from, to, limit: 10000 }, "positions", 200000),
      pages<OBDSample>(vehiclePath(this.vehicle) + "/obd", { from, to, pid: "0C", limit: 10000 }, "samples", 200000).catch(() => [] as OBDSample[]),
    ]);
    if (this.destroyed) {
      return;
    }
    this.ts = ps.map((p) => Date.parse(p.time) / 1000);
    this.lls = ps.map((p) => [p.lon, p.lat]);
    this.speeds = ps.map((p) => (p.speed_mps === undefined ? null : p.speed_mps * 3.6));
    // RPM at each fix's time: the newest sample at or before it.
    const ot = obd.map((s) => Date.parse(s.time) / 1000);
    this.rpmAt = this.ts.map((t) => {
      if (!ot.length || t < ot[0]) {
        return null;
      }
      const i = at(ot, t);
      return t - ot[i] <= 10 ? obd[i].value : null;
    });
    this.t0 = this.ts[0] ?? Date.parse(from) / 1000;
    const span = Math.max(1, (this.ts[this.ts.length - 1] ?? this.t0) - this.t0);
    this.scrub.max = String(span);

    // The track: matched when the trip was matched, else the raw fixes.
    const raw = d.raw.coordinates.map((c) => L.latLng(c[1], c[0]));
    if (d.matched && d.matched.coordinates.length) {
      this.matched = d.matched.coordinates;
      L.polyline(raw, { renderer, color: "#6b7280", weight: 2, opacity: 0.6, dashArray: "4 6", interactive: false }).addTo(map);
      L.polyline(
        d.matched.coordinates.map((line) => line.map((c) => L.latLng(c[1], c[0]))),
        { renderer, color: "#2563eb", weight: 4, opacity: 0.9 },
      ).addTo(map);
      setText(this.msg, "Matched to the road network" + (trip.match.confidence !== undefined ? ` (confidence ${(trip.match.confidence * 100).toFixed(0)} %)` : "") + "; the raw fixes dashed.");
    } else {
      L.polyline(raw, { renderer, color: "#2563eb", weight: 4, opacity: 0.9 }).addTo(map);
      setText(this.msg, trip.match.status === "pending" ? "Raw fixes (not matched yet)." : "Raw fixes (not matched to roads" + (trip.match.error ? ": " + trip.match.error : "") + ").");
    }
    if (raw.length > 1) {
      map.fitBounds(L.latLngBounds(raw), { padding: [30, 30] });
    } else if (raw.length === 1) {
      map.setView(raw[0], 16);
    }
    this.cursor = L.circleMarker([0, 0], { renderer, radius: 8, weight: 3, color: "#ffffff", fillColor: "#dc2626", fillOpacity: 1 }).addTo(map);

    const series = [{ label: "speed", colour: "#2563eb", unit: "km/h" }];
    const data: uPlot.AlignedData = [this.ts, this.speeds];
    if (this.rpmAt.some((v) => v !== null)) {
      series.push({ label: "engine", colour: "#16a34a", unit: "rpm", scale: "rpm" } as (typeof series)[0] & { scale: string });
      (data as (number | null)[][]).push(this.rpmAt);
    }
    this.u = chart(this.chartEl, { title: "Speed" + (series.length > 1 ? " and engine RPM" : ""), series, height: 220, draw: (u) => vline(u, this.t0 + this.t, "#dc2626"), onClick: (x) => this.seek(x - this.t0) }, data);

    const rows: [string, string][] = [
      ["Start", time(trip.start.time)],
      ["End", time(trip.end.time) + (trip.open ? " (going on)" : "")],
      ["Duration", age(trip.duration_s)],
      ["Distance", km(trip.distance_m) + (trip.match.distance_m !== undefined ? ` (matched ${km(trip.match.distance_m)})` : "")],
      ["Driving", age(trip.driving_s)],
      ["Idle", age(trip.idle_s)],
      ["Max speed", kmh(trip.max_speed_mps)],
      ["Average", kmh(trip.avg_speed_mps)],
      ["Fixes", String(trip.fixes)],
      ["Track", trip.match.status],
    ];
    if (trip.fuel_l !== undefined) {
      rows.push(["Fuel", trip.fuel_l.toFixed(2) + " l"]);
    }
    this.summary.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    const rate = rates.find((r) => span / r <= 90) ?? rates[rates.length - 1];
    this.rateSel.value = String(rate);
    this.seek(0);
    this.el.dataset.ready = "true";
  }

  destroy(): void {
    this.destroyed = true;
    this.playing = false;
    cancelAnimationFrame(this.frame);
    this.u?.destroy();
    this.map?.remove();
  }

  private play(): void {
    if (!this.ts.length) {
      return;
    }
    if (this.t >= Number(this.scrub.max)) {
      this.t = 0;
    }
    this.playing = true;
    this.el.dataset.playing = "true";
    setText(this.playBtn, "❚❚ Pause");
    this.playBtn.setAttribute("aria-label", "pause");
    this.last = performance.now();
    const step = (now: number) => {
      if (!this.playing) {
        return;
      }
      const dt = (now - this.last) / 1000;
      this.last = now;
      this.seek(this.t + dt * Number(this.rateSel.value));
      if (this.t >= Number(this.scrub.max)) {
        this.pause();
        return;
      }
      this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  private pause(): void {
    this.playing = false;
    cancelAnimationFrame(this.frame);
    this.el.dataset.playing = "false";
    setText(this.playBtn, "▶ Play");
    this.playBtn.setAttribute("aria-label", "play");
  }

  /** seek moves the cursor to t seconds after the trip's first fix. */
  private seek(t: number): void {
    if (!this.ts.length) {
      return;
    }
    this.t = Math.max(0, Math.min(t, Number(this.scrub.max)));
    const abs = this.t0 + this.t;
    const i = at(this.ts, abs);
    const j = Math.min(i + 1, this.ts.length - 1);
    const f = j > i ? (abs - this.ts[i]) / (this.ts[j] - this.ts[i]) : 0;
    let p: XY = [this.lls[i][0] + f * (this.lls[j][0] - this.lls[i][0]), this.lls[i][1] + f * (this.lls[j][1] - this.lls[i][1])];
    if (this.matched.length) {
      p = nearestOn(this.matched, p);
    }
    this.cursor?.setLatLng([p[1], p[0]]);
    this.scrub.value = String(this.t);
    this.u?.redraw(false, false);
    const sp = this.speeds[i];
    const rpm = this.rpmAt[i];
    setText(this.readout, `${clock(abs * 1000)} · ${sp === null ? "–" : sp.toFixed(0) + " km/h"}` + (rpm !== null && rpm !== undefined ? ` · ${rpm.toFixed(0)} rpm` : ""));
  }

  /** cursorAt is where the cursor is, for the browser tests. */
  cursorAt(): { t: number; lat: number; lon: number } {
    const ll = this.cursor?.getLatLng();
    return { t: this.t, lat: ll?.lat ?? 0, lon: ll?.lng ?? 0 };
  }
}
