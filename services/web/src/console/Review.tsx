// 疑似套现排查: the review's findings for a period (ranked by score: evidence to look at,
// not a verdict), each with sample redemptions to open. Without a period in the address,
// the newest settled period is shown (or yesterday in Beijing when none is settled yet).

import { useEffect, useState } from "preact/hooks";
import { formatYuan } from "../shared/money";
import * as api from "./api";
import { beijingDay, isDay, percentFromBp } from "./format";
import { type Texts, useT } from "./i18n";
import { href, replaceHash } from "./router";
import type { Finding, PeriodSummary } from "./types";
import { Loaded, Loading, useLoad } from "./ui";

/**
 * The evidence in the page's language. The service writes it as an English sentence; the
 * four known shapes are read back into their figures (amounts in fen shown in yuan), and
 * anything else is shown as written.
 */
export function evidenceText(f: Finding, t: Texts): string {
  const e = f.evidence;
  let m = /^(\d+) redemptions, (-?\d+) fen of discounts$/.exec(e);
  if (m) return t.evidence.samePerson(m[1] ?? "", formatYuan(Number(m[2])));
  m = /^(\d+) of (\d+) threshold orders within (\d+) bp above the threshold$/.exec(e);
  if (m) return t.evidence.threshold(m[1] ?? "", m[2] ?? "", percentFromBp(Number(m[3])));
  m = /^(\d+) redemptions in the hour from (.+?) \(normal ≈ ([\d.]+) per hour\)$/.exec(e);
  if (m) return t.evidence.burst(m[1] ?? "", (m[2] ?? "").replace(/ \+08:00$/, ""), m[3] ?? "");
  m = /^(\d+) reversals within (\d+) min of the redemption, (-?\d+) fen of discounts$/.exec(e);
  if (m) return t.evidence.quickReversal(m[1] ?? "", m[2] ?? "", formatYuan(Number(m[3])));
  return e;
}

function Picker(props: { period: string; periods: PeriodSummary[] }) {
  const t = useT();
  const [day, setDay] = useState(isDay(props.period) ? props.period : "");
  const known = props.periods.some((p) => p.period === props.period);
  return (
    <form
      class="inline-form"
      data-testid="review-picker"
      onSubmit={(e) => {
        e.preventDefault();
        if (isDay(day)) location.hash = href.review(day);
      }}
    >
      <div class="field">
        <label for="review-period">{t.reviewPeriod}</label>
        <select
          id="review-period"
          data-testid="review-period"
          value={props.period}
          onChange={(e) => {
            location.hash = href.review(e.currentTarget.value);
          }}
        >
          {!known && <option value={props.period}>{props.period}</option>}
          {props.periods.map((p) => (
            <option key={p.period} value={p.period}>
              {p.period}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="review-day">{t.reviewDay}</label>
        <input id="review-day" type="date" data-testid="review-day" value={day} onInput={(e) => setDay(e.currentTarget.value)} />
      </div>
      <button type="submit" class="btn btn-secondary">
        {t.reviewShow}
      </button>
    </form>
  );
}

function Findings(props: { period: string }) {
  const t = useT();
  const { state, reload } = useLoad(() => api.review(props.period), [props.period]);
  return (
    <Loaded load={state} retry={reload}>
      {(r) =>
        r.findings.length === 0 ? (
          <p class="empty" data-testid="no-findings">
            {t.noFindings}
          </p>
        ) : (
          <div class="table-scroll">
            <table class="table" data-testid="findings-table">
              <caption class="visually-hidden">{t.reviewOf(r.period)}</caption>
              <thead>
                <tr>
                  <th scope="col" class="num">{t.colRank}</th>
                  <th scope="col" class="num">{t.colScore}</th>
                  <th scope="col">{t.colPattern}</th>
                  <th scope="col">{t.colMerchant}</th>
                  <th scope="col">{t.colCity}</th>
                  <th scope="col">{t.colPerson}</th>
                  <th scope="col">{t.colEvidence}</th>
                  <th scope="col">{t.colSample}</th>
                </tr>
              </thead>
              <tbody>
                {r.findings.map((f) => (
                  <tr key={`${f.rank}-${f.pattern}-${f.merchant_id}`} data-testid="finding-row" data-pattern={f.pattern} data-merchant-id={f.merchant_id}>
                    <th scope="row" class="num">
                      {f.rank}
                    </th>
                    <td class="num">
                      <span class="score">{f.score}</span>
                    </td>
                    <td>
                      <span class={`pattern pattern-${f.pattern}`}>{f.pattern_name}</span>
                    </td>
                    <td>
                      {f.merchant_name}
                      <br />
                      <span class="mono small muted">{f.merchant_id}</span>
                    </td>
                    <td>{f.city_name}</td>
                    <td class="mono small">{f.person_id ?? t.none}</td>
                    <td class="evidence" title={f.evidence}>
                      {evidenceText(f, t)}
                    </td>
                    <td>
                      {f.sample.length === 0 && <span class="muted">{t.none}</span>}
                      <ul class="samples">
                        {f.sample.map((id, i) => (
                          <li key={id}>
                            <a href={href.redemption(id)} data-testid="redemption-link" data-redemption-id={id} aria-label={t.sampleLabel(i + 1, id)}>
                              {t.sampleLink(i + 1)}
                            </a>
                          </li>
                        ))}
                      </ul>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
      }
    </Loaded>
  );
}

export function Review(props: { period: string | null }) {
  const t = useT();
  const periods = useLoad(() => api.periods(), []);
  const list = periods.state.kind === "ok" ? periods.state.data.periods : null;
  const failed = periods.state.kind === "error";

  // No period asked for: the newest settled one, or yesterday (Beijing) when none is.
  useEffect(() => {
    if (props.period) return;
    if (list) replaceHash(href.review(list[0]?.period ?? beijingDay(-1)));
    else if (failed) replaceHash(href.review(beijingDay(-1)));
  }, [props.period, list, failed]);

  return (
    <div data-testid="review" class="screen">
      <div class="page-head">
        <h1>{t.reviewTitle}</h1>
      </div>
      <p class="muted">{t.reviewIntro}</p>
      {props.period ? (
        <>
          <section class="panel">
            <Picker key={props.period} period={props.period} periods={list ?? []} />
          </section>
          <section class="panel" aria-labelledby="findings-title">
            <h2 id="findings-title">{t.reviewOf(props.period)}</h2>
            <Findings key={props.period} period={props.period} />
          </section>
        </>
      ) : (
        <Loading />
      )}
    </div>
  );
}
