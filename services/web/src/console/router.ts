// Hash routing: `#/overview`, `#/settlement`, `#/periods/2026-11-30`, `#/runs/7`,
// `#/batches/12`, `#/review?period=2026-11-30`, `#/redemptions/<uuid>`, `#/ops`, `#/audit`.
// The address is the state: a reload or a shared link opens the same screen.

import { useEffect, useState } from "preact/hooks";

export type Route =
  | { screen: "overview" }
  | { screen: "settlement"; period: string | null }
  | { screen: "run"; id: number }
  | { screen: "batch"; id: number }
  | { screen: "review"; period: string | null }
  | { screen: "redemption"; id: string }
  | { screen: "ops" }
  | { screen: "audit" }
  | { screen: "unknown"; hash: string };

/** The top-level section a route belongs to (for the navigation's current link). */
export type Section = "overview" | "settlement" | "review" | "ops" | "audit";

function decode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const [head = "", arg = "", ...rest] = path.split("/").filter((s) => s !== "");
  if (rest.length > 0) return { screen: "unknown", hash };
  const id = /^\d{1,15}$/.test(arg) ? Number(arg) : null;
  switch (head) {
    case "":
    case "overview":
      return arg === "" ? { screen: "overview" } : { screen: "unknown", hash };
    case "settlement":
      return { screen: "settlement", period: null };
    case "periods":
      return { screen: "settlement", period: arg === "" ? null : decode(arg) };
    case "runs":
      return id === null ? { screen: "unknown", hash } : { screen: "run", id };
    case "batches":
      return id === null ? { screen: "unknown", hash } : { screen: "batch", id };
    case "review":
      return { screen: "review", period: query.get("period") || null };
    case "redemptions": {
      const rid = decode(arg);
      return rid ? { screen: "redemption", id: rid } : { screen: "unknown", hash };
    }
    case "ops":
      return { screen: "ops" };
    case "audit":
      return { screen: "audit" };
    default:
      return { screen: "unknown", hash };
  }
}

export function sectionOf(route: Route): Section | null {
  switch (route.screen) {
    case "overview":
      return "overview";
    case "settlement":
    case "run":
    case "batch":
      return "settlement";
    case "review":
    case "redemption":
      return "review";
    case "ops":
      return "ops";
    case "audit":
      return "audit";
    default:
      return null;
  }
}

export const href = {
  overview: () => "#/overview",
  settlement: () => "#/settlement",
  period: (p: string) => `#/periods/${encodeURIComponent(p)}`,
  run: (id: number) => `#/runs/${id}`,
  batch: (id: number) => `#/batches/${id}`,
  review: (period?: string) => (period ? `#/review?period=${encodeURIComponent(period)}` : "#/review"),
  redemption: (id: string) => `#/redemptions/${encodeURIComponent(id)}`,
  ops: () => "#/ops",
  audit: () => "#/audit",
};

/** The route of the address, following its changes. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

/** Moves to `hash` without a history entry (a default filled in, a redirect). */
export function replaceHash(hash: string): void {
  history.replaceState(history.state, "", hash);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}
