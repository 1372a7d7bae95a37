// The full-screen code shown at checkout: a large QR of the dynamic code, a ring counting
// down to the next step, and whether the code was computed offline.
//
// The code is computed on the phone from the stored key (codes.ts) at the start of every
// step of the server's clock; only when no key can be had is the server's own code fetched
// (GET …/code) and refetched at its refresh_at. While open and online the vouchers list is
// polled every 5 s: when this voucher turns redeemed the view says so and closes.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import * as api from "./api";
import { serverNow } from "./clock";
import {
  dynamicCode,
  forgetCodeKey,
  isUsable,
  loadCodeKey,
  revokeAndStore,
  stepOf,
  storeCodeKey,
  type CodeKeyRecord,
} from "./codes";
import { dateTimeBj, parseInstant, ruleText } from "./format";
import type { Msg } from "./i18n";
import { qrShape } from "./qr";
import type { MyVoucher } from "./types";
import { failureMsg, isIdentityLoss, msg, useServerNow, useT, type Say } from "./ui";

const POLL_MS = 5_000;
const CLOSE_AFTER_REDEEMED_MS = 2_000;

export type CloseReason = "user" | "redeemed" | "unusable";

interface Props {
  voucher: MyVoucher;
  say: Say;
  onClose: (reason: CloseReason) => void;
}

/** Where the code comes from: the stored key, or (fallback) the server. */
type Source = "loading" | "key" | "server";

interface Drawn {
  text: string;
  /** When it stops being current (ms, server clock). */
  until: number;
  stepSecs: number;
}

export function CodeView({ voucher, say, onClose }: Props) {
  const t = useT();
  const id = voucher.voucher_id;
  const [source, setSource] = useState<Source>("loading");
  const [record, setRecord] = useState<CodeKeyRecord | null>(null);
  const [drawn, setDrawn] = useState<Drawn | null>(null);
  const now = useServerNow();
  const [networkUp, setNetworkUp] = useState(navigator.onLine);
  const [redeemed, setRedeemed] = useState(false);
  const [revoking, setRevoking] = useState(false);
  const [note, setNote] = useState<Msg | null>(null);
  const dialog = useRef<HTMLDivElement>(null);
  const closeButton = useRef<HTMLButtonElement>(null);
  const computeSeq = useRef(0);
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  // The key: stored → fetched now (when online) → none (the server computes the code).
  useEffect(() => {
    let cancelled = false;
    void (async () => {
      let rec = await loadCodeKey(id);
      if (rec && parseInstant(rec.valid_until) <= serverNow()) {
        await forgetCodeKey(id);
        rec = undefined;
      }
      if (!rec && navigator.onLine) {
        try {
          rec = await storeCodeKey(await api.codeKey(id), voucher.valid_until);
        } catch {
          rec = undefined;
        }
      }
      if (cancelled) return;
      setRecord(rec ?? null);
      setSource(rec ? "key" : "server");
    })();
    return () => {
      cancelled = true;
    };
  }, [id, voucher.valid_until]);

  // From the key: a new code at the start of every step.
  const step = record ? stepOf(now, record.step_secs) : null;
  useEffect(() => {
    if (!record || step === null) return;
    const seq = ++computeSeq.current;
    void dynamicCode(record, step).then((text) => {
      if (seq !== computeSeq.current || !alive.current) return;
      setDrawn({ text, until: (step + 1) * record.step_secs * 1000, stepSecs: record.step_secs });
    });
  }, [record, step]);

  // Fallback: the server's code, fetched again at its refresh_at.
  useEffect(() => {
    if (source !== "server") return;
    let timer = 0;
    let cancelled = false;
    const fetchCode = async () => {
      try {
        const c = await api.serverCode(id);
        if (cancelled) return;
        const until = parseInstant(c.refresh_at);
        setDrawn({ text: c.code, until, stepSecs: c.step_secs });
        setNote(null);
        timer = window.setTimeout(fetchCode, Math.max(1000, until - serverNow() + 200));
      } catch (e) {
        if (cancelled || isIdentityLoss(e)) return;
        setNote(() => msg((tt) => tt.codeUnavailable));
        timer = window.setTimeout(fetchCode, POLL_MS);
      }
    };
    void fetchCode();
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [source, id]);

  // Online / offline, from the browser and from whether the last poll got through.
  useEffect(() => {
    const up = () => setNetworkUp(true);
    const down = () => setNetworkUp(false);
    window.addEventListener("online", up);
    window.addEventListener("offline", down);
    return () => {
      window.removeEventListener("online", up);
      window.removeEventListener("offline", down);
    };
  }, []);

  // While open and online: has the till redeemed it?
  useEffect(() => {
    if (redeemed) return;
    const poll = async () => {
      if (!navigator.onLine) return;
      try {
        const mine = await api.myVouchers(api.ONCE);
        if (!alive.current) return;
        setNetworkUp(true);
        const v = mine.find((x) => x.voucher_id === id);
        if (v?.status === "redeemed") {
          setRedeemed(true);
          say((tt) => tt.redeemed);
          void forgetCodeKey(id);
          window.setTimeout(() => alive.current && onClose("redeemed"), CLOSE_AFTER_REDEEMED_MS);
        } else if (v && !isUsable(v)) {
          void forgetCodeKey(id);
          say((tt) => tt.voucherNotUsable);
          onClose("unusable");
        }
      } catch (e) {
        if (alive.current && e instanceof ApiFailure && e.network) setNetworkUp(false);
      }
    };
    const timer = window.setInterval(() => void poll(), POLL_MS);
    return () => clearInterval(timer);
  }, [id, redeemed, say, onClose]);

  // Keep the screen on while the code is shown, where the WebView allows it.
  useEffect(() => {
    let lock: WakeLockSentinel | null = null;
    let released = false;
    if ("wakeLock" in navigator) {
      navigator.wakeLock
        .request("screen")
        .then((l) => {
          if (released) void l.release();
          else lock = l;
        })
        .catch(() => {});
    }
    return () => {
      released = true;
      void lock?.release();
    };
  }, []);

  // Dialog manners: focus inside, Escape closes, Tab stays inside.
  useEffect(() => {
    closeButton.current?.focus();
    const onKey = (ev: KeyboardEvent) => {
      if (ev.key === "Escape") {
        ev.preventDefault();
        onClose("user");
      } else if (ev.key === "Tab" && dialog.current) {
        const items = Array.from(dialog.current.querySelectorAll<HTMLElement>("button:not([disabled])"));
        const first = items[0];
        const last = items[items.length - 1];
        if (!first || !last) return;
        if (ev.shiftKey && document.activeElement === first) {
          ev.preventDefault();
          last.focus();
        } else if (!ev.shiftKey && document.activeElement === last) {
          ev.preventDefault();
          first.focus();
        }
      }
    };
    document.addEventListener("keydown", onKey);
    const overflow = document.body.style.overflow;
    document.body.style.overflow = "hidden";
    return () => {
      document.removeEventListener("keydown", onKey);
      document.body.style.overflow = overflow;
    };
  }, [onClose]);

  const revoke = async () => {
    if (revoking) return;
    if (!navigator.onLine) {
      setNote(() => msg((tt) => tt.revokeNeedsNetwork));
      return;
    }
    setRevoking(true);
    try {
      const rec = await revokeAndStore(id, voucher.valid_until);
      if (!alive.current) return;
      setRecord(rec);
      setSource("key");
      setNote(() => msg((tt) => tt.revoked));
    } catch (e) {
      if (alive.current && !isIdentityLoss(e)) setNote(() => failureMsg(e));
    } finally {
      if (alive.current) setRevoking(false);
    }
  };

  const shape = useMemo(() => (drawn ? qrShape(drawn.text) : null), [drawn?.text]);
  const offline = source === "key" && !networkUp;
  const stepSecs = drawn?.stepSecs ?? record?.step_secs ?? 30;
  const remainingMs = drawn ? Math.max(0, drawn.until - now) : 0;
  const remaining = Math.min(stepSecs, Math.ceil(remainingMs / 1000));

  return (
    <div
      class="code-view"
      role="dialog"
      aria-modal="true"
      aria-labelledby="code-title"
      data-testid="code-view"
      ref={dialog}
    >
      <div class="code-top">
        <h2 id="code-title" class="code-title">
          {voucher.campaign_name}
        </h2>
        <button type="button" class="close" data-testid="code-close" ref={closeButton} onClick={() => onClose("user")}>
          {t.close}
        </button>
      </div>
      <p class="code-rule">{ruleText(voucher.rule, t)}</p>
      <p class="meta secondary">{t.validity(dateTimeBj(voucher.valid_from), dateTimeBj(voucher.valid_until))}</p>
      {redeemed ? (
        <p class="redeemed-banner">{t.redeemed}</p>
      ) : (
        <>
          <p class="code-hint">{t.codeTitle}</p>
          <div class="qr" data-testid="qr" data-code={drawn?.text}>
            {shape ? (
              <svg
                viewBox={`0 0 ${shape.size} ${shape.size}`}
                role="img"
                aria-label={t.qrLabel(voucher.campaign_name)}
                shape-rendering="crispEdges"
              >
                <rect width={shape.size} height={shape.size} fill="#fff" />
                <path d={shape.d} fill="#000" />
              </svg>
            ) : (
              <p class="muted">{t.loading}</p>
            )}
          </div>
          <div class="code-status">
            <Ring fraction={drawn ? remainingMs / (stepSecs * 1000) : 0} seconds={drawn ? remaining : null} />
            <div>
              <p class="refresh-line">{t.refreshEvery(stepSecs)}</p>
              <p class={offline ? "mode mode-offline" : "mode mode-online"} data-testid="code-mode">
                {offline ? t.modeOffline : t.modeOnline}
              </p>
            </div>
          </div>
        </>
      )}
      <p class="code-note" aria-live="polite">
        {note ? note(t) : ""}
      </p>
      {!redeemed && (
        <button type="button" class="link-button" data-testid="revoke-key" disabled={revoking} onClick={() => void revoke()}>
          {revoking ? t.revoking : t.revoke}
        </button>
      )}
    </div>
  );
}

const RING_R = 20;
const RING_C = 2 * Math.PI * RING_R;

/** The countdown to the next step, as a draining circle with the seconds inside. */
function Ring({ fraction, seconds }: { fraction: number; seconds: number | null }) {
  const t = useT();
  const f = Math.max(0, Math.min(1, fraction));
  return (
    <div class="ring" role="timer" aria-label={seconds === null ? t.loading : t.secondsLeft(seconds)}>
      <svg viewBox="0 0 48 48" width="56" height="56" aria-hidden="true">
        <circle cx="24" cy="24" r={RING_R} class="ring-track" />
        <circle
          cx="24"
          cy="24"
          r={RING_R}
          class="ring-bar"
          stroke-dasharray={RING_C}
          stroke-dashoffset={RING_C * (1 - f)}
          transform="rotate(-90 24 24)"
        />
      </svg>
      <span class="ring-num" aria-hidden="true">
        {seconds ?? ""}
      </span>
    </div>
  );
}
