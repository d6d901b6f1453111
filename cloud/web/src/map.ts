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

/** newMap makes a map in el with the base layer, a scale and a canvas renderer. */
export function newMap(el: HTMLElement): { map: L.Map; renderer: L.Canvas } {
  const renderer = L.canvas({ padding: 0.3 });
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
