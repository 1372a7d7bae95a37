// The overview's charts, in their own chunk (loaded by a dynamic import from the overview,
// so the sign-in screen stays small). Chart.js with only the controllers and elements used
// registered. Values are integer fen; every tick and tooltip is formatted from
// Math.round(value) by the integer formatters, never shown as a float. Animations are off:
// the charts draw once, the same each time (stable screenshots).

import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  DoughnutController,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type TooltipItem,
} from "chart.js";
import { formatWanYuan, formatYuan } from "../shared/money";
import { shortDay } from "./format";
import type { Texts } from "./i18n";
import type { CategorySpending, CityBudget, DaySpending, ProgramOverview } from "./types";

Chart.register(
  LineController,
  LineElement,
  PointElement,
  BarController,
  BarElement,
  DoughnutController,
  ArcElement,
  CategoryScale,
  LinearScale,
  Tooltip,
  Legend,
  Filler,
);

Chart.defaults.font.family =
  'system-ui, -apple-system, "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif';
Chart.defaults.font.size = 12;
Chart.defaults.color = "#3b4a5a";

export const COLORS = {
  spent: "#1f4e79",
  committed: "#6f9fd1",
  remaining: "#2e7d4f",
  bar: "#2f6690",
  grid: "#e3e8ee",
  palette: ["#1f4e79", "#2e7d4f", "#b5651d", "#7b4f9d", "#a23b4a", "#3d7e8c", "#8a7a2b", "#5a6b7d"],
};

const fen = (v: number | string) => Math.round(Number(v));
/** Axis ticks: 万元 for large amounts (whole 万 without ".00"), from the rounded value. */
const tick = (v: number | string) => formatWanYuan(fen(v)).replace(/\.00万$/, "万");

/** What the overview keeps of a chart: a way to remove it. */
export interface ChartHandle {
  destroy(): void;
}

/** The part of a bar or line tooltip item the label reads. */
interface CartesianItem {
  parsed: { x: number | null; y: number | null };
  dataset: { label?: string };
}

function tooltipLine(axis: "x" | "y") {
  return (ctx: CartesianItem) => {
    const v = axis === "y" ? ctx.parsed.y : ctx.parsed.x;
    return v === null ? "" : `${ctx.dataset.label ?? ""}: ${formatYuan(fen(v))}`;
  };
}

const base = {
  animation: false as const,
  responsive: true,
  maintainAspectRatio: false,
};

/** Cumulative spent and committed stacked, the remaining budget as a line (when capped). */
export function burnChart(canvas: HTMLCanvasElement, p: ProgramOverview, t: Texts): ChartHandle {
  const labels = p.burn.map((b) => shortDay(b.day));
  const capped = p.burn.some((b) => b.remaining_fen !== null);
  const config: ChartConfiguration<"line"> = {
    type: "line",
    data: {
      labels,
      datasets: [
        {
          label: t.spent,
          data: p.burn.map((b) => b.spent_fen),
          borderColor: COLORS.spent,
          backgroundColor: "rgba(31, 78, 121, 0.35)",
          fill: "origin",
          stack: "used",
          pointRadius: 0,
          borderWidth: 2,
        },
        {
          label: t.committed,
          data: p.burn.map((b) => b.committed_fen),
          borderColor: COLORS.committed,
          backgroundColor: "rgba(111, 159, 209, 0.3)",
          fill: "-1",
          stack: "used",
          pointRadius: 0,
          borderWidth: 2,
        },
        ...(capped
          ? [
              {
                label: t.remaining,
                data: p.burn.map((b) => b.remaining_fen),
                borderColor: COLORS.remaining,
                backgroundColor: COLORS.remaining,
                borderDash: [6, 4],
                fill: false,
                stack: "remaining",
                pointRadius: 0,
                borderWidth: 2,
              },
            ]
          : []),
      ],
    },
    options: {
      ...base,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { grid: { display: false }, ticks: { maxTicksLimit: 8, maxRotation: 0 } },
        y: { stacked: true, beginAtZero: true, grid: { color: COLORS.grid }, ticks: { callback: tick, maxTicksLimit: 6 } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
        tooltip: { callbacks: { label: tooltipLine("y") } },
      },
    },
  };
  return new Chart(canvas, config);
}

export function byDayChart(canvas: HTMLCanvasElement, days: DaySpending[], t: Texts): ChartHandle {
  const config: ChartConfiguration<"bar"> = {
    type: "bar",
    data: {
      labels: days.map((d) => shortDay(d.day)),
      datasets: [
        {
          label: t.colSpending,
          data: days.map((d) => d.spending_fen),
          backgroundColor: COLORS.bar,
          maxBarThickness: 28,
        },
      ],
    },
    options: {
      ...base,
      scales: {
        x: { grid: { display: false }, ticks: { maxTicksLimit: 10, maxRotation: 0 } },
        y: { beginAtZero: true, grid: { color: COLORS.grid }, ticks: { callback: tick, maxTicksLimit: 6 } },
      },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: tooltipLine("y") } },
      },
    },
  };
  return new Chart(canvas, config);
}

export function categoryChart(canvas: HTMLCanvasElement, cats: CategorySpending[]): ChartHandle {
  const config: ChartConfiguration<"doughnut"> = {
    type: "doughnut",
    data: {
      labels: cats.map((c) => c.category_name),
      datasets: [
        {
          data: cats.map((c) => Math.max(0, c.spending_fen)),
          backgroundColor: cats.map((_, i) => COLORS.palette[i % COLORS.palette.length] ?? COLORS.bar),
          borderColor: "#ffffff",
          borderWidth: 2,
        },
      ],
    },
    options: {
      ...base,
      cutout: "58%",
      plugins: {
        legend: { position: "right", labels: { boxWidth: 12, boxHeight: 12 } },
        tooltip: {
          callbacks: {
            label: (ctx: TooltipItem<"doughnut">) => `${ctx.label}: ${formatYuan(fen(ctx.parsed))}`,
          },
        },
      },
    },
  };
  return new Chart(canvas, config);
}

/** Per city: spent and committed stacked, then what remains of the allocation (to its length). */
export function citiesChart(canvas: HTMLCanvasElement, cities: CityBudget[], labels: (string | string[])[], t: Texts): ChartHandle {
  const config: ChartConfiguration<"bar"> = {
    type: "bar",
    data: {
      labels,
      datasets: [
        { label: t.spent, data: cities.map((c) => c.spent_fen), backgroundColor: COLORS.spent, maxBarThickness: 26 },
        { label: t.committed, data: cities.map((c) => c.committed_fen), backgroundColor: COLORS.committed, maxBarThickness: 26 },
        {
          label: t.remaining,
          // The bar shows the allocation's length; a negative remainder (over-committed) shows
          // as none here and as its figure in the table.
          data: cities.map((c) => (c.remaining_fen === null ? 0 : Math.max(0, c.remaining_fen))),
          backgroundColor: "#d5e3d9",
          borderColor: COLORS.remaining,
          borderWidth: 1,
          maxBarThickness: 26,
        },
      ],
    },
    options: {
      ...base,
      indexAxis: "y",
      scales: {
        x: { stacked: true, beginAtZero: true, grid: { color: COLORS.grid }, ticks: { callback: tick, maxTicksLimit: 6 } },
        y: { stacked: true, grid: { display: false } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
        tooltip: { callbacks: { label: tooltipLine("x") } },
      },
    },
  };
  return new Chart(canvas, config);
}
