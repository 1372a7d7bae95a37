// 操作记录: the console's audit log, newest first (a city officer sees their city's and its
// counties' officers only).

import * as api from "./api";
import { dateTime } from "./format";
import { type Texts, useT } from "./i18n";
import type { AuditEntry } from "./types";
import { Loaded, roleName, useLoad } from "./ui";

/** The entry's further facts as "key: value" pairs (known sign-in methods in words). */
function detailText(d: unknown, t: Texts): string {
  if (d === null || d === undefined || d === "") return "";
  if (typeof d !== "object" || Array.isArray(d)) return typeof d === "string" ? d : JSON.stringify(d);
  return Object.entries(d as Record<string, unknown>)
    .map(([k, v]) => {
      const text = typeof v === "string" ? v : JSON.stringify(v);
      return k === "method" ? t.signInMethods[text] ?? text : `${k}: ${text}`;
    })
    .join(" · ");
}


function Row(props: { e: AuditEntry; t: Texts }) {
  const { e, t } = props;
  return (
    <tr data-testid="audit-row" data-action={e.action} data-outcome={e.outcome}>
      <td class="nowrap">{dateTime(e.at)}</td>
      <th scope="row">{e.actor}</th>
      <td>{e.role ? roleName(e.role, e.place, t) : t.none}</td>
      <td class="mono">{e.place ?? t.none}</td>
      <td>{t.actions[e.action] ?? e.action}</td>
      <td class="mono small">{e.target ?? ""}</td>
      <td class={e.outcome === "ok" ? "ok-text" : "bad-text"}>
        {e.outcome === "ok" ? (
          t.outcomeOk
        ) : (
          <>
            {t.outcomeRefused(t.errors[e.outcome] ?? e.outcome)}
            <span class="mono small"> {e.outcome}</span>
          </>
        )}
      </td>
      <td class="small detail">{detailText(e.detail, t)}</td>
    </tr>
  );
}

export function Audit() {
  const t = useT();
  const { state, reload } = useLoad(() => api.audit(100), []);
  return (
    <div data-testid="audit" class="screen">
      <div class="page-head">
        <h1>{t.auditTitle}</h1>
        <p class="muted">{t.auditIntro}</p>
      </div>
      <section class="panel">
        <Loaded load={state} retry={reload}>
          {(data) =>
            data.entries.length === 0 ? (
              <p class="empty">{t.noEntries}</p>
            ) : (
              <div class="table-scroll">
                <table class="table compact">
                  <caption class="visually-hidden">{t.auditTitle}</caption>
                  <thead>
                    <tr>
                      <th scope="col">{t.colAt}</th>
                      <th scope="col">{t.colActor}</th>
                      <th scope="col">{t.colRole}</th>
                      <th scope="col">{t.colPlace}</th>
                      <th scope="col">{t.colAction}</th>
                      <th scope="col">{t.colTarget}</th>
                      <th scope="col">{t.colOutcome}</th>
                      <th scope="col">{t.colDetailText}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.entries.map((e, i) => (
                      <Row key={i} e={e} t={t} />
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Loaded>
      </section>
    </div>
  );
}
