// tickwire load-test peer: naive Node `ws` broadcast server.
//
// Why: a baseline that tickwire's load generator measures side by side with
// tickwire. It does what a typical Node app does: for every message, loop over
// all clients and call `send` on each (no batching, no backpressure handling).
//
// CLI (same for every peer):
//   --listen HOST:PORT  (default 127.0.0.1:9001; port 0 picks a free port)
//   --rate N            messages per second published in total (default 1000)
//   --size BYTES        payload size of each message (default 200, minimum 16)
//
// Wire format: the upgrade is accepted on any path (clients use /ws). Every
// message goes to every connected client as ONE binary WebSocket frame of
// exactly --size bytes:
//   bytes 0..8   sequence number, u64 little-endian (starts at 1, +1 per
//                message, the same for all clients)
//   bytes 8..16  publish time, i64 little-endian Unix nanoseconds, taken when
//                the message is created
//   bytes 16..   zero padding
// Client input is read and discarded; pings are answered by `ws`.
// Prints `listening on HOST:PORT` to stderr once bound.
'use strict';

const { parseArgs } = require('../peer-args.js');
const { WebSocketServer } = require('ws');
const { performance } = require('node:perf_hooks');

const opts = parseArgs(process.argv.slice(2), 'tickwire naive Node ws peer');

const wss = new WebSocketServer({
  host: opts.host,
  port: opts.port,
  perMessageDeflate: false,
});

wss.on('connection', (ws) => {
  // Input is discarded (no 'message' listener); ws answers pings itself.
  ws.on('error', () => {});
});
wss.on('error', (err) => {
  process.stderr.write(`server error: ${err.message}\n`);
  process.exit(1);
});

wss.on('listening', () => {
  const addr = wss.address();
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  process.stderr.write(`listening on ${host}:${addr.port}\n`);
  startPublisher();
});

function startPublisher() {
  // Unix nanoseconds = wall-clock anchor + monotonic offset (hrtime), so the
  // timestamp has sub-millisecond resolution.
  const startHr = process.hrtime.bigint();
  const startUnixNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  const rate = BigInt(opts.rate);
  let seq = 0n;

  setInterval(() => {
    const now = process.hrtime.bigint();
    // Accumulator: messages due by elapsed time, so the average rate is exact.
    const due = ((now - startHr) * rate) / 1_000_000_000n;
    while (seq < due) {
      seq += 1n;
      // A fresh buffer per message: ws may keep a reference while queued.
      const buf = Buffer.alloc(opts.size);
      buf.writeBigUInt64LE(seq, 0);
      buf.writeBigInt64LE(startUnixNs + (process.hrtime.bigint() - startHr), 8);
      for (const c of wss.clients) if (c.readyState === 1) c.send(buf);
    }
  }, 1);
}
