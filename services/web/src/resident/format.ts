// What the page writes in words: rules, categories, Beijing times and countdowns. Amounts
// and rates are integers (fen, basis points) and are turned into text with integer
// arithmetic only; times are shown in Beijing time (UTC+8, no daylight saving) whatever
// the phone's own zone.

import { yuanPlain } from "../shared/money";
import type { Texts } from "./i18n";
import type { CategoryRule, Rule } from "./types";

const BEIJING_OFFSET_MS = 8 * 3600 * 1000;

/**
 * Milliseconds since the epoch of an RFC 3339 time as the services write it, or NaN. Parsed
 * by hand because the services may send more than three fractional digits, which older
 * WebKit's Date.parse refuses.
 */
export function parseInstant(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$/i.exec(text);
  if (!m) return Date.parse(text);
  const frac = m[7];
  const zone = m[8] ?? "Z";
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, "0")) : 0;
  let t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
  if (zone.toUpperCase() !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    t -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  return t;
}

const two = (n: number) => (n < 10 ? "0" : "") + n;

function beijing(text: string): Date | null {
  const ms = parseInstant(text);
  return Number.isNaN(ms) ? null : new Date(ms + BEIJING_OFFSET_MS);
}

/** "2026-05-01 10:00" in Beijing time ("" when the time is unreadable). */
export function dateTimeBj(text: string): string {
  const b = beijing(text);
  if (!b) return "";
  return `${b.getUTCFullYear()}-${two(b.getUTCMonth() + 1)}-${two(b.getUTCDate())} ${two(b.getUTCHours())}:${two(b.getUTCMinutes())}`;
}

/** "5月1日 10:00" (Beijing time), for round starts. */
export function monthDayBj(text: string, t: Texts): string | null {
  const b = beijing(text);
  if (!b) return null;
  return t.monthDay(b.getUTCMonth() + 1, b.getUTCDate(), `${two(b.getUTCHours())}:${two(b.getUTCMinutes())}`);
}

/** "HH:MM:SS" for a remaining time, rounded up to the second (hours may exceed 24). */
export function countdown(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  return `${two(h)}:${two(m)}:${two(total % 60)}`;
}

/** Basis points as a percentage without a float: 1000 → "10", 1050 → "10.5", 1005 → "10.05". */
export function percentFromBp(bp: number): string {
  const whole = Math.trunc(bp / 100);
  const frac = Math.abs(bp % 100);
  if (frac === 0) return String(whole);
  return `${whole}.${two(frac).replace(/0$/, "")}`;
}

/** How many categories the one-line rule names before "等N类". */
const CATEGORIES_IN_LINE = 3;

/** A product category code in words (冰箱 for `refrigerator`); the code itself when unknown. */
export function productName(code: string, t: Texts): string {
  return t.products[code] ?? code;
}

function categoryLimit(c: CategoryRule, t: Texts): string {
  return t.categoryLimit(productName(c.product_category, t), c.per_person_items, t.productUnits[c.product_category] ?? t.defaultUnit);
}

/**
 * The rule in words: "满100减20", "10% 立减 · 上限2000元", "以旧换新 每件立减15%，单件最高2000元
 * （冰箱限1台、空调限3台、手机限1部）", "旅游惠民年卡：首次入园补贴10元".
 */
export function ruleText(rule: Rule | null | undefined, t: Texts): string {
  if (!rule) return t.ruleUnknown;
  switch (rule.type) {
    case "threshold":
      return t.ruleThreshold(yuanPlain(rule.min_spend), yuanPlain(rule.off));
    case "percent": {
      const rate = percentFromBp(rule.rate_bp);
      return rule.per_person_cap ? t.rulePercent(rate, yuanPlain(rule.per_person_cap)) : t.rulePercentNoCap(rate);
    }
    case "item_percent": {
      const cats = rule.categories ?? [];
      const named = cats.slice(0, CATEGORIES_IN_LINE).map((c) => categoryLimit(c, t));
      const list = t.listJoin(named) + (cats.length > CATEGORIES_IN_LINE ? t.andMore(cats.length) : "");
      return t.ruleItemPercent(percentFromBp(rule.rate_bp), yuanPlain(rule.item_cap), list);
    }
    case "annual_card":
      return t.ruleAnnualCard(yuanPlain(rule.subsidy));
    default:
      return t.ruleUnknown;
  }
}

/**
 * The terms the one-line rule leaves out, one line each: every category of a per-item rule
 * with its own rate, cap and highest price, and the rule's overall limits. Empty for the
 * other rules.
 */
export function ruleDetails(rule: Rule | null | undefined, t: Texts): string[] {
  if (!rule || rule.type !== "item_percent") return [];
  const out: string[] = [];
  for (const c of rule.categories ?? []) {
    const terms: string[] = [];
    if (c.rate_bp != null && c.rate_bp !== rule.rate_bp) terms.push(t.termRate(percentFromBp(c.rate_bp)));
    if (c.item_cap != null && c.item_cap !== rule.item_cap) terms.push(t.termItemCap(yuanPlain(c.item_cap)));
    if (c.max_item_price != null) terms.push(t.termMaxPrice(yuanPlain(c.max_item_price)));
    out.push(categoryLimit(c, t) + (terms.length ? t.termsJoin(terms) : ""));
  }
  if (rule.max_item_price != null) out.push(t.ruleMaxPrice(yuanPlain(rule.max_item_price)));
  if (rule.per_person_cap != null) out.push(t.rulePersonCap(yuanPlain(rule.per_person_cap)));
  return out;
}

/** A long hex hash, shortened for the eye: "3f2a9c01…7be4". */
export function shortHash(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : hex;
}

/** The Beijing calendar day ("2026-05-01") of an instant in ms. */
export function dayBj(ms: number): string {
  const b = new Date(ms + BEIJING_OFFSET_MS);
  return `${b.getUTCFullYear()}-${two(b.getUTCMonth() + 1)}-${two(b.getUTCDate())}`;
}

/** The category in words (餐饮/住宿/文旅/家居/通用). */
export function categoryText(category: string, t: Texts): string {
  return t.categories[category] ?? t.categoryOther;
}
