// Conflation (`conflateMs`) against a real server (tests/js_client.rs, one
// simulated instrument so every interval holds many events): the skips
// arrive as `conflated` events and are never reported as gaps, a book
// verifies after every message (a fold brings a whole `bookSnapshot`), and
// trades beside it keep every seq.

import assert from "node:assert/strict";
import { test, after } from "node:test";
import WebSocket from "ws";

import { TickwireClient, OrderBook } from "../tickwire.js";
import { wsUrl, eventually, SeqChecker } from "./helpers.mjs";

const clients = [];
after(() => clients.forEach((c) => c.close()));

test("conflateMs: announced skips, verified books, every trade", { timeout: 60000 }, async () => {
  const c = new TickwireClient(wsUrl(), { WebSocket });
  clients.push(c);
  const check = new SeqChecker();
  const book = new OrderBook();
  const problems = [];
  const folds = new Map();
  let bookMessages = 0;
  let trades = 0;
  c.on("conflated", (f) => {
    folds.set(f.channel, (folds.get(f.channel) ?? 0) + 1);
    const last = check.last.get(f.channel);
    if (last !== undefined && f.firstSeq !== last + 1) problems.push(`conflated ${f.channel} from ${f.firstSeq} after ${last}`);
    check.last.set(f.channel, f.lastSeq);
  });
  c.on("lagged", (l) => problems.push(`lagged ${l.channel}`));
  const sub = c.subscribe(
    ["book.sim.BTC-USDT", "ticker.sim.BTC-USDT", "trade.sim.BTC-USDT"],
    (ev, meta) => {
      check.observe(meta);
      if (ev.trade) trades++;
      if (ev.bookSnapshot) {
        bookMessages++;
        if (!book.applySnapshot(ev.bookSnapshot, meta.seq)) problems.push(`snapshot checksum @${meta.seq}`);
      } else if (ev.bookUpdate) {
        bookMessages++;
        if (!book.applyUpdate(ev.bookUpdate, meta.seq)) problems.push(`update checksum @${meta.seq}`);
      }
    },
    { conflateMs: 50 },
  );
  c.connect();
  await sub.ready;
  await eventually(
    "folds on the book and the ticker, 200 trades",
    () => (folds.get("book.sim.BTC-USDT") ?? 0) >= 3 && (folds.get("ticker.sim.BTC-USDT") ?? 0) >= 3 && trades >= 200,
    30000,
  );
  await c.ping(); // every frame sent before the pong has been handled
  assert.equal(folds.get("trade.sim.BTC-USDT"), undefined, "trades are never folded");
  assert.equal(c.stats.gaps, 0, "a conflated range is not a gap");
  assert.equal(c.stats.conflated, [...folds.values()].reduce((a, b) => a + b, 0));
  assert.equal(c.stats.lagged, 0);
  assert.ok(bookMessages >= 4, `${bookMessages} book messages`);
  assert.deepEqual(check.problems, []);
  assert.deepEqual(problems, []);
});

test("conflateMs out of range throws before anything is sent", () => {
  const c = new TickwireClient(wsUrl(), { WebSocket });
  for (const bad of [5, 60001, 1.5, -10]) {
    assert.throws(() => c.subscribe("ticker.sim.BTC-USDT", () => {}, { conflateMs: bad }), /conflateMs/);
  }
  assert.equal(c._patterns.size, 0, "nothing kept");
});

test("each rate is resubscribed after a reconnect, resuming with no gap", { timeout: 60000 }, async () => {
  const c = new TickwireClient(wsUrl(), { WebSocket, reconnect: { initialDelayMs: 50, maxDelayMs: 500, factor: 2, jitter: 0.5 } });
  clients.push(c);
  const check = new SeqChecker();
  const folds = new Map();
  const answers = [];
  c.on("conflated", (f) => {
    folds.set(f.channel, (folds.get(f.channel) ?? 0) + 1);
    check.last.set(f.channel, f.lastSeq);
  });
  c.on("subscribed", (s) => answers.push(s));
  let trades = 0;
  c.subscribe("book.sim.BTC-USDT", (ev, meta) => check.observe(meta), { conflateMs: 50 });
  c.subscribe("trade.sim.BTC-USDT", (ev, meta) => {
    check.observe(meta);
    trades++;
  });
  c.connect();
  await eventually("folds and trades", () => (folds.get("book.sim.BTC-USDT") ?? 0) >= 2 && trades >= 50);
  const before = { folds: folds.get("book.sim.BTC-USDT"), trades, answers: answers.length };
  c._ws.terminate(); // a network drop, not a close the client asked for
  await eventually("two answers after the reconnect (one per rate)", () => answers.length >= before.answers + 2);
  const again = answers.slice(before.answers);
  assert.deepEqual(again.map((a) => a.channels.map((s) => s.channel)).sort(), [["book.sim.BTC-USDT"], ["trade.sim.BTC-USDT"]]);
  assert.ok(again.every((a) => a.recovered === 1), "each channel resumed from its last seq");
  await eventually("the book still folds, trades still flow", () => folds.get("book.sim.BTC-USDT") >= before.folds + 2 && trades >= before.trades + 50);
  await c.ping();
  assert.equal(folds.get("trade.sim.BTC-USDT"), undefined, "the live subscription stays live");
  assert.equal(c.stats.gaps, 0);
  assert.deepEqual(check.problems, []);
});
