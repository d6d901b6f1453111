// How values are shown.

export function kmh(mps: number | undefined): string {
  return mps === undefined ? "–" : (mps * 3.6).toFixed(0) + " km/h";
}

/** age shows a duration in seconds the short way: 45 s, 12 min, 3 h, 2 d. */
export function age(s: number | undefined): string {
  if (s === undefined || !isFinite(s)) {
    return "–";
  }
  if (s < 1) {
    return "0 s";
  }
  if (s < 90) {
    return Math.round(s) + " s";
  }
  if (s < 90 * 60) {
    return Math.round(s / 60) + " min";
  }
  if (s < 36 * 3600) {
    return (s / 3600).toFixed(s < 10 * 3600 ? 1 : 0) + " h";
  }
  return Math.round(s / 86400) + " d";
}

/** since shows how long ago an RFC 3339 time was. */
export function since(t: string | undefined, now = Date.now()): string {
  if (!t) {
    return "–";
  }
  return age(Math.max(0, (now - Date.parse(t)) / 1000)) + " ago";
}

export function time(t: string | undefined): string {
  if (!t) {
    return "–";
  }
  const d = new Date(t);
  return d.toLocaleString(undefined, { hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

export function fixMode(mode: number | undefined): string {
  switch (mode) {
    case 3:
      return "3D";
    case 2:
      return "2D";
    case 1:
      return "no fix";
    default:
      return "–";
  }
}

export function km(m: number): string {
  return m < 1000 ? Math.round(m) + " m" : (m / 1000).toFixed(m < 10000 ? 2 : 1) + " km";
}

export function count(n: number | undefined): string {
  return n === undefined ? "–" : n.toLocaleString("en-US");
}

export function bytes(n: number | undefined): string {
  if (n === undefined) {
    return "–";
  }
  if (n < 1024) {
    return n + " B";
  }
  if (n < 1024 * 1024) {
    return (n / 1024).toFixed(1) + " KiB";
  }
  return (n / 1024 / 1024).toFixed(1) + " MiB";
}
