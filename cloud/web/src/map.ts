// The map: Leaflet drawing on a canvas (no WebGL, no DOM node per vehicle),
// with a scale and, when cloud-server is configured with a tile URL, a
// base layer; without one (or when it cannot be reached) positions and
// tracks are drawn on a plain background.

import L from "leaflet";

function meta(name: string): string {
  return document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? "";
}

/** The base layer cloud-server was configured with (MAP_TILE_URL); "" for none. */
export const tileURL = meta("fleetgate:tile-url");
const tileAttribution = meta("fleetgate:tile-attribution");

/** Monaco, where the simulator drives, until there is a position to show. */
const home: L.LatLngExpression = [43.7384, 7.4246];

/** Leaflet's canvas renderer as seen from inside (private members used below). */
type CanvasInside = L.Canvas & { _redrawRequest?: number | null; _redraw(): void };
const leafletRedraw = (L.Canvas.prototype as unknown as CanvasInside)._redraw;

/**
 * Canvas is Leaflet 1.9.4's canvas renderer with one race closed. A path
 * that changes asks for a redraw in the next animation frame; a view that
 * moves (setView, fitBounds, the end of a pan) redraws at once and forgets
 * that request without cancelling its frame. When the map is then removed
 * before that frame (leaving a view right after it drew, as a slow machine
 * lets happen), map.remove() cancels nothing, the frame comes, and the
 * renderer draws on the canvas it no longer has: "Cannot read properties of
 * undefined (reading 'save')". Here a redraw cancels the frame it replaces.
 */
const Canvas = L.Canvas.extend({
  _redraw(this: CanvasInside): void {
    if (this._redrawRequest) {
      L.Util.cancelAnimFrame(this._redrawRequest);
    }
    leafletRedraw.call(this);
  },
}) as unknown as new (options?: L.RendererOptions) => L.Canvas;

/** newMap makes a map in el with the base layer, a scale and a canvas renderer. */
export function newMap(el: HTMLElement): { map: L.Map; renderer: L.Canvas } {
  const renderer = new Canvas({ padding: 0.3 });
  // No zoom animation: a canvas of a thousand markers redraws at once anyway,
  // and a view left during an animation would leave Leaflet a dangling timer.
  const map = L.map(el, { preferCanvas: true, renderer, zoomControl: true, zoomAnimation: false, attributionControl: tileURL !== "", worldCopyJump: true }).setView(home, 13);
  if (tileURL) {
    map.attributionControl.setPrefix(false);
    // A tile server out of reach leaves the plain background behind the markers.
    L.tileLayer(tileURL, { maxZoom: 19, attribution: tileAttribution })
      .on("tileerror", () => el.classList.add("plain"))
      .addTo(map);
  } else {
    el.classList.add("plain");
  }
  L.control.scale({ imperial: false, maxWidth: 150 }).addTo(map);
  return { map, renderer };
}

/** Colours of a vehicle's marker by its state. */
export const colours = {
  ok: "#1a7f37",
  backlog: "#d97706",
  device: "#b91c1c",
  codes: "#c2410c",
  offline: "#6b7280",
  nodata: "#9ca3af",
};

export type Health = keyof typeof colours;
