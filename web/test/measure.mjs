// Measures how the dashboard keeps up with a server's event rate, from the
// page's own figures and its requestAnimationFrame timing (not a test).
//
//   cargo build --release
//   target/release/tickwire serve --listen 127.0.0.1:18090 --sim-rate 5000 &
//   node web/test/measure.mjs http://127.0.0.1:18090/ [seconds] [extra-subscribe]
//
// `extra-subscribe` (e.g. '*.*.*') is passed as `?subscribe=`: the page then
// receives every event of the server, not only tickers and one instrument.

import { createRequire } from "node:module";

const require = createRequire(new URL("../../clients/js/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [url = "http://127.0.0.1:8080/", seconds = "10", extra = ""] = process.argv.slice(2);
const pageUrl = extra ? `${url}${url.includes("?") ? "&" : "?"}subscribe=${encodeURIComponent(extra)}` : url;

const browser = await chromium.launch({
  executablePath: process.env.TICKWIRE_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
const errors = [];
page.on("pageerror", (e) => errors.push(e.message));
await page.goto(pageUrl);
await page.waitForFunction(() => window.dashboard?.client.state === "connected");
await page.waitForTimeout(3000); // warm-up: snapshots, history backfill

const stats = async () => (await fetch(new URL("/stats", url))).json();
const s0 = await stats();
const t0 = Date.now();
const before = await page.evaluate(() => window.dashboard.figures());
const frames = await page.evaluate(
  (ms) =>
    new Promise((resolve) => {
      const deltas = [];
      let last = 0;
      const end = performance.now() + ms;
      const tick = (t) => {
        if (last) deltas.push(t - last);
        last = t;
        if (t < end) requestAnimationFrame(tick);
        else resolve(deltas);
      };
      requestAnimationFrame(tick);
    }),
  Number(seconds) * 1000,
);
const after = await page.evaluate(() => window.dashboard.figures());
const s1 = await stats();
const dt = (Date.now() - t0) / 1000;
await browser.close();

frames.sort((a, b) => a - b);
const pct = (p) => frames[Math.min(frames.length - 1, Math.floor(p * frames.length))];
const result = {
  server_events_per_s: Math.round((s1.events_published - s0.events_published) / dt),
  page_events_per_s: Math.round((after.events - before.events) / dt),
  fps: +(frames.length / dt).toFixed(1),
  frame_p50_ms: +pct(0.5).toFixed(1),
  frame_p95_ms: +pct(0.95).toFixed(1),
  frame_max_ms: +frames[frames.length - 1].toFixed(1),
  frames_over_50ms: frames.filter((d) => d > 50).length,
  long_tasks: after.longTasks - before.longTasks,
  latency_p50_ms: +after.latP50.toFixed(1),
  latency_p99_ms: +after.latP99.toFixed(1),
  lagged: after.lagged - before.lagged,
  gaps: after.gaps,
  page_errors: errors.length,
};
console.log(JSON.stringify(result));
