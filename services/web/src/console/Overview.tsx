// 总览: per program the budget (pool, the city's allocation, or none), what is settled,
// what is committed and not yet settled, what remains, when it runs out at the last 7 days'
// pace, and a burn chart; then spending by day, by category and each city against its
// allocation. Each chart has a table of the same numbers in yuan beside it.

import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { formatYuan } from "../shared/money";
import * as api from "./api";
import { percentFromBp } from "./format";
import { type Texts, useT } from "./i18n";
import type { CityBudget, Overview as OverviewData, ProgramOverview } from "./types";
import { Loaded, Yuan, sumFen, useLoad } from "./ui";

type ChartsModule = typeof import("./charts");
type Chart = import("./charts").ChartHandle;

/** Draws a chart on the canvas once the chart chunk is loaded; destroys it on change or unmount. */
function useChart(draw: (m: ChartsModule, canvas: HTMLCanvasElement) => Chart, deps: unknown[]) {
  const ref = useRef<HTMLCanvasElement>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let chart: Chart | null = null;
    let live = true;
    import("./charts").then(
      (m) => {
        if (live && ref.current) chart = draw(m, ref.current);
      },
      () => live && setFailed(true),
    );
    return () => {
      live = false;
      chart?.destroy();
    };
  }, deps);
  return { ref, failed };
}

function ChartBox(props: {
  testid: string;
  label: string;
  height: number;
  draw: (m: ChartsModule, canvas: HTMLCanvasElement) => Chart;
  deps: unknown[];
}) {
  const t = useT();
  const { ref, failed } = useChart(props.draw, props.deps);
  return (
    <div class="chart-box" style={{ height: `${props.height}px` }}>
      {failed ? (
        <p class="muted small">{t.chartFailed}</p>
      ) : (
        <canvas ref={ref} data-testid={props.testid} role="img" aria-label={props.label} />
      )}
    </div>
  );
}

/** A collapsed table of the numbers behind a chart. */
function DataTable(props: { caption: string; children: ComponentChildren; testid?: string }) {
  const t = useT();
  return (
    <details class="data-table" data-testid={props.testid}>
      <summary>{t.showTable}</summary>
      <table class="table compact">
        <caption class="visually-hidden">{props.caption}</caption>
        {props.children}
      </table>
    </details>
  );
}

function forecastText(p: ProgramOverview, t: Texts): string {
  switch (p.run_out.kind) {
    case "date":
      return t.forecastDate(p.run_out.day);
    case "exhausted":
      return t.forecastExhausted;
    case "idle":
      return t.forecastIdle;
    default:
      return t.forecastUncapped;
  }
}

function ProgramCard(props: { p: ProgramOverview }) {
  const t = useT();
  const { p } = props;
  const capped = p.budget_kind !== "none";
  return (
    <article class="panel program-card" data-testid="program-card" data-program-id={p.program_id} aria-labelledby={`program-${p.program_id}`}>
      <header class="card-head">
        <h2 id={`program-${p.program_id}`}>{p.program_name}</h2>
        <span class={`kind kind-${p.budget_kind}`} data-testid="budget-kind" data-kind={p.budget_kind}>
          {t.budgetKind[p.budget_kind] ?? p.budget_kind}
        </span>
        <span class="muted small">{t.ratio(percentFromBp(p.ratio_bp))}</span>
      </header>
      <dl class="figures">
        <div>
          <dt>{t.budget}</dt>
          <dd>{capped ? <Yuan fen={p.budget_fen} testid="program-budget" /> : <span data-testid="program-budget">{t.uncapped}</span>}</dd>
        </div>
        <div>
          <dt>
            <span class="swatch swatch-spent" aria-hidden="true" />
            {t.spent}
          </dt>
          <dd>
            <Yuan fen={p.spent_fen} testid="program-spent" />
          </dd>
        </div>
        <div>
          <dt>
            <span class="swatch swatch-committed" aria-hidden="true" />
            {t.committed}
          </dt>
          <dd>
            <Yuan fen={p.committed_fen} testid="program-committed" />
          </dd>
        </div>
        <div>
          <dt>
            <span class="swatch swatch-remaining" aria-hidden="true" />
            {t.remaining}
          </dt>
          <dd>
            {p.remaining_fen === null ? (
              <span data-testid="program-remaining">{t.uncapped}</span>
            ) : (
              <Yuan fen={p.remaining_fen} testid="program-remaining" />
            )}
          </dd>
        </div>
      </dl>
      <p class={`forecast-line forecast-${p.run_out.kind}`}>
        <span class="forecast" data-testid="forecast" data-kind={p.run_out.kind}>
          {forecastText(p, t)}
        </span>
        <span class="muted small" data-testid="pace">
          {t.pace(formatYuan(p.pace_fen_per_day))}
        </span>
      </p>
      <h3 class="chart-title">{t.burnTitle}</h3>
      <ChartBox
        testid="burn-chart"
        label={t.burnAria(p.program_name)}
        height={220}
        draw={(m, c) => m.burnChart(c, p, t)}
        deps={[p, t]}
      />
      <DataTable caption={`${p.program_name} ${t.burnTitle}`}>
        <thead>
          <tr>
            <th scope="col">{t.colDay}</th>
            <th scope="col" class="num">{t.spent}</th>
            <th scope="col" class="num">{t.committed}</th>
            <th scope="col" class="num">{t.remaining}</th>
          </tr>
        </thead>
        <tbody>
          {p.burn.map((b) => (
            <tr key={b.day}>
              <th scope="row">{b.day}</th>
              <td class="num">{formatYuan(b.spent_fen)}</td>
              <td class="num">{formatYuan(b.committed_fen)}</td>
              <td class="num">{b.remaining_fen === null ? t.uncapped : formatYuan(b.remaining_fen)}</td>
            </tr>
          ))}
        </tbody>
      </DataTable>
    </article>
  );
}

/** A name cut to `n` characters for a chart axis (the table beside it has it whole). */
function clip(name: string, n: number): string {
  const chars = Array.from(name);
  return chars.length > n ? `${chars.slice(0, n - 1).join("")}…` : name;
}

/** The chart's city labels: the city, and under it the program when there are several. */
function cityLabels(cities: CityBudget[]): (string | string[])[] {
  const programs = new Set(cities.map((c) => c.program_id));
  return cities.map((c) => (programs.size > 1 ? [c.city_name, clip(c.program_name, 14)] : c.city_name));
}

function Body(props: { data: OverviewData }) {
  const t = useT();
  const d = props.data;
  const labels = cityLabels(d.cities);
  const dayTotal = sumFen(d.spending_by_day, (r) => r.spending_fen);
  const dayCount = d.spending_by_day.reduce((n, r) => n + r.redemptions, 0);
  const catTotal = sumFen(d.spending_by_category, (r) => r.spending_fen);
  const catCount = d.spending_by_category.reduce((n, r) => n + r.redemptions, 0);
  return (
    <>
      <div class="page-head">
        <h1>{t.overviewTitle}</h1>
        <p class="muted" data-testid="overview-scope">
          {t.scopeLine(d.scope.place_name, d.today)}
        </p>
      </div>
      {d.programs.length === 0 ? (
        <p class="empty">{t.noPrograms}</p>
      ) : (
        <div class={`program-grid${d.programs.length === 1 ? " single" : ""}`}>
          {d.programs.map((p) => (
            <ProgramCard key={p.program_id} p={p} />
          ))}
        </div>
      )}
      <div class="chart-grid">
        <section class="panel" aria-labelledby="by-day-title">
          <h2 id="by-day-title">{t.byDayTitle}</h2>
          <ChartBox
            testid="chart-by-day"
            label={t.byDayAria}
            height={240}
            draw={(m, c) => m.byDayChart(c, d.spending_by_day, t)}
            deps={[d, t]}
          />
          <DataTable caption={t.byDayTitle} testid="table-by-day">
            <thead>
              <tr>
                <th scope="col">{t.colDay}</th>
                <th scope="col" class="num">{t.colSpending}</th>
                <th scope="col" class="num">{t.colRedemptions}</th>
              </tr>
            </thead>
            <tbody>
              {d.spending_by_day.map((r) => (
                <tr key={r.day}>
                  <th scope="row">{r.day}</th>
                  <td class="num">{formatYuan(r.spending_fen)}</td>
                  <td class="num">{r.redemptions}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">{t.total}</th>
                <td class="num">{formatYuan(dayTotal)}</td>
                <td class="num">{dayCount}</td>
              </tr>
            </tfoot>
          </DataTable>
        </section>
        <section class="panel" aria-labelledby="by-category-title">
          <h2 id="by-category-title">{t.byCategoryTitle}</h2>
          {d.spending_by_category.length === 0 ? (
            <p class="empty">{t.noData}</p>
          ) : (
            <ChartBox
              testid="chart-by-category"
              label={t.byCategoryAria}
              height={240}
              draw={(m, c) => m.categoryChart(c, d.spending_by_category)}
              deps={[d]}
            />
          )}
          <DataTable caption={t.byCategoryTitle} testid="table-by-category">
            <thead>
              <tr>
                <th scope="col">{t.colCategory}</th>
                <th scope="col" class="num">{t.colSpending}</th>
                <th scope="col" class="num">{t.colRedemptions}</th>
              </tr>
            </thead>
            <tbody>
              {d.spending_by_category.map((r) => (
                <tr key={r.category}>
                  <th scope="row">{r.category_name}</th>
                  <td class="num">{formatYuan(r.spending_fen)}</td>
                  <td class="num">{r.redemptions}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">{t.total}</th>
                <td class="num">{formatYuan(catTotal)}</td>
                <td class="num">{catCount}</td>
              </tr>
            </tfoot>
          </DataTable>
        </section>
      </div>
      <section class="panel" aria-labelledby="cities-title">
        <h2 id="cities-title">{t.citiesTitle}</h2>
        {d.cities.length === 0 ? (
          <p class="empty">{t.noData}</p>
        ) : (
          <ChartBox
            testid="chart-cities"
            label={t.citiesAria}
            height={Math.max(140, 80 + 46 * d.cities.length)}
            draw={(m, c) => m.citiesChart(c, d.cities, labels, t)}
            deps={[d, t]}
          />
        )}
        <DataTable caption={t.citiesTitle} testid="table-cities">
          <thead>
            <tr>
              <th scope="col">{t.colCity}</th>
              <th scope="col">{t.colProgram}</th>
              <th scope="col" class="num">{t.colAllocation}</th>
              <th scope="col" class="num">{t.spent}</th>
              <th scope="col" class="num">{t.committed}</th>
              <th scope="col" class="num">{t.remaining}</th>
            </tr>
          </thead>
          <tbody>
            {d.cities.map((c) => (
              <tr key={`${c.program_id}-${c.city}`}>
                <th scope="row">{c.city_name}</th>
                <td>{c.program_name}</td>
                <td class="num">{c.allocation_fen === null ? t.uncapped : formatYuan(c.allocation_fen)}</td>
                <td class="num">{formatYuan(c.spent_fen)}</td>
                <td class="num">{formatYuan(c.committed_fen)}</td>
                <td class="num">{c.remaining_fen === null ? t.none : formatYuan(c.remaining_fen)}</td>
              </tr>
            ))}
          </tbody>
        </DataTable>
      </section>
    </>
  );
}

export function Overview() {
  const { state, reload } = useLoad(() => api.overview(30), []);
  return (
    <div data-testid="overview" class="screen">
      <Loaded load={state} retry={reload}>
        {(data) => <Body data={data} />}
      </Loaded>
    </div>
  );
}
