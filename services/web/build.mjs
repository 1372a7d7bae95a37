// Builds the pages into dist/ with esbuild: one minified bundle per page (app.js, with
// its CSS in app.css), its index.html copied beside it, and the gzipped size of each page's
// JavaScript printed (the README states it; the residents' page must stay under 100 KB).
// Everything is served by the services themselves (no CDN): issuance serves dist/resident at
// /app/, redemption serves dist/merchant at /till/, reconciliation serves dist/console at
// /console/ (its charts in a chunk loaded by the overview, so sign-in stays small).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const pages = ["resident", "merchant", "console"];
rmSync("dist", { recursive: true, force: true });
const sizes = {};
for (const page of pages) {
  const out = `dist/${page}`;
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { app: `src/${page}/main.tsx` },
    bundle: true,
    minify: true,
    sourcemap: false,
    format: "esm",
    // Code split by dynamic import() (the till's QR decoder, loaded only when a camera has no
    // BarcodeDetector; the console's charts) goes to chunk files beside app.js, served from
    // the same folder.
    splitting: true,
    chunkNames: "chunk-[hash]",
    // The in-app browsers residents use: Chromium 87+ (WeChat, Alipay on Android) and
    // WKWebView of iOS 14.5+ (14.0 mishandles some destructuring).
    target: ["chrome87", "safari14.1"],
    outdir: out,
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "none",
    logLevel: "warning",
    loader: { ".css": "css" },
  });
  copyFileSync(`src/${page}/index.html`, `${out}/index.html`);
  const js = readFileSync(`${out}/app.js`);
  sizes[page] = { js_bytes: js.length, js_gzip_bytes: gzipSync(js, { level: 9 }).length };
}
writeFileSync("dist/sizes.json", JSON.stringify(sizes, null, 2) + "\n");
for (const [page, s] of Object.entries(sizes)) {
  console.log(`${page}: app.js ${s.js_bytes} bytes, ${s.js_gzip_bytes} gzipped`);
}
