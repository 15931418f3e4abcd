// A client that stops reading falls behind a real server started with a low
// lag bound (tests/js_client.rs): the server announces each skipped range
// with `lagged` and resends the state; the client reports `lagged` and
// `resync`, never a gap, and its books stay equal to the server's.

import assert from "node:assert/strict";
import { test, after } from "node:test";
import WebSocket from "ws";

import { TickwireClient, OrderBook } from "../tickwire.js";
import { wsUrl, eventually, SeqChecker } from "./helpers.mjs";

const clients = [];
after(() => clients.forEach((c) => c.close()));

test("lagged: announced skips, snapshots resync the books, no gap", { timeout: 60000 }, async () => {
  const c = new TickwireClient(wsUrl(), { WebSocket });
  clients.push(c);
  const check = new SeqChecker();
  const lagged = [];
  const books = new Map();
  const mismatches = [];
  let verifiedAfterLag = 0;
  c.on("lagged", (l) => {
    lagged.push(l);
    // the skipped range starts right after the last seq we saw
    const last = check.last.get(l.channel);
    if (last !== undefined && l.firstSeq !== last + 1) mismatches.push(`lagged ${l.channel} from ${l.firstSeq} after ${last}`);
    check.last.set(l.channel, l.lastSeq);
    if (l.channel.startsWith("book.")) books.delete(l.channel);
  });
  c.subscribe("*.*.*", (ev, meta) => {
    check.observe(meta);
    if (ev.bookSnapshot) {
      const b = new OrderBook();
      if (!b.applySnapshot(ev.bookSnapshot, meta.seq)) mismatches.push(`${ev.channel} snapshot`);
      books.set(ev.channel, b);
    } else if (ev.bookUpdate) {
      const b = books.get(ev.channel);
      if (!b) mismatches.push(`${ev.channel}: update ${meta.seq} without a book`);
      else if (!b.applyUpdate(ev.bookUpdate, meta.seq)) mismatches.push(`${ev.channel}@${meta.seq}`);
      else if (lagged.length) verifiedAfterLag++;
    }
  });
  c.connect();
  await eventually("live events", () => c.stats.events > 500);
  // The main thread stops (no reads) for 2 s while the server publishes: the
  // pause is the subject of the test (nothing can be awaited while frozen).
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
  await eventually("lagged announcements", () => lagged.length > 0, 15000);
  await eventually("book updates verified after the resync", () => verifiedAfterLag > 200, 15000);
  // a ping barrier: every frame sent before the pong has been handled
  await c.ping();
  c.close();
  assert.equal(c.stats.lagged, lagged.length);
  assert.ok(c.stats.resyncs >= lagged.length);
  assert.equal(c.stats.gaps, 0, "a lagged range is not a gap");
  assert.deepEqual(check.problems, []);
  assert.deepEqual(mismatches, []);
});
