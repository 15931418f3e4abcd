// The server goes away (SIGTERM: close 1001) and comes back on the same port
// (tests/js_client.rs does both when asked through `control`): the client
// retries with exponential backoff and jitter, reconnects by itself, and,
// the server's epoch having changed, resynchronises every channel from fresh
// snapshots, announced with `resync` (never a silent gap). Then the server
// freezes (SIGSTOP): only the client's `ping` heartbeat can tell; it drops the
// dead link, and once the server thaws (SIGCONT) resumes with no gap.

import assert from "node:assert/strict";
import { test, after } from "node:test";
import WebSocket from "ws";

import { TickwireClient, State } from "../tickwire.js";
import { wsUrl, eventually, control, endControl, SeqChecker } from "./helpers.mjs";

const clients = [];
after(() => {
  clients.forEach((c) => c.close());
  endControl();
});

test("server stop and restart on the same port: backoff, reconnect, resync", { timeout: 120000 }, async () => {
  const reconnect = { initialDelayMs: 200, maxDelayMs: 1600, factor: 2, jitter: 0.5 };
  const c = new TickwireClient(wsUrl(), { WebSocket, reconnect });
  clients.push(c);
  const check = new SeqChecker();
  const states = [];
  const closes = [];
  const attempts = [];
  c.on("reconnect", (r) => attempts.push(r));
  const resyncs = [];
  const answers = [];
  let snapshotsAfterRestart = 0;
  let eventsAfterRestart = 0;
  c.on("state", (s) => states.push(s));
  c.on("close", (e) => closes.push(e.code));
  c.on("subscribed", (s) => answers.push(s));
  c.on("resync", (r) => {
    resyncs.push(r);
    check.forget(r.channel); // a new history: seqs start over
  });
  c.subscribe(["*.sim.BTC-USDT", "ticker.*.*"], (ev, meta) => {
    check.observe(meta);
    if (answers.length > 1) {
      eventsAfterRestart++;
      if (meta.snapshot) snapshotsAfterRestart++;
    }
  });
  c.connect();
  await eventually("live events", () => check.events > 50);
  const epoch = c.welcome.epoch;

  assert.equal(await control("stop"), "stopped");
  await eventually("state reconnecting", () => c.state === State.RECONNECTING);
  assert.equal(closes[0], 1001, "the server said it is going away");
  // let a few attempts fail against the closed port
  await eventually("three failed attempts", () => attempts.length >= 4, 30000);
  assert.ok(states.some((s) => s.state === State.RECONNECTING));
  assert.equal(await control("start"), "started");
  await eventually("reconnected", () => c.state === State.CONNECTED && answers.length === 2, 30000);
  await eventually("live events after the restart", () => eventsAfterRestart > 50, 20000);
  // a ping barrier: every frame sent before the pong has been handled
  await c.ping();
  c.close();

  // backoff: each scheduled delay within [base * (1 - jitter), base], base doubling up to the cap
  const delays = attempts;
  delays.forEach((s, i) => {
    const base = Math.min(reconnect.maxDelayMs, reconnect.initialDelayMs * reconnect.factor ** i);
    assert.equal(s.attempt, i + 1);
    assert.ok(s.delayMs >= base * (1 - reconnect.jitter) - 1 && s.delayMs <= base, `attempt ${i + 1}: ${s.delayMs} ms, base ${base}`);
  });
  assert.ok(new Set(delays.map((d) => d.delayMs)).size > 1, "jittered delays");

  assert.notEqual(c.welcome.epoch, epoch, "a new server run");
  const after = answers[1];
  const before = new Set(answers[0].channels.map((s) => s.channel));
  const known = new Set(after.channels.map((s) => s.channel).filter((ch) => before.has(ch))).size;
  assert.equal(after.recovered, 0, "no history across a restart");
  assert.ok(after.resynced >= known && known >= 5, `every known channel resynced (${after.resynced}/${known})`);
  assert.equal(new Set(resyncs.map((r) => r.channel)).size, after.resynced);
  assert.ok(snapshotsAfterRestart >= 1, `snapshots after the restart: ${snapshotsAfterRestart}`);
  assert.deepEqual(check.problems, []);
  assert.equal(c.stats.gaps, 0);
});

test("a frozen server (SIGSTOP): the ping heartbeat drops the dead link; resume with no gap after SIGCONT", { timeout: 90000 }, async () => {
  const c = new TickwireClient(wsUrl(), {
    WebSocket,
    pingIntervalMs: 300,
    pongTimeoutMs: 1000,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 },
  });
  clients.push(c);
  const check = new SeqChecker();
  const closes = [];
  const answers = [];
  const resyncs = [];
  c.on("close", (e) => closes.push(e));
  c.on("subscribed", (s) => answers.push(s));
  c.on("resync", (r) => resyncs.push(r));
  let afterThaw = 0;
  c.subscribe(["*.sim.BTC-USDT", "trade.*.*"], (ev, meta) => {
    check.observe(meta);
    if (answers.length > 1) afterThaw++;
  });
  c.connect();
  await eventually("live events", () => check.events > 50);

  assert.equal(await control("freeze"), "frozen");
  await eventually("the heartbeat to give up on the link", () => closes.length > 0, 15000);
  assert.equal(closes[0].code, 4000);
  assert.equal(closes[0].reason, "heartbeat timeout");
  assert.equal(c.state, State.RECONNECTING);
  assert.equal(await control("thaw"), "thawed");
  await eventually("reconnected and resumed", () => c.state === State.CONNECTED && answers.length >= 2, 30000);
  await eventually("live events after the thaw", () => afterThaw > 50, 20000);
  c.close();

  const last = answers[answers.length - 1];
  const subscribedBefore = new Set(answers[0].channels.map((s) => s.channel)).size;
  assert.ok(last.recovered >= subscribedBefore, `every channel resumed from its last seq, same server run (${last.recovered}/${subscribedBefore})`);
  assert.equal(last.resynced, 0);
  assert.deepEqual(resyncs, []);
  assert.deepEqual(check.problems, [], "no gap and no duplicate");
  assert.equal(c.stats.gaps, 0);
});

test("kill -9 and restart: a new epoch resyncs every channel, never a false recovery", { timeout: 90000 }, async () => {
  const reconnect = { initialDelayMs: 100, maxDelayMs: 800, factor: 2, jitter: 0.5 };
  const c = new TickwireClient(wsUrl(), { WebSocket, reconnect });
  clients.push(c);
  const check = new SeqChecker();
  const answers = [];
  const resyncs = [];
  c.on("subscribed", (s) => answers.push(s));
  c.on("resync", (r) => {
    resyncs.push(r);
    check.forget(r.channel); // a new history: seqs start over
  });
  let afterRestart = 0;
  c.subscribe(["book.sim.BTC-USDT", "ticker.sim.*"], (ev, meta) => {
    check.observe(meta);
    if (answers.length > 1) afterRestart++;
  });
  c.connect();
  await eventually("live events", () => check.events > 30);
  const epoch = c.welcome.epoch;

  assert.equal(await control("kill"), "killed");
  await eventually("state reconnecting", () => c.state === State.RECONNECTING, 15000);
  assert.equal(await control("start"), "started");
  await eventually("reconnected", () => c.state === State.CONNECTED && answers.length >= 2, 30000);
  await eventually("live events after the restart", () => afterRestart > 30, 20000);
  c.close();

  assert.notEqual(c.welcome.epoch, epoch, "a new server run");
  const after = answers[answers.length - 1];
  assert.equal(after.recovered, 0, "nothing is claimed recovered across a kill -9");
  assert.ok(after.resynced >= 2 && resyncs.length === after.resynced, `resynced ${after.resynced}`);
  assert.deepEqual(check.problems, []);
  assert.equal(c.stats.gaps, 0);
});
