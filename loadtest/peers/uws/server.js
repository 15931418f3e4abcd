// tickwire load-test peer: uWebSockets.js pub/sub broadcast server.
//
// Why: uWebSockets is the fastest widely used WebSocket server; this peer is
// what a careful Node developer builds with it, so tickwire is measured
// against the strongest common reference and not only against naive ones.
// It uses uWS idiomatically: every client subscribes to one topic on open
// and each message is published ONCE with `app.publish` (uWS frames it once
// and fans it out in C++, coalescing a tick's messages per socket); nothing
// in JavaScript loops over clients per message.
//
// Slow clients (the drop policy): a client whose backpressure
// (`ws.getBufferedAmount()`) exceeds --max-backlog bytes is unsubscribed and
// skips messages until its backlog has drained to half of that, then is
// subscribed again. This is the policy uWS's own `maxBackpressure` applies
// ("slow receivers are skipped until they catch up"), done here in
// JavaScript so every skipped message is COUNTED (uWS drops silently):
// backlogs are checked on every `drain` event and by a sweep over all
// clients every 100 ms (a client that stops reading gets no `drain`), so a
// backlog overshoots the limit by at most ~100 ms of messages. uWS's own
// limit is set out of reach so it never drops behind our back. Every skipped
// message is also visible to the client as a jump in the sequence number.
// `--max-backlog 0` never skips (node-ws's behaviour: backlogs are
// unbounded). The default, 64 KiB, is uWS's own default `maxBackpressure`.
// The total skipped (clients being skipped now included) is printed to
// stderr every 5 s when it changed and on SIGTERM/SIGINT.
//
// CLI (same for every peer, plus --max-backlog):
//   --listen HOST:PORT    (default 127.0.0.1:9001; port 0 picks a free port)
//   --rate N              messages per second published in total (default 1000)
//   --size BYTES          payload size of each message (default 200, minimum 16)
//   --max-backlog BYTES   skip messages for a client above this backlog
//                         (default 65536; 0 = never skip)
//
// Wire format (as every peer): the upgrade is accepted on any path (clients
// use /ws). Every message goes to every connected client as ONE binary
// WebSocket frame of exactly --size bytes:
//   bytes 0..8   sequence number, u64 little-endian (starts at 1, +1 per
//                message, the same for all clients)
//   bytes 8..16  publish time, i64 little-endian Unix nanoseconds, taken when
//                the message is created
//   bytes 16..   zero padding
// Client input is discarded; pings are answered by uWS. No idle timeout and
// no server pings (node-ws has neither). Prints `listening on HOST:PORT` to
// stderr once bound.
'use strict';

const { parseArgs } = require('../peer-args.js');
const { performance } = require('node:perf_hooks');
const path = require('node:path');

// The native binding itself, never the package's pure-JS fallback (built on
// `ws`), which the package entry point loads silently when the binary does
// not fit this Node: measuring that fallback as "uWS" would be a lie.
function loadNative() {
  const file = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const full = path.join(__dirname, 'node_modules', 'uWebSockets.js', 'binaries', file);
  try {
    return require(full);
  } catch (e) {
    process.stderr.write(
      `cannot load the uWebSockets.js native binary ${full} (Node ${process.version}): ${e.message}\n` +
        'run `npm ci` in loadtest/peers/uws; the package ships binaries for Node 16, 18 and 20\n',
    );
    process.exit(1);
  }
}

const opts = parseArgs(process.argv.slice(2), 'tickwire uWebSockets.js peer', {
  '--max-backlog': ['maxBacklog', 64 * 1024, (n) => n >= 0 && n <= 2 ** 30, 'an integer from 0 to 2^30'],
});
const uWS = loadNative();

const TOPIC = 'all';
const limit = opts.maxBacklog;
/** Open sockets, for the backlog sweep. */
const sockets = new Set();
/** Messages published so far (the last seq). */
let published = 0;
/** Messages skipped by clients that caught up or left, summed. */
let skipped = 0;
/** Clients being skipped now (unsubscribed). */
const behind = new Set();

/** Messages skipped so far, summed over clients (those being skipped too). */
function skippedNow() {
  let n = skipped;
  for (const ws of behind) n += published - ws.getUserData().skipFrom;
  return n;
}

/** Applies the drop policy to one socket (see the header). */
function police(ws) {
  if (limit === 0) return;
  const d = ws.getUserData();
  const backlog = ws.getBufferedAmount();
  if (d.subscribed && backlog > limit) {
    ws.unsubscribe(TOPIC);
    d.subscribed = false;
    d.skipFrom = published;
    behind.add(ws);
  } else if (!d.subscribed && backlog <= limit / 2) {
    skipped += published - d.skipFrom;
    behind.delete(ws);
    ws.subscribe(TOPIC);
    d.subscribed = true;
  }
}

const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024,
  idleTimeout: 0,
  sendPingsAutomatically: false,
  // out of reach: the policy above skips (and counts) before uWS would
  maxBackpressure: 2 ** 31 - 1,
  closeOnBackpressureLimit: false,
  upgrade: (res, req, context) => {
    res.upgrade(
      { subscribed: false, skipFrom: 0 },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    sockets.add(ws);
    ws.subscribe(TOPIC);
    ws.getUserData().subscribed = true;
  },
  // input is discarded (no `message` handler work); uWS answers pings
  message: () => {},
  drain: police,
  close: (ws) => {
    const d = ws.getUserData();
    if (!d.subscribed) skipped += published - d.skipFrom;
    behind.delete(ws);
    sockets.delete(ws);
  },
});
app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end('WebSocket only\n');
});

app.listen(opts.host, opts.port, (token) => {
  if (!token) {
    process.stderr.write(`cannot listen on ${opts.listen}\n`);
    process.exit(1);
  }
  const port = uWS.us_socket_local_port(token);
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  process.stderr.write(`listening on ${host}:${port}\n`);
  startPublisher();
});

function report(n) {
  process.stderr.write(
    `skipped ${n} messages (summed over clients; ${behind.size} clients being skipped now); ` +
      `${sockets.size} clients; ${published} published\n`,
  );
}

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    report(skippedNow());
    process.exit(0);
  });
}

function startPublisher() {
  // Unix nanoseconds = wall-clock anchor + monotonic offset (hrtime), so the
  // timestamp has sub-millisecond resolution.
  const startHr = process.hrtime.bigint();
  const startUnixNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  const rate = BigInt(opts.rate);
  let seq = 0n;
  // uWS copies a published message into its topic tree, so one buffer serves
  const buf = Buffer.alloc(opts.size);

  setInterval(() => {
    const now = process.hrtime.bigint();
    // Accumulator: messages due by elapsed time, so the average rate is exact.
    const due = ((now - startHr) * rate) / 1_000_000_000n;
    while (seq < due) {
      seq += 1n;
      buf.writeBigUInt64LE(seq, 0);
      buf.writeBigInt64LE(startUnixNs + (process.hrtime.bigint() - startHr), 8);
      app.publish(TOPIC, buf, true);
      published += 1;
    }
  }, 1);

  if (limit > 0) setInterval(() => sockets.forEach(police), 100);

  let reported = 0;
  setInterval(() => {
    const n = skippedNow();
    if (n !== reported) {
      reported = n;
      report(n);
    }
  }, 5000);
}
