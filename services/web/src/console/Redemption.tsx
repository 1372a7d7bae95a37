// 核销记录: one redemption with every field, amounts in yuan, and its reversals.

import type { ComponentChildren } from "preact";
import { formatYuan } from "../shared/money";
import * as api from "./api";
import { dateTime } from "./format";
import { useT } from "./i18n";
import type { Redemption as RedemptionData } from "./types";
import { Loaded, Yuan, sumFen, useLoad } from "./ui";

function Body(props: { r: RedemptionData }) {
  const t = useT();
  const { r } = props;
  const rows: [string, ComponentChildren, string?][] = [
    [t.redId, <span class="mono">{r.id}</span>, "redemption-id"],
    [t.redStatus, <span class={`status red-status red-${r.status}`} data-status={r.status}>{t.redStatuses[r.status] ?? r.status}</span>, "redemption-status"],
    [t.redMerchant, <>{r.merchant_name} <span class="mono small muted">{r.merchant_id}</span></>],
    [t.redCity, <>{r.city_name} <span class="mono small muted">{r.city}</span></>],
    [t.redCampaign, <>{r.campaign_name} <span class="mono small muted">#{r.campaign_id}</span></>],
    [t.redCategory, t.categories[r.category] ?? r.category],
    [t.redProgram, String(r.program_id)],
    [t.redPerson, <span class="mono">{r.person_id}</span>],
    [t.redOrderRef, <span class="mono">{r.order_ref}</span>],
    [t.redOrder, <Yuan fen={r.order_amount_fen} testid="redemption-order" />],
    [t.redDiscount, <Yuan fen={r.discount_fen} testid="redemption-discount" />],
    [t.redReversed, <Yuan fen={r.reversed_fen} testid="redemption-reversed" />],
    [t.redNet, <Yuan fen={r.discount_fen - r.reversed_fen} testid="redemption-net" />],
    [t.redCreated, dateTime(r.created_at)],
    [t.redResolved, dateTime(r.resolved_at)],
  ];
  return (
    <>
      <div class="page-head">
        <h1>{t.redemptionTitle}</h1>
        <a
          href="#/review"
          class="back-link"
          onClick={(e) => {
            if (history.length > 1) {
              e.preventDefault();
              history.back();
            }
          }}
        >
          {t.back}
        </a>
      </div>
      <section class="panel">
        <dl class="facts wide">
          {rows.map(([label, value, testid]) => (
            <div key={label}>
              <dt>{label}</dt>
              <dd data-testid={testid}>{value}</dd>
            </div>
          ))}
        </dl>
      </section>
      <section class="panel" aria-labelledby="reversals-title">
        <h2 id="reversals-title">{t.reversalsTitle}</h2>
        {r.reversals.length === 0 ? (
          <p class="empty">{t.noReversals}</p>
        ) : (
          <table class="table compact" data-testid="reversals-table">
            <caption class="visually-hidden">{t.reversalsTitle}</caption>
            <thead>
              <tr>
                <th scope="col">{t.colReversalRef}</th>
                <th scope="col" class="num">{t.colRefund}</th>
                <th scope="col" class="num">{t.colDiscountReversed}</th>
                <th scope="col">{t.colTime}</th>
              </tr>
            </thead>
            <tbody>
              {r.reversals.map((v) => (
                <tr key={v.reversal_ref} data-testid="reversal-row">
                  <th scope="row" class="mono">{v.reversal_ref}</th>
                  <td class="num">{formatYuan(v.refund_amount_fen)}</td>
                  <td class="num">{formatYuan(v.discount_reversed_fen)}</td>
                  <td>{dateTime(v.created_at)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">{t.total}</th>
                <td class="num">{formatYuan(sumFen(r.reversals, (v) => v.refund_amount_fen))}</td>
                <td class="num">{formatYuan(sumFen(r.reversals, (v) => v.discount_reversed_fen))}</td>
                <td />
              </tr>
            </tfoot>
          </table>
        )}
      </section>
    </>
  );
}

export function Redemption(props: { id: string }) {
  const { state, reload } = useLoad(() => api.redemption(props.id), [props.id]);
  return (
    <div data-testid="redemption" class="screen">
      <Loaded load={state} retry={reload}>
        {(r) => <Body r={r} />}
      </Loaded>
    </div>
  );
}
