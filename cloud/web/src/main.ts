// Fleetgate's dashboard: sign-in, the fleet view, a vehicle's view and a
// trip's replay, routed by the URL's fragment (#/, #/vehicles/ID,
// #/vehicles/ID/trips/N).

import "./style.css";
import L from "leaflet";
import { ApiError, type Session, session, setUnauthorizedHandler, signIn, signOut } from "./api";
import { h, setText } from "./dom";
import { FleetView } from "./fleet";
import { newMap } from "./map";
import { ReplayView } from "./replay";
import { Store } from "./store";
import { VehicleView } from "./vehicle";

/** Set while this browser holds a session cookie (which script cannot read). */
const signedInKey = "fleetgate.signed-in";

interface View {
  el: HTMLElement;
  attached(): void | Promise<void>;
  destroy(): void;
}

/** What the browser tests read of views drawn on canvas. */
interface Introspection {
  markers(): Record<string, [number, number]>;
  replayCursor(): { t: number; lat: number; lon: number } | null;
  maxApplyMs(): number;
  /** The page's Leaflet and map maker, for tests of the map's own behaviour. */
  leaflet: typeof L;
  newMap: typeof newMap;
}

declare global {
  interface Window {
    fleetgate: Introspection;
  }
}

const app = document.getElementById("app")!;
let store: Store | null = null;
let current: View | null = null;
let me: Session | null = null;
let fleet: FleetView | null = null;
let firstRender = false;

window.fleetgate = {
  markers: () => fleet?.markerPositions() ?? {},
  replayCursor: () => (current instanceof ReplayView ? current.cursorAt() : null),
  maxApplyMs: () => store?.maxApplyMs ?? 0,
  leaflet: L,
  newMap,
};

function show(v: View, name: string): void {
  current?.destroy();
  current = v;
  document.body.dataset.view = name;
  main.replaceChildren(v.el);
  void v.attached();
}

const main = h("main", { id: "main" });
const streamEl = h("span", { class: "stream", title: "live stream" });
const whoEl = h("span", { class: "who" });
const signOutBtn = h("button", { type: "button", class: "button quiet signout" }, "Sign out");
const header = h("header", { class: "top" }, h("a", { href: "#/", class: "brand" }, "Fleetgate"), h("nav", {}, h("a", { href: "#/" }, "Fleet")), h("span", { class: "spacer" }), streamEl, whoEl, signOutBtn);

signOutBtn.addEventListener("click", async () => {
  try {
    await signOut();
  } finally {
    signedOut();
  }
});

document.addEventListener("fleetgate:stream", (e) => {
  const s = (e as CustomEvent<string>).detail;
  setText(streamEl, s === "live" ? "● live" : s);
  streamEl.dataset.state = s;
});

function signedOut(): void {
  localStorage.removeItem(signedInKey);
  store?.close();
  store = null;
  current?.destroy();
  current = null;
  fleet = null;
  me = null;
  showSignIn("");
}

function showSignIn(message: string): void {
  document.body.dataset.view = "signin";
  const token = h("input", { type: "password", id: "token", autocomplete: "off", required: true, placeholder: "fgt_…", "aria-label": "API token" });
  const err = h("p", { class: "error", role: "alert" }, message);
  const form = h(
    "form",
    { class: "signin card", method: "post" },
    h("h1", {}, "Fleetgate"),
    h("label", { for: "token" }, "API token"),
    token,
    h("p", { class: "hint" }, "Create one on the server: cloud-server token create --name NAME --role viewer|operator"),
    h("button", { type: "submit", class: "button" }, "Sign in"),
    err,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setText(err, "");
    try {
      const s = await signIn(token.value.trim());
      token.value = "";
      localStorage.setItem(signedInKey, "1");
      start(s);
    } catch (ex) {
      setText(err, ex instanceof ApiError ? ex.message : "cannot reach the server");
    }
  });
  app.replaceChildren(form);
  token.focus();
}

async function start(s: Session): Promise<void> {
  me = s;
  setText(whoEl, `${s.name} (${s.role})`);
  document.body.dataset.role = s.role;
  app.replaceChildren(header, main);
  store = new Store();
  store.connect();
  route();
  try {
    await store.load();
  } catch (e) {
    main.prepend(h("p", { class: "error" }, "Vehicles: " + (e instanceof Error ? e.message : String(e))));
  }
}

function route(): void {
  if (!store || !me) {
    return;
  }
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "vehicles" && parts[1] && parts[2] === "trips" && parts[3]) {
    fleet = null;
    show(new ReplayView(parts[1], parts[3]), "replay");
  } else if (parts[0] === "vehicles" && parts[1]) {
    fleet = null;
    show(new VehicleView(store, parts[1], me), "vehicle");
  } else {
    const el = h("div", { class: "map" });
    fleet = new FleetView(store, el);
    show(fleet, "fleet");
    if (!firstRender) {
      markFirstRender(store);
    }
  }
}

/** markFirstRender marks the first frame painted with every vehicle (the benchmark reads it). */
function markFirstRender(s: Store): void {
  const done = () => {
    firstRender = true;
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        performance.mark("fleetgate:first-render");
        document.body.dataset.rendered = "true";
      }),
    );
  };
  if (s.isLoaded) {
    done();
    return;
  }
  const off = s.subscribe((c) => {
    if (c.reloaded) {
      off();
      done();
    }
  });
}

setUnauthorizedHandler(() => {
  localStorage.removeItem(signedInKey);
  store?.close();
  store = null;
  current?.destroy();
  current = null;
  showSignIn("Your session ended: sign in again.");
});

window.addEventListener("hashchange", route);

(async () => {
  if (!localStorage.getItem(signedInKey)) {
    showSignIn("");
    return;
  }
  try {
    start(await session());
  } catch (e) {
    localStorage.removeItem(signedInKey);
    showSignIn(e instanceof ApiError && e.status === 401 ? "Your session ended: sign in again." : "");
  }
})();
