// The checkout: voucher code (scan gun, keyboard or camera), order amount, the server's
// quote, and the confirmation under the sale's ONE Idempotency-Key and order_ref (kept for
// every retry and double tap, replaced only when the next sale starts). Also the open holds
// of the deposit flow.

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import { formatYuan, parseYuanToFen } from "../shared/money";
import { type Decline, type Mode, type Quote, type RedemptionView, type TerminalApi } from "./api";
import { Camera } from "./Camera";
import { t } from "./i18n";
import { TerminalRejected } from "./signing";
import {
  dateTimeShanghai,
  declineText,
  errorCode,
  errorText,
  newIdempotencyKey,
  newOrderRef,
  noticeText,
} from "./util";

export type SaleResult =
  | { kind: "approved"; view: RedemptionView }
  | { kind: "declined"; reason: string; message: string };

/** One sale, from its start to the next "new sale". */
export interface Sale {
  idempotencyKey: string;
  orderRef: string;
  mode: Mode;
  code: string;
  amountText: string;
  /** Show "required" errors (after a confirm was tried). */
  submitted: boolean;
  busy: boolean;
  waiting: "in_flight" | "retry" | null;
  result: SaleResult | null;
  /** A failure; `unknown` when the sale may or may not have gone through (retry it). */
  error: { text: string; code: string; unknown: boolean } | null;
}

export function newSale(mode: Mode = "sale"): Sale {
  return {
    idempotencyKey: newIdempotencyKey(),
    orderRef: newOrderRef(),
    mode,
    code: "",
    amountText: "",
    submitted: false,
    busy: false,
    waiting: null,
    result: null,
    error: null,
  };
}

type QuoteState =
  | { kind: "none" }
  | { kind: "loading" }
  | { kind: "quote"; quote: Quote }
  | { kind: "declined"; decline: Decline }
  | { kind: "error"; text: string };

export type HoldMessage = { ok: boolean; text: string; code?: string } | null;

interface Props {
  api: TerminalApi;
  sale: Sale;
  update: (fn: (s: Sale) => Sale) => void;
  startNewSale: () => void;
  onHold: (view: RedemptionView) => void;
  holds: RedemptionView[];
  holdBusy: string | null;
  holdMessage: HoldMessage;
  resolveHold: (id: string, action: "capture" | "void") => void;
}

/** A confirmation being sent (guards double taps before the button re-renders disabled). */
let inFlightKey: string | null = null;
let quoteSeq = 0;

export function Checkout(props: Props) {
  const { api, sale, update } = props;
  const scanRef = useRef<HTMLInputElement>(null);
  const amountRef = useRef<HTMLInputElement>(null);
  const newSaleRef = useRef<HTMLButtonElement>(null);
  const [quote, setQuote] = useState<QuoteState>({ kind: "none" });
  const [camera, setCamera] = useState(false);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const done = sale.result?.kind === "approved";
  const amountFen = parseYuanToFen(sale.amountText);
  const amountInvalid = sale.amountText.trim() !== "" && amountFen === null;
  const amountMissing = sale.submitted && sale.amountText.trim() === "";
  const codeMissing = sale.submitted && sale.code.trim() === "";

  // Focus: the scan field at the start of a sale, "new sale" once it is approved.
  useEffect(() => {
    if (done) newSaleRef.current?.focus();
    else if (!sale.busy && sale.result === null) scanRef.current?.focus();
  }, [sale.idempotencyKey, done]);

  // The quote: asked whenever code and amount are both present (debounced; stale answers dropped).
  useEffect(() => {
    const code = sale.code.trim();
    if (sale.result !== null || code === "" || amountFen === null) {
      quoteSeq++;
      setQuote({ kind: "none" });
      return;
    }
    const seq = ++quoteSeq;
    const timer = setTimeout(() => {
      setQuote({ kind: "loading" });
      api.quote(code, amountFen).then(
        (answer) => {
          if (seq !== quoteSeq || !mounted.current) return;
          if (answer.outcome === "quote") setQuote({ kind: "quote", quote: answer });
          else setQuote({ kind: "declined", decline: answer });
        },
        (e: unknown) => {
          if (seq !== quoteSeq || !mounted.current || e instanceof TerminalRejected) return;
          setQuote({ kind: "error", text: errorText(e) });
        },
      );
    }, 300);
    return () => clearTimeout(timer);
  }, [sale.code, amountFen, sale.result === null, api]);

  const edit = (patch: Partial<Sale>) =>
    update((s) =>
      s.result?.kind === "approved" || s.busy
        ? s
        : // Editing after a decline or an error: the same sale goes on (same key and
          // order_ref: the service keeps nothing of a decline), the old result goes.
          { ...s, ...patch, result: null, error: null },
    );

  async function confirm() {
    if (done || sale.busy || inFlightKey === sale.idempotencyKey) return;
    const code = sale.code.trim();
    if (code === "" || amountFen === null) {
      update((s) => ({ ...s, submitted: true }));
      (code === "" ? scanRef : amountRef).current?.focus();
      return;
    }
    const key = sale.idempotencyKey;
    const body = { code, order_amount_fen: amountFen, order_ref: sale.orderRef };
    const mode = sale.mode;
    inFlightKey = key;
    const mine = (fn: (s: Sale) => Sale) => update((s) => (s.idempotencyKey === key ? fn(s) : s));
    mine((s) => ({ ...s, submitted: true, busy: true, waiting: null, error: null, result: null }));
    try {
      const answer = await api.checkout(mode, body, key, (why) =>
        mine((s) => ({ ...s, waiting: why })),
      );
      if (answer.outcome === "approved") {
        mine((s) => ({ ...s, result: { kind: "approved", view: answer } }));
        if (answer.status === "held") props.onHold(answer);
      } else if (answer.outcome === "declined") {
        mine((s) => ({
          ...s,
          result: { kind: "declined", reason: answer.reason, message: answer.message },
        }));
        queueMicrotask(() => {
          scanRef.current?.focus();
          scanRef.current?.select();
        });
      } else {
        throw new Error("unexpected answer");
      }
    } catch (e) {
      if (!(e instanceof TerminalRejected)) {
        const unknown = !(e instanceof ApiFailure) || e.network || e.status >= 500 || e.status === 429;
        mine((s) => ({ ...s, error: { text: errorText(e), code: errorCode(e), unknown } }));
      }
    } finally {
      inFlightKey = null;
      mine((s) => ({ ...s, busy: false, waiting: null }));
    }
  }

  const onScanKey = (e: KeyboardEvent) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    // A scan gun ends with Enter: with an amount already typed the sale goes; else on to the amount.
    if (amountFen !== null && sale.code.trim() !== "") void confirm();
    else amountRef.current?.focus();
  };

  const result = sale.result;
  return (
    <div class="checkout">
      <form
        class="panel sale-form"
        aria-labelledby="sale-form-title"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void confirm();
        }}
      >
        <h2 id="sale-form-title" class="visually-hidden">
          {t("tab.checkout")}
        </h2>
        <div class="mode-switch" role="group" aria-label={t("mode.label")}>
          {(["sale", "hold"] as const).map((m) => (
            <button
              key={m}
              type="button"
              data-testid={`mode-${m}`}
              class={`btn mode-btn${sale.mode === m ? " is-active" : ""}`}
              aria-pressed={sale.mode === m}
              disabled={sale.busy || done}
              onClick={() => update((s) => (s.busy || s.result?.kind === "approved" ? s : { ...s, mode: m, result: null, error: null }))}
            >
              {t(m === "sale" ? "mode.sale" : "mode.hold")}
            </button>
          ))}
        </div>

        <div class="field">
          <div class="label-row">
            <label for="scan-input">{t("scan.label")}</label>
            <button
              type="button"
              data-testid="camera-button"
              class="btn btn-secondary camera-btn"
              disabled={done || sale.busy}
              aria-expanded={camera}
              onClick={() => setCamera((c) => !c)}
            >
              {camera ? t("camera.close") : t("camera.open")}
            </button>
          </div>
          <input
            id="scan-input"
            data-testid="scan-input"
            ref={scanRef}
            type="text"
            autoComplete="off"
            autoCapitalize="off"
            autoCorrect="off"
            spellcheck={false}
            enterKeyHint="next"
            value={sale.code}
            readOnly={done || sale.busy}
            aria-invalid={codeMissing}
            aria-describedby={codeMissing ? "scan-error" : undefined}
            onInput={(e) => edit({ code: e.currentTarget.value })}
            onKeyDown={onScanKey}
          />
          {codeMissing && (
            <p id="scan-error" class="field-error" role="alert">
              {t("scan.empty")}
            </p>
          )}
        </div>
        {camera && (
          <Camera
            onClose={() => {
              setCamera(false);
              scanRef.current?.focus();
            }}
            onCode={(code) => {
              setCamera(false);
              edit({ code });
              queueMicrotask(() => amountRef.current?.focus());
            }}
          />
        )}

        <div class="field">
          <label for="amount-input">{t("amount.label")}</label>
          <input
            id="amount-input"
            data-testid="amount-input"
            ref={amountRef}
            class="amount-input"
            type="text"
            inputMode="decimal"
            autoComplete="off"
            enterKeyHint="go"
            value={sale.amountText}
            readOnly={done || sale.busy}
            aria-invalid={amountInvalid || amountMissing}
            aria-describedby={amountInvalid || amountMissing ? "amount-error" : undefined}
            onInput={(e) => edit({ amountText: e.currentTarget.value })}
          />
          {(amountInvalid || amountMissing) && (
            <p id="amount-error" data-testid="amount-error" class="field-error" role="alert">
              {amountInvalid ? t("amount.invalid") : t("amount.empty")}
            </p>
          )}
        </div>

        {result === null && <QuoteView quote={quote} />}

        {!done && (
          <button
            type="submit"
            data-testid="confirm-sale"
            class="btn btn-primary btn-confirm"
            disabled={sale.busy}
            aria-busy={sale.busy}
          >
            {sale.busy
              ? t("confirm.busy")
              : t(sale.mode === "hold" ? "confirm.hold" : "confirm.sale")}
          </button>
        )}
        <p class="wait-note" role="status">
          {sale.busy && sale.waiting === "in_flight"
            ? t("confirm.waiting")
            : sale.busy && sale.waiting === "retry"
              ? t("confirm.retrying")
              : ""}
        </p>
      </form>

      <div class="side">
        <div aria-live="polite" aria-atomic="true" class="result-live">
          {result && <ResultView result={result} />}
        </div>
        {sale.error && (
          <p class="error-box" role="alert" data-testid="sale-error" data-code={sale.error.code}>
            {sale.error.text}
            {sale.error.unknown ? ` ${t("result.unknown", { reason: sale.error.code })}` : ""}
          </p>
        )}
        {(result !== null ||
          sale.error !== null ||
          sale.code !== "" ||
          sale.amountText !== "") && (
          <button
            type="button"
            data-testid="new-sale"
            ref={newSaleRef}
            class={`btn btn-secondary ${result !== null || sale.error !== null ? "btn-new" : "btn-reset"}`}
            disabled={sale.busy}
            onClick={props.startNewSale}
          >
            {t("sale.new")}
          </button>
        )}
        {(sale.mode === "hold" || props.holds.length > 0 || props.holdMessage) && (
          <Holds
            holds={props.holds}
            busy={props.holdBusy}
            message={props.holdMessage}
            resolve={props.resolveHold}
          />
        )}
      </div>
    </div>
  );
}

function QuoteView({ quote }: { quote: QuoteState }) {
  return (
    <section class="quote" aria-labelledby="quote-title" aria-live="polite">
      <h3 id="quote-title" class="quote-title">
        {t("quote.title")}
      </h3>
      {quote.kind === "none" && <p class="muted">—</p>}
      {quote.kind === "loading" && <p class="muted">{t("quote.loading")}</p>}
      {quote.kind === "quote" && (
        <>
          <dl class="amounts">
            <div>
              <dt>{t("quote.discount")}</dt>
              <dd data-testid="quote-discount" class="money discount">
                {formatYuan(quote.quote.discount_fen)}
              </dd>
            </div>
            <div>
              <dt>{t("quote.toPay")}</dt>
              <dd data-testid="quote-to-pay" class="money to-pay">
                {formatYuan(quote.quote.to_pay_fen)}
              </dd>
            </div>
          </dl>
          {noticeText(quote.quote.notice) && (
            <p class="notice" data-notice={quote.quote.notice ?? ""}>
              {noticeText(quote.quote.notice)}
            </p>
          )}
        </>
      )}
      {quote.kind === "declined" && (
        <p class="decline" data-testid="decline-message" data-reason={quote.decline.reason}>
          {declineText(quote.decline.reason, quote.decline.message)}
        </p>
      )}
      {quote.kind === "error" && <p class="muted">{t("quote.failed", { reason: quote.text })}</p>}
    </section>
  );
}

function ResultView({ result }: { result: SaleResult }) {
  if (result.kind === "declined") {
    return (
      <section class="result result-declined" data-testid="sale-result" data-outcome="declined">
        <h2 class="result-title">{t("result.declined")}</h2>
        <p class="decline" data-testid="decline-message" data-reason={result.reason}>
          {declineText(result.reason, result.message)}
        </p>
      </section>
    );
  }
  const v = result.view;
  const notice = noticeText(v.notice);
  return (
    <section
      class="result result-approved"
      data-testid="sale-result"
      data-outcome="approved"
      data-status={v.status}
    >
      <h2 class="result-title">{t(v.status === "held" ? "result.held" : "result.approved")}</h2>
      <dl class="amounts">
        <div>
          <dt>{t("result.order")}</dt>
          <dd class="money">{formatYuan(v.order_amount_fen)}</dd>
        </div>
        <div>
          <dt>{t("result.discount")}</dt>
          <dd class="money discount" data-testid="result-discount">
            {formatYuan(v.discount_fen)}
          </dd>
        </div>
        <div>
          <dt>{t("result.toPay")}</dt>
          <dd class="money to-pay big" data-testid="result-to-pay">
            {formatYuan(v.to_pay_fen)}
          </dd>
        </div>
      </dl>
      {notice && (
        <p class="notice" data-notice={v.notice ?? ""}>
          {notice}
        </p>
      )}
      <p class="muted">
        {t("result.orderRef")}: {v.order_ref}
        {v.status === "held" && v.hold_expires_at
          ? ` · ${t("result.holdUntil")} ${dateTimeShanghai(v.hold_expires_at)}`
          : ""}
      </p>
    </section>
  );
}

export function Holds(props: {
  holds: RedemptionView[];
  busy: string | null;
  message: HoldMessage;
  resolve: (id: string, action: "capture" | "void") => void;
}) {
  return (
    <section class="panel holds" aria-labelledby="holds-title">
      <h2 id="holds-title">{t("holds.title")}</h2>
      <p
        class={props.message ? (props.message.ok ? "ok-box" : "error-box") : "visually-hidden"}
        role="status"
        data-testid="hold-message"
        data-code={props.message?.code ?? ""}
      >
        {props.message?.text ?? ""}
      </p>
      {props.holds.length === 0 ? (
        <p class="muted">{t("holds.none")}</p>
      ) : (
        <ul class="hold-list">
          {props.holds.map((h) => (
            <li key={h.redemption_id} class="hold" data-testid={`hold-${h.redemption_id}`}>
              <div class="hold-info">
                <span class="mono">{h.order_ref}</span>
                <span>
                  {t("result.order")} {formatYuan(h.order_amount_fen)} · {t("result.discount")}{" "}
                  {formatYuan(h.discount_fen)}
                </span>
                {h.hold_expires_at && (
                  <span class="muted">
                    {t("result.holdUntil")} {dateTimeShanghai(h.hold_expires_at)}
                  </span>
                )}
              </div>
              <div class="hold-actions">
                <button
                  type="button"
                  class="btn btn-primary"
                  data-testid={`capture-${h.redemption_id}`}
                  aria-label={t("holds.captureLabel", { ref: h.order_ref })}
                  disabled={props.busy !== null}
                  onClick={() => props.resolve(h.redemption_id, "capture")}
                >
                  {t("holds.capture")}
                </button>
                <button
                  type="button"
                  class="btn btn-secondary"
                  data-testid={`void-${h.redemption_id}`}
                  aria-label={t("holds.voidLabel", { ref: h.order_ref })}
                  disabled={props.busy !== null}
                  onClick={() => props.resolve(h.redemption_id, "void")}
                >
                  {t("holds.void")}
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
