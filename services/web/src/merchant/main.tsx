// The merchants' web checkout terminal (served at /till/): pairing with a one-time code, then
// signed requests like a hardware terminal: checkout (sale or deposit hold), refunds, today.

import "./app.css";
import { type ComponentChildren, type JSX, render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  ApiFailure,
  BadSecret,
  type DayReport,
  type RedemptionView,
  type StoredTerminal,
  TerminalApi,
  forgetTerminal,
  loadTerminal,
  pair,
} from "./api";
import { Checkout, type HoldMessage, type Sale, newSale } from "./Checkout";
import { type Lang, getLang, setLang, t } from "./i18n";
import { TerminalRejected, setRejectedHandler } from "./signing";
import { type LocalRefunds, type ReportState, Today } from "./Today";
import { errorCode, errorText, todayShanghai } from "./util";
import * as keystore from "../shared/keystore";

type Phase =
  | { kind: "loading" }
  | { kind: "pairing"; notice: string | null; autoCode: string | null; previous: StoredTerminal | null }
  | { kind: "ready"; terminal: StoredTerminal };

/** A pairing code from `#pair=CODE`, removed from the address at once. */
function takePairingCodeFromHash(): string | null {
  const m = /(?:^#|&)pair=([^&]*)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(history.state, "", location.pathname + location.search);
  try {
    return decodeURIComponent(m[1] ?? "").trim() || null;
  } catch {
    return null;
  }
}

const LANG_KEY = "till-lang";

function initialLang(): Lang {
  try {
    return localStorage.getItem(LANG_KEY) === "en" ? "en" : "zh-CN";
  } catch {
    return "zh-CN";
  }
}

/** Which of two views of one redemption is later (status only moves away from "held"). */
function later(a: RedemptionView, b: RedemptionView): RedemptionView {
  return a.status === "held" && b.status !== "held" ? b : a;
}

function App() {
  const [lang, setLangState] = useState<Lang>(getLang());
  const [phase, setPhase] = useState<Phase>({ kind: "loading" });

  const switchLang = () => {
    const next: Lang = lang === "zh-CN" ? "en" : "zh-CN";
    setLang(next);
    try {
      localStorage.setItem(LANG_KEY, next);
    } catch {
      // not essential
    }
    setLangState(next);
  };

  // A refused key (revoked or rotated): forget it and pair again.
  useEffect(() => {
    setRejectedHandler(() => {
      void forgetTerminal().catch(() => undefined);
      setPhase({ kind: "pairing", notice: t("pair.revoked"), autoCode: null, previous: null });
    });
    return () => setRejectedHandler(null);
  }, []);

  useEffect(() => {
    const code = takePairingCodeFromHash();
    loadTerminal()
      .catch(() => null)
      .then((stored) => {
        if (code) setPhase({ kind: "pairing", notice: null, autoCode: code, previous: stored });
        else if (stored) setPhase({ kind: "ready", terminal: stored });
        else setPhase({ kind: "pairing", notice: null, autoCode: null, previous: null });
      });
    // A pairing link opened while the page is already open (same document: no reload).
    const onHash = () => {
      const later = takePairingCodeFromHash();
      if (!later) return;
      void loadTerminal()
        .catch(() => null)
        .then((stored) =>
          setPhase({ kind: "pairing", notice: null, autoCode: later, previous: stored }),
        );
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  const header = (terminal: StoredTerminal | null, extra?: ComponentChildren) => (
    <header class="topbar">
      <div class="brand">
        <h1 data-testid={terminal ? "merchant-name" : undefined}>
          {terminal ? terminal.merchant.name : t("app.title")}
        </h1>
        {terminal && (
          <span class="muted small" title={terminal.terminal_id}>
            {t("header.terminal", { id: terminal.terminal_id.slice(0, 8) })}
          </span>
        )}
      </div>
      <div class="topbar-actions">
        <button
          type="button"
          class="btn btn-ghost"
          data-testid="lang-switch"
          lang={lang === "zh-CN" ? "en" : "zh-CN"}
          aria-label={t("lang.switchLabel")}
          onClick={switchLang}
        >
          {t("lang.switch")}
        </button>
        {extra}
      </div>
    </header>
  );

  if (phase.kind === "loading") {
    return (
      <>
        {header(null)}
        <main class="page">
          <p role="status">{t("app.loading")}</p>
        </main>
      </>
    );
  }
  if (phase.kind === "pairing") {
    return (
      <>
        {header(null)}
        <Pairing
          key={phase.autoCode ?? "manual"}
          notice={phase.notice}
          autoCode={phase.autoCode}
          previous={phase.previous}
          onPaired={(terminal) => setPhase({ kind: "ready", terminal })}
        />
      </>
    );
  }
  return (
    <Till
      key={phase.terminal.key_id}
      terminal={phase.terminal}
      header={header}
      onUnpaired={() =>
        setPhase({ kind: "pairing", notice: t("pair.unpaired"), autoCode: null, previous: null })
      }
      onMerchant={(terminal) => setPhase({ kind: "ready", terminal })}
    />
  );
}

function Pairing(props: {
  notice: string | null;
  autoCode: string | null;
  previous: StoredTerminal | null;
  onPaired: (terminal: StoredTerminal) => void;
}) {
  const [code, setCode] = useState(props.autoCode ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  async function submit(value: string) {
    const trimmed = value.trim();
    if (busy) return;
    if (trimmed === "") {
      setError(t("pair.empty"));
      inputRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      props.onPaired(await pair(trimmed));
    } catch (e) {
      setBusy(false);
      if (e instanceof BadSecret) setError(t("pair.badSecret"));
      else if (e instanceof ApiFailure && (e.code === "PAIRING_CODE_INVALID" || e.status === 404))
        setError(t("pair.invalid"));
      else setError(errorText(e));
      inputRef.current?.focus();
    }
  }

  useEffect(() => {
    if (props.autoCode) void submit(props.autoCode);
    else inputRef.current?.focus();
  }, []);

  return (
    <main class="page pairing">
      <section class="panel pair-panel" aria-labelledby="pair-title">
        <h2 id="pair-title">{t("pair.title")}</h2>
        {props.notice && (
          <p class="warn-box" role="status" data-testid="pair-notice">
            {props.notice}
          </p>
        )}
        <p>{t("pair.intro")}</p>
        <form
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void submit(code);
          }}
        >
          <div class="field">
            <label for="pair-code">{t("pair.code")}</label>
            <input
              id="pair-code"
              data-testid="pair-code"
              ref={inputRef}
              type="text"
              autoComplete="off"
              autoCapitalize="characters"
              spellcheck={false}
              value={code}
              readOnly={busy}
              aria-invalid={error !== null}
              aria-describedby={error ? "pair-error" : undefined}
              onInput={(e) => setCode(e.currentTarget.value)}
            />
          </div>
          <button
            type="submit"
            class="btn btn-primary btn-wide"
            data-testid="pair-submit"
            disabled={busy}
            aria-busy={busy}
          >
            {busy ? t("pair.busy") : t("pair.submit")}
          </button>
          <div aria-live="assertive">
            {error && (
              <p id="pair-error" class="error-box" data-testid="pair-error">
                {error}
              </p>
            )}
          </div>
        </form>
        {props.previous && !busy && (
          <button
            type="button"
            class="btn btn-secondary btn-wide"
            data-testid="pair-cancel"
            onClick={() => props.previous && props.onPaired(props.previous)}
          >
            {props.previous.merchant.name} · {t("tab.checkout")}
          </button>
        )}
      </section>
    </main>
  );
}

function Till(props: {
  terminal: StoredTerminal;
  header: (terminal: StoredTerminal | null, extra?: ComponentChildren) => JSX.Element;
  onUnpaired: () => void;
  onMerchant: (terminal: StoredTerminal) => void;
}) {
  const { terminal } = props;
  const api = useMemo(() => new TerminalApi(terminal), [terminal.key, terminal.key_id]);
  const [tab, setTab] = useState<"checkout" | "today">("checkout");
  const [sale, setSale] = useState<Sale>(() => newSale());
  const [report, setReport] = useState<ReportState>({ loading: false, data: null, error: null });
  const [date, setDate] = useState(todayShanghai());
  const [overlay, setOverlay] = useState<Record<string, RedemptionView>>({});
  const [refunds, setRefunds] = useState<LocalRefunds>({});
  const [holdBusy, setHoldBusy] = useState<string | null>(null);
  const [holdMessage, setHoldMessage] = useState<HoldMessage>(null);
  const [unpairError, setUnpairError] = useState<string | null>(null);
  const [unpairing, setUnpairing] = useState(false);
  const reportSeq = useRef(0);

  // Who we are, fresh from the service (the merchant's name may have changed).
  useEffect(() => {
    api.me().then(
      (me) => {
        if (!me?.merchant) return;
        const next = { ...terminal, merchant: me.merchant };
        void keystore.put("terminal", next).catch(() => undefined);
        if (me.merchant.name !== terminal.merchant.name) props.onMerchant(next);
      },
      () => undefined,
    );
  }, [api]);

  const refresh = useCallback(() => {
    const day = todayShanghai();
    setDate(day);
    const seq = ++reportSeq.current;
    setReport((r) => ({ ...r, loading: true, error: null }));
    api.day(day).then(
      (data: DayReport) => {
        if (seq === reportSeq.current) setReport({ loading: false, data, error: null });
      },
      (e: unknown) => {
        if (seq !== reportSeq.current || e instanceof TerminalRejected) return;
        setReport((r) => ({ ...r, loading: false, error: errorText(e) }));
      },
    );
  }, [api]);

  // The open holds (deposit flow) come from today's list: load it once at the start.
  useEffect(() => refresh(), [refresh]);

  const holds = useMemo(() => {
    const byId = new Map<string, RedemptionView>();
    for (const r of report.data?.redemptions ?? []) byId.set(r.redemption_id, r);
    for (const v of Object.values(overlay)) {
      const seen = byId.get(v.redemption_id);
      byId.set(v.redemption_id, seen ? later(seen, v) : v);
    }
    return [...byId.values()].filter((r) => r.status === "held");
  }, [report.data, overlay]);

  const remember = (v: RedemptionView) => setOverlay((o) => ({ ...o, [v.redemption_id]: v }));

  async function resolveHold(id: string, action: "capture" | "void") {
    if (holdBusy) return;
    const ref = holds.find((h) => h.redemption_id === id)?.order_ref ??
      report.data?.redemptions.find((r) => r.redemption_id === id)?.order_ref ?? id;
    setHoldBusy(id);
    setHoldMessage(null);
    try {
      const view = action === "capture" ? await api.capture(id) : await api.void(id);
      remember(view);
      setHoldMessage({
        ok: true,
        text: t(action === "capture" ? "holds.captured" : "holds.voided", { ref }),
      });
    } catch (e) {
      if (e instanceof TerminalRejected) return;
      setHoldMessage({ ok: false, text: errorText(e), code: errorCode(e) });
    } finally {
      setHoldBusy(null);
      refresh();
    }
  }

  async function unpair() {
    if (unpairing || !window.confirm(t("unpair.confirm"))) return;
    setUnpairing(true);
    setUnpairError(null);
    try {
      await api.unpair();
    } catch (e) {
      setUnpairing(false);
      if (e instanceof TerminalRejected) return; // already back to pairing
      setUnpairError(t("unpair.failed", { reason: errorText(e) }));
      return;
    }
    await forgetTerminal().catch(() => undefined);
    props.onUnpaired();
  }

  const startNewSale = () => {
    setSale((s) => (s.busy ? s : newSale(s.mode)));
    setHoldMessage(null);
  };

  return (
    <>
      {props.header(
        terminal,
        <button
          type="button"
          class="btn btn-ghost"
          data-testid="unpair"
          disabled={unpairing}
          onClick={() => void unpair()}
        >
          {t("header.unpair")}
        </button>,
      )}
      <nav class="tabs" aria-label={t("tab.label")}>
        {(["checkout", "today"] as const).map((name) => (
          <button
            key={name}
            type="button"
            class={`tab${tab === name ? " is-active" : ""}`}
            data-testid={`tab-${name}`}
            aria-pressed={tab === name}
            onClick={() => setTab(name)}
          >
            {t(name === "checkout" ? "tab.checkout" : "tab.today")}
          </button>
        ))}
      </nav>
      <main class="page">
        {unpairError && (
          <p class="error-box" role="alert" data-testid="unpair-error">
            {unpairError}
          </p>
        )}
        {tab === "checkout" ? (
          <Checkout
            api={api}
            sale={sale}
            update={setSale}
            startNewSale={startNewSale}
            onHold={(v) => {
              remember(v);
              refresh();
            }}
            holds={holds}
            holdBusy={holdBusy}
            holdMessage={holdMessage}
            resolveHold={(id, action) => void resolveHold(id, action)}
          />
        ) : (
          <Today
            api={api}
            date={date}
            report={report}
            refresh={refresh}
            refunds={refunds}
            onRefunded={(row, view) =>
              setRefunds((r) => {
                const prev = r[row.redemption_id] ?? { refund: 0, discount: 0 };
                return {
                  ...r,
                  [row.redemption_id]: {
                    refund: prev.refund + view.refund_amount_fen,
                    discount: prev.discount + view.discount_reversed_fen,
                  },
                };
              })
            }
            holdBusy={holdBusy}
            holdMessage={holdMessage}
            resolveHold={(id, action) => void resolveHold(id, action)}
          />
        )}
      </main>
    </>
  );
}

setLang(initialLang());
const root = document.getElementById("app");
if (root) render(<App />, root);
