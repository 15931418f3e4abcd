// The conformance scenarios the Rust and Python clients also pass, for the
// ones the other JS tests do not cover: a pattern covering a channel created
// later (from seq 1), and a book whose checksum is verified on every update.
// Run by tests/js_client.rs against a server with a publish key.

import assert from "node:assert/strict";
import { test, after } from "node:test";
import WebSocket from "ws";

import { TickwireClient, OrderBook } from "../tickwire.js";
import { wsUrl, httpUrl, eventually, SeqChecker } from "./helpers.mjs";

const clients = [];
function client() {
  const c = new TickwireClient(wsUrl(), { WebSocket });
  clients.push(c);
  return c;
}
after(() => clients.forEach((c) => c.close()));

test("a pattern covers a channel created later, from seq 1", { timeout: 60000 }, async () => {
  const c = client();
  const got = [];
  const sub = c.subscribe("alerts.app.*", (ev, meta) => got.push({ channel: ev.channel, seq: meta.seq, json: ev.custom?.json }));
  c.connect();
  await sub.ready;
  const resp = await fetch(httpUrl("/publish"), {
    method: "POST",
    headers: { Authorization: `Bearer ${process.env.TICKWIRE_PUBLISH_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ channel: "alerts.app.BTC-USDT", custom: { json: "{\"level\":1}" } }),
  });
  assert.equal(resp.status, 200, await resp.text());
  await eventually("the new channel's first event", () => got.length > 0);
  assert.deepEqual(got[0], { channel: "alerts.app.BTC-USDT", seq: 1, json: "{\"level\":1}" });
});

test("every book update's checksum is verified against the local book", { timeout: 60000 }, async () => {
  const c = client();
  const book = new OrderBook();
  const check = new SeqChecker();
  let snapshots = 0;
  let verified = 0;
  let mismatches = 0;
  const sub = c.subscribe("book.sim.BTC-USDT", (ev, meta) => {
    check.observe(meta);
    if (ev.bookSnapshot) {
      snapshots++;
      assert.ok(book.applySnapshot(ev.bookSnapshot, meta.seq), "snapshot checksum");
    } else if (ev.bookUpdate) {
      if (book.applyUpdate(ev.bookUpdate, meta.seq)) verified++;
      else mismatches++;
    }
  });
  c.connect();
  await sub.ready;
  await eventually("150 verified updates", () => verified >= 150 || mismatches > 0, 30000);
  assert.equal(mismatches, 0);
  assert.equal(snapshots, 1, "one snapshot, then updates only");
  assert.deepEqual(check.problems, []);
});
