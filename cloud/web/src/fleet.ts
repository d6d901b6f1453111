// The fleet view: every vehicle on the map, moving live, and the list
// beside it. A click on a row selects the vehicle on the map (and shows its
// recent track); a click on a marker selects its row.

import L from "leaflet";
import { type HistoryPosition, get, query, vehiclePath } from "./api";
import { h, setText } from "./dom";
import { kmh, since } from "./format";
import { health, healthLabel } from "./health";
import { colours, newMap } from "./map";
import type { Change, Store } from "./store";
import { VehicleTable } from "./table";

/** Vehicles up to which every marker carries its id as a label. */
const labelUpTo = 25;
/** Vehicles above which markers are small dots without an outline. */
const manyAt = 200;
/** How far back the selected vehicle's track starts. */
const trackMinutes = 15;

export class FleetView {
  readonly el: HTMLElement;
  private map!: L.Map;
  private renderer!: L.Canvas;
  private markers = new Map<string, L.CircleMarker>();
  private table: VehicleTable;
  private selected = "";
  private track: L.Polyline | null = null;
  private card: HTMLElement;
  private fitted = false;
  private timer = 0;
  private destroyed = false; // async work finishing later must leave the removed map alone
  private lastList = 0;
  private listTimer = 0;

  private unsubscribe: () => void = () => {};

  constructor(
    private store: Store,
    private mapEl: HTMLElement,
  ) {
    this.table = new VehicleTable(store.vehicles, (id) => this.select(id, false));
    this.card = h("div", { class: "card selected-card", hidden: true });
    this.el = h("div", { class: "fleet" }, h("div", { class: "map-wrap" }, mapEl, this.card), this.table.el);
    // "Last seen" and ages move on even when nothing arrives.
    this.timer = window.setInterval(() => {
      this.table.refresh();
      this.paintCard();
    }, 1000);
  }

  /** attached makes the map once the view is in the document (Leaflet measures its box). */
  attached(): void {
    ({ map: this.map, renderer: this.renderer } = newMap(this.mapEl));
    this.unsubscribe = this.store.subscribe((c) => this.apply(c));
    if (this.store.isLoaded) {
      this.apply({ moved: new Set(), changed: new Set(), reloaded: true, events: [] });
    }
    this.table.refresh(true);
  }

  destroy(): void {
    this.destroyed = true;
    this.unsubscribe();
    clearInterval(this.timer);
    clearTimeout(this.listTimer);
    this.map?.remove();
  }

  private apply(c: Change): void {
    if (!this.store.isLoaded) {
      return; // the whole list first: then every marker knows the fleet's size
    }
    const ids = c.reloaded ? this.store.vehicles.keys() : c.changed.values();
    for (const id of ids) {
      this.placeMarker(id);
    }
    if (c.reloaded) {
      for (const [id, m] of this.markers) {
        if (!this.store.vehicles.has(id)) {
          m.remove();
          this.markers.delete(id);
        }
      }
    }
    if (this.selected && this.track && c.moved.has(this.selected)) {
      const p = this.store.vehicles.get(this.selected)?.position;
      if (p) {
        this.track.addLatLng([p.lat, p.lon]);
      }
    }
    if (!this.fitted && this.markers.size > 0) {
      this.fit();
    }
    this.table.changed();
    this.scheduleList(c.reloaded);
    if (this.selected && c.changed.has(this.selected)) {
      this.paintCard();
    }
  }

  /** scheduleList repaints the list at most four times a second. */
  private scheduleList(now: boolean): void {
    const wait = 250 - (performance.now() - this.lastList);
    if (now || wait <= 0) {
      clearTimeout(this.listTimer);
      this.listTimer = 0;
      this.lastList = performance.now();
      this.table.refresh();
    } else if (!this.listTimer) {
      this.listTimer = window.setTimeout(() => {
        this.listTimer = 0;
        this.lastList = performance.now();
        this.table.refresh();
      }, wait);
    }
  }

  private fit(): void {
    const pts: L.LatLngExpression[] = [];
    for (const m of this.markers.values()) {
      pts.push(m.getLatLng());
    }
    if (pts.length === 1) {
      this.map.setView(pts[0], 15);
    } else {
      this.map.fitBounds(L.latLngBounds(pts), { padding: [40, 40], maxZoom: 16 });
    }
    this.fitted = true;
  }

  private placeMarker(id: string): void {
    const v = this.store.vehicles.get(id);
    if (!v?.position) {
      return;
    }
    const ll: L.LatLngTuple = [v.position.lat, v.position.lon];
    const colour = colours[health(v)];
    let m = this.markers.get(id);
    if (!m) {
      m = L.circleMarker(ll, { renderer: this.renderer, fillColor: colour, fillOpacity: 1, ...this.markerStyle(false) });
      m.on("click", () => this.select(id, true));
      if (this.store.vehicles.size <= labelUpTo) {
        m.bindTooltip(id, { permanent: true, direction: "right", offset: [8, 0], className: "vlabel" });
      } else {
        m.bindTooltip(id, { direction: "top", className: "vlabel" });
      }
      m.addTo(this.map);
      this.markers.set(id, m);
      return;
    }
    const old = m.getLatLng();
    if (old.lat !== ll[0] || old.lng !== ll[1]) {
      m.setLatLng(ll);
    }
    if (m.options.fillColor !== colour) {
      m.setStyle({ fillColor: colour });
    }
  }

  /**
   * markerStyle is a marker's outline: none for a large fleet (a canvas
   * redraw of a thousand markers costs half as much without strokes), a
   * dark ring for the selected vehicle.
   */
  private markerStyle(selected: boolean): L.CircleMarkerOptions {
    if (selected) {
      return { radius: 9, stroke: true, color: "#111827", weight: 3 };
    }
    if (this.store.vehicles.size > manyAt) {
      return { radius: 4, stroke: false };
    }
    return { radius: 6, stroke: true, color: "#ffffff", weight: 2 };
  }

  select(id: string, fromMap: boolean): void {
    const prev = this.markers.get(this.selected);
    prev?.setStyle(this.markerStyle(false));
    this.selected = id;
    this.table.select(id, fromMap);
    this.track?.remove();
    this.track = null;
    const m = this.markers.get(id);
    if (m) {
      m.setStyle(this.markerStyle(true));
      m.bringToFront();
      if (!fromMap) {
        this.map.panTo(m.getLatLng());
      }
      this.loadTrack(id);
    }
    this.paintCard();
  }

  /** loadTrack draws the selected vehicle's last minutes; live fixes extend it. */
  private async loadTrack(id: string): Promise<void> {
    const to = new Date();
    const from = new Date(to.getTime() - trackMinutes * 60_000);
    try {
      const page = await get<{ positions: HistoryPosition[] }>(vehiclePath(id) + "/positions" + query({ from: from.toISOString(), to: to.toISOString(), limit: 5000 }));
      if (this.destroyed || this.selected !== id) {
        return;
      }
      const pts: L.LatLngTuple[] = page.positions.map((p) => [p.lat, p.lon]);
      const cur = this.store.vehicles.get(id)?.position;
      if (cur) {
        pts.push([cur.lat, cur.lon]);
      }
      this.track = L.polyline(pts, { renderer: this.renderer, color: "#2563eb", weight: 3, opacity: 0.8, interactive: false }).addTo(this.map);
      this.markers.get(id)?.bringToFront();
    } catch {
      // The track is a nicety: the list and markers stand without it.
    }
  }

  private paintCard(): void {
    const v = this.store.vehicles.get(this.selected);
    if (!v) {
      this.card.hidden = true;
      return;
    }
    this.card.hidden = false;
    if (this.card.dataset.id !== v.id) {
      this.card.dataset.id = v.id;
      this.card.replaceChildren(
        h("h2", {}, v.id),
        h("p", { class: "state" }),
        h("p", { class: "speed" }),
        h("a", { class: "button", href: "#/vehicles/" + encodeURIComponent(v.id) }, "Open vehicle ›"),
      );
    }
    const [, state, speed] = Array.from(this.card.children);
    setText(state, healthLabel[health(v)] + " · seen " + since(v.last_seen));
    setText(speed, v.position ? kmh(v.position.speed_mps) + " at " + v.position.lat.toFixed(5) + ", " + v.position.lon.toFixed(5) : "no position yet");
  }

  /** markerPositions is what the map shows, for the browser tests. */
  markerPositions(): Record<string, [number, number]> {
    const out: Record<string, [number, number]> = {};
    for (const [id, m] of this.markers) {
      const ll = m.getLatLng();
      out[id] = [ll.lat, ll.lng];
    }
    return out;
  }
}
