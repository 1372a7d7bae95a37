// Today's redemptions of this merchant with the totals the settlement pays (shown exactly as
// the service gives them), refunds of approved or captured sales, and the open holds.

import { Fragment } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { formatYuan, parseYuanToFen, yuanPlain } from "../shared/money";
import type { DayReport, RedemptionView, ReversalView, TerminalApi } from "./api";
import { type HoldMessage } from "./Checkout";
import { hasText, t } from "./i18n";
import { TerminalRejected } from "./signing";
import { errorCode, errorText, newReversalRef, timeShanghai } from "./util";

export interface ReportState {
  loading: boolean;
  data: DayReport | null;
  error: string | null;
}

/** Refunds this page made, per redemption: order amount refunded and discount given back. */
export type LocalRefunds = Record<string, { refund: number; discount: number }>;

interface Props {
  api: TerminalApi;
  date: string;
  report: ReportState;
  refresh: () => void;
  refunds: LocalRefunds;
  onRefunded: (row: RedemptionView, view: ReversalView) => void;
  holdBusy: string | null;
  holdMessage: HoldMessage;
  resolveHold: (id: string, action: "capture" | "void") => void;
}

interface RefundForm {
  row: RedemptionView;
  text: string;
  /** One per refund attempt: reused when this attempt is retried, new for the next refund. */
  ref: string;
  busy: boolean;
  error: { text: string; code: string } | null;
}

function statusText(status: string): string {
  const key = `status.${status}`;
  return hasText(key) ? t(key) : status;
}

export function Today(props: Props) {
  const { report } = props;
  const [form, setForm] = useState<RefundForm | null>(null);
  const [done, setDone] = useState<{ text: string; outcome: string } | null>(null);
  const amountRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    props.refresh();
  }, []);

  function openRefund(row: RedemptionView) {
    if (form?.busy) return;
    const local = props.refunds[row.redemption_id] ?? { refund: 0, discount: 0 };
    // The default is everything not yet refunded; known exactly when every reversal of the
    // sale was made here (else left empty: the service then refunds all that is left).
    const remaining =
      row.reversed_fen === local.discount ? row.order_amount_fen - local.refund : null;
    setForm({
      row,
      text: remaining !== null && remaining > 0 ? yuanPlain(remaining) : "",
      ref: newReversalRef(),
      busy: false,
      error: null,
    });
    setDone(null);
    queueMicrotask(() => amountRef.current?.focus());
  }

  async function submitRefund() {
    if (!form || form.busy) return;
    const row = form.row;
    let amount: number | null = null;
    if (form.text.trim() !== "") {
      amount = parseYuanToFen(form.text, row.order_amount_fen);
      if (amount === null) {
        const over = parseYuanToFen(form.text) !== null;
        setForm({
          ...form,
          error: { text: t(over ? "refund.tooMuch" : "refund.invalid"), code: "INVALID_AMOUNT" },
        });
        amountRef.current?.focus();
        return;
      }
    }
    const ref = form.ref;
    setForm({ ...form, busy: true, error: null });
    try {
      const view = await props.api.reverse(row.redemption_id, ref, amount);
      props.onRefunded(row, view);
      setDone({
        outcome: view.outcome,
        text:
          view.outcome === "nothing_to_reverse"
            ? t("refund.nothing")
            : t("refund.done", {
                refund: formatYuan(view.refund_amount_fen),
                discount: formatYuan(view.discount_reversed_fen),
              }) + (view.restored ? `，${t("refund.restored")}` : ""),
      });
      setForm(null);
      props.refresh();
    } catch (e) {
      if (e instanceof TerminalRejected) return;
      // Same reversal_ref on the next try: a refund that did go through is not made twice.
      setForm((f) =>
        f && f.ref === ref ? { ...f, busy: false, error: { text: errorText(e), code: errorCode(e) } } : f,
      );
    }
  }

  const data = report.data;
  const rows = data?.redemptions ?? [];
  return (
    <section class="today" aria-labelledby="today-title">
      <div class="today-head">
        <h2 id="today-title">{t("today.title", { date: data?.date ?? props.date })}</h2>
        <button
          type="button"
          class="btn btn-secondary"
          data-testid="today-refresh"
          disabled={report.loading}
          onClick={props.refresh}
        >
          {t("today.refresh")}
        </button>
      </div>
      <p role="status" class={report.error ? "error-box" : "muted"}>
        {report.error
          ? t("today.failed", { reason: report.error })
          : report.loading
            ? t("today.loading")
            : ""}
      </p>
      {data && (
        <dl class="totals">
          <div>
            <dt>{t("today.count")}</dt>
            <dd data-testid="today-count">{data.count}</dd>
          </div>
          <div>
            <dt>{t("today.order")}</dt>
            <dd data-testid="today-order">{formatYuan(data.order_amount_fen)}</dd>
          </div>
          <div>
            <dt>{t("today.discount")}</dt>
            <dd data-testid="today-discount">{formatYuan(data.discount_fen)}</dd>
          </div>
          <div>
            <dt>{t("today.reversed")}</dt>
            <dd data-testid="today-reversed">{formatYuan(data.reversed_fen)}</dd>
          </div>
          <div class="total-net">
            <dt>{t("today.net")}</dt>
            <dd data-testid="today-net">{formatYuan(data.net_discount_fen)}</dd>
          </div>
        </dl>
      )}
      <div aria-live="polite">
        {done && (
          <p class="ok-box" data-testid="refund-result" data-outcome={done.outcome}>
            {done.text}
          </p>
        )}
        {props.holdMessage && (
          <p
            class={props.holdMessage.ok ? "ok-box" : "error-box"}
            data-testid="hold-message"
            data-code={props.holdMessage.code ?? ""}
          >
            {props.holdMessage.text}
          </p>
        )}
      </div>
      {data && rows.length === 0 && <p class="muted">{t("today.empty")}</p>}
      {rows.length > 0 && (
        <div class="table-wrap" role="region" aria-label={t("today.list")} tabIndex={0}>
          <table class="sales">
            <thead>
              <tr>
                <th scope="col">{t("today.col.time")}</th>
                <th scope="col">{t("today.col.ref")}</th>
                <th scope="col" class="num">
                  {t("today.col.amount")}
                </th>
                <th scope="col" class="num">
                  {t("today.col.discount")}
                </th>
                <th scope="col">{t("today.col.status")}</th>
                <th scope="col" class="num">
                  {t("today.col.refunds")}
                </th>
                <th scope="col">{t("today.col.actions")}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => {
                const refundable = r.status === "approved" || r.status === "captured";
                const open = form?.row.redemption_id === r.redemption_id;
                return (
                  <Fragment key={r.redemption_id}>
                    <tr
                      data-testid={`sale-row-${r.redemption_id}`}
                      data-status={r.status}
                    >
                      <td class="mono">{timeShanghai(r.created_at)}</td>
                      <td class="mono">{r.order_ref}</td>
                      <td class="num">{formatYuan(r.order_amount_fen)}</td>
                      <td class="num">{formatYuan(r.discount_fen)}</td>
                      <td>
                        <span class={`status status-${r.status}`}>{statusText(r.status)}</span>
                      </td>
                      <td class="num">
                        {r.reversed_fen > 0
                          ? t("today.reversedShort", { amount: formatYuan(r.reversed_fen) })
                          : t("today.noRefund")}
                      </td>
                      <td class="actions">
                        {refundable && (
                          <button
                            type="button"
                            class="btn btn-secondary btn-small"
                            data-testid={`refund-${r.redemption_id}`}
                            aria-expanded={open}
                            aria-label={t("refund.openLabel", { ref: r.order_ref })}
                            disabled={form?.busy === true}
                            onClick={() => (open ? setForm(null) : openRefund(r))}
                          >
                            {t("refund.open")}
                          </button>
                        )}
                        {r.status === "held" && (
                          <>
                            <button
                              type="button"
                              class="btn btn-primary btn-small"
                              data-testid={`capture-${r.redemption_id}`}
                              aria-label={t("holds.captureLabel", { ref: r.order_ref })}
                              disabled={props.holdBusy !== null}
                              onClick={() => props.resolveHold(r.redemption_id, "capture")}
                            >
                              {t("holds.capture")}
                            </button>
                            <button
                              type="button"
                              class="btn btn-secondary btn-small"
                              data-testid={`void-${r.redemption_id}`}
                              aria-label={t("holds.voidLabel", { ref: r.order_ref })}
                              disabled={props.holdBusy !== null}
                              onClick={() => props.resolveHold(r.redemption_id, "void")}
                            >
                              {t("holds.void")}
                            </button>
                          </>
                        )}
                      </td>
                    </tr>
                    {open && form && (
                      <tr class="refund-row">
                        <td colSpan={7}>
                          <form
                            class="refund-form"
                            noValidate
                            aria-label={t("refund.title", { ref: r.order_ref })}
                            onSubmit={(e) => {
                              e.preventDefault();
                              void submitRefund();
                            }}
                          >
                            <div class="field">
                              <label for="refund-amount">{t("refund.amount")}</label>
                              <input
                                id="refund-amount"
                                data-testid="refund-amount"
                                ref={amountRef}
                                type="text"
                                inputMode="decimal"
                                autoComplete="off"
                                placeholder={t("refund.placeholderAll")}
                                value={form.text}
                                readOnly={form.busy}
                                aria-invalid={form.error?.code === "INVALID_AMOUNT"}
                                aria-describedby="refund-hint"
                                onInput={(e) => {
                                  const text = e.currentTarget.value;
                                  setForm((f) => (f && !f.busy ? { ...f, text, error: null } : f));
                                }}
                              />
                              <p id="refund-hint" class="muted">
                                {t("refund.hintAll")}
                              </p>
                            </div>
                            <div class="refund-actions">
                              <button
                                type="submit"
                                class="btn btn-primary"
                                data-testid="refund-submit"
                                disabled={form.busy}
                                aria-busy={form.busy}
                              >
                                {form.busy ? t("refund.busy") : t("refund.submit")}
                              </button>
                              <button
                                type="button"
                                class="btn btn-secondary"
                                disabled={form.busy}
                                onClick={() => setForm(null)}
                              >
                                {t("refund.cancel")}
                              </button>
                            </div>
                            {form.error && (
                              <p
                                class="error-box"
                                role="alert"
                                data-testid="refund-error"
                                data-code={form.error.code}
                              >
                                {form.error.text}
                              </p>
                            )}
                          </form>
                        </td>
                      </tr>
                    )}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
