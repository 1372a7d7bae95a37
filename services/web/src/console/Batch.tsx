// 批次: one city's batch of a run — its figures, county co-funding, the status and its
// history, what each merchant is owed, and the next step of the workflow (draft → 市级确认 →
// 省级确认 → 已支付) when this officer may take it, after a confirmation dialog. The
// server's answer to the step re-renders the batch.

import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { ApiFailure } from "../shared/http";
import { formatYuan } from "../shared/money";
import * as api from "./api";
import { dateTime } from "./format";
import { useT } from "./i18n";
import { href } from "./router";
import type { BatchDetail, BatchMerchants } from "./types";
import {
  Downloads,
  Loaded,
  Modal,
  StatusBadge,
  Yuan,
  errorCode,
  errorText,
  roleName,
  sumFen,
  useLoad,
} from "./ui";

function Figure(props: { label: string; fen: number | null; testid: string; strong?: boolean }) {
  return (
    <div class={props.strong ? "figure strong" : "figure"}>
      <dt>{props.label}</dt>
      <dd>
        <Yuan fen={props.fen} testid={props.testid} />
      </dd>
    </div>
  );
}

function Merchants(props: { data: BatchMerchants }) {
  const t = useT();
  const rows = props.data.merchants;
  if (rows.length === 0) return <p class="empty">{t.noMerchants}</p>;
  return (
    <div class="table-scroll">
      <table class="table" data-testid="merchants-table">
        <caption class="visually-hidden">{t.merchantsTitle}</caption>
        <thead>
          <tr>
            <th scope="col">{t.colMerchant}</th>
            <th scope="col">{t.colMerchantId}</th>
            <th scope="col" class="num">{t.colGranted}</th>
            <th scope="col" class="num">{t.colReversed}</th>
            <th scope="col" class="num">{t.colPayable}</th>
            <th scope="col" class="num">{t.colRedemptions}</th>
            <th scope="col" class="num">{t.colReversals}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((m) => (
            <tr key={m.merchant_id} data-testid="merchant-row" data-merchant-id={m.merchant_id}>
              <th scope="row">{m.merchant_name}</th>
              <td class="mono small">{m.merchant_id}</td>
              <td class="num">{formatYuan(m.granted_fen)}</td>
              <td class="num">{formatYuan(m.reversed_fen)}</td>
              <td class="num">
                <Yuan fen={m.payable_fen} testid="merchant-payable" />
              </td>
              <td class="num">{m.redemptions}</td>
              <td class="num">{m.reversals}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr data-testid="merchants-total">
            <th scope="row" colSpan={2}>
              {t.total}
            </th>
            <td class="num">{formatYuan(sumFen(rows, (m) => m.granted_fen))}</td>
            <td class="num">{formatYuan(sumFen(rows, (m) => m.reversed_fen))}</td>
            <td class="num">
              <Yuan fen={sumFen(rows, (m) => m.payable_fen)} testid="merchants-payable-total" />
            </td>
            <td class="num">{rows.reduce((n, m) => n + m.redemptions, 0)}</td>
            <td class="num">{rows.reduce((n, m) => n + m.reversals, 0)}</td>
          </tr>
        </tfoot>
      </table>
    </div>
  );
}

function Lines(props: { data: BatchMerchants }) {
  const t = useT();
  const rows = props.data.lines;
  if (rows.length === 0) return null;
  return (
    <div class="table-scroll">
      <h3>{t.linesTitle}</h3>
      <table class="table" data-testid="subsidy-lines-table">
        <thead>
          <tr>
            <th scope="col">{t.colKind}</th>
            <th scope="col">{t.colPayee}</th>
            <th scope="col" class="num">{t.colGranted}</th>
            <th scope="col" class="num">{t.colReversed}</th>
            <th scope="col" class="num">{t.colPayable}</th>
            <th scope="col" class="num">{t.colLines}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((l) => (
            <tr key={`${l.kind}-${l.payee_kind}-${l.payee_id}`} data-testid="subsidy-line-row" data-kind={l.kind}>
              <td class="mono small">{l.kind}</td>
              <th scope="row">{l.payee_kind === "resident" ? t.resident(l.payee_id) : `${l.payee_name} (${l.payee_id})`}</th>
              <td class="num">{formatYuan(l.granted_fen)}</td>
              <td class="num">{formatYuan(l.reversed_fen)}</td>
              <td class="num">
                <Yuan fen={l.payable_fen} testid="subsidy-line-payable" />
              </td>
              <td class="num">{l.lines}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr data-testid="subsidy-lines-total">
            <th scope="row" colSpan={4}>
              {t.total}
            </th>
            <td class="num">{formatYuan(sumFen(rows, (l) => l.payable_fen))}</td>
            <td class="num">{rows.reduce((n, l) => n + l.lines, 0)}</td>
          </tr>
        </tfoot>
      </table>
    </div>
  );
}

function Advances(props: { data: BatchMerchants }) {
  const t = useT();
  const rows = props.data.advances;
  if (rows.length === 0) return null;
  return (
    <div class="table-scroll">
      <h3>{t.advancesTitle}</h3>
      <table class="table" data-testid="advances-table">
        <thead>
          <tr>
            <th scope="col">{t.colMerchantId}</th>
            <th scope="col" class="num">{t.colPayable}</th>
            <th scope="col" class="num">{t.colAdvanceBefore}</th>
            <th scope="col" class="num">{t.colDrawdown}</th>
            <th scope="col" class="num">{t.colAdvanceAfter}</th>
            <th scope="col" class="num">{t.colNetPayable}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((a) => (
            <tr key={a.merchant_id} data-testid="advance-row" data-merchant-id={a.merchant_id}>
              <th scope="row" class="mono small">{a.merchant_id}</th>
              <td class="num">{formatYuan(a.payable_fen)}</td>
              <td class="num">{formatYuan(a.outstanding_before_fen)}</td>
              <td class="num">{formatYuan(a.drawdown_fen)}</td>
              <td class="num">{formatYuan(a.outstanding_after_fen)}</td>
              <td class="num">{formatYuan(a.net_payable_fen)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Payables(props: { data: BatchMerchants }) {
  return (
    <>
      <Merchants data={props.data} />
      <Lines data={props.data} />
      <Advances data={props.data} />
    </>
  );
}

function Action(props: { b: BatchDetail; onDone: (b: BatchDetail) => void; onStale: () => void }) {
  const t = useT();
  const { b } = props;
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ text: string; code: string } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const next = b.next;

  const go = async () => {
    if (!next) return;
    setBusy(true);
    setProblem(null);
    try {
      const answer = await api.confirmBatch(b.batch_id, next.to);
      setDone(answer.status);
      props.onDone(answer);
    } catch (e) {
      setProblem({ text: errorText(e, t), code: errorCode(e) });
      // Someone else moved the batch meanwhile: show where it is now.
      if (e instanceof ApiFailure && e.status === 409) props.onStale();
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };

  return (
    <div class="action">
      {next === null ? (
        <p class="muted" data-testid="next-step" data-to="">
          {t.nextDone}
        </p>
      ) : next.allowed ? (
        <button
          type="button"
          class={`btn ${next.to === "paid" ? "btn-pay" : "btn-primary"}`}
          data-testid="confirm-button"
          data-to={next.to}
          onClick={() => {
            setDone(null);
            setProblem(null);
            setAsking(true);
          }}
        >
          {t.confirmAction[next.to]}
        </button>
      ) : (
        <p class="waiting" data-testid="next-step" data-to={next.to} data-role={next.role}>
          {t.waitingFor(next.to, roleName(next.role, null, t))}
        </p>
      )}
      <div aria-live="polite">
        {problem && (
          <p class="error-box" data-testid="action-error" data-code={problem.code}>
            {problem.text}
            <span class="error-code"> · {t.errorCode(problem.code)}</span>
          </p>
        )}
        {done && (
          <p class="ok-box" data-testid="action-done">
            {t.confirmDone(t.status[done] ?? done)}
          </p>
        )}
      </div>
      {asking && next && (
        <Modal title={t.confirmTitle(t.confirmAction[next.to] ?? next.to)} testid="confirm-dialog" busy={busy} onCancel={() => setAsking(false)}>
          <p>
            <strong>
              {b.city_name} · {b.run.program_name} · {b.run.period}
            </strong>
          </p>
          <p>{t.confirmFromTo(t.status[b.status] ?? b.status, t.status[next.to] ?? next.to)}</p>
          <p class="muted small">{t.confirmAmounts}</p>
          <dl class="dialog-figures">
            <div>
              <dt>{t.figSpending}</dt>
              <dd class="num">{formatYuan(b.spending_fen)}</dd>
            </div>
            <div>
              <dt>{t.figProvince}</dt>
              <dd class="num">{formatYuan(b.province_fen)}</dd>
            </div>
            <div>
              <dt>{t.figCity}</dt>
              <dd class="num">{formatYuan(b.city_fen)}</dd>
            </div>
            <div>
              <dt>{t.figCounty}</dt>
              <dd class="num">{formatYuan(b.county_fen)}</dd>
            </div>
          </dl>
          <p class="muted small">{next.to === "paid" ? t.confirmPaidNote : t.confirmNote}</p>
          <div class="dialog-actions">
            <button type="button" class="btn btn-secondary" data-testid="confirm-cancel" data-initial-focus disabled={busy} onClick={() => setAsking(false)}>
              {t.cancel}
            </button>
            <button type="button" class="btn btn-primary" data-testid="confirm-ok" disabled={busy} aria-busy={busy} onClick={() => void go()}>
              {busy ? t.confirmBusy : t.confirmAction[next.to]}
            </button>
          </div>
        </Modal>
      )}
    </div>
  );
}

function Body(props: { b: BatchDetail; set: (b: BatchDetail) => void; reload: () => void; merchants: JSX.Element }) {
  const t = useT();
  const { b } = props;
  return (
    <>
      <div class="page-head">
        <h1>{t.batchTitle(b.city_name, b.batch_id)}</h1>
        <a href={href.run(b.run.run_id)} class="back-link" data-testid="back-to-run">
          {t.backToRun(b.run.run_id)}
        </a>
      </div>
      <p class="muted subtitle">{t.batchOf(b.run.program_name, b.run.period)}</p>
      <div class="batch-top">
        <section class="panel" aria-labelledby="figures-title">
          <h2 id="figures-title">{t.figures}</h2>
          <dl class="figure-grid">
            <Figure label={t.figSpending} fen={b.spending_fen} testid="batch-spending" strong />
            <Figure label={t.figProvince} fen={b.province_fen} testid="batch-province" strong />
            <Figure label={t.figCity} fen={b.city_fen} testid="batch-city" strong />
            <Figure label={t.figCounty} fen={b.county_fen} testid="batch-county" strong />
            <Figure label={t.figGranted} fen={b.granted_fen} testid="batch-granted" />
            <Figure label={t.figReversed} fen={b.reversed_fen} testid="batch-reversed" />
            <Figure label={t.figClaim} fen={b.claim_fen} testid="batch-claim" />
            <Figure label={t.figPaidBefore} fen={b.paid_before_fen} testid="batch-paid-before" />
            <Figure label={t.figAllocation} fen={b.allocation_fen} testid="batch-allocation" />
            <Figure label={t.figAllocRemaining} fen={b.allocation_remaining_fen} testid="batch-allocation-remaining" />
            <Figure label={t.figPoolRemaining} fen={b.pool_remaining_fen} testid="batch-pool-remaining" />
            <div class="figure">
              <dt>{t.colLimit}</dt>
              <dd data-limit={b.limit}>{t.limits[b.limit] ?? b.limit}</dd>
            </div>
          </dl>
          <p class="muted small">{t.countsText(b.redemptions, b.reversals, b.merchants)}</p>
        </section>
        <section class="panel" aria-labelledby="status-title">
          <h2 id="status-title">{t.statusTitle}</h2>
          <p class="status-line">
            <StatusBadge status={b.status} testid="batch-status" />
          </p>
          <Action b={b} onDone={props.set} onStale={props.reload} />
          <h3>{t.historyTitle}</h3>
          <ol class="steps" data-testid="steps">
            {b.steps.map((s, i) => (
              <li key={`${s.status}-${i}`} data-testid="step-row" data-status={s.status}>
                <span class={`dot status-${s.status}`} aria-hidden="true" />
                <div>
                  <p>
                    <strong>{t.status[s.status] ?? s.status}</strong>
                    <span class="muted small"> · {dateTime(s.at)}</span>
                  </p>
                  <p class="small" data-testid="step-actor">
                    {t.stepBy(s.actor, roleName(s.role, s.place, t), s.place_name ?? "")}
                  </p>
                </div>
              </li>
            ))}
          </ol>
        </section>
      </div>
      {b.counties.length > 0 && (
        <section class="panel" aria-labelledby="counties-title">
          <h2 id="counties-title">{t.countiesTitle}</h2>
          <table class="table compact" data-testid="counties-table">
            <caption class="visually-hidden">{t.countiesTitle}</caption>
            <thead>
              <tr>
                <th scope="col">{t.colCountyName}</th>
                <th scope="col" class="num">{t.colSpendingS}</th>
                <th scope="col" class="num">{t.colCounty}</th>
              </tr>
            </thead>
            <tbody>
              {b.counties.map((c) => (
                <tr key={c.county} data-testid="county-row" data-county={c.county}>
                  <th scope="row">{c.county_name}</th>
                  <td class="num">{formatYuan(c.spending_fen)}</td>
                  <td class="num">{formatYuan(c.county_fen)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">{t.total}</th>
                <td class="num">{formatYuan(sumFen(b.counties, (c) => c.spending_fen))}</td>
                <td class="num">{formatYuan(sumFen(b.counties, (c) => c.county_fen))}</td>
              </tr>
            </tfoot>
          </table>
        </section>
      )}
      <section class="panel" aria-labelledby="merchants-title">
        <h2 id="merchants-title">{t.merchantsTitle}</h2>
        {props.merchants}
      </section>
      <Downloads period={b.run.period} />
    </>
  );
}

export function Batch(props: { id: number }) {
  const detail = useLoad(() => api.batch(props.id), [props.id]);
  const merchants = useLoad(() => api.batchMerchants(props.id), [props.id]);
  return (
    <div data-testid="batch" class="screen">
      <Loaded load={detail.state} retry={detail.reload}>
        {(b) => (
          <Body
            b={b}
            set={detail.set}
            reload={detail.reload}
            merchants={
              <Loaded load={merchants.state} retry={merchants.reload}>
                {(m) => <Payables data={m} />}
              </Loaded>
            }
          />
        )}
      </Loaded>
    </div>
  );
}
