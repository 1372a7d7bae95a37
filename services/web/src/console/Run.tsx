// 结算单: one program's run for a period — its header (ratio, the pool before and after,
// who ran it and when), one batch per city with the split of the actual spending S into
// the province's, the city's and the counties' shares, totals summed from the integer fen of
// the rows shown, and the period's report downloads.

import * as api from "./api";
import { dateTime, percentFromBp } from "./format";
import { useT } from "./i18n";
import { href } from "./router";
import type { Run as RunData } from "./types";
import { Downloads, Loaded, StatusBadge, Yuan, sumFen, useLoad } from "./ui";

function Body(props: { run: RunData }) {
  const t = useT();
  const r = props.run;
  const rows = r.batches;
  return (
    <>
      <div class="page-head">
        <h1>{t.runTitle(r.run_id)}</h1>
        <a href={href.period(r.period)} class="back-link">
          {t.backToSettlement}
        </a>
      </div>
      <section class="panel" aria-labelledby="run-head">
        <h2 id="run-head" data-testid="run-program">
          {r.program_name}
        </h2>
        <dl class="facts">
          <div>
            <dt>{t.runPeriod}</dt>
            <dd data-testid="run-period">
              <a href={href.period(r.period)}>{r.period}</a>
            </dd>
          </div>
          <div>
            <dt>{t.runRatio}</dt>
            <dd data-testid="run-ratio">{percentFromBp(r.ratio_bp)}</dd>
          </div>
          {r.county_cofund_bp !== null && (
            <div>
              <dt>{t.runCofund}</dt>
              <dd>{percentFromBp(r.county_cofund_bp)}</dd>
            </div>
          )}
          <div>
            <dt>{t.runPool}</dt>
            <dd>
              <Yuan fen={r.pool_fen} />
            </dd>
          </div>
          <div>
            <dt>{t.runPoolBefore}</dt>
            <dd>
              <Yuan fen={r.pool_before_fen} testid="run-pool-before" />
            </dd>
          </div>
          <div>
            <dt>{t.runPoolAfter}</dt>
            <dd>
              <Yuan fen={r.pool_after_fen} testid="run-pool-after" />
            </dd>
          </div>
          <div>
            <dt>{t.runPayable}</dt>
            <dd>
              <Yuan fen={r.payable_fen} />
            </dd>
          </div>
          <div>
            <dt>{t.runCreatedBy}</dt>
            <dd>{r.created_by}</dd>
          </div>
          <div>
            <dt>{t.runCreatedAt}</dt>
            <dd>{dateTime(r.created_at)}</dd>
          </div>
        </dl>
      </section>
      <section class="panel" aria-labelledby="batches-title">
        <h2 id="batches-title">{t.batchesTitle}</h2>
        {rows.length === 0 ? (
          <p class="empty">{t.noBatches}</p>
        ) : (
          <div class="table-scroll">
            <table class="table" data-testid="batches-table">
              <caption class="visually-hidden">{t.batchesTitle}</caption>
              <thead>
                <tr>
                  <th scope="col">{t.colCity}</th>
                  <th scope="col">{t.colStatus}</th>
                  <th scope="col" class="num">{t.colSpendingS}</th>
                  <th scope="col" class="num">{t.colProvince}</th>
                  <th scope="col" class="num">{t.colCityShare}</th>
                  <th scope="col" class="num">{t.colCounty}</th>
                  <th scope="col" class="num">{t.colAllocRemaining}</th>
                  <th scope="col">{t.colLimit}</th>
                  <th scope="col">
                    <span class="visually-hidden">{t.colDetail}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((b) => (
                  <tr key={b.batch_id} data-testid="batch-row" data-batch-id={b.batch_id} data-city={b.city}>
                    <th scope="row">{b.city_name}</th>
                    <td>
                      <StatusBadge status={b.status} testid="batch-status" />
                    </td>
                    <td class="num">
                      <Yuan fen={b.spending_fen} testid="batch-spending" />
                    </td>
                    <td class="num">
                      <Yuan fen={b.province_fen} testid="batch-province" />
                    </td>
                    <td class="num">
                      <Yuan fen={b.city_fen} testid="batch-city" />
                    </td>
                    <td class="num">
                      <Yuan fen={b.county_fen} testid="batch-county" />
                    </td>
                    <td class="num">
                      <Yuan fen={b.allocation_remaining_fen} testid="batch-allocation-remaining" />
                    </td>
                    <td class="small" data-limit={b.limit}>
                      {t.limits[b.limit] ?? b.limit}
                    </td>
                    <td>
                      <a href={href.batch(b.batch_id)} data-testid="batch-link" aria-label={t.batchLinkLabel(b.city_name)}>
                        {t.batchLink}
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr data-testid="run-totals">
                  <th scope="row">{t.total}</th>
                  <td />
                  <td class="num">
                    <Yuan fen={sumFen(rows, (b) => b.spending_fen)} testid="total-spending" />
                  </td>
                  <td class="num">
                    <Yuan fen={sumFen(rows, (b) => b.province_fen)} testid="total-province" />
                  </td>
                  <td class="num">
                    <Yuan fen={sumFen(rows, (b) => b.city_fen)} testid="total-city" />
                  </td>
                  <td class="num">
                    <Yuan fen={sumFen(rows, (b) => b.county_fen)} testid="total-county" />
                  </td>
                  <td />
                  <td />
                  <td />
                </tr>
              </tfoot>
            </table>
          </div>
        )}
      </section>
      <Downloads period={r.period} />
    </>
  );
}

export function Run(props: { id: number }) {
  const { state, reload } = useLoad(() => api.run(props.id), [props.id]);
  return (
    <div data-testid="run" class="screen">
      <Loaded load={state} retry={reload}>
        {(run) => <Body run={run} />}
      </Loaded>
    </div>
  );
}
