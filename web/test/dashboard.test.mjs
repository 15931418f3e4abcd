// The dashboard at `/` in headless Chromium (Debian's, driven by
// playwright-core) against a real server that tests/browser.rs started with
// `--jwt-secret`, `--allowed-origins` and signals and sentiment every second;
// it stops and restarts that server (same port) when asked through `control`.
//
// Env: TICKWIRE_ADDR, TICKWIRE_JWT_SECRET, TICKWIRE_ARTIFACTS, TICKWIRE_CHROMIUM.

import assert from "node:assert/strict";
import { test, after } from "node:test";
import { createRequire } from "node:module";
import { join } from "node:path";

import { serverAddr, httpUrl, getJson, eventually, jwt, control, endControl } from "../../clients/js/test/helpers.mjs";

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

/** The price grid's signal column: key -> { action, label, strength, title, color }. */
function readSignals(page) {
  return page.$$eval("#prices tbody tr", (rows) =>
    Object.fromEntries(
      rows.map((r) => {
        const td = r.querySelector("td.sig");
        const badge = td.querySelector(".sig-badge");
        return [
          r.dataset.key,
          {
            action: td.dataset.action ?? null,
            label: badge.textContent,
            strength: Number(td.dataset.strength),
            title: td.title,
            color: getComputedStyle(td).color, // the action's colour (bar and badge)
          },
        ];
      }),
    ),
  );
}

/** The scanner panel as shown: status, progress bars, ranked rows. */
function readScanner(page) {
  return page.evaluate(() => {
    const status = document.querySelector("#scan-status");
    const bar = (p) => {
      const el = document.querySelector(`.pass[data-pass="${p}"]`);
      return { pct: Number(el.querySelector(".bar").getAttribute("aria-valuenow")), count: el.querySelector(".pass-count").textContent };
    };
    return {
      state: status.dataset.state,
      text: status.textContent,
      quick: bar("quick"),
      deep: bar("deep"),
      rows: [...document.querySelectorAll("#scan-results tbody tr[data-instrument]")].map((r) => ({
        instrument: r.dataset.instrument,
        score: r.querySelector(".score").textContent,
        scoreClass: r.querySelector(".score").className,
        reason: r.querySelector(".reason").textContent,
      })),
    };
  });
}

const rgb = (css) => css.match(/\d+/g).slice(0, 3).map(Number);

/** Clicks Scan with `topN` and waits for the scan to be done; returns the panel. */
async function runScan(page, topN, clicks = 1) {
  await page.fill("#scan-top", String(topN));
  const before = (await page.evaluate(() => window.dashboard.figures())).scan.requestId;
  if (clicks === 1) await page.click("#scan-btn");
  else {
    // several requests in one task: the server refuses all but the first
    await page.evaluate((n) => {
      for (let i = 0; i < n; i++) document.querySelector("#scan-btn").click();
    }, clicks);
  }
  await eventually(
    "the scan done",
    async () => {
      const f = (await page.evaluate(() => window.dashboard.figures())).scan;
      // with several clicks the refusal of the extra ones ("busy") shows
      // while the first still runs: only its end counts
      return (f.state === "done" && f.requestId !== before) || f.state === "error" || (clicks === 1 && f.state === "busy");
    },
    20000,
    50,
  );
  return readScanner(page);
}

test("dashboard: live grid, depth with venue and consolidated top, tape, chart, signals, sentiment, scanner, figures; reconnects after a server restart", { timeout: 240000 }, async () => {
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
  await eventually("status connected", async () => (await statusOf(page)) === "connected", 20000, 100);
  await eventually(
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
  await eventually(
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
  await eventually("depth with 10+ levels", async () => {
    const b = await readBook(page);
    return b.bids.length >= 10 && b.asks.length >= 10;
  });
  const book = await readBook(page);
  const bestAsk = book.asks[book.asks.length - 1].price; // shown best at the bottom
  assert.ok(book.bids.every((l, i) => i === 0 || l.price < book.bids[i - 1].price), "bids best first");
  assert.ok(book.asks.every((l, i) => i === 0 || l.price < book.asks[i - 1].price), "asks shown highest first, best next to the spread");
  assert.ok(bestAsk > book.bids[0].price, "not crossed");
  assert.ok(book.bids.concat(book.asks).every((l) => l.qty > 0));
  // venue column, and the consolidated top (bbo.all.*, on over the simulator here)
  const venues = await page.$$eval("#book tr.level td.venue", (tds) => tds.map((t) => t.textContent));
  assert.ok(venues.length >= 20 && venues.every((v) => v === "sim"), `venue column: ${venues}`);
  await eventually("the consolidated top", async () => /^all venues: bid [\d,.]+ @sim · ask [\d,.]+ @sim · spread [\d,.]+ · 1 venue$/.test(await page.$eval("#book-bbo", (e) => e.textContent)), 10000, 100);

  // trade tape, candle chart, figures, activity log
  await eventually("trades on the tape", () => page.$$eval("#trades tbody tr", (rs) => rs.filter((r) => r.children[1].textContent).length >= 5));
  const inked = await page.$eval("#chart", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(inked > 2000, `the candle chart is drawn (${inked} pixels)`);
  await eventually("volume bars under the candles", async () => Number(await page.$eval("#chart", (c) => c.dataset.volumeBars || 0)) > 0, 10000, 100);
  await eventually("server figures from /stats", async () => /\d/.test(await page.$eval("#s-conns", (e) => e.textContent)), 10000, 100);
  const figures = await page.evaluate(() => window.dashboard.figures());
  assert.equal(await page.$eval("#f-gaps", (e) => e.textContent), "0", "gaps seen = 0");
  assert.ok(figures.eps > 50, `events/s ${figures.eps}`);
  assert.ok(Number.isFinite(figures.latP50), "latency measured");
  assert.equal(figures.bookChecks.bad, 0, "book checksums all match");
  // the book panel is conflated (a message every 200 ms at most): its
  // verified messages are awaited, not assumed from the time spent so far
  await eventually("more than 10 verified book messages", async () => (await page.evaluate(() => window.dashboard.figures())).bookChecks.ok > 10, 15000, 100);
  const log = await page.$$eval("#log li", (ls) => ls.map((l) => l.textContent));
  assert.ok(log.some((l) => l.includes("connected: session")), log.join("\n"));

  // signals column: an action for every instrument, colour-coded, reason as tooltip
  const ACTIONS = ["STRONG_BUY", "BUY", "HOLD", "SELL", "STRONG_SELL"];
  await eventually(
    "a signal for every instrument",
    async () => {
      const sg = await readSignals(page);
      return instruments.every((k) => sg[k] && ACTIONS.includes(sg[k].action));
    },
    10000,
    100,
  );
  // a fresh server has too few closed candles for the indicators: the
  // signals say "warming up", and the cell shows it (not only the tooltip)
  const first = await readSignals(page);
  const warmingNow = instruments.filter((k) => /\nwarming up/.test(first[k].title));
  assert.ok(warmingNow.length > 0, `a fresh server's signals are warming up: ${JSON.stringify(first)}`);
  for (const k of instruments) {
    const warming = /\nwarming up/.test(first[k].title);
    assert.equal(first[k].label === "WARMING UP", warming, `${k} shows its warm-up: ${JSON.stringify(first[k])}`);
  }
  await page.screenshot({ path: join(artifacts, "dashboard-warming.png") });
  // then (not required: it depends on the random walk) a buy or sell once the
  // indicators warm up, so that the colours are checked and the screenshot shows them
  const warm = await eventually(
    "a buy or sell signal",
    async () => Object.values(await readSignals(page)).some((sg) => sg.action && sg.action !== "HOLD"),
    30000,
    250,
  ).then(
    () => true,
    () => false,
  );
  if (!warm) console.log("# no buy or sell signal within 30 s: only HOLD checked");
  const signals = await readSignals(page);
  for (const k of instruments) {
    const sg = signals[k];
    const warming = /\nwarming up/.test(sg.title);
    assert.equal(sg.label, warming ? "WARMING UP" : sg.action.replace("_", " "), `${k} signal label`);
    assert.ok(sg.strength >= 0 && sg.strength <= 100, `${k} strength ${sg.strength}`);
    assert.match(sg.title, /strength \d+%/, `${k} tooltip`);
    assert.ok(sg.title.split("\n")[1]?.length > 0, `${k} reason in the tooltip: ${sg.title}`);
    const [r, g, b] = rgb(sg.color);
    if (sg.action.endsWith("BUY")) assert.ok(g > r + 40, `${k} ${sg.action} is green: ${sg.color}`);
    else if (sg.action.endsWith("SELL")) assert.ok(r > g + 40, `${k} ${sg.action} is red: ${sg.color}`);
    else assert.ok(Math.max(r, g, b) - Math.min(r, g, b) < 40, `${k} HOLD is grey: ${sg.color}`);
  }

  // sentiment gauge: fear/greed 0..100, a mood, confidence, breadth
  await eventually("the sentiment gauge", async () => /^\d+$/.test(await page.$eval("#sent-value", (e) => e.textContent)), 10000, 100);
  const sentiment = await page.evaluate(() => ({
    value: Number(document.querySelector("#sent-value").textContent),
    label: document.querySelector("#sent-class").textContent,
    mood: document.querySelector("#sent-mood").textContent,
    confidence: document.querySelector("#sent-conf").textContent,
    advancing: document.querySelector("#sent-adv").textContent,
    declining: document.querySelector("#sent-dec").textContent,
  }));
  assert.ok(sentiment.value >= 0 && sentiment.value <= 100, `fear/greed ${sentiment.value}`);
  assert.match(sentiment.label, /^(extreme fear|fear|neutral|greed|extreme greed)$/);
  assert.match(sentiment.mood, /^(bearish|neutral|bullish)$/);
  assert.match(sentiment.confidence, /^\d+%$/);
  assert.match(sentiment.advancing, /^\d+$/);
  assert.match(sentiment.declining, /^\d+$/);
  const gaugeInk = await page.$eval("#gauge", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(gaugeInk > 1000, `the gauge is drawn (${gaugeInk} pixels)`);

  // scanner: a second request while one runs is refused (RATE_LIMITED), shown
  // as such; the first completes
  const twice = await runScan(page, 3, 2);
  assert.equal(twice.state, "done", twice.text);
  assert.equal(twice.rows.length, 3);
  assert.equal(twice.deep.pct, 100);
  // a plain click: progress to 100 % in both passes, the top 5 ranked, done
  const scanned = await runScan(page, 5);
  assert.equal(scanned.state, "done", scanned.text);
  assert.match(scanned.text, /^done: scan-\d+, 5 ranked of \d+/);
  assert.equal(scanned.quick.pct, 100, `quick pass ${scanned.quick.count}`);
  assert.equal(scanned.deep.pct, 100, `deep pass ${scanned.deep.count}`);
  assert.equal(scanned.deep.count, `${instruments.length}/${instruments.length} · 100%`);
  assert.equal(scanned.rows.length, 5, "5 ranked rows");
  const scores = scanned.rows.map((r) => Number(r.score.replace("−", "-")));
  for (const [i, r] of scanned.rows.entries()) {
    assert.ok(instruments.includes(`sim.${r.instrument}`), r.instrument);
    assert.match(r.score, /^[+−]\d\.\d{3}$/);
    assert.ok(r.scoreClass.includes(scores[i] >= 0 ? "up" : "down"), `${r.instrument} score coloured by sign`);
    assert.match(r.reason, /^(long|short): /);
    if (i > 0) assert.ok(Math.abs(scores[i]) <= Math.abs(scores[i - 1]) + 1e-3, "ranked by |score|");
  }
  const scanFigures = (await page.evaluate(() => window.dashboard.figures())).scan;
  assert.equal(scanFigures.passes.deep.processed, instruments.length);

  const scanLog = await page.$$eval("#log li", (ls) => ls.map((l) => l.textContent));
  assert.ok(scanLog.some((l) => /scan scan-\d+ started: \d+ instruments on sim, top 5/.test(l)), scanLog.join("\n"));
  assert.ok(scanLog.some((l) => /scan scan-\d+ done in \d+ ms/.test(l)), scanLog.join("\n"));
  assert.ok(scanLog.some((l) => l.includes("scan refused: a scan is already running")), scanLog.join("\n"));
  console.log(`# signals ${JSON.stringify(Object.fromEntries(instruments.map((k) => [k, signals[k].action])))}`);
  console.log(`# sentiment ${JSON.stringify(sentiment)}; scan ${JSON.stringify(scanFigures)}`);

  await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
  console.log(`# screenshot: ${join(artifacts, "dashboard.png")}`);

  // a laptop screen: at 1280x800 (and 1400 wide) every price and name is
  // shown in full, none cut to "64,987.…"
  for (const [width, height] of [[1600, 1000], [1400, 900], [1280, 800]]) {
    await page.setViewportSize({ width, height });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const cut = await page.$$eval("#prices tbody td", (tds) =>
      tds.filter((td) => td.textContent.trim() && td.scrollWidth > td.clientWidth).map((td) => `${td.className}: ${td.textContent} (${td.scrollWidth} > ${td.clientWidth})`),
    );
    const shown = await page.$$eval("#prices tbody td.last", (tds) => tds.filter((td) => /\d/.test(td.textContent)).length);
    assert.ok(shown >= instruments.length, `prices shown at ${width} px: ${shown}`);
    assert.deepEqual(cut, [], `cells cut at ${width}x${height}`);
    const png = join(artifacts, `dashboard-${width}.png`);
    await page.screenshot({ path: png });
    console.log(`# screenshot: ${png}`);
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  console.log(`# prices changed within ${changedWithinMs} ms; figures ${JSON.stringify(figures)}`);

  // a wrong token: told, and not retried
  const intruder = await context.newPage();
  intruder.on("request", (r) => urls.push(r.url()));
  intruder.on("console", (m) => m.type() === "error" && consoleErrors.push({ phase: "intruder", text: m.text() }));
  intruder.on("pageerror", (e) => pageErrors.push(e.message));
  await intruder.goto(httpUrl("/?token=not-a-jwt"));
  await eventually("the intruder page closed as unauthorized", async () => (await statusOf(intruder)) === "closed: unauthorized", 15000, 100);
  await intruder.close();

  // the server stops: the page shows it and keeps trying
  assert.equal(await control("stop"), "stopped");
  phase = "outage";
  await eventually("status reconnecting", async () => (await statusOf(page)) === "reconnecting", 15000, 100);
  // a few attempts against the closed port (each one counted when scheduled)
  const attemptsBefore = (await page.evaluate(() => window.dashboard.figures())).reconnects;
  await eventually("two more reconnect attempts", async () => (await page.evaluate(() => window.dashboard.figures())).reconnects >= attemptsBefore + 2, 15000, 100);
  assert.equal(await statusOf(page), "reconnecting");
  const eventsBefore = (await page.evaluate(() => window.dashboard.figures())).events;

  // it comes back on the same port: the page reconnects and resumes by itself
  assert.equal(await control("start"), "started");
  await eventually("status connected again", async () => (await statusOf(page)) === "connected", 30000, 100);
  const grid1 = await readGrid(page);
  await eventually(
    "prices moving again",
    async () => {
      const g = await readGrid(page);
      return instruments.every((k) => g[k].updates > grid1[k].updates);
    },
    10000,
    100,
  );
  await eventually("depth after the restart", async () => {
    const b = await readBook(page);
    return b.bids.length >= 10 && b.asks.length >= 10;
  });
  // events flow after the restart (the outage's refused connections all came
  // before the reconnect, so the phase changes here)
  await eventually("events after the restart", async () => (await page.evaluate(() => window.dashboard.figures())).events > eventsBefore + 100, 15000, 100);
  phase = "after";
  const after = await page.evaluate(() => window.dashboard.figures());
  assert.equal(after.state, "connected");
  assert.ok(after.events > eventsBefore + 100, "events flow after the restart");
  assert.ok(after.reconnects >= 1);
  const gapLog = async () => (await page.$$eval("#log li", (ls) => ls.map((l) => l.textContent))).filter((l) => l.includes("gap on")).join("\n");
  assert.equal(after.gaps, 0, `no unannounced gap across the restart:\n${await gapLog()}`);
  assert.equal(after.bookChecks.bad, 0);
  // the scanner works against the new server (whose scan ids start again)
  // once it has analysed the instruments: the first signal of each comes
  // after its first closed candle, and a scan before that is refused ("no
  // analysed instruments yet")
  await eventually(
    "a signal on every instrument from the new server",
    async () => {
      const { channels } = await (await fetch(`http://${addr}/channels`)).json();
      const signals = channels.filter((c) => c.channel.startsWith("signal.sim."));
      return signals.length === instruments.length && signals.every((c) => c.seq > 0);
    },
    30000,
    100,
  );
  const rescanned = await runScan(page, 4);
  assert.equal(rescanned.state, "done", rescanned.text);
  assert.equal(rescanned.rows.length, 4);
  assert.equal(rescanned.deep.pct, 100);
  const log2 = await page.$$eval("#log li", (ls) => ls.map((l) => l.textContent));
  assert.ok(log2.some((l) => l.includes("server restarted")), log2.join("\n"));
  assert.ok(log2.some((l) => l.includes("reconnecting in")), "disconnection logged");
  assert.ok(log2.length <= 100);
  await page.screenshot({ path: join(artifacts, "dashboard-reconnected.png"), fullPage: true });
  // the page keeps working (200 more events handled); then an evaluate round
  // trip: console messages logged before it have been delivered
  const eventsNow = (await page.evaluate(() => window.dashboard.figures())).events;
  await eventually("200 more events on the page", async () => (await page.evaluate(() => window.dashboard.figures())).events > eventsNow + 200, 15000, 100);
  await page.evaluate(() => 0);

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
