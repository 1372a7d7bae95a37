// Who is signed in, and the page's remembered preferences.
//
// The identity token is a bearer credential the province's app hands over in the URL
// fragment (`/app/#id_token=…`): it is taken out of the address bar at once
// (history.replaceState, so it is neither bookmarked nor shared) and kept only for this tab
// in sessionStorage. Language and elder mode are preferences, not secrets: localStorage.

import type { Lang } from "./i18n";

const IDENTITY = "vp.identity";
const IDENTITY_DEV = "vp.identity.dev";
const LANG = "vp.lang";
const ELDER = "vp.elder";

/** This tab's identity in memory too, for WebViews whose sessionStorage refuses writes. */
let memory: { token: string; dev: boolean } | null = null;

function safe<T>(run: () => T, fallback: T): T {
  try {
    return run();
  } catch {
    // Storage can be unavailable (private mode in some WebViews): behave as empty.
    return fallback;
  }
}

/**
 * Moves an `id_token` from the URL fragment into sessionStorage and scrubs the URL. Says
 * whether a token was taken.
 */
export function adoptHandOff(): boolean {
  const hash = location.hash.replace(/^#/, "");
  if (!hash) return false;
  const params = new URLSearchParams(hash);
  const token = params.get("id_token");
  if (token === null) return false;
  params.delete("id_token");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  if (token) setIdentity(token, false);
  return token !== "";
}

/** The identity token, if signed in. */
export function identity(): string | null {
  return safe(() => sessionStorage.getItem(IDENTITY), null) ?? memory?.token ?? null;
}

/** Whether the identity came from the development sign-in (shown as a badge). */
export function isDevIdentity(): boolean {
  return safe(() => sessionStorage.getItem(IDENTITY_DEV) === "1", false) || memory?.dev === true;
}

export function setIdentity(token: string, dev: boolean): void {
  memory = { token, dev };
  safe(() => {
    sessionStorage.setItem(IDENTITY, token);
    if (dev) sessionStorage.setItem(IDENTITY_DEV, "1");
    else sessionStorage.removeItem(IDENTITY_DEV);
  }, undefined);
}

export function clearIdentity(): void {
  memory = null;
  safe(() => {
    sessionStorage.removeItem(IDENTITY);
    sessionStorage.removeItem(IDENTITY_DEV);
  }, undefined);
}

export function savedLang(): Lang {
  return safe(() => (localStorage.getItem(LANG) === "en" ? "en" : "zh"), "zh");
}

export function saveLang(lang: Lang): void {
  safe(() => localStorage.setItem(LANG, lang), undefined);
}

export function savedElder(): boolean {
  return safe(() => localStorage.getItem(ELDER) === "1", false);
}

export function saveElder(on: boolean): void {
  safe(() => localStorage.setItem(ELDER, on ? "1" : "0"), undefined);
}
