// 明细: what I spent, where, and how much I saved, with the totals the service computed.

import { useEffect, useState } from "preact/hooks";
import { formatYuan } from "../shared/money";
import * as api from "./api";
import { dateTimeBj } from "./format";
import type { Msg } from "./i18n";
import type { History as HistoryData } from "./types";
import { failureMsg, isIdentityLoss, useT } from "./ui";

export function History({ onSignOut }: { onSignOut: () => void }) {
  const t = useT();
  const [data, setData] = useState<HistoryData | null>(null);
  const [loadError, setLoadError] = useState<Msg | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let alive = true;
    setLoadError(null);
    api.history().then(
      (h) => alive && setData(h),
      (e: unknown) => {
        if (alive && !isIdentityLoss(e)) setLoadError(() => failureMsg(e));
      },
    );
    return () => {
      alive = false;
    };
  }, [attempt]);

  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title" class="view-title">
        {t.tabHistory}
      </h2>
      {loadError && (
        <div class="notice">
          <p>{t.loadFailed(loadError(t))}</p>
          <button type="button" class="secondary-button" onClick={() => setAttempt((n) => n + 1)}>
            {t.reload}
          </button>
        </div>
      )}
      {data === null && !loadError && <p class="muted">{t.loading}</p>}
      {data !== null && (
        <>
          <dl class="totals">
            <div class="total">
              <dt>{t.totalSpent}</dt>
              <dd data-testid="history-total-spent">{formatYuan(data.total_spent_fen)}</dd>
            </div>
            <div class="total">
              <dt>{t.totalSaved}</dt>
              <dd data-testid="history-total-saved" class="saved">
                {formatYuan(data.total_saved_fen)}
              </dd>
            </div>
          </dl>
          {data.redemptions.length === 0 ? (
            <p class="muted">{t.noHistory}</p>
          ) : (
            <ul class="cards">
              {data.redemptions.map((r) => (
                <li class="card history-row" data-testid="history-row" key={r.redemption_id}>
                  <div class="card-head">
                    <h3 class="card-title">{r.merchant_name}</h3>
                    <span class={`tag status-${r.status}`}>{t.redemptionStatus[r.status] ?? r.status}</span>
                  </div>
                  <p class="meta secondary">
                    {r.campaign_name} · {dateTimeBj(r.created_at)}
                  </p>
                  <p class="amounts">
                    <span class="secondary">{t.orderAmount(formatYuan(r.order_amount_fen))} · </span>
                    <span>{t.toPay(formatYuan(r.to_pay_fen))}</span>
                    {" · "}
                    <span class="saved">{t.discount(formatYuan(r.discount_fen))}</span>
                  </p>
                  {r.reversed_fen > 0 && <p class="meta">{t.reversed(formatYuan(r.reversed_fen))}</p>}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      <div class="signout">
        <button type="button" class="secondary-button" onClick={onSignOut}>
          {t.signOut}
        </button>
      </div>
    </section>
  );
}
