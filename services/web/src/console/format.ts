// Times, days and rates in words. Times are shown in Beijing time (Asia/Shanghai) whatever
// the computer's own zone; rates are basis points turned into text with integer arithmetic.

const parts = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});

function beijingParts(ms: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of parts.formatToParts(new Date(ms))) out[p.type] = p.value;
  return out;
}

/** Milliseconds of an RFC 3339 time, or NaN (at most millisecond precision is kept). */
function instant(text: string): number {
  // Date.parse accepts at most 3 fractional digits everywhere: the services may send 6.
  return Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
}

/** "2026-12-01 18:15:00" in Beijing time ("—" when missing or unreadable). */
export function dateTime(text: string | null | undefined): string {
  if (!text) return "—";
  const ms = instant(text);
  if (Number.isNaN(ms)) return text;
  const p = beijingParts(ms);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** "12-01 18:15" in Beijing time, for dense tables. */
export function shortDateTime(text: string): string {
  const ms = instant(text);
  if (Number.isNaN(ms)) return text;
  const p = beijingParts(ms);
  return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** A Beijing day "YYYY-MM-DD", `offsetDays` from today. */
export function beijingDay(offsetDays = 0): string {
  const p = beijingParts(Date.now() + offsetDays * 86_400_000);
  return `${p.year}-${p.month}-${p.day}`;
}

/** Basis points as a percentage: 5000 → "50%", 1250 → "12.5%", 1005 → "10.05%". */
export function percentFromBp(bp: number): string {
  const whole = Math.trunc(bp / 100);
  const frac = Math.abs(bp % 100);
  if (frac === 0) return `${whole}%`;
  return `${whole}.${String(frac).padStart(2, "0").replace(/0$/, "")}%`;
}

/** "11-30" from "2026-11-30", for chart labels. */
export function shortDay(day: string): string {
  return day.length === 10 ? day.slice(5) : day;
}

/** Whether a place code is a county (140522) rather than a city (140500) or province (140000). */
export function isCounty(place: number): boolean {
  return place % 100 !== 0;
}

/** A YYYY-MM-DD day. */
export function isDay(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(text);
}
