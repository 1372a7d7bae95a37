// A QR code (error correction M) as one SVG path: horizontal runs of dark modules, with the
// four-module quiet zone scanners need.

import qrcode from "qrcode-generator";

const QUIET = 4;

export interface QrShape {
  /** Width and height in modules, quiet zone included. */
  size: number;
  /** The dark modules as SVG path data. */
  d: string;
}

export function qrShape(text: string): QrShape {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const parts: string[] = [];
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; ) {
      if (!qr.isDark(r, c)) {
        c++;
        continue;
      }
      let run = 1;
      while (c + run < n && qr.isDark(r, c + run)) run++;
      parts.push(`M${c + QUIET} ${r + QUIET}h${run}v1h-${run}z`);
      c += run;
    }
  }
  return { size: n + 2 * QUIET, d: parts.join("") };
}
