// The server's clock. Round openings and dynamic-code steps follow the issuance service's
// time, not the phone's (phones are often minutes off). The offset is estimated NTP-style,
// serverNow − midpoint(send, receive), at load and every 60 s; the last estimate is kept in
// localStorage (it is not a secret) so codes computed offline still use it.

import { parseInstant } from "./format";

const KEY = "vp.clockOffsetMs";
let offsetMs = readSaved();
const listeners = new Set<() => void>();

function readSaved(): number {
  try {
    const v = Number(localStorage.getItem(KEY));
    return Number.isFinite(v) ? v : 0;
  } catch {
    return 0;
  }
}

/** The server's current time, in ms since the epoch. */
export function serverNow(): number {
  return Date.now() + offsetMs;
}

/** Calls `fn` whenever the offset changes; returns the unsubscribe. */
export function onClockChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** One estimate from GET /v1/time. Resolves false when the server could not be reached. */
export async function syncClock(): Promise<boolean> {
  try {
    const sent = Date.now();
    const resp = await fetch("/v1/time", { cache: "no-store" });
    const received = Date.now();
    if (!resp.ok) return false;
    const body = (await resp.json()) as { now?: string };
    const server = parseInstant(body.now ?? "");
    if (Number.isNaN(server)) return false;
    offsetMs = Math.round(server - (sent + received) / 2);
    try {
      localStorage.setItem(KEY, String(offsetMs));
    } catch {
      // Not remembered: the next load estimates again.
    }
    listeners.forEach((fn) => fn());
    return true;
  } catch {
    return false;
  }
}

/** Keeps the offset fresh: now, every 60 s, and when the page becomes visible again. */
export function startClockSync(): void {
  void syncClock();
  setInterval(() => void syncClock(), 60_000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") void syncClock();
  });
}
