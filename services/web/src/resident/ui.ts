// What every view shares: the texts of the chosen language, and turning a failed call into
// a plain message.

import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import { onClockChange, serverNow } from "./clock";
import { TEXTS, type Msg, type Texts } from "./i18n";

export const TextsContext = createContext<Texts>(TEXTS.zh);

/** The texts of the current language. */
export function useT(): Texts {
  return useContext(TextsContext);
}

/** Something shown in the page's message area (`n` makes a repeated message announce again). */
export interface Toast {
  msg: Msg;
  n: number;
}

export type Say = (msg: Msg) => void;

/** Types a message where inference cannot (inside a state setter). */
export const msg = (m: Msg): Msg => m;

/** A failed call in plain words (network, busy, or the code as a last resort). */
export function failureMsg(e: unknown): Msg {
  if (!(e instanceof ApiFailure)) return (t) => t.failed("ERROR");
  if (e.network) return (t) => t.network;
  if (e.status === 429 || e.status === 503 || e.status === 504) return (t) => t.busy;
  const code = e.code;
  if (code === "RATE_LIMITED" || code === "SERVICE_UNAVAILABLE" || code === "DEADLINE_EXCEEDED") return (t) => t.busy;
  return (t) => t.failed(code);
}

/** Whether the failure sent the page back to sign-in (nothing more to say then). */
export function isIdentityLoss(e: unknown): boolean {
  return e instanceof ApiFailure && e.status === 401;
}

/**
 * The server's time (ms), re-rendering on each of its seconds and whenever the clock offset
 * is re-estimated: what countdowns and code steps are computed from.
 */
export function useServerNow(): number {
  const [now, setNow] = useState(serverNow);
  useEffect(() => {
    let timer = 0;
    const tick = () => {
      const n = serverNow();
      setNow(n);
      timer = window.setTimeout(tick, 1000 - (n % 1000) + 5);
    };
    tick();
    const off = onClockChange(() => setNow(serverNow()));
    return () => {
      clearTimeout(timer);
      off();
    };
  }, []);
  return now;
}
