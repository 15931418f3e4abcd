// The dashboard at `/` in headless Chromium (Debian's, driven by
// playwright-core) against a real server that tests/browser.rs started with
// `--jwt-secret` and `--allowed-origins`; it stops and restarts that server
// (same port) when asked through `control`.
//
// Env: TICKWIRE_ADDR, TICKWIRE_JWT_SECRET, TICKWIRE_ARTIFACTS, TICKWIRE_CHROMIUM.

import assert from "node:assert/strict";
import { test, after } from "node:test";
import { createRequire } from "node:module";
import { join } from "node:path";

import { serverAddr, httpUrl, getJson, waitFor, sleep, jwt, control, endControl } from "../../clients/js/test/helpers.mjs";

// the dev dependencies live in the JS client's package
const require = createRequire(new URL("../../clients/js/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const WebSocket = require("ws");

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let browser;
after(async () => {
  await browser?.close();
  endControl();
});

const addr = serverAddr();
const secret = process.env.TICKWIRE_JWT_SECRET;
const artifacts = process.env.TICKWIRE_ARTIFACTS ?? "target/artifacts";

/** The price grid as the page shows it: key -> { last, bid, ask, chg, updates }. */
function readGrid(page) {
  return page.$$eval("#prices tbody tr", (rows) =>
    Object.fromEntries(
      rows.map((r) => [
        r.dataset.key,
        {
          text: ["last", "bid", "ask"].map((c) => r.querySelector(`.${c}`).textContent).join(" "),
          last: r.querySelector(".last").textContent,
          chg: r.querySelector(".chg").textContent,
          chgClass: r.querySelector(".chg").className,
          updates: Number(r.dataset.updates || 0),
        },
      ]),
    ),
  );
}

async function readBook(page) {
  return page.evaluate(() => {
    const side = (s) =>
      [...document.querySelectorAll(`#book tbody.${s} tr.level`)].map((r) => ({
        price: Number(r.children[0].textContent.replace(/,/g, "")),
        qty: Number(r.children[1].textContent.replace(/,/g, "")),
      }));
    return { asks: side("asks"), bids: side("bids") };
  });
}

const statusOf = (page) => page.$eval("#status", (e) => e.textContent);

test("dashboard: live grid, depth, tape, chart, figures; reconnects after a server restart", { timeout: 240000 }, async () => {
  assert.ok(secret, "TICKWIRE_JWT_SECRET is set");
  const { channels } = await getJson("/channels");
  const instruments = channels.filter((c) => c.channel.startsWith("ticker.")).map((c) => c.channel.slice("ticker.".length)).sort();
  assert.ok(instruments.length >= 10);

  // the server really enforces its origin allowlist (the page passes it)
  const refused = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://${addr}/ws`, ["tickwire.v1.json"], { origin: "http://elsewhere.invalid" });
    ws.on("unexpected-response", (req, res) => {
      req.destroy();
      resolve(res.statusCode);
    });
    ws.on("open", () => {
      ws.close();
      resolve("open");
    });
    ws.on("error", () => {});
  });
  assert.equal(refused, 403, "a foreign origin is refused");

  browser = await chromium.launch({
    executablePath: process.env.TICKWIRE_CHROMIUM || "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
    headless: true,
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();

  // every request the page makes, and every console error, by phase
  const urls = [];
  const consoleErrors = [];
  const pageErrors = [];
  let phase = "load";
  page.on("request", (r) => urls.push(r.url()));
  page.on("websocket", (ws) => urls.push(ws.url()));
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push({ phase, text: m.text() });
  });
  page.on("pageerror", (e) => pageErrors.push(e.message));

  const token = jwt(secret, { sub: "dashboard-test", exp: Math.floor(Date.now() / 1000) + 3600 });
  await page.goto(httpUrl(`/?token=${token}`));

  // status connected, every instrument in the grid
  await waitFor("status connected", async () => (await statusOf(page)) === "connected", 20000, 100);
  await waitFor(
    "every instrument with a price",
    async () => {
      const g = await readGrid(page);
      return instruments.every((k) => g[k] && /\d/.test(g[k].last));
    },
    20000,
    100,
  );
  const grid0 = await readGrid(page);
  assert.deepEqual(Object.keys(grid0).sort(), instruments, "one row per instrument");
  for (const k of instruments) {
    assert.match(grid0[k].chg, /^[+-]\d+\.\d\d%$/, `${k} 24h change`);
    assert.ok(/\b(up|down)\b/.test(grid0[k].chgClass), `${k} change coloured`);
  }

  // prices change within 3 s
  const t0 = Date.now();
  await waitFor(
    "every instrument's price to change",
    async () => {
      const g = await readGrid(page);
      return instruments.every((k) => g[k].text !== grid0[k].text && g[k].updates > grid0[k].updates);
    },
    3000,
    50,
  );
  const changedWithinMs = Date.now() - t0;

  // depth view of the selected instrument: 10+ levels a side, sane order
  await waitFor("depth with 10+ levels", async () => {
    const b = await readBook(page);
    return b.bids.length >= 10 && b.asks.length >= 10;
  });
  const book = await readBook(page);
  const bestAsk = book.asks[book.asks.length - 1].price; // shown best at the bottom
  assert.ok(book.bids.every((l, i) => i === 0 || l.price < book.bids[i - 1].price), "bids best first");
  assert.ok(book.asks.every((l, i) => i === 0 || l.price < book.asks[i - 1].price), "asks shown highest first, best next to the spread");
  assert.ok(bestAsk > book.bids[0].price, "not crossed");
  assert.ok(book.bids.concat(book.asks).every((l) => l.qty > 0));

  // trade tape, candle chart, figures, activity log
  await waitFor("trades on the tape", () => page.$$eval("#trades tbody tr", (rs) => rs.filter((r) => r.children[1].textContent).length >= 5));
  const inked = await page.$eval("#chart", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(inked > 2000, `the candle chart is drawn (${inked} pixels)`);
  await waitFor("server figures from /stats", async () => /\d/.test(await page.$eval("#s-conns", (e) => e.textContent)), 10000, 100);
  const figures = await page.evaluate(() => window.dashboard.figures());
  assert.equal(await page.$eval("#f-gaps", (e) => e.textContent), "0", "gaps seen = 0");
  assert.ok(figures.eps > 50, `events/s ${figures.eps}`);
  assert.ok(Number.isFinite(figures.latP50), "latency measured");
  assert.equal(figures.bookChecks.bad, 0, "book checksums all match");
  assert.ok(figures.bookChecks.ok > 10);
  const log = await page.$$eval("#log li", (ls) => ls.map((l) => l.textContent));
  assert.ok(log.some((l) => l.includes("connected: session")), log.join("\n"));

  await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
  console.log(`# screenshot: ${join(artifacts, "dashboard.png")}`);
  console.log(`# prices changed within ${changedWithinMs} ms; figures ${JSON.stringify(figures)}`);

  // a wrong token: told, and not retried
  const intruder = await context.newPage();
  intruder.on("request", (r) => urls.push(r.url()));
  intruder.on("console", (m) => m.type() === "error" && consoleErrors.push({ phase: "intruder", text: m.text() }));
  intruder.on("pageerror", (e) => pageErrors.push(e.message));
  await intruder.goto(httpUrl("/?token=not-a-jwt"));
  await waitFor("the intruder page closed as unauthorized", async () => (await statusOf(intruder)) === "closed: unauthorized", 15000, 100);
  await intruder.close();

  // the server stops: the page shows it and keeps trying
  assert.equal(await control("stop"), "stopped");
  phase = "outage";
  await waitFor("status reconnecting", async () => (await statusOf(page)) === "reconnecting", 15000, 100);
  await sleep(1500); // a few attempts against the closed port
  assert.equal(await statusOf(page), "reconnecting");
  const eventsBefore = (await page.evaluate(() => window.dashboard.figures())).events;

  // it comes back on the same port: the page reconnects and resumes by itself
  assert.equal(await control("start"), "started");
  await waitFor("status connected again", async () => (await statusOf(page)) === "connected", 30000, 100);
  const grid1 = await readGrid(page);
  await waitFor(
    "prices moving again",
    async () => {
      const g = await readGrid(page);
      return instruments.every((k) => g[k].updates > grid1[k].updates);
    },
    10000,
    100,
  );
  await waitFor("depth after the restart", async () => {
    const b = await readBook(page);
    return b.bids.length >= 10 && b.asks.length >= 10;
  });
  await sleep(1000);
  phase = "after";
  const after = await page.evaluate(() => window.dashboard.figures());
  assert.equal(after.state, "connected");
  assert.ok(after.events > eventsBefore + 100, "events flow after the restart");
  assert.ok(after.reconnects >= 1);
  assert.equal(after.gaps, 0, "no unannounced gap across the restart");
  assert.equal(after.bookChecks.bad, 0);
  const log2 = await page.$$eval("#log li", (ls) => ls.map((l) => l.textContent));
  assert.ok(log2.some((l) => l.includes("server restarted")), log2.join("\n"));
  assert.ok(log2.some((l) => l.includes("reconnecting in")), "disconnection logged");
  assert.ok(log2.length <= 100);
  await page.screenshot({ path: join(artifacts, "dashboard-reconnected.png"), fullPage: true });
  await sleep(1000);

  // no console errors, except the refused connections while the server was down
  const outageNoise = /WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws[^']*' failed|ERR_CONNECTION_REFUSED/;
  const unexpected = consoleErrors.filter((e) => !(e.phase === "outage" && outageNoise.test(e.text)));
  assert.deepEqual(unexpected, [], "console errors");
  assert.deepEqual(pageErrors, [], "uncaught page errors");

  // no request left the host
  assert.ok(urls.length >= 5, urls.join("\n"));
  const foreign = urls.filter((u) => !u.startsWith(`http://${addr}/`) && !u.startsWith(`ws://${addr}/`));
  assert.ok(addr.startsWith("127.0.0.1:"));
  assert.deepEqual(foreign, [], "every request went to 127.0.0.1");
  console.log(`# ${urls.length} requests, all to ${addr}; console errors during the outage: ${consoleErrors.length}`);
});
