// The HTTP API as the dashboard uses it: JSON over fetch, signed in by the
// session cookie (HttpOnly: script never sees the token).

export interface Position {
  time: string;
  lat: number;
  lon: number;
  speed_mps?: number;
  course_deg?: number;
}

export interface Device {
  online: boolean;
  time: string;
  online_since?: string;
  agent_version: string;
  stream_id: string;
  next_seq: number;
  outbox_depth: number;
  outbox_bytes: number;
  oldest_unsent_age_s: number;
  dropped: number;
  fix_mode: number;
  no_fix_since?: string;
  rtt_ms: number;
  uptime_s: number;
  /** system, gnss or unsynced; absent when the agent does not report it. */
  clock_source?: string;
  clock_offset_ms?: number;
  /** What is wrong with the outbox (filesystem_full, ...); empty when fine. */
  outbox_trouble?: string;
  /** The OBD adapter's state (ok, bus_fault: ..., no_supply, ...); empty when unknown. */
  obd_state?: string;
  counters: Record<string, number> | null;
  received: string;
}

export interface TroubleCode {
  code: string;
  since: string;
}

export interface Vehicle {
  id: string;
  first_seen: string;
  last_seen: string;
  online: boolean;
  position?: Position;
  device?: Device;
  trouble_codes: TroubleCode[];
}

export interface Session {
  name: string;
  role: "viewer" | "operator" | "admin";
  expires?: string;
  via: string;
}

export interface HistoryPosition extends Position {
  stream_id: string;
  seq: number;
  alt_m?: number;
  mode?: number;
  quality?: number;
  sats?: number;
  hdop?: number;
}

export interface OBDSample {
  time: string;
  pid: string;
  mode: string;
  value: number;
}

export interface FleetEvent {
  stream_id: string;
  seq: number;
  time: string;
  type: string;
  code?: string;
  detail?: string;
  value?: number;
}

export interface CommandResult {
  ok: boolean;
  error?: string;
  dtcs?: string[];
  time: string;
  received: string;
}

export interface Command {
  id: string;
  vehicle_id: string;
  type: string;
  interval_ms?: number;
  pids?: string[];
  status: "pending" | "sent" | "done" | "failed" | "expired" | "cancelled";
  created: string;
  expires: string;
  sent?: string;
  result?: CommandResult;
}

export interface Place {
  time: string;
  lat?: number;
  lon?: number;
}

export interface Trip {
  id: number;
  vehicle_id: string;
  start: Place;
  end: Place;
  open: boolean;
  duration_s: number;
  distance_m: number;
  driving_s: number;
  idle_s: number;
  stopped_s: number;
  max_speed_mps: number;
  avg_speed_mps: number;
  fixes: number;
  fuel_l?: number;
  match: { status: string; distance_m?: number; confidence?: number; error?: string };
}

export interface TripDetail {
  trip: Trip;
  raw: { type: "LineString"; coordinates: [number, number][] };
  matched?: { type: "MultiLineString"; coordinates: [number, number][][] };
}

/** An error answer of the API: its HTTP status, code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the API answers 401: the session is gone. */
let onUnauthorized: () => void = () => {};

export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

/**
 * request sends one API request and returns its JSON answer. A request that
 * changes something carries JSON (the API's CSRF rule for cookie sessions).
 */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", "X-Requested-With": "fleetgate" };
  const init: RequestInit = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) {
    return undefined as T;
  }
  let data: unknown;
  try {
    data = await res.json();
  } catch {
    throw new ApiError(res.status, "EINTERNAL", `${method} ${path}: answer is not JSON (HTTP ${res.status})`);
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string } }).error ?? {};
    const err = new ApiError(res.status, e.code ?? "EINTERNAL", e.message ?? `HTTP ${res.status}`);
    if (res.status === 401 && path !== "/api/v1/session") {
      onUnauthorized();
    }
    throw err;
  }
  return data as T;
}

export const get = <T>(path: string) => request<T>("GET", path);

/** query builds a query string from the defined values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "") {
      q.set(k, String(v));
    }
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

/** pages follows "next" cursors, collecting up to max rows of key. */
export async function pages<T>(path: string, params: Record<string, string | number | undefined>, key: string, max: number): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await get<Record<string, unknown> & { next?: string }>(path + query({ ...params, after }));
    out.push(...((page[key] as T[]) ?? []));
    if (!page.next || out.length >= max) {
      return out;
    }
    after = page.next;
  }
}

export const vehiclePath = (id: string) => "/api/v1/vehicles/" + encodeURIComponent(id);

export async function signIn(token: string): Promise<Session> {
  return request<Session>("POST", "/api/v1/session", { token });
}

export async function signOut(): Promise<void> {
  await request<void>("DELETE", "/api/v1/session");
}

export const session = () => get<Session>("/api/v1/session");

export const listVehicles = () => pages<Vehicle>("/api/v1/vehicles", { limit: 5000 }, "vehicles", 100000);
