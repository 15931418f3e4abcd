// tickwire.js: a dependency-free client for the tickwire market-data feed.
//
// One ES module for browsers and Node 20+ (pass a WebSocket implementation
// such as `ws` there). Speaks the JSON mode of the tickwire.v1 protocol
// (subprotocol `tickwire.v1.json`), or the proto mode when the caller passes a
// decoder/encoder. See README.md beside this file and docs/protocol.md.

/** Connection states, in the order a connection normally goes through them. */
export const State = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  CLOSED: "closed",
});

/** Close codes of docs/protocol.md section 6. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  HEARTBEAT_TIMEOUT: 4000,
  UNAUTHORIZED: 4001,
  FORBIDDEN: 4003,
  SLOW_CONSUMER: 4008,
  TOO_MANY_REQUESTS: 4029,
});

/** The event payload field names (one of them is set on every event). */
export const PAYLOAD_KINDS = Object.freeze([
  "trade",
  "ticker",
  "bookSnapshot",
  "bookUpdate",
  "candle",
  "signal",
  "sentiment",
  "scanStarted",
  "scanResult",
  "symbolAnalyzed",
  "scanProgress",
  "scanDone",
  "scanError",
  "custom",
]);

const SUBPROTOCOL = { json: "tickwire.v1.json", proto: "tickwire.v1.proto" };

/** Which payload an event carries (`"ticker"`, `"bookUpdate"`, ...), or `undefined`. */
export function payloadKind(event) {
  for (const k of PAYLOAD_KINDS) if (event[k] !== undefined) return k;
  return undefined;
}

/**
 * Whether `channel` matches a subscribe `pattern`: dot-separated tokens,
 * `*` matches exactly one token.
 */
export function matchPattern(pattern, channel) {
  if (pattern === channel) return true;
  if (!pattern.includes("*")) return false;
  const p = pattern.split(".");
  const c = channel.split(".");
  if (p.length !== c.length) return false;
  for (let i = 0; i < p.length; i++) if (p[i] !== "*" && p[i] !== c[i]) return false;
  return true;
}

/** Whether the bytes start with the gzip magic `1f 8b`. */
export function isGzip(bytes) {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Decompresses one gzip member with the platform's `DecompressionStream`. */
export async function gunzip(bytes) {
  if (typeof DecompressionStream !== "function") {
    throw new Error("DecompressionStream is not available on this platform");
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// ---------------------------------------------------------------------------
// Order book with the Kraken-style checksum of docs/protocol.md section 8
// ---------------------------------------------------------------------------

let crcTable;
/** CRC32 (IEEE) of a string of ASCII characters. */
export function crc32(text) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = crcTable[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function checksumNumber(value, scale) {
  const n = Math.abs(Math.round(value * scale));
  return n > 0 ? String(n) : "";
}

/**
 * The book checksum: top 10 asks (ascending) then top 10 bids (descending),
 * price then quantity as fixed-point text without point and leading zeros.
 */
export function bookChecksum(asks, bids, priceDecimals, sizeDecimals, depth = 10) {
  const ps = 10 ** priceDecimals;
  const ss = 10 ** sizeDecimals;
  let text = "";
  for (const side of [asks, bids]) {
    const n = Math.min(depth, side.length);
    for (let i = 0; i < n; i++) {
      text += checksumNumber(side[i].price, ps) + checksumNumber(side[i].quantity || 0, ss);
    }
  }
  return crc32(text);
}

/**
 * A local L2 book built from `bookSnapshot` and `bookUpdate` payloads.
 * `bids` are kept best (highest) first, `asks` best (lowest) first.
 */
export class OrderBook {
  constructor() {
    this.bids = [];
    this.asks = [];
    this.priceDecimals = 8;
    this.sizeDecimals = 8;
    this.seq = 0;
    this.ready = false;
  }

  /** Replaces the book with a snapshot; returns whether its checksum matches. */
  applySnapshot(snapshot, seq = 0) {
    this.priceDecimals = snapshot.priceDecimals ?? 0; // absent = 0 (proto3 JSON)
    this.sizeDecimals = snapshot.sizeDecimals ?? 0;
    const level = (l) => ({ price: l.price || 0, quantity: l.quantity || 0 });
    this.bids = (snapshot.bids || []).map(level).sort((a, b) => b.price - a.price);
    this.asks = (snapshot.asks || []).map(level).sort((a, b) => a.price - b.price);
    this.seq = seq;
    this.ready = true;
    return snapshot.checksum === undefined || this.checksum() === (snapshot.checksum >>> 0);
  }

  /**
   * Applies changed levels (quantity 0 or absent removes the price); returns
   * whether the book's checksum equals the update's.
   */
  applyUpdate(update, seq = 0) {
    const scale = 10 ** this.priceDecimals;
    for (const l of update.bids || []) this.#set(this.bids, true, l, scale);
    for (const l of update.asks || []) this.#set(this.asks, false, l, scale);
    this.seq = seq;
    return update.checksum === undefined || this.checksum() === (update.checksum >>> 0);
  }

  /** The checksum of the current book. */
  checksum() {
    return bookChecksum(this.asks, this.bids, this.priceDecimals, this.sizeDecimals);
  }

  #set(side, descending, l, scale) {
    const price = l.price || 0;
    const quantity = l.quantity || 0;
    const key = Math.round(price * scale);
    // binary search for the level's place in the sorted side
    let lo = 0;
    let hi = side.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const k = Math.round(side[mid].price * scale);
      if (descending ? k > key : k < key) lo = mid + 1;
      else hi = mid;
    }
    const found = lo < side.length && Math.round(side[lo].price * scale) === key;
    if (quantity === 0) {
      if (found) side.splice(lo, 1);
    } else if (found) {
      side[lo].quantity = quantity;
    } else {
      side.splice(lo, 0, { price, quantity });
    }
  }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

const DEFAULTS = {
  format: "json",
  reconnect: { initialDelayMs: 500, maxDelayMs: 10000, factor: 2, jitter: 0.5 },
  pingIntervalMs: 10000,
  pongTimeoutMs: 10000,
  snapshot: true,
};

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) {
    // `ws` may hand over fragments as an array of buffers
    const total = data.reduce((n, b) => n + b.byteLength, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const b of data) {
      out.set(toBytes(b), at);
      at += b.byteLength;
    }
    return out;
  }
  throw new TypeError("unsupported binary frame type");
}

/**
 * A tickwire feed client: connects, (re)subscribes with `resume`, decodes
 * gzip frames, detects seq gaps per channel and reconnects with exponential
 * backoff and jitter.
 */
export class TickwireClient {
  /**
   * @param {string} url `ws://host:port/ws` (or `wss://`)
   * @param {object} [options] see tickwire.d.ts (`ClientOptions`)
   */
  constructor(url, options = {}) {
    this.url = url;
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== "function") {
      throw new Error("no WebSocket implementation: pass options.WebSocket (e.g. the `ws` package)");
    }
    this._WS = WS;
    this._decode = options.decode;
    this._encode = options.encode;
    this.format = options.format ?? (options.decode ? "proto" : DEFAULTS.format);
    if (this.format !== "json" && this.format !== "proto") throw new Error(`unknown format ${this.format}`);
    if (this.format === "proto" && (typeof this._decode !== "function" || typeof this._encode !== "function")) {
      throw new Error("proto mode needs options.decode (bytes -> message object) and options.encode (message object -> bytes)");
    }
    this._token = options.token;
    this._reconnect =
      options.reconnect === false ? false : { ...DEFAULTS.reconnect, ...(options.reconnect || {}) };
    this._pingIntervalMs = options.pingIntervalMs ?? DEFAULTS.pingIntervalMs;
    this._pongTimeoutMs = options.pongTimeoutMs ?? DEFAULTS.pongTimeoutMs;
    this._snapshot = options.snapshot ?? DEFAULTS.snapshot;

    this._state = State.IDLE;
    this._listeners = new Map();
    this._ws = null;
    this._socketId = 0;
    this._nextRequest = 1;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._lastInbound = 0;
    this._closedByUser = false;
    /** The last `welcome` received (null before the first). */
    this.welcome = null;

    // subscriptions: handles, pattern reference counts, dispatch cache
    this._subs = new Set();
    this._patterns = new Map(); // pattern -> number of handles holding it
    this._rates = new Map(); // pattern -> conflateMs the latest subscribe asked (0 = every event)
    this._kept = new Set(); // names left subscribed on the server (see _unsubscribe)
    this._dispatch = new Map(); // channel -> handles whose patterns match it
    // per-channel position: { seq, epoch, snapshotAt }
    this._positions = new Map();
    // pending requests: id -> { kind, resolve, reject, ... }
    this._pending = new Map();

    // inbound frames are handled strictly in order; gzip decoding is async
    this._queue = [];
    this._queueHead = 0;
    this._draining = false;

    /** Running totals (never reset by reconnects). */
    this.stats = {
      messages: 0,
      events: 0,
      gzipped: 0,
      bytes: 0,
      gaps: 0,
      lagged: 0,
      conflated: 0,
      resyncs: 0,
      recovered: 0,
      reconnects: 0,
      errors: 0,
    };
  }

  /** The connection state (see `State`). */
  get state() {
    return this._state;
  }

  // -- events ---------------------------------------------------------------

  /**
   * Adds a listener; returns a function that removes it. Events: `state`,
   * `open`, `close`, `reconnect`, `welcome`, `subscribed`, `unsubscribed`,
   * `event`, `gap`, `lagged`, `conflated`, `resync`, `error`, `pong`, `message`.
   */
  on(name, fn) {
    let set = this._listeners.get(name);
    if (!set) this._listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    this._listeners.get(name)?.delete(fn);
  }

  /** A promise of the next `name` event (optionally one that `filter` accepts). */
  once(name, filter = () => true) {
    return new Promise((resolve) => {
      const off = this.on(name, (v) => {
        if (filter(v)) {
          off();
          resolve(v);
        }
      });
    });
  }

  _emit(name, value) {
    const set = this._listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(value);
      } catch (e) {
        // a listener's bug must not break the feed
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  _setState(state, detail = {}) {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    this._emit("state", { state, previous, ...detail });
  }

  // -- connection -----------------------------------------------------------

  /** Opens the connection (and keeps it open until `close()`). */
  connect() {
    if (this._state === State.CONNECTING || this._state === State.CONNECTED) return this;
    this._closedByUser = false;
    this._attempt = 0;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._open();
    return this;
  }

  /** Closes the connection for good (no reconnect). */
  close(code = 1000, reason = "client closing") {
    this._closedByUser = true;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._stopHeartbeat();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
    }
    this._failPending(new Error("client closed"));
    this._setState(State.CLOSED, { code, reason });
  }

  async _open() {
    const id = ++this._socketId;
    this._setState(this._attempt > 0 ? State.RECONNECTING : State.CONNECTING, { attempt: this._attempt });
    let url = this.url;
    try {
      const token = typeof this._token === "function" ? await this._token() : this._token;
      if (token) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
    } catch (e) {
      this._emitError("token", e);
      if (id === this._socketId) this._scheduleReconnect({ code: 0, reason: "token provider failed" });
      return;
    }
    if (id !== this._socketId || this._closedByUser) return;
    let ws;
    try {
      ws = new this._WS(url, [SUBPROTOCOL[this.format]]);
    } catch (e) {
      this._emitError("connect", e);
      this._scheduleReconnect({ code: 0, reason: String(e?.message ?? e) });
      return;
    }
    this._ws = ws;
    try {
      ws.binaryType = "arraybuffer";
    } catch {
      /* some implementations fix it */
    }
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._lastInbound = Date.now();
      this._emit("open", { url: this.url, protocol: ws.protocol });
    };
    ws.onmessage = (m) => {
      if (this._ws !== ws) return;
      this._lastInbound = Date.now();
      this._enqueue(m.data);
    };
    ws.onerror = (e) => {
      if (this._ws !== ws) return;
      this._emitError("socket", e?.error ?? new Error(e?.message || "WebSocket error"));
    };
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      this._lost({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    };
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  /** The socket is gone (closed by the server, the network or a dead heartbeat). */
  _lost(info) {
    const ws = this._ws;
    this._ws = null;
    if (ws) this._detach(ws);
    this._stopHeartbeat();
    this._failPending(new Error(`connection closed (${info.code})`));
    this._emit("close", info);
    if (this._closedByUser) return;
    const staticToken = typeof this._token !== "function";
    if (staticToken && (info.code === CloseCode.UNAUTHORIZED || info.code === CloseCode.FORBIDDEN)) {
      // the same credentials would be refused again
      this._setState(State.CLOSED, info);
      return;
    }
    this._scheduleReconnect(info);
  }

  _scheduleReconnect(info) {
    if (this._closedByUser) return;
    if (!this._reconnect) {
      this._setState(State.CLOSED, info);
      return;
    }
    const r = this._reconnect;
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * r.factor ** this._attempt);
    const delayMs = Math.round(base * (1 - r.jitter * Math.random()));
    this._attempt++;
    this.stats.reconnects++;
    const detail = { ...info, attempt: this._attempt, delayMs };
    this._setState(State.RECONNECTING, detail);
    this._emit("reconnect", detail);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (!this._closedByUser) this._open();
    }, delayMs);
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    if (!(this._pingIntervalMs > 0)) return;
    this._pingTimer = setInterval(() => {
      const ws = this._ws;
      if (!ws || this._state !== State.CONNECTED) return;
      const sentAt = Date.now();
      this.ping().catch(() => {});
      // The link is dead when nothing at all (not even the pong) arrives
      // within pongTimeoutMs of a ping. (Throttled timers in background tabs
      // only make this check later, never wrong.)
      if (this._pongTimer) return; // a check is already running
      this._pongTimer = setTimeout(() => {
        this._pongTimer = null;
        if (this._ws !== ws || this._lastInbound >= sentAt) return;
        try {
          ws.close(4000, "heartbeat timeout");
        } catch {
          /* ignore */
        }
        this._lost({ code: 4000, reason: "heartbeat timeout", wasClean: false });
      }, this._pongTimeoutMs);
      this._pongTimer?.unref?.();
    }, this._pingIntervalMs);
    // never keep a Node process alive just for the heartbeat
    this._pingTimer?.unref?.();
  }

  _stopHeartbeat() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = null;
    this._pongTimer = null;
  }

  _failPending(err) {
    for (const [id, p] of this._pending) {
      if (p.kind === "subscribe") continue; // answered by the resubscribe
      this._pending.delete(id);
      p.reject(err);
    }
  }

  _emitError(where, error) {
    this.stats.errors++;
    this._emit("error", { where, error });
  }

  // -- sending --------------------------------------------------------------

  /** Sends one ClientMessage object (JSON shape); false when not connected. */
  send(message) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(this.format === "json" ? JSON.stringify(message) : this._encode(message));
    return true;
  }

  _requestId() {
    return this._nextRequest++;
  }

  /** Sends a `ping`; resolves with the round trip time once the `pong` arrives. */
  ping() {
    const requestId = this._requestId();
    const sentAt = now();
    return new Promise((resolve, reject) => {
      if (!this.send({ ping: { requestId: String(requestId) } })) {
        reject(new Error("not connected"));
        return;
      }
      this._pending.set(requestId, { kind: "ping", sentAt, resolve, reject });
    });
  }

  /** Lists the server's channels (optionally matching a pattern). */
  listChannels(pattern = "") {
    const requestId = this._requestId();
    return new Promise((resolve, reject) => {
      if (!this.send({ listChannels: { requestId: String(requestId), pattern } })) {
        reject(new Error("not connected"));
        return;
      }
      this._pending.set(requestId, { kind: "list", resolve, reject });
    });
  }

  // -- subscriptions ----------------------------------------------------------

  /**
   * Subscribes to channel names or `*` patterns. `callback(event, meta)` is
   * called for every event on a channel the patterns match. Returns a
   * `Subscription` with `ready` (a promise of the `subscribed` answer) and
   * `unsubscribe()`. `options.conflateMs` (10..60000, default 0 = every
   * event) asks the server for at most one message per channel per that
   * many milliseconds, carrying the latest state (trades are batched, never
   * dropped); the skips are announced with `conflated`, never a gap. The
   * rate is per channel on the connection: the latest subscribe naming a
   * pattern sets it.
   */
  subscribe(patterns, callback, options = {}) {
    const list = (Array.isArray(patterns) ? patterns : [patterns]).map(String);
    if (list.length === 0) throw new Error("subscribe needs at least one channel or pattern");
    const rate = Number(options.conflateMs ?? 0);
    if (!Number.isInteger(rate) || (rate !== 0 && (rate < 10 || rate > 60000))) {
      throw new Error(`conflateMs must be 0 or an integer in 10..60000, not ${options.conflateMs}`);
    }
    const handle = new Subscription(this, list, callback);
    this._subs.add(handle);
    this._dispatch.clear();
    const fresh = [];
    for (const p of list) {
      this._kept.delete(p);
      const n = this._patterns.get(p) ?? 0;
      this._patterns.set(p, n + 1);
      // a new rate for a pattern already held is asked for again
      if (n === 0 || (this._rates.get(p) ?? 0) !== rate) fresh.push(p);
      this._rates.set(p, rate);
    }
    if (options.resume && this._state !== State.CONNECTED) {
      // asked before the connection is up: resumed by the first subscribe
      for (const [ch, pos] of Object.entries(options.resume)) {
        this._positions.set(ch, { seq: Number(pos.seq), epoch: pos.epoch, snapshotAt: -1 });
      }
    }
    if (fresh.length === 0) {
      handle._settle(null);
    } else if (this._state === State.CONNECTED) {
      this._sendSubscribe(fresh, options.resume ?? {}, [handle], false, rate);
    } else {
      this._waiting = this._waiting ?? [];
      this._waiting.push(handle);
    }
    return handle;
  }

  _unsubscribe(handle) {
    if (!this._subs.delete(handle)) return Promise.resolve();
    this._dispatch.clear();
    const gone = [];
    for (const p of handle.patterns) {
      const n = (this._patterns.get(p) ?? 1) - 1;
      if (n <= 0) {
        this._patterns.delete(p);
        this._rates.delete(p);
        gone.push(p);
      } else this._patterns.set(p, n);
    }
    if (this._waiting) this._waiting = this._waiting.filter((h) => h !== handle);
    if (gone.length === 0) return Promise.resolve();
    // The server drops a channel unsubscribed by name even when a pattern
    // still covers it, so such a name is kept subscribed until no pattern
    // needs it any more.
    const wild = [...this._patterns.keys()].filter((p) => p.includes("*"));
    const covered = (name) => wild.some((w) => matchPattern(w, name));
    const send = [];
    for (const p of gone) {
      if (!p.includes("*") && covered(p)) this._kept.add(p);
      else send.push(p);
    }
    for (const name of [...this._kept]) {
      if (this._patterns.has(name)) this._kept.delete(name);
      else if (!covered(name)) {
        this._kept.delete(name);
        send.push(name);
      }
    }
    // positions of channels no longer covered are forgotten
    for (const ch of [...this._positions.keys()]) {
      if (!this._covered(ch)) this._positions.delete(ch);
    }
    if (send.length === 0) return Promise.resolve({ channels: [] });
    const requestId = this._requestId();
    return new Promise((resolve) => {
      if (!this.send({ unsubscribe: { requestId: String(requestId), channels: send } })) {
        resolve({ requestId, channels: [] });
        return;
      }
      this._pending.set(requestId, { kind: "unsubscribe", resolve, reject: resolve });
    });
  }

  _covered(channel) {
    for (const p of this._patterns.keys()) if (matchPattern(p, channel)) return true;
    return false;
  }

  /** The last position seen on a channel: `{ seq, epoch }`, or undefined. */
  position(channel) {
    const p = this._positions.get(channel);
    return p ? { seq: p.seq, epoch: p.epoch } : undefined;
  }

  _sendSubscribe(patterns, resume, handles, full = false, conflateMs = 0) {
    const requestId = this._requestId();
    const resumeMap = {};
    const resumed = new Set();
    for (const [ch, pos] of Object.entries(resume)) {
      resumeMap[ch] = { seq: String(pos.seq), epoch: pos.epoch };
      resumed.add(ch);
    }
    const msg = { requestId: String(requestId), channels: patterns };
    if (resumed.size) msg.resume = resumeMap;
    if (!this._snapshot) msg.snapshot = false;
    if (conflateMs) msg.conflateMs = conflateMs;
    this._pending.set(requestId, { kind: "subscribe", handles, resumed, full, errors: [], names: patterns.length });
    this.send({ subscribe: msg });
  }

  /** After a welcome: one subscribe for every pattern, resuming each known channel. */
  _resubscribe() {
    const handles = [...(this._waiting ?? [])];
    this._waiting = null;
    // earlier requests that were never answered are answered by this one
    for (const [id, p] of this._pending) {
      if (p.kind === "subscribe") {
        handles.push(...p.handles);
        this._pending.delete(id);
      }
    }
    const patterns = [...this._patterns.keys()];
    if (patterns.length === 0) {
      for (const h of handles) h._settle(null);
      return;
    }
    // one subscribe per rate (conflateMs), each resuming the channels its
    // patterns cover: its answer then lists every channel it resumed
    const byRate = new Map();
    for (const p of patterns) {
      const rate = this._rates.get(p) ?? 0;
      if (!byRate.has(rate)) byRate.set(rate, []);
      byRate.get(rate).push(p);
    }
    for (const [rate, group] of byRate) {
      const resume = {};
      for (const [ch, pos] of this._positions) {
        if (byRate.size === 1 || group.some((p) => matchPattern(p, ch))) resume[ch] = { seq: pos.seq, epoch: pos.epoch };
      }
      // a waiting handle settles with the answer for its first pattern's rate
      const mine = handles.filter((h) => (this._rates.get(h.patterns[0]) ?? 0) === rate);
      this._sendSubscribe(group, resume, mine, true, rate);
    }
  }

  _handlesFor(channel) {
    let hs = this._dispatch.get(channel);
    if (!hs) {
      hs = [];
      for (const h of this._subs) if (h.patterns.some((p) => matchPattern(p, channel))) hs.push(h);
      this._dispatch.set(channel, hs);
    }
    return hs;
  }

  // -- receiving ------------------------------------------------------------

  _enqueue(data) {
    if (typeof data === "string") {
      if (!this._draining && this._queueHead === this._queue.length) {
        this._handleText(data); // fast path: nothing pending ahead of it
        return;
      }
      this._queue.push(data);
    } else {
      // binary: gzip (or proto) decoding starts now, concurrently with the
      // frames before it; results are still handled strictly in order
      this._queue.push(this._decodeBinary(data));
    }
    if (!this._draining) this._drain();
  }

  /** Never rejects: resolves with `{ text | message, gzipped }` or `{ error }`. */
  async _decodeBinary(data) {
    try {
      let bytes = typeof Blob !== "undefined" && data instanceof Blob ? new Uint8Array(await data.arrayBuffer()) : toBytes(data);
      const gzipped = isGzip(bytes);
      const wireBytes = bytes.byteLength;
      if (gzipped) bytes = await gunzip(bytes);
      if (this.format === "json") return { text: new TextDecoder().decode(bytes), gzipped, wireBytes };
      return { message: this._decode(bytes), gzipped, wireBytes };
    } catch (error) {
      return { error };
    }
  }

  async _drain() {
    this._draining = true;
    while (this._queueHead < this._queue.length) {
      let item = this._queue[this._queueHead];
      this._queue[this._queueHead++] = undefined;
      if (this._queueHead > 1024 && this._queueHead * 2 > this._queue.length) {
        this._queue = this._queue.slice(this._queueHead);
        this._queueHead = 0;
      }
      if (typeof item === "string") {
        this._handleText(item);
        continue;
      }
      item = await item;
      if (item.error) {
        this._emitError("decode", item.error);
        continue;
      }
      this.stats.bytes += item.wireBytes;
      if (item.gzipped) this.stats.gzipped++;
      if (item.text !== undefined) this._handleText(item.text, item.gzipped, false);
      else this._handleMessage(item.message, item.gzipped);
    }
    this._queue = [];
    this._queueHead = 0;
    this._draining = false;
  }

  _handleText(text, gzipped = false, countBytes = true) {
    if (countBytes) this.stats.bytes += text.length;
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      this._emitError("decode", e);
      return;
    }
    this._handleMessage(msg, gzipped);
  }

  _handleMessage(msg, gzipped) {
    this.stats.messages++;
    if (msg.event) this._onEvent(msg.event, gzipped);
    else if (msg.welcome) this._onWelcome(msg.welcome);
    else if (msg.subscribed) this._onSubscribed(msg.subscribed);
    else if (msg.unsubscribed) this._onUnsubscribed(msg.unsubscribed);
    else if (msg.pong) this._onPong(msg.pong);
    else if (msg.lagged) this._onLagged(msg.lagged);
    else if (msg.conflated) this._onConflated(msg.conflated);
    else if (msg.error) this._onError(msg.error);
    else if (msg.channelList) this._settle(msg.channelList.requestId, (p) => p.resolve(msg.channelList.channels || []));
    this._emit("message", msg);
  }

  _settle(requestId, fn) {
    const id = Number(requestId || 0);
    const p = this._pending.get(id);
    if (!p) return;
    this._pending.delete(id);
    fn(p);
  }

  _onWelcome(w) {
    this.welcome = w;
    this._kept.clear();
    // the backoff restarts once the server accepted our subscriptions (a
    // welcome alone may be followed by a refusal, e.g. close 4001)
    if (this._patterns.size === 0) this._attempt = 0;
    this._setState(State.CONNECTED, { sessionId: w.sessionId, epoch: w.epoch });
    this._emit("welcome", w);
    this._startHeartbeat();
    this._resubscribe();
  }

  _onSubscribed(s) {
    this._attempt = 0;
    const id = Number(s.requestId || 0);
    const p = this._pending.get(id);
    this._pending.delete(id);
    let recovered = 0;
    let resynced = 0;
    const seen = new Set();
    for (const cs of s.channels || []) {
      // a channel two patterns of the request cover is listed twice: the
      // first entry is the one that subscribed it
      if (seen.has(cs.channel)) continue;
      seen.add(cs.channel);
      const seq = Number(cs.seq || 0);
      const epoch = cs.epoch || this.welcome?.epoch || "";
      const prev = this._positions.get(cs.channel);
      const wasResumed = p?.resumed?.has(cs.channel) ?? false;
      // already subscribed on this connection: the answer names our position
      const current = !cs.recovered && prev && prev.epoch === epoch && prev.seq === seq;
      this._positions.set(cs.channel, {
        seq,
        epoch,
        // not recovered: the next event may be the snapshot at `seq`
        snapshotAt: cs.recovered ? -1 : seq,
      });
      if (cs.recovered) recovered++;
      else if (wasResumed && !current) {
        resynced++;
        this.stats.resyncs++;
        this._emit("resync", { channel: cs.channel, reason: "resume unavailable", from: prev?.seq, seq });
      }
    }
    if (p?.full) {
      // The answer to the resubscription after a (re)connect lists every
      // channel this connection follows now. A known channel missing from it
      // is not followed any more (gone with a server restart until it
      // reappears, or subscribed by the server itself, like a scan's): its
      // position is dropped, so that its next history starts afresh rather
      // than as a gap.
      for (const ch of p.resumed) {
        if (seen.has(ch) || !this._positions.has(ch)) continue;
        const prev = this._positions.get(ch);
        this._positions.delete(ch);
        resynced++;
        this.stats.resyncs++;
        this._emit("resync", { channel: ch, reason: "resume unavailable", from: prev.seq, seq: 0 });
      }
    }
    this.stats.recovered += recovered;
    const answer = { ...s, recovered, resynced, errors: p?.errors ?? [] };
    this._emit("subscribed", answer);
    for (const h of p?.handles ?? []) h._settle(answer);
  }

  _onUnsubscribed(u) {
    for (const ch of u.channels || []) if (!this._covered(ch)) this._positions.delete(ch);
    this._dispatch.clear();
    this._emit("unsubscribed", u);
    this._settle(u.requestId, (p) => p.resolve(u));
  }

  _onPong(pong) {
    const id = Number(pong.requestId || 0);
    const p = this._pending.get(id);
    let info = { requestId: id, serverTimeNs: pong.serverTimeNs };
    if (p && p.kind === "ping") {
      this._pending.delete(id);
      info = { ...info, rttMs: now() - p.sentAt };
      p.resolve(info);
    }
    this._emit("pong", info);
  }

  _onLagged(l) {
    const first = Number(l.firstSeq || 0);
    const last = Number(l.lastSeq || 0);
    const pos = this._positions.get(l.channel);
    if (pos && first !== pos.seq + 1) this._gap(l.channel, pos.seq + 1, first);
    this._positions.set(l.channel, {
      seq: last,
      epoch: pos?.epoch ?? this.welcome?.epoch ?? "",
      snapshotAt: last,
    });
    this.stats.lagged++;
    this.stats.resyncs++;
    this._emit("lagged", { channel: l.channel, firstSeq: first, lastSeq: last });
    this._emit("resync", { channel: l.channel, reason: "lagged", from: first - 1, seq: last });
  }

  /**
   * A conflated subscription's announced skip: the events first..last were
   * folded into the channel's next event (seq last + 1, the state after it:
   * a book snapshot, the latest ticker). Not a gap and not a loss: the
   * position moves to `last` and the state is kept.
   */
  _onConflated(c) {
    const first = Number(c.firstSeq || 0);
    const last = Number(c.lastSeq || 0);
    const pos = this._positions.get(c.channel);
    if (pos && first !== pos.seq + 1) this._gap(c.channel, pos.seq + 1, first);
    if (pos) {
      pos.seq = last;
      pos.snapshotAt = -1;
    } else {
      this._positions.set(c.channel, { seq: last, epoch: this.welcome?.epoch ?? "", snapshotAt: -1 });
    }
    this.stats.conflated++;
    this._emit("conflated", { channel: c.channel, firstSeq: first, lastSeq: last });
  }

  _onError(e) {
    this.stats.errors++;
    const id = Number(e.requestId || 0);
    const p = this._pending.get(id);
    if (p) {
      if (p.kind === "subscribe") {
        p.errors.push(e);
        // one error may refuse several names (listed in `channels`)
        p.refused = (p.refused ?? 0) + Math.max(1, (e.channels || []).length);
        if (p.refused >= p.names) {
          this._pending.delete(id);
          const err = Object.assign(new Error(e.message || e.code), { code: e.code, errors: p.errors });
          for (const h of p.handles) h._fail(err);
        }
      } else {
        this._pending.delete(id);
        p.reject(Object.assign(new Error(e.message || e.code), { code: e.code }));
      }
    }
    this._emit("error", { where: "server", error: e, code: e.code, message: e.message });
  }

  _gap(channel, expected, received) {
    this.stats.gaps++;
    this._emit("gap", { channel, expected, received });
  }

  _onEvent(ev, gzipped) {
    this.stats.events++;
    const channel = ev.channel;
    const seq = Number(ev.seq || 0);
    let pos = this._positions.get(channel);
    let snapshot = false;
    if (!pos) {
      // a channel that appeared after a pattern subscription: followed from here
      pos = { seq, epoch: this.welcome?.epoch ?? "", snapshotAt: -1 };
      this._positions.set(channel, pos);
    } else if (seq === pos.snapshotAt) {
      snapshot = true;
      pos.snapshotAt = -1;
      pos.seq = seq;
    } else {
      if (seq !== pos.seq + 1) this._gap(channel, pos.seq + 1, seq);
      pos.seq = seq;
      pos.snapshotAt = -1;
    }
    const hs = this._handlesFor(channel);
    const kind = payloadKind(ev);
    const meta = { channel, seq, kind, snapshot, gzipped };
    for (const h of hs) {
      if (!h.callback) continue;
      try {
        h.callback(ev, meta);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
    if (this._listeners.get("event")?.size) this._emit("event", { event: ev, ...meta });
  }
}

function now() {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

/** One `subscribe()` call: its patterns, callback, answer and `unsubscribe()`. */
export class Subscription {
  constructor(client, patterns, callback) {
    this.client = client;
    this.patterns = patterns;
    this.callback = callback;
    this.active = true;
    /** Resolves with the `subscribed` answer (or null when nothing new was asked). */
    this.ready = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
    this.ready.catch(() => {}); // a failure is also reported through `error`
  }

  _settle(answer) {
    this._resolve(answer);
  }

  _fail(err) {
    this._reject(err);
  }

  /** Stops the callback; unsubscribes patterns no other subscription holds. */
  unsubscribe() {
    this.active = false;
    return this.client._unsubscribe(this);
  }
}

export default TickwireClient;
