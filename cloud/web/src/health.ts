// What the dashboard calls a healthy device: online, nothing held back for
// long, no trouble codes.

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
  if (v.trouble_codes.length > 0) {
    return "codes";
  }
  return "ok";
}

export const healthLabel: Record<Health, string> = {
  ok: "online",
  backlog: "holding data back",
  codes: "trouble codes",
  offline: "offline",
  nodata: "no status yet",
};
