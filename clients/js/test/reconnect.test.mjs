// Reconnect + resume after server-side closes, against a real server with
// `--jwt-secret` (tests/js_client.rs): tokens that expire while connected
// make the server close with 4001; the client reconnects with a fresh token
// from its token function and resumes every channel from the last seq seen,
// with no gap and no duplicate.

import assert from "node:assert/strict";
import { test, after } from "node:test";
import WebSocket from "ws";

import { TickwireClient, State, matchPattern } from "../tickwire.js";
import { wsUrl, getJson, eventually, jwt, SeqChecker } from "./helpers.mjs";

const secret = process.env.TICKWIRE_JWT_SECRET;
const clients = [];
after(() => clients.forEach((c) => c.close()));

test("server-side closes (token expiry, 4001): reconnect, resume from the last seq, no gap", { timeout: 90000 }, async () => {
  assert.ok(secret, "TICKWIRE_JWT_SECRET is set");
  let tokensIssued = 0;
  const token = () => {
    tokensIssued++;
    // valid for 2-3 s: the server closes the connection when it expires
    return jwt(secret, { sub: "js-client-test", exp: Math.floor(Date.now() / 1000) + 3 });
  };
  const c = new TickwireClient(wsUrl(), {
    WebSocket,
    token,
    reconnect: { initialDelayMs: 100, maxDelayMs: 2000, factor: 2, jitter: 0.5 },
  });
  clients.push(c);
  const check = new SeqChecker();
  const closes = [];
  const states = [];
  const answers = [];
  const resyncs = [];
  c.on("close", (e) => closes.push(e.code));
  c.on("state", (s) => states.push(s.state));
  c.on("subscribed", (s) => answers.push(s));
  c.on("resync", (r) => resyncs.push(r));
  let afterFirstClose = 0;
  const patterns = ["*.sim.BTC-USDT", "*.sim.ETH-USDT", "ticker.*.*"];
  const expected = (await getJson("/channels")).channels.map((c) => c.channel).filter((ch) => patterns.some((p) => matchPattern(p, ch)));
  assert.ok(expected.length >= 18, `channels: ${expected}`);
  c.subscribe(patterns, (ev, meta) => {
    check.observe(meta);
    if (closes.length > 0) afterFirstClose++;
  });
  c.connect();

  await eventually("two server-side closes and reconnects", () => closes.length >= 2 && answers.length >= 3 && c.state === State.CONNECTED, 60000);
  await eventually("events after the reconnects", () => afterFirstClose > 100, 20000);
  // a ping barrier: every frame sent before the pong has been handled
  await c.ping();
  c.close();

  assert.ok(closes.slice(0, 2).every((code) => code === 4001), `closed by the server with 4001: ${closes}`);
  assert.ok(tokensIssued >= 3, `a fresh token per connection (${tokensIssued})`);
  const [first, ...resumed] = answers;
  // (a channel two patterns cover is listed twice)
  const channels = (a) => new Set(a.channels.map((s) => s.channel)).size;
  const names = new Set(first.channels.map((s) => s.channel));
  assert.ok(expected.every((ch) => names.has(ch)), `every matching channel subscribed: ${[...names]}`);
  assert.equal(first.recovered, 0);
  for (const a of resumed) {
    assert.ok(channels(a) >= channels(first), "every channel resubscribed");
    assert.ok(a.recovered >= channels(first), `every channel resumed from its last seq (${a.recovered}/${channels(a)})`);
    assert.equal(a.resynced, 0);
  }
  assert.deepEqual(resyncs, []);
  assert.deepEqual(check.problems, [], "no gap and no duplicate across the reconnects");
  assert.equal(c.stats.gaps, 0);
  assert.ok(c.stats.recovered >= 2 * channels(first));
  assert.ok(states.includes("reconnecting"), `states: ${states}`);
});

test("a static token the server refuses (4001) is not retried", { timeout: 30000 }, async () => {
  const expired = jwt(secret, { sub: "js-client-test", exp: Math.floor(Date.now() / 1000) - 60 });
  const c = new TickwireClient(wsUrl(), { WebSocket, token: expired, reconnect: { initialDelayMs: 50 } });
  clients.push(c);
  const errors = [];
  const reconnects = [];
  c.on("error", (e) => errors.push(e.code));
  // the client emits `reconnect` when it schedules an attempt, in the same
  // step that handles the close: none by the time it is CLOSED is none at all
  c.on("reconnect", (r) => reconnects.push(r));
  const closed = c.once("state", (s) => s.state === State.CLOSED);
  c.subscribe("ticker.*.*");
  c.connect();
  const s = await closed;
  assert.equal(s.code, 4001);
  assert.ok(errors.includes("ERROR_CODE_UNAUTHORIZED"), `errors: ${errors}`);
  assert.deepEqual(reconnects, []);
  assert.equal(c.state, State.CLOSED);
  assert.equal(c.stats.reconnects, 0);
});
