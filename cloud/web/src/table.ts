// The vehicle list: sortable, filterable and virtualised. Only the rows in
// view exist in the DOM (a pool reused as the list scrolls), and a cell's
// text is written only when it changed, so a thousand vehicles updating
// every second cost a few dozen text changes per refresh.

import type { Vehicle } from "./api";
import { h, setText } from "./dom";
import { age, count, fixMode, kmh, since } from "./format";
import { health, healthLabel } from "./health";

const rowHeight = 30; // px; the same as .vrow's height in the style sheet

interface Column {
  key: string;
  title: string;
  tip: string;
  text: (v: Vehicle, now: number) => string;
  sort: (v: Vehicle) => number | string;
  num?: boolean;
}

const unsentAge = (v: Vehicle) => (v.device && v.device.outbox_depth > 0 ? v.device.oldest_unsent_age_s : 0);

export const columns: Column[] = [
  { key: "id", title: "Vehicle", tip: "vehicle id", text: (v) => v.id, sort: (v) => v.id },
  { key: "online", title: "Online", tip: "whether the agent is connected", text: (v) => (v.device ? (v.online ? "online" : "offline") : "–"), sort: (v) => (v.online ? 0 : v.device ? 1 : 2) },
  { key: "seen", title: "Last seen", tip: "when the server last heard from it", text: (v, now) => since(v.last_seen, now), sort: (v) => -Date.parse(v.last_seen), num: true },
  { key: "speed", title: "Speed", tip: "speed of the newest fix", text: (v) => kmh(v.position?.speed_mps), sort: (v) => -(v.position?.speed_mps ?? -1), num: true },
  { key: "fix", title: "Fix", tip: "the receiver's fix mode", text: (v) => fixMode(v.device?.fix_mode), sort: (v) => -(v.device?.fix_mode ?? 0) },
  { key: "outbox", title: "Outbox", tip: "records held on the device, not yet acknowledged by the cloud", text: (v) => count(v.device?.outbox_depth), sort: (v) => -(v.device?.outbox_depth ?? -1), num: true },
  { key: "unsent", title: "Oldest unsent", tip: "age of the oldest record the device still holds", text: (v) => (v.device ? (v.device.outbox_depth > 0 ? age(v.device.oldest_unsent_age_s) : "–") : "–"), sort: (v) => -unsentAge(v), num: true },
  { key: "drops", title: "Drops", tip: "records the device dropped (outbox full, bad input)", text: (v) => count(v.device?.dropped), sort: (v) => -(v.device?.dropped ?? -1), num: true },
  { key: "codes", title: "Trouble codes", tip: "diagnostic trouble codes set and not cleared", text: (v) => v.trouble_codes.map((t) => t.code).join(" "), sort: (v) => -v.trouble_codes.length },
];

const stateLabel: Record<StateFilter, string> = {
  all: "all vehicles",
  online: "online",
  offline: "offline",
  backlog: "holding data back",
  device: "with device trouble",
  codes: "with trouble codes",
};

export type StateFilter = "all" | "online" | "offline" | "backlog" | "device" | "codes";

export class VehicleTable {
  readonly el: HTMLElement;
  private body: HTMLElement;
  private spacer: HTMLElement;
  private pool: { el: HTMLElement; cells: HTMLElement[]; id: string }[] = [];
  private rows: Vehicle[] = [];
  private sortKey = "id";
  private sortDesc = false;
  private text = "";
  private state: StateFilter = "all";
  private selected = "";
  private heads = new Map<string, HTMLElement>();
  private countEl: HTMLElement;
  private dirty = true;

  constructor(
    private vehicles: Map<string, Vehicle>,
    private onSelect: (id: string) => void,
  ) {
    const filter = h("input", { type: "search", placeholder: "Filter by vehicle or trouble code", "aria-label": "filter vehicles", class: "filter" });
    filter.addEventListener("input", () => {
      this.text = filter.value.trim().toLowerCase();
      this.refresh(true);
    });
    const stateSel = h(
      "select",
      { "aria-label": "show vehicles", class: "state-filter" },
      ...(["all", "online", "offline", "backlog", "device", "codes"] as StateFilter[]).map((s) => h("option", { value: s }, stateLabel[s])),
    );
    stateSel.addEventListener("change", () => {
      this.state = stateSel.value as StateFilter;
      this.refresh(true);
    });
    this.countEl = h("span", { class: "count" });
    const head = h("div", { class: "vrow head", role: "row" });
    for (const c of columns) {
      const th = h("button", { type: "button", class: "cell c-" + c.key + (c.num ? " num" : ""), title: c.tip, role: "columnheader", "data-col": c.key }, c.title);
      th.addEventListener("click", () => this.sortBy(c.key));
      this.heads.set(c.key, th);
      head.appendChild(th);
    }
    this.spacer = h("div", { class: "spacer" });
    this.body = h("div", { class: "vbody", role: "rowgroup" }, this.spacer);
    this.body.addEventListener("scroll", () => this.paint(), { passive: true });
    new ResizeObserver(() => this.paint()).observe(this.body);
    this.el = h("section", { class: "vlist", role: "table", "aria-label": "vehicles" }, h("div", { class: "tools" }, filter, stateSel, this.countEl), head, this.body);
    this.markSort();
  }

  sortBy(key: string): void {
    if (this.sortKey === key) {
      this.sortDesc = !this.sortDesc;
    } else {
      this.sortKey = key;
      this.sortDesc = false;
    }
    this.markSort();
    this.refresh(true);
  }

  private markSort(): void {
    for (const [k, th] of this.heads) {
      th.setAttribute("aria-sort", k === this.sortKey ? (this.sortDesc ? "descending" : "ascending") : "none");
    }
  }

  select(id: string, scroll: boolean): void {
    this.selected = id;
    if (scroll) {
      const i = this.rows.findIndex((v) => v.id === id);
      if (i >= 0) {
        const top = i * rowHeight;
        if (top < this.body.scrollTop || top + rowHeight > this.body.scrollTop + this.body.clientHeight) {
          this.body.scrollTop = Math.max(0, top - this.body.clientHeight / 2);
        }
      }
    }
    this.paint();
  }

  /** refresh re-filters and re-sorts (when asked or when data changed) and repaints. */
  refresh(force = false): void {
    if (force) {
      this.dirty = true;
    }
    if (this.dirty) {
      this.dirty = false;
      const col = columns.find((c) => c.key === this.sortKey) ?? columns[0];
      const keep = (v: Vehicle) => {
        if (this.text && !v.id.toLowerCase().includes(this.text) && !v.trouble_codes.some((t) => t.code.toLowerCase().includes(this.text))) {
          return false;
        }
        switch (this.state) {
          case "all":
            return true;
          case "online":
            return v.online;
          case "offline":
            return !v.online;
          default:
            return health(v) === this.state;
        }
      };
      const rows: { v: Vehicle; k: number | string }[] = [];
      for (const v of this.vehicles.values()) {
        if (keep(v)) {
          rows.push({ v, k: col.sort(v) });
        }
      }
      const dir = this.sortDesc ? -1 : 1;
      rows.sort((a, b) => (a.k < b.k ? -dir : a.k > b.k ? dir : a.v.id < b.v.id ? -1 : 1));
      this.rows = rows.map((r) => r.v);
      this.spacer.style.height = this.rows.length * rowHeight + "px";
      setText(this.countEl, this.rows.length === this.vehicles.size ? `${this.rows.length} vehicles` : `${this.rows.length} of ${this.vehicles.size} vehicles`);
    }
    this.paint();
  }

  /** changed marks the data changed: the next refresh sorts again. */
  changed(): void {
    this.dirty = true;
  }

  /** paint writes the rows in view. */
  private paint(): void {
    const first = Math.max(0, Math.floor(this.body.scrollTop / rowHeight) - 2);
    const n = Math.min(this.rows.length - first, Math.ceil((this.body.clientHeight || 600) / rowHeight) + 4);
    while (this.pool.length < n) {
      this.pool.push(this.newRow());
    }
    const now = Date.now();
    for (let i = 0; i < this.pool.length; i++) {
      const r = this.pool[i];
      const v = i < n ? this.rows[first + i] : undefined;
      if (!v) {
        r.el.hidden = true;
        r.id = "";
        continue;
      }
      r.el.hidden = false;
      r.el.style.transform = `translateY(${(first + i) * rowHeight}px)`;
      if (r.id !== v.id) {
        r.id = v.id;
        r.el.dataset.id = v.id;
        r.cells[0].title = v.id; // the whole id, which a narrow column cuts
      }
      const hl = health(v);
      if (r.el.dataset.health !== hl) {
        r.el.dataset.health = hl;
        r.el.title = healthLabel[hl];
      }
      r.el.classList.toggle("selected", v.id === this.selected);
      for (let j = 0; j < columns.length; j++) {
        setText(r.cells[j], columns[j].text(v, now));
      }
    }
  }

  private newRow() {
    const cells = columns.map((c) => h("span", { class: "cell c-" + c.key + (c.num ? " num" : ""), role: "cell", "data-col": c.key }));
    const el = h("div", { class: "vrow", role: "row", tabindex: 0 }, ...cells);
    const row = { el, cells, id: "" };
    el.addEventListener("click", () => row.id && this.onSelect(row.id));
    el.addEventListener("dblclick", () => row.id && (location.hash = "#/vehicles/" + encodeURIComponent(row.id)));
    el.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && row.id) {
        location.hash = "#/vehicles/" + encodeURIComponent(row.id);
      }
    });
    this.body.appendChild(el);
    return row;
  }
}
