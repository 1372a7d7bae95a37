// 运行状态: the last cross-check of Redis against PostgreSQL (by anyone: the cron's
// `reconciliation check` records its result too), with its differences, and the outbox's
// lag read live. A province officer can run a check now.

import { useState } from "preact/hooks";
import * as api from "./api";
import { dateTime } from "./format";
import { useT } from "./i18n";
import type { Check, Officer, Ops as OpsData } from "./types";
import { Loaded, errorCode, errorText, useLoad } from "./ui";

function LastCheck(props: { check: Check | null }) {
  const t = useT();
  const c = props.check;
  if (!c) {
    return (
      <div data-testid="last-check" data-clean="">
        <p class="empty">{t.noCheck}</p>
      </div>
    );
  }
  return (
    <div data-testid="last-check" data-clean={String(c.clean)} data-check-id={c.id}>
      <dl class="facts">
        <div>
          <dt>{t.checkResult}</dt>
          <dd>
            {c.clean ? (
              <span class="ok-text" data-testid="check-clean">
                {t.checkClean}
              </span>
            ) : (
              <span class="bad-text" data-testid="check-differences">
                {t.checkDiffs(c.differences.length)}
              </span>
            )}
          </dd>
        </div>
        <div>
          <dt>{t.checkAt}</dt>
          <dd data-testid="check-at">{dateTime(c.at)}</dd>
        </div>
        <div>
          <dt>{t.checkActor}</dt>
          <dd data-testid="check-actor">{c.actor}</dd>
        </div>
        <div>
          <dt>{t.checkCampaigns}</dt>
          <dd class="tabular">{c.campaigns}</dd>
        </div>
        <div>
          <dt>{t.checkOutbox}</dt>
          <dd>{t.outboxPair(c.outbox_len, c.outbox_pending)}</dd>
        </div>
      </dl>
      {c.differences.length > 0 && (
        <table class="table compact differences" data-testid="differences-table">
          <caption class="visually-hidden">{t.checkDiffs(c.differences.length)}</caption>
          <thead>
            <tr>
              <th scope="col">{t.colCampaign}</th>
              <th scope="col">{t.colItem}</th>
              <th scope="col">Redis</th>
              <th scope="col">PostgreSQL</th>
            </tr>
          </thead>
          <tbody>
            {c.differences.map((d, i) => (
              <tr key={i} data-testid="difference-row">
                <th scope="row">{d.campaign_id === null ? t.none : `#${d.campaign_id}`}</th>
                <td class="mono">{d.item}</td>
                <td class="mono">{d.redis}</td>
                <td class="mono">{d.postgres}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function Body(props: { data: OpsData; province: boolean; reload: () => void }) {
  const t = useT();
  const { data } = props;
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ text: string; code: string } | null>(null);
  const [done, setDone] = useState(false);
  const [fresh, setFresh] = useState<Check | null>(null);
  const check = fresh && (!data.last_check || fresh.id >= data.last_check.id) ? fresh : data.last_check;

  const runCheck = async () => {
    setBusy(true);
    setProblem(null);
    setDone(false);
    try {
      setFresh(await api.runCheck());
      setDone(true);
      props.reload();
    } catch (e) {
      setProblem({ text: errorText(e, t), code: errorCode(e) });
    } finally {
      setBusy(false);
    }
  };

  const o = data.outbox;
  return (
    <>
      <section class="panel" aria-labelledby="check-title">
        <div class="panel-head">
          <h2 id="check-title">{t.lastCheckTitle}</h2>
          {props.province && (
            <button type="button" class="btn btn-primary" data-testid="run-check" disabled={busy} aria-busy={busy} onClick={() => void runCheck()}>
              {busy ? t.checking : t.runCheck}
            </button>
          )}
        </div>
        <div aria-live="polite">
          {problem && (
            <p class="error-box" data-testid="action-error" data-code={problem.code}>
              {problem.text}
              <span class="error-code"> · {t.errorCode(problem.code)}</span>
            </p>
          )}
          {done && <p class="visually-hidden">{t.checkDone}</p>}
        </div>
        <LastCheck check={check} />
      </section>
      <section class="panel" aria-labelledby="outbox-title">
        <h2 id="outbox-title">{t.outboxTitle}</h2>
        <div data-testid="outbox-lag" data-available={String(o.available)}>
          {o.available ? (
            <dl class="facts">
              <div>
                <dt>{t.outboxLen}</dt>
                <dd class="tabular" data-testid="outbox-len">
                  {o.len ?? t.none}
                </dd>
              </div>
              <div>
                <dt>{t.outboxPending}</dt>
                <dd class="tabular" data-testid="outbox-pending">
                  {o.pending ?? t.none}
                </dd>
              </div>
            </dl>
          ) : (
            <p class="bad-text">{t.outboxUnavailable}</p>
          )}
        </div>
      </section>
    </>
  );
}

export function Ops(props: { officer: Officer }) {
  const t = useT();
  const { state, reload } = useLoad(() => api.ops(), []);
  return (
    <div data-testid="ops" class="screen">
      <div class="page-head">
        <h1>{t.opsTitle}</h1>
      </div>
      <Loaded load={state} retry={reload}>
        {(data) => <Body data={data} province={props.officer.role === "province"} reload={reload} />}
      </Loaded>
    </div>
  );
}
