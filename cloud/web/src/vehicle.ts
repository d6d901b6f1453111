// The vehicle view: latest state, device health over time, trouble codes,
// recent events, trips and, for operators, commands.

import L from "leaflet";
import type uPlot from "uplot";
import { type Command, type Device, type FleetEvent, type HistoryPosition, type Session, type Trip, type Vehicle, get, pages, query, request, vehiclePath } from "./api";
import { band, chart } from "./chart";
import { clear, h, setText } from "./dom";
import { age, bytes, count, fixMode, kmh, km, since, time } from "./format";
import { deviceTrouble, health, healthLabel } from "./health";
import { colours, newMap } from "./map";
import type { Store } from "./store";

const windows: Record<string, number> = { "1 h": 3600, "6 h": 6 * 3600, "24 h": 86400, "7 d": 7 * 86400 };

function card(title: string, ...body: (Node | string)[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", {}, title), ...body);
}

/** table makes a list table with a header row. */
function table(cls: string, heads: string[], rows: HTMLElement[]): HTMLElement {
  return h("table", { class: ("list " + cls).trim() }, h("thead", {}, h("tr", {}, ...heads.map((x) => h("th", {}, x)))), h("tbody", {}, ...rows));
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class VehicleView {
  readonly el: HTMLElement;
  private stateEl = h("dl", { class: "kv" });
  private badge = h("span", { class: "badge" });
  private healthBody = h("div", { class: "health-charts" });
  private codesBody = h("div");
  private eventsBody = h("div", { class: "scroll" });
  private tripsBody = h("div", { class: "scroll" });
  private commandsBody = h("div");
  private map: L.Map | null = null;
  private marker: L.CircleMarker | null = null;
  private track: L.Polyline | null = null;
  private mapEl = h("div", { class: "vmap" });
  private charts: uPlot[] = [];
  private history: { t: number[]; depth: (number | null)[]; unsent: (number | null)[]; offline: [number, number][] } = { t: [], depth: [], unsent: [], offline: [] };
  private windowS = 3600;
  private lastDevice: Device | undefined;
  private trackFitted = false;
  private destroyed = false; // async work finishing later must leave the removed map and charts alone
  private unsubscribe: () => void;
  private timer: number;
  private refresher: number;
  private polls = new Set<number>();

  constructor(
    private store: Store,
    private id: string,
    private session: Session,
  ) {
    const winSel = h("select", { "aria-label": "health window" }, ...Object.keys(windows).map((k) => h("option", { value: k }, k)));
    winSel.addEventListener("change", () => {
      this.windowS = windows[winSel.value];
      this.loadHealth();
    });
    const operator = session.role === "operator" || session.role === "admin";
    this.el = h(
      "div",
      { class: "vehicle", "data-vehicle": id },
      h("header", { class: "vhead" }, h("a", { href: "#/", class: "back" }, "‹ Fleet"), h("h1", {}, id), this.badge),
      h(
        "div",
        { class: "grid" },
        card("Latest state", this.stateEl),
        h("section", { class: "card map-card" }, h("h2", {}, "Last hour"), this.mapEl),
        h("section", { class: "card wide health" }, h("h2", {}, "Device health ", winSel), h("p", { class: "hint" }, "Records the device holds back, and the age of the oldest: an outage shows as a rise (grey: offline), the drain as the fall after it."), this.healthBody),
        card("Trouble codes", this.codesBody),
        card("Recent events", this.eventsBody),
        h("section", { class: "card wide" }, h("h2", {}, "Trips"), this.tripsBody),
        operator ? card("Commands", this.commandsBody) : null,
      ),
    );
    this.unsubscribe = store.subscribe((c) => {
      if (c.reloaded || c.changed.has(id)) {
        this.paintState();
      }
      if (c.changed.has(id)) {
        this.live();
      }
      const mine = c.events.filter((e) => e.vehicle_id === id);
      if (mine.length) {
        this.loadEvents();
      }
    });
    this.timer = window.setInterval(() => this.paintState(), 1000);
    // Trips and trouble codes change as history settles: read them again now and then.
    this.refresher = window.setInterval(() => {
      this.loadTrips();
      this.loadCodes();
    }, 30_000);
    if (operator) {
      this.commandForm();
    }
  }

  attached(): void {
    const { map, renderer } = newMap(this.mapEl);
    this.map = map;
    this.marker = L.circleMarker([0, 0], { renderer, radius: 8, weight: 2, color: "#fff", fillColor: colours.ok, fillOpacity: 1 });
    this.track = L.polyline([], { renderer, color: "#2563eb", weight: 3, opacity: 0.8 }).addTo(map);
    this.paintState();
    this.loadTrack();
    this.loadHealth();
    this.loadCodes();
    this.loadEvents();
    this.loadTrips();
    if (this.session.role !== "viewer") {
      this.loadCommands();
    }
  }

  destroy(): void {
    this.destroyed = true;
    this.unsubscribe();
    clearInterval(this.timer);
    clearInterval(this.refresher);
    for (const p of this.polls) {
      clearTimeout(p);
    }
    for (const c of this.charts) {
      c.destroy();
    }
    this.map?.remove();
  }

  private get v(): Vehicle | undefined {
    return this.store.vehicles.get(this.id);
  }

  private paintState(): void {
    const v = this.v;
    if (!v) {
      setText(this.badge, "unknown vehicle");
      return;
    }
    const hl = health(v);
    setText(this.badge, healthLabel[hl]);
    this.badge.dataset.health = hl;
    const d: Partial<Device> = v.device ?? {};
    const p = v.position;
    const rows: [string, string][] = [
      ["Position", p ? `${p.lat.toFixed(6)}, ${p.lon.toFixed(6)}` : "–"],
      ["Fix time", p ? time(p.time) : "–"],
      ["Speed", kmh(p?.speed_mps)],
      ["Course", p?.course_deg !== undefined ? p.course_deg.toFixed(0) + "°" : "–"],
      ["Fix", fixMode(d.fix_mode) + (d.no_fix_since ? " since " + time(d.no_fix_since) : "")],
      ["Last seen", since(v.last_seen)],
      ["Online", v.device ? (v.online ? "yes" + (d.online_since ? ", since " + time(d.online_since) : "") : "no") : "–"],
      ["Outbox", v.device ? `${count(d.outbox_depth)} records, ${bytes(d.outbox_bytes)}` : "–"],
      ["Oldest unsent", v.device && (d.outbox_depth ?? 0) > 0 ? age(d.oldest_unsent_age_s) : "–"],
      ["Dropped", count(d.dropped)],
      ["Round trip", v.device ? d.rtt_ms + " ms" : "–"],
      ["Device trouble", v.device ? deviceTrouble(v) || "none" : "–"],
      ["Clock", d.clock_source ? d.clock_source + (d.clock_offset_ms !== undefined ? `, GNSS − system ${d.clock_offset_ms} ms` : "") : "–"],
      ["OBD adapter", d.obd_state || "–"],
      ["Agent", v.device ? `${d.agent_version}, up ${age(d.uptime_s)}` : "–"],
      ["Status time", time(d.time)],
    ];
    if (this.stateEl.childElementCount !== rows.length * 2) {
      clear(this.stateEl);
      for (const [k] of rows) {
        this.stateEl.append(h("dt", {}, k), h("dd", { "data-key": k.toLowerCase().replace(/ /g, "-") }));
      }
    }
    rows.forEach(([, val], i) => setText(this.stateEl.children[i * 2 + 1], val));
    if (p && this.map && this.marker) {
      this.marker.setLatLng([p.lat, p.lon]).setStyle({ fillColor: colours[hl] });
      if (!this.map.hasLayer(this.marker)) {
        this.marker.addTo(this.map);
        if (!this.trackFitted) {
          this.map.setView([p.lat, p.lon], 15);
        }
      }
    }
  }

  /** live appends what the stream just brought to the track and the health charts. */
  private live(): void {
    const v = this.v;
    if (v?.position && this.track) {
      this.track.addLatLng([v.position.lat, v.position.lon]);
    }
    const d = v?.device;
    if (d && this.charts.length && d !== this.lastDevice) {
      this.lastDevice = d;
      this.pushStatus(d);
      this.setChartData();
    }
  }

  private async loadTrack(): Promise<void> {
    const to = new Date();
    const from = new Date(to.getTime() - 3600_000);
    try {
      const ps = await pages<HistoryPosition>(vehiclePath(this.id) + "/positions", { from: from.toISOString(), to: to.toISOString(), limit: 10000 }, "positions", 10000);
      if (this.destroyed) {
        return;
      }
      const pts: L.LatLngTuple[] = ps.map((p) => [p.lat, p.lon]);
      this.track?.setLatLngs(pts);
      if (pts.length > 1 && this.map) {
        this.map.fitBounds(L.latLngBounds(pts), { padding: [20, 20], maxZoom: 16 });
        this.trackFitted = true;
      }
    } catch {
      // The latest position still shows.
    }
  }

  /** pushStatus adds an online report to the charts, or opens an offline span for a last will. */
  private pushStatus(d: Device): void {
    const hs = this.history;
    const open = hs.offline[hs.offline.length - 1];
    if (!d.online) {
      // A last will carries the figures of the connection's start: only
      // when the server learnt of it counts.
      if (!open || open[1] !== Infinity) {
        hs.offline.push([Date.parse(d.received) / 1000, Infinity]);
      }
      return;
    }
    const t = Date.parse(d.time) / 1000;
    if (open && open[1] === Infinity && t > open[0]) {
      open[1] = t;
    }
    const last = hs.t[hs.t.length - 1];
    if (last !== undefined && t <= last) {
      return;
    }
    // A silence far longer than the reporting interval breaks the line.
    if (last !== undefined && t - last > Math.max(120, 5 * this.interval())) {
      hs.t.push((last + t) / 2);
      hs.depth.push(null);
      hs.unsent.push(null);
    }
    hs.t.push(t);
    hs.depth.push(d.outbox_depth);
    hs.unsent.push(d.outbox_depth > 0 ? d.oldest_unsent_age_s : 0);
  }

  private interval(): number {
    const t = this.history.t;
    if (t.length < 3) {
      return 60;
    }
    const gaps = [];
    for (let i = Math.max(1, t.length - 20); i < t.length; i++) {
      gaps.push(t[i] - t[i - 1]);
    }
    gaps.sort((a, b) => a - b);
    return gaps[gaps.length >> 1];
  }

  private setChartData(): void {
    const hs = this.history;
    this.charts[0]?.setData([hs.t, hs.depth]);
    this.charts[1]?.setData([hs.t, hs.unsent]);
  }

  private async loadHealth(): Promise<void> {
    const to = new Date(Date.now() + 60_000);
    const from = new Date(to.getTime() - this.windowS * 1000);
    clear(this.healthBody);
    for (const c of this.charts) {
      c.destroy();
    }
    this.charts = [];
    try {
      const ds = await pages<Device>(vehiclePath(this.id) + "/device-history", { from: from.toISOString(), to: to.toISOString(), limit: 10000 }, "statuses", 50000);
      if (this.destroyed) {
        return;
      }
      this.history = { t: [], depth: [], unsent: [], offline: [] };
      for (const d of ds) {
        if (d.online) {
          this.pushStatus(d);
        }
      }
      // Offline spans: from when the server learnt of a last will to the
      // next report.
      for (const d of ds) {
        if (!d.online) {
          const from = Date.parse(d.received) / 1000;
          const next = this.history.t.find((t) => t > from);
          this.history.offline.push([from, next ?? Infinity]);
        }
      }
      if (!ds.length) {
        this.healthBody.append(h("p", { class: "empty" }, "No status reported in this window."));
      }
      const offline = (u: uPlot) => {
        for (const [a, b] of this.history.offline) {
          band(u, a, b === Infinity ? Date.now() / 1000 : b, "rgba(107,114,128,0.18)");
        }
      };
      const a = h("div", { class: "chart", "data-chart": "outbox-depth" });
      const b = h("div", { class: "chart", "data-chart": "oldest-unsent" });
      this.healthBody.append(a, b);
      this.charts.push(chart(a, { title: "Outbox depth", series: [{ label: "records held", colour: "#2563eb", unit: "records", stepped: true }], draw: offline, height: 170 }, [this.history.t, this.history.depth]));
      this.charts.push(chart(b, { title: "Oldest unsent record", series: [{ label: "age", colour: "#d97706", unit: "s", stepped: true }], draw: offline, height: 170 }, [this.history.t, this.history.unsent]));
    } catch (e) {
      this.healthBody.append(h("p", { class: "error" }, "Device history: " + errorText(e)));
    }
  }

  private async loadCodes(): Promise<void> {
    try {
      const r = await get<{ trouble_codes: { code: string; since: string }[] }>(vehiclePath(this.id) + "/trouble-codes");
      clear(this.codesBody);
      if (!r.trouble_codes.length) {
        this.codesBody.append(h("p", { class: "empty" }, "None set."));
        return;
      }
      this.codesBody.append(h("ul", { class: "codes" }, ...r.trouble_codes.map((t) => h("li", {}, h("strong", {}, t.code), " since " + time(t.since)))));
    } catch (e) {
      this.codesBody.replaceChildren(h("p", { class: "error" }, errorText(e)));
    }
  }

  private async loadEvents(): Promise<void> {
    const to = new Date(Date.now() + 60_000);
    const from = new Date(to.getTime() - 7 * 86400_000);
    try {
      // The newest come last in a page: read the window's last 200.
      const es = await pages<FleetEvent>(vehiclePath(this.id) + "/events", { from: from.toISOString(), to: to.toISOString(), limit: 1000 }, "events", 5000);
      const recent = es.slice(-50).reverse();
      clear(this.eventsBody);
      if (!recent.length) {
        this.eventsBody.append(h("p", { class: "empty" }, "No events in the last 7 days."));
        return;
      }
      this.eventsBody.append(
        table(
          "",
          ["Time", "Event", "Detail"],
          recent.map((e) => h("tr", {}, h("td", {}, time(e.time)), h("td", {}, e.type.replace(/_/g, " ")), h("td", {}, [e.code, e.detail, e.value ? String(e.value) : ""].filter(Boolean).join(" · ")))),
        ),
      );
    } catch (e) {
      this.eventsBody.replaceChildren(h("p", { class: "error" }, errorText(e)));
    }
  }

  private async loadTrips(): Promise<void> {
    const to = new Date(Date.now() + 60_000);
    const from = new Date(to.getTime() - 7 * 86400_000);
    try {
      const ts = await pages<Trip>(vehiclePath(this.id) + "/trips", { from: from.toISOString(), to: to.toISOString(), limit: 1000 }, "trips", 2000);
      ts.reverse();
      clear(this.tripsBody);
      if (!ts.length) {
        this.tripsBody.append(h("p", { class: "empty" }, "No trips in the last 7 days."));
        return;
      }
      this.tripsBody.append(
        table(
          "trips",
          ["Start", "Duration", "Distance", "Max speed", "Track", ""],
          ts.map((t) =>
            h(
              "tr",
              { "data-trip": t.id },
              h("td", {}, time(t.start.time)),
              h("td", {}, age(t.duration_s) + (t.open ? " (going on)" : "")),
              h("td", {}, km(t.distance_m)),
              h("td", {}, kmh(t.max_speed_mps)),
              h("td", {}, t.match.status === "matched" ? "matched to roads" : t.match.status === "pending" ? (t.open ? "raw (matched once it ends)" : "raw (matching)") : "raw"),
              h("td", {}, h("a", { class: "button small", href: `#/vehicles/${encodeURIComponent(this.id)}/trips/${t.id}` }, "Replay ›")),
            ),
          ),
        ),
      );
    } catch (e) {
      this.tripsBody.replaceChildren(h("p", { class: "error" }, "Trips: " + errorText(e)));
    }
  }

  private commandForm(): void {
    const type = h(
      "select",
      { name: "type", "aria-label": "command" },
      h("option", { value: "report_status" }, "report status now"),
      h("option", { value: "read_dtcs" }, "read trouble codes"),
      h("option", { value: "set_report_interval" }, "set report interval"),
      h("option", { value: "set_pids" }, "set OBD PIDs"),
    );
    const interval = h("input", { name: "interval_ms", type: "number", min: 100, step: 100, value: 5000, "aria-label": "interval in ms", hidden: true });
    const pids = h("input", { name: "pids", type: "text", value: "0C,0D", "aria-label": "PIDs, comma-separated", hidden: true });
    const msg = h("p", { class: "command-msg", role: "status" });
    type.addEventListener("change", () => {
      interval.hidden = type.value !== "set_report_interval";
      pids.hidden = type.value !== "set_pids";
    });
    const form = h("form", { class: "command-form" }, type, interval, pids, h("button", { type: "submit", class: "button" }, "Send"), msg);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body: Record<string, unknown> = { type: type.value };
      if (type.value === "set_report_interval") {
        body.interval_ms = Number(interval.value);
      }
      if (type.value === "set_pids") {
        body.pids = pids.value
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
      }
      setText(msg, "sending…");
      try {
        const c = await request<Command>("POST", vehiclePath(this.id) + "/commands", body);
        setText(msg, `command ${c.id}: ${c.status}`);
        this.loadCommands();
        this.follow(c.id, msg);
      } catch (err) {
        setText(msg, "not sent: " + errorText(err));
      }
    });
    this.commandsBody.append(form, h("div", { class: "scroll commands" }));
  }

  /** follow polls a command until the agent answered or it expired. */
  private follow(id: string, msg: HTMLElement): void {
    const poll = async () => {
      try {
        const c = await get<Command>(vehiclePath(this.id) + "/commands/" + encodeURIComponent(id));
        setText(msg, `command ${c.id}: ${c.status}` + (c.result ? " — " + resultText(c) : ""));
        if (c.status === "pending" || c.status === "sent") {
          schedule();
        } else {
          this.loadCommands();
        }
      } catch (err) {
        setText(msg, "command " + id + ": " + errorText(err));
      }
    };
    const schedule = () => {
      const t = window.setTimeout(() => {
        this.polls.delete(t);
        poll();
      }, 1000);
      this.polls.add(t);
    };
    schedule();
  }

  private async loadCommands(): Promise<void> {
    const list = this.commandsBody.querySelector(".commands");
    if (!list) {
      return;
    }
    try {
      const r = await get<{ commands: Command[] }>(vehiclePath(this.id) + "/commands" + query({ limit: 10 }));
      list.replaceChildren(
        r.commands.length
          ? table(
              "",
              ["Sent", "Command", "Status", "Result"],
              r.commands.map((c) => h("tr", { "data-command": c.id }, h("td", {}, time(c.created)), h("td", {}, c.type.replace(/_/g, " ")), h("td", { class: "status-" + c.status }, c.status), h("td", {}, c.result ? resultText(c) : ""))),
            )
          : h("p", { class: "empty" }, "No commands sent yet."),
      );
    } catch (e) {
      list.replaceChildren(h("p", { class: "error" }, errorText(e)));
    }
  }
}

function resultText(c: Command): string {
  const r = c.result;
  if (!r) {
    return "";
  }
  if (!r.ok) {
    return "failed: " + (r.error ?? "no reason given");
  }
  if (c.type === "read_dtcs") {
    return r.dtcs?.length ? "codes " + r.dtcs.join(" ") : "no codes";
  }
  return "ok";
}
