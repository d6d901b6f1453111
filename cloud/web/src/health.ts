// What the dashboard calls a healthy device: online, nothing held back for
// long, no fault of its outbox or its OBD adapter, no trouble codes.

import type { Vehicle } from "./api";
import type { Health } from "./map";

/** Backlog above which a device counts as holding data back (seconds). */
export const backlogAfterS = 30;

export function health(v: Vehicle): Health {
  if (!v.device) {
    return "nodata";
  }
  if (!v.online) {
    return "offline";
  }
  if (v.device.outbox_depth > 0 && v.device.oldest_unsent_age_s > backlogAfterS) {
    return "backlog";
  }
  if (deviceTrouble(v)) {
    return "device";
  }
  if (v.trouble_codes.length > 0) {
    return "codes";
  }
  return "ok";
}

/**
 * deviceTrouble says what is wrong with the gateway itself: its outbox (a
 * full filesystem, a lowered cap) or its OBD adapter (a bus fault, no
 * supply); "" when nothing is, or the agent does not say.
 */
export function deviceTrouble(v: Vehicle): string {
  const d = v.device;
  if (!d) {
    return "";
  }
  const t: string[] = [];
  if (d.outbox_trouble) {
    t.push("outbox: " + d.outbox_trouble.replace(/_/g, " "));
  }
  if (d.obd_state && d.obd_state !== "ok") {
    t.push("OBD: " + d.obd_state.replace(/_/g, " "));
  }
  return t.join("; ");
}

export const healthLabel: Record<Health, string> = {
  ok: "online",
  backlog: "holding data back",
  device: "device trouble",
  codes: "trouble codes",
  offline: "offline",
  nodata: "no status yet",
};
