// Money on screen: always integer fen, formatted and parsed with integer arithmetic only
// (never a float, never toFixed on a sum).

/** "¥123.45" (or "-¥1.05") from integer fen. */
export function formatYuan(fen: number): string {
  if (!Number.isSafeInteger(fen)) {
    throw new RangeError(`not a whole number of fen: ${fen}`);
  }
  const negative = fen < 0;
  const abs = negative ? -fen : fen;
  const yuan = Math.trunc(abs / 100);
  const cents = abs % 100;
  const grouped = String(yuan).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}¥${grouped}.${cents < 10 ? "0" : ""}${cents}`;
}

/** Whole yuan from fen when exact ("100" for 10000), else "100.50". For rules in words. */
export function yuanPlain(fen: number): string {
  const yuan = Math.trunc(fen / 100);
  const cents = Math.abs(fen % 100);
  return cents === 0 ? String(yuan) : `${yuan}.${cents < 10 ? "0" : ""}${cents}`;
}

/**
 * Parses what a cashier types ("128", "128.5", "128.50", "1,280.00") into integer fen,
 * exactly: the digits are read as text, never through a float. Returns null for anything
 * else (more than two decimals, signs, letters, empty, or above `maxFen`).
 */
export function parseYuanToFen(text: string, maxFen = 10_000_000_000): number | null {
  const cleaned = text.trim().replace(/[,，\s]/g, "").replace(/^[¥￥]/, "");
  const m = /^(\d{1,11})(?:[.。](\d{0,2}))?$/.exec(cleaned);
  if (!m) return null;
  const whole = m[1] ?? "0";
  const frac = (m[2] ?? "").padEnd(2, "0");
  const fen = Number(whole) * 100 + Number(frac);
  if (!Number.isSafeInteger(fen) || fen <= 0 || fen > maxFen) return null;
  return fen;
}

/**
 * "¥1,234.57万" from integer fen, for chart axes and compact figures: 万元 (10,000 yuan =
 * 1,000,000 fen) with two decimals, rounded half up, in integer arithmetic. Below 1万 it is
 * `formatYuan` itself.
 */
export function formatWanYuan(fen: number): string {
  if (!Number.isSafeInteger(fen)) {
    throw new RangeError(`not a whole number of fen: ${fen}`);
  }
  const negative = fen < 0;
  const abs = negative ? -fen : fen;
  if (abs < 1_000_000) return formatYuan(fen);
  // Hundredths of 万 are 10,000 fen each: round to the nearest, half up.
  const hundredths = Math.trunc((abs + 5_000) / 10_000);
  const whole = Math.trunc(hundredths / 100);
  const frac = hundredths % 100;
  const grouped = String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}¥${grouped}.${frac < 10 ? "0" : ""}${frac}万`;
}
