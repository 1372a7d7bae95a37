// 结算: the settled periods (newest first), each with its runs, their sums and how many
// batches are at each step; `#/periods/<period>` shows one period with its downloads. A
// province officer can settle a period from here (after a confirmation), idempotent like
// the command line.

import { useState } from "preact/hooks";
import * as api from "./api";
import { beijingDay, isDay, shortDateTime } from "./format";
import { useT } from "./i18n";
import { href } from "./router";
import type { BatchCounts, Officer, PeriodSummary, SettleResult } from "./types";
import { Downloads, Loaded, Modal, Yuan, errorCode, errorText, useLoad } from "./ui";

const STATUSES: (keyof BatchCounts)[] = ["draft", "city_confirmed", "province_confirmed", "paid"];

function Chips(props: { counts: BatchCounts }) {
  const t = useT();
  const shown = STATUSES.filter((s) => (props.counts[s] ?? 0) > 0);
  if (shown.length === 0) return <span class="muted">{t.none}</span>;
  return (
    <ul class="chips">
      {shown.map((s) => (
        <li key={s} class={`chip status-${s}`} data-testid="batch-chip" data-status={s} data-count={props.counts[s]}>
          {t.status[s]} <span class="num">{props.counts[s]}</span>
        </li>
      ))}
    </ul>
  );
}

function PeriodsTable(props: { periods: PeriodSummary[] }) {
  const t = useT();
  return (
    <div class="table-scroll">
      <table class="table">
        <caption class="visually-hidden">{t.periodsTitle}</caption>
        <thead>
          <tr>
            <th scope="col">{t.colPeriod}</th>
            <th scope="col">{t.colProgram}</th>
            <th scope="col">{t.colRun}</th>
            <th scope="col" class="num">{t.colSpendingS}</th>
            <th scope="col" class="num">{t.colProvince}</th>
            <th scope="col" class="num">{t.colCityShare}</th>
            <th scope="col" class="num">{t.colCounty}</th>
            <th scope="col">{t.colBatches}</th>
          </tr>
        </thead>
        {props.periods.map((p) => {
          const span = Math.max(1, p.runs.length);
          const head = (
            <th scope="rowgroup" rowSpan={span} class="period-cell">
              <a href={href.period(p.period)} class="period-link">
                {p.start === p.end ? (
                  p.period
                ) : (
                  <>
                    {p.start}
                    <br />
                    {t.periodTo} {p.end}
                  </>
                )}
              </a>
            </th>
          );
          return (
            <tbody key={p.period} data-testid="period-row" data-period={p.period} class="period-group">
              {p.runs.length === 0 ? (
                <tr>
                  {head}
                  <td colSpan={7} class="muted">
                    {t.noRuns}
                  </td>
                </tr>
              ) : (
                p.runs.map((r, i) => (
                  <tr key={r.run_id} data-testid="run-row" data-run-id={r.run_id}>
                    {i === 0 && head}
                    <td class="program-name">{r.program_name}</td>
                    <td class="run-cell">
                      <a href={href.run(r.run_id)} data-testid="run-link" data-run-id={r.run_id} class="nowrap">
                        {t.runLink(r.run_id)}
                      </a>
                      <span class="muted small" title={t.colCreated}>
                        {shortDateTime(r.created_at)} · {r.created_by}
                      </span>
                    </td>
                    <td class="num">
                      <Yuan fen={r.spending_fen} testid="run-spending" />
                    </td>
                    <td class="num">
                      <Yuan fen={r.province_fen} testid="run-province" />
                    </td>
                    <td class="num">
                      <Yuan fen={r.city_fen} />
                    </td>
                    <td class="num">
                      <Yuan fen={r.county_fen} />
                    </td>
                    <td>
                      <Chips counts={r.batches} />
                    </td>
                  </tr>
                ))
              )}
            </tbody>
          );
        })}
      </table>
    </div>
  );
}

function SettleForm(props: { onSettled: () => void }) {
  const t = useT();
  const yesterday = beijingDay(-1);
  const [from, setFrom] = useState(yesterday);
  const [to, setTo] = useState(yesterday);
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ text: string; code: string } | null>(null);
  const [result, setResult] = useState<SettleResult | null>(null);

  const submit = (e: Event) => {
    e.preventDefault();
    setResult(null);
    if (!isDay(from) || !isDay(to)) return setProblem({ text: t.settleEmpty, code: "EMPTY" });
    if (to < from) return setProblem({ text: t.settleBadRange, code: "RANGE" });
    setProblem(null);
    setAsking(true);
  };

  const go = async () => {
    setBusy(true);
    try {
      const r = await api.settle(from, to);
      setResult(r);
      props.onSettled();
    } catch (e) {
      setProblem({ text: errorText(e, t), code: errorCode(e) });
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };

  return (
    <section class="panel settle" aria-labelledby="settle-title">
      <h2 id="settle-title">{t.settleTitle}</h2>
      <p class="muted small">{t.settleIntro}</p>
      <form class="inline-form" data-testid="settle-form" noValidate onSubmit={submit}>
        <div class="field">
          <label for="settle-from">{t.settleFrom}</label>
          <input id="settle-from" type="date" data-testid="settle-from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="settle-to">{t.settleTo}</label>
          <input id="settle-to" type="date" data-testid="settle-to" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </div>
        <button type="submit" class="btn btn-primary" data-testid="settle-submit" disabled={busy}>
          {busy ? t.settleBusy : t.settleSubmit}
        </button>
      </form>
      <div aria-live="polite">
        {problem && (
          <p class="error-box" data-testid="action-error" data-code={problem.code}>
            {problem.text}
            {problem.code.includes("_") && <span class="error-code"> · {t.errorCode(problem.code)}</span>}
          </p>
        )}
        {result && (
          <div class="ok-box" data-testid="settle-result" data-period={result.period}>
            <p>
              <strong>{t.settleDone(result.period)}</strong>
            </p>
            {result.created.length > 0 && (
              <p>
                {t.settleCreated}：
                {result.created.map((r) => (
                  <a key={r.run_id} href={href.run(r.run_id)} class="run-ref" data-testid="settle-created" data-run-id={r.run_id}>
                    {t.runLink(r.run_id)}
                  </a>
                ))}
              </p>
            )}
            {result.existing.length > 0 && (
              <p>
                {t.settleExisting}：
                {result.existing.map((r) => (
                  <a key={r.run_id} href={href.run(r.run_id)} class="run-ref" data-testid="settle-existing" data-run-id={r.run_id}>
                    {t.runLink(r.run_id)}
                  </a>
                ))}
              </p>
            )}
          </div>
        )}
      </div>
      {asking && (
        <Modal title={t.settleConfirmTitle} testid="settle-dialog" busy={busy} onCancel={() => setAsking(false)}>
          <p>{t.settleConfirmBody(from, to)}</p>
          <p class="muted small">{t.settleConfirmNote}</p>
          <div class="dialog-actions">
            <button type="button" class="btn btn-secondary" data-testid="settle-cancel" data-initial-focus disabled={busy} onClick={() => setAsking(false)}>
              {t.cancel}
            </button>
            <button type="button" class="btn btn-primary" data-testid="settle-ok" disabled={busy} aria-busy={busy} onClick={() => void go()}>
              {busy ? t.settleBusy : t.settleOk}
            </button>
          </div>
        </Modal>
      )}
    </section>
  );
}

export function Settlement(props: { officer: Officer; period: string | null }) {
  const t = useT();
  const { state, reload } = useLoad(() => api.periods(), []);
  const one = props.period;
  return (
    <div data-testid="settlement" class="screen">
      <div class="page-head">
        <h1>{one ? `${t.settlementTitle} · ${one}` : t.settlementTitle}</h1>
        {one && (
          <a href={href.settlement()} class="back-link">
            {t.backToSettlement}
          </a>
        )}
      </div>
      {props.officer.role === "province" && !one && <SettleForm onSettled={reload} />}
      <section class="panel" aria-labelledby="periods-title">
        <h2 id="periods-title">{t.periodsTitle}</h2>
        <Loaded load={state} retry={reload}>
          {(data) => {
            const periods = one ? data.periods.filter((p) => p.period === one) : data.periods;
            return periods.length === 0 ? <p class="empty">{t.noPeriods}</p> : <PeriodsTable periods={periods} />;
          }}
        </Loaded>
      </section>
      {one && <Downloads period={one} />}
    </div>
  );
}
