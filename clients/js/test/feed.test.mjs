// The JS client against a real server started with `--gzip-threshold 64`
// (tests/js_client.rs): JSON mode, per-channel callbacks, unsubscribe, gzip
// frames, gap detection, ping heartbeat, errors, and proto mode with a
// caller-supplied codec.

import assert from "node:assert/strict";
import { test, after } from "node:test";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import WebSocket from "ws";
import protobuf from "protobufjs";

import { TickwireClient, OrderBook, State, matchPattern, isGzip } from "../tickwire.js";
import { wsUrl, getJson, eventually, SeqChecker } from "./helpers.mjs";

const clients = [];
function client(options = {}) {
  const c = new TickwireClient(wsUrl(), { WebSocket, ...options });
  clients.push(c);
  return c;
}
after(() => clients.forEach((c) => c.close()));

/** A `ws` WebSocket that counts the gzip binary frames it receives. */
let gzipFramesSeen = 0;
class CountingWebSocket extends WebSocket {
  set onmessage(fn) {
    super.onmessage = fn && ((m) => {
      if (typeof m.data !== "string" && isGzip(new Uint8Array(m.data))) gzipFramesSeen++;
      fn(m);
    });
  }
  get onmessage() {
    return super.onmessage;
  }
}

test("JSON mode: welcome, pattern subscribe, per-channel callbacks, unsubscribe", { timeout: 60000 }, async () => {
  const { channels } = await getJson("/channels");
  const tickers = channels.map((c) => c.channel).filter((c) => c.startsWith("ticker."));
  assert.ok(tickers.length >= 10, `at least 10 instruments: ${tickers}`);

  const c = client();
  const states = [];
  c.on("state", (s) => states.push(s.state));
  const opened = c.once("open");
  const welcomed = c.once("welcome");
  c.connect();
  assert.equal((await opened).protocol, "tickwire.v1.json", "subprotocol echoed");
  const welcome = await welcomed;
  assert.equal(welcome.protocol, "tickwire.v1");
  assert.equal(welcome.format, "json");
  assert.equal(c.state, State.CONNECTED);
  assert.deepEqual(states, ["connecting", "connected"]);

  const check = new SeqChecker();
  const all = new Map(); // channel -> events via the pattern callback
  const eth = [];
  const btcTrades = [];
  const subAll = c.subscribe("ticker.*.*", (ev, meta) => {
    assert.ok(matchPattern("ticker.*.*", ev.channel));
    assert.equal(meta.kind, "ticker");
    assert.equal(typeof ev.ticker.last, "number");
    assert.equal(typeof ev.seq, "string", "64-bit integers are strings in JSON mode");
    check.observe(meta);
    all.set(ev.channel, (all.get(ev.channel) ?? 0) + 1);
  });
  const subEth = c.subscribe(["ticker.sim.ETH-USDT"], (ev) => eth.push(ev.channel));
  const subTrade = c.subscribe("trade.sim.BTC-USDT", (ev, meta) => {
    assert.equal(meta.kind, "trade");
    assert.ok(["SIDE_BUY", "SIDE_SELL"].includes(ev.trade.side), ev.trade.side);
    check.observe(meta);
    btcTrades.push(meta.seq);
  });
  const answer = await subAll.ready;
  assert.deepEqual(answer.channels.map((s) => s.channel).sort(), [...tickers].sort());
  await subEth.ready;
  await subTrade.ready;

  await eventually("tickers of every instrument", () => tickers.every((t) => all.get(t) > 1));
  await eventually("ETH tickers and BTC trades", () => eth.length > 1 && btcTrades.length > 3);
  assert.ok(eth.every((ch) => ch === "ticker.sim.ETH-USDT"), "a callback only sees its channels");

  // unsubscribing the exact name leaves the pattern's deliveries alone
  await subEth.unsubscribe();
  const ethBefore = eth.length;
  const allEthBefore = all.get("ticker.sim.ETH-USDT");
  await eventually("ETH tickers through the pattern", () => all.get("ticker.sim.ETH-USDT") > allEthBefore + 1);
  assert.equal(eth.length, ethBefore, "no callback after unsubscribe");

  // unsubscribing the only trade subscription stops trade events entirely
  const unsub = await subTrade.unsubscribe();
  assert.deepEqual(unsub.channels, ["trade.sim.BTC-USDT"]);
  let tradesAfter = 0;
  c.on("event", (e) => e.channel.startsWith("trade.") && tradesAfter++);
  // while BTC tickers go on (trades come about as often), then a ping
  // barrier: everything the server sent before the pong has been handled
  const btcTickersBefore = all.get("ticker.sim.BTC-USDT");
  await eventually("more BTC tickers", () => all.get("ticker.sim.BTC-USDT") > btcTickersBefore + 3);
  await c.ping();
  assert.equal(tradesAfter, 0, "the server stopped sending trades");

  assert.deepEqual(check.problems, []);
  assert.equal(c.stats.gaps, 0);
  assert.ok(c.stats.events > 20);
  await subAll.unsubscribe();
  c.close();
  assert.equal(c.state, State.CLOSED);
});

test("gzip frames (book snapshots over --gzip-threshold) are decoded with DecompressionStream", { timeout: 60000 }, async () => {
  gzipFramesSeen = 0;
  const c = client({ WebSocket: CountingWebSocket });
  const books = new Map();
  const check = new SeqChecker();
  let snapshots = 0;
  let gzippedSnapshots = 0;
  let verified = 0;
  const mismatches = [];
  c.subscribe("book.sim.*", (ev, meta) => {
    check.observe(meta);
    let book = books.get(ev.channel);
    if (ev.bookSnapshot) {
      assert.ok(meta.snapshot, "the state sent on subscribe is flagged");
      snapshots++;
      if (meta.gzipped) gzippedSnapshots++;
      book = new OrderBook();
      books.set(ev.channel, book);
      assert.ok(book.applySnapshot(ev.bookSnapshot, meta.seq), `${ev.channel} snapshot checksum`);
      assert.ok(ev.bookSnapshot.bids.length >= 10 && ev.bookSnapshot.asks.length >= 10);
    } else if (ev.bookUpdate) {
      assert.ok(book, `${ev.channel}: an update before its snapshot`);
      if (book.applyUpdate(ev.bookUpdate, meta.seq)) verified++;
      else mismatches.push(`${ev.channel}@${meta.seq}`);
    }
  });
  c.connect();
  const { channels } = await getJson("/channels");
  const bookChannels = channels.filter((x) => x.channel.startsWith("book.")).length;
  await eventually("a snapshot of every book", () => snapshots === bookChannels);
  await eventually("100 verified book updates", () => verified >= 100);
  c.close(); // frames already received are still handled, in order
  assert.equal(gzippedSnapshots, bookChannels, "every snapshot came gzipped");
  assert.ok(gzipFramesSeen >= bookChannels, `gzip frames on the wire: ${gzipFramesSeen}`);
  await eventually("every gzip frame decoded", () => c.stats.gzipped === gzipFramesSeen);
  assert.deepEqual(mismatches, [], "the decoded books match the server's checksums");
  assert.deepEqual(check.problems, []);
  assert.equal(c.stats.gaps, 0);
  assert.equal(c.stats.errors, 0);
});

test("a lost frame shows as a gap on its channel, and only there", { timeout: 60000 }, async () => {
  // Real frames from the real server; this socket loses one of them, as a
  // buggy proxy or client would: the 5th BTC trade.
  let btcTrades = 0;
  let droppedSeq = null;
  class LossyWebSocket extends WebSocket {
    set onmessage(fn) {
      super.onmessage = fn && ((m) => {
        const text = typeof m.data === "string" ? m.data : gunzipSync(Buffer.from(m.data)).toString();
        if (text.includes('"channel":"trade.sim.BTC-USDT"') && ++btcTrades === 5) {
          droppedSeq = Number(JSON.parse(text).event.seq);
          return;
        }
        fn(m);
      });
    }
    get onmessage() {
      return super.onmessage;
    }
  }
  const c = client({ WebSocket: LossyWebSocket });
  const gaps = [];
  c.on("gap", (g) => gaps.push(g));
  c.subscribe(["trade.sim.*", "ticker.sim.*"]);
  c.connect();
  await eventually("the gap", () => gaps.length > 0);
  await eventually("more BTC trades", () => btcTrades > 8);
  // a ping barrier: every frame sent before the pong has been handled
  await c.ping();
  assert.deepEqual(gaps, [{ channel: "trade.sim.BTC-USDT", expected: droppedSeq, received: droppedSeq + 1 }]);
  assert.equal(c.stats.gaps, 1);
  c.close();
});

test("ping messages are the heartbeat; list_channels; refused subscriptions reject", { timeout: 60000 }, async () => {
  const c = client({ pingIntervalMs: 200 });
  const pongs = [];
  c.on("pong", (p) => pongs.push(p));
  const welcomed = c.once("welcome");
  c.connect();
  await welcomed;
  await eventually("three heartbeat pongs", () => pongs.length >= 3, 10000);
  assert.ok(pongs.every((p) => p.rttMs >= 0 && BigInt(p.serverTimeNs) > 0n));
  const { rttMs } = await c.ping();
  assert.ok(rttMs >= 0 && rttMs < 5000, `rtt ${rttMs}`);

  const list = await c.listChannels("book.*.*");
  assert.ok(list.length >= 10 && list.every((x) => x.channel.startsWith("book.")), JSON.stringify(list));

  const unknown = c.subscribe("ticker.sim.NOPE-USDT");
  await assert.rejects(unknown.ready, (e) => e.code === "ERROR_CODE_UNKNOWN_CHANNEL");
  const invalid = c.subscribe("not a channel!");
  await assert.rejects(invalid.ready, (e) => e.code === "ERROR_CODE_INVALID_CHANNEL");
  // several refused names come back as one error listing them all
  const several = c.subscribe(["ticker.sim.NOPE-1", "ticker.sim.NOPE-2", "ticker.sim.NOPE-3"]);
  await assert.rejects(
    several.ready,
    (e) => e.code === "ERROR_CODE_UNKNOWN_CHANNEL" && e.errors.length === 1 && e.errors[0].channels.length === 3,
  );
  assert.equal(c.state, State.CONNECTED, "bad input does not cost the connection");
  c.close();
});

test("proto mode with a caller-supplied decoder (protobufjs), gzip included", { timeout: 60000 }, async () => {
  const root = protobuf.loadSync(fileURLToPath(new URL("../../../proto/tickwire/v1/tickwire.proto", import.meta.url)));
  const ServerMessage = root.lookupType("tickwire.v1.ServerMessage");
  const ClientMessage = root.lookupType("tickwire.v1.ClientMessage");
  const decode = (bytes) =>
    ServerMessage.toObject(ServerMessage.decode(bytes), { longs: String, enums: String, bytes: String });
  const encode = (msg) => ClientMessage.encode(ClientMessage.fromObject(msg)).finish();

  const c = client({ decode, encode });
  assert.equal(c.format, "proto");
  const opened = c.once("open");
  const welcomed = c.once("welcome");
  c.connect();
  assert.equal((await opened).protocol, "tickwire.v1.proto");
  const welcome = await welcomed;
  assert.equal(welcome.format, "proto");
  const check = new SeqChecker();
  const book = new OrderBook();
  let verified = 0;
  let gzipped = 0;
  let trades = 0;
  c.subscribe(["book.sim.BTC-USDT", "trade.sim.*"], (ev, meta) => {
    check.observe(meta);
    if (meta.gzipped) gzipped++;
    if (ev.bookSnapshot) assert.ok(book.applySnapshot(ev.bookSnapshot, meta.seq), "snapshot checksum");
    else if (ev.bookUpdate) {
      assert.ok(book.applyUpdate(ev.bookUpdate, meta.seq), `checksum at ${meta.seq}`);
      verified++;
    } else if (ev.trade) trades++;
  });
  await eventually("book updates and trades in proto mode", () => verified >= 30 && trades >= 30);
  assert.ok(gzipped >= 1, "the snapshot arrived gzipped");
  assert.deepEqual(check.problems, []);
  assert.equal(c.stats.gaps, 0);
  c.close();
});
