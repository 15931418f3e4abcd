// The live dashboard served at `/`: JSON mode through the tickwire JS client.
// Messages only update the model; the DOM and the canvas are drawn once per
// animation frame, and only the parts whose data changed.

import { TickwireClient, OrderBook, State } from "/tickwire.js";

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
const wsUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
const client = new TickwireClient(wsUrl, {
  token: params.get("token") || undefined,
  reconnect: { initialDelayMs: 300, maxDelayMs: 5000, factor: 2, jitter: 0.5 },
});

const TRADE_BACKFILL = 3000; // trades replayed from history for the tape and 5 s candles
const CANDLE_BACKFILL = 1500; // candle updates replayed for the 1 m chart
const MAX_TRADES = 30;
const BOOK_LEVELS = 15;
const MAX_CANDLES = 240;

// ---------------------------------------------------------------------------
// model
// ---------------------------------------------------------------------------

const instruments = new Map(); // "venue.SYMBOL" -> row model
let selected = null;
let bookSub = null;
// Conflation (docs/protocol.md section 5): the panels that redraw at most a
// few times a second ask the server for the latest state at that rate
// instead of every event. The book panel (a book message at most every
// 200 ms: one update folding what changed, a snapshot on the first) and
// the prices table of every instrument (its tickers, at most one per
// instrument every 250 ms). Trades, candles, signals, sentiment and the
// scanner stay live: the tape and the chart show every trade.
const BOOK_CONFLATE_MS = 200;
const TICKER_CONFLATE_MS = 250;
let flowSub = null;
let bboSub = null;
/** The consolidated top (bbo.all.*) of the selected instrument, or null. */
let bbo = null;
let book = new OrderBook();
let bookDirty = false;
const bookChecks = { ok: 0, bad: 0 };
let trades = [];
let tradesDirty = false;
let candles5s = new Map(); // bucket start ms -> candle
let candles1m = new Map(); // open time ms -> candle
let chartDirty = false;
let chartInterval = "5s";
let liveFrom = new Map(); // channel -> last seq of the history replay (not live)
let lastEpoch = null;
const log = [];
let logDirty = false;
let priceGridDirty = false;

// analytics: signals, sentiment, scanner
const signals = new Map(); // "venue.SYMBOL" -> latest signal payload
let signalsDirty = false;
const sentiments = new Map(); // venue -> latest sentiment payload
let sentimentDirty = true;
const MAX_SCAN_TOP = 50;
const scan = {
  // request ids well above the client's own (which count from 1), so that an
  // error answering a scan request is never taken for another request's
  nextRequest: 1e9 + Math.floor(Math.random() * 1e9),
  pending: new Map(), // request id -> { venue, topN }: sent, not started yet
  current: null, // this page's latest scan
  state: "idle", // idle | pending | running | done | error | busy
  text: "idle: press Scan to rank the instruments",
  notice: "",
  dirty: true,
  partialFrames: 0, // frames that drew a bar strictly between 0 and 100 %
};

// figures
let latencies = [];
let lastEps = { t: performance.now(), events: 0 };
let clockOffsetNs = 0; // server clock minus ours, from the best pong
let bestRtt = Infinity;
let rtt = null;
const frames = [];
let lastFrame = 0;
let longTasks = 0;
let serverPrev = null;
const shown = {}; // last text written per figure element

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

function nowNs() {
  return (performance.timeOrigin + performance.now()) * 1e6;
}

function decimalsFor(p) {
  const a = Math.abs(p);
  if (a >= 1000) return 2;
  if (a >= 10) return 3;
  if (a >= 1) return 4;
  return 5;
}

const formats = [];
/** `v` with `d` decimals and thousands separators (formatters cached: they are costly to make). */
function fmt(v, d) {
  if (v === undefined || v === null || Number.isNaN(v)) return "–";
  const f = (formats[d] ??= new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
  return f.format(v);
}

function compact(n) {
  if (n === undefined || n === null) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(Math.round(n));
}

function setText(id, text) {
  if (shown[id] === text) return;
  shown[id] = text;
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

function clock(d = new Date()) {
  return d.toTimeString().slice(0, 8);
}

function note(level, text) {
  log.unshift({ t: clock(), level, text });
  if (log.length > 100) log.length = 100;
  logDirty = true;
}

function sampleLatency(ev, meta) {
  if (meta.snapshot || !ev.publishTimeNs) return;
  const until = liveFrom.get(meta.channel);
  if (until !== undefined) {
    if (meta.seq <= until) return; // replayed history, not live
    liveFrom.delete(meta.channel);
  }
  if (latencies.length < 20000) latencies.push((nowNs() + clockOffsetNs - Number(ev.publishTimeNs)) / 1e6);
}

// ---------------------------------------------------------------------------
// feed handlers
// ---------------------------------------------------------------------------

function onTicker(ev, meta) {
  sampleLatency(ev, meta);
  const t = ev.ticker;
  if (!t) return;
  const key = meta.channel.slice(meta.channel.indexOf(".") + 1);
  let inst = instruments.get(key);
  if (!inst) {
    const [venue, ...rest] = key.split(".");
    inst = { key, venue, symbol: rest.join("."), t: null, updates: 0, row: null, shown: {}, dirty: true };
    instruments.set(key, inst);
    priceGridDirty = true;
    if (!selected && (params.get("symbol") ? inst.symbol === params.get("symbol") : inst.symbol.startsWith("BTC-"))) {
      select(key);
    }
  }
  inst.t = t;
  inst.updates++;
  inst.dirty = true;
}

function onBook(ev, meta) {
  if (!selected || meta.channel !== `book.${selected}`) return;
  sampleLatency(ev, meta);
  if (ev.bookSnapshot) {
    // with conflation most book messages are snapshots: each is checked
    const ok = book.applySnapshot(ev.bookSnapshot, meta.seq);
    if (ok) bookChecks.ok++;
    else {
      bookChecks.bad++;
      note("error", `${meta.channel}: snapshot checksum mismatch`);
    }
    bookDirty = true;
  } else if (ev.bookUpdate && book.ready) {
    if (book.applyUpdate(ev.bookUpdate, meta.seq)) {
      bookChecks.ok++;
    } else {
      bookChecks.bad++;
      note("error", `${meta.channel}: checksum mismatch at seq ${meta.seq}, resyncing the book`);
      resyncBook();
    }
    bookDirty = true;
  }
}

/** bbo.all.<BASE-QUOTE>: keeps the book whose venues include the selected one. */
function onBbo(ev, meta) {
  if (!selected || !ev.custom?.json) return;
  let v;
  try {
    v = JSON.parse(ev.custom.json);
  } catch {
    return;
  }
  const [venue, symbol] = [selected.slice(0, selected.indexOf(".")), selected.slice(selected.indexOf(".") + 1)];
  if (v.tops?.[venue]?.instrument !== symbol) return;
  bbo = v;
  bookDirty = true;
}

function bucket(map, start, price, qty) {
  let c = map.get(start);
  if (!c) {
    c = { t: start, o: price, h: price, l: price, c: price, v: 0 };
    map.set(start, c);
    if (map.size > MAX_CANDLES) map.delete(map.keys().next().value);
  }
  if (price > c.h) c.h = price;
  if (price < c.l) c.l = price;
  c.c = price;
  c.v += qty;
}

function onFlow(ev, meta) {
  if (!selected || meta.channel.slice(meta.channel.indexOf(".") + 1) !== selected) return;
  sampleLatency(ev, meta);
  if (ev.trade) {
    const tr = ev.trade;
    const ms = Number(ev.sourceTimeNs || ev.publishTimeNs) / 1e6;
    trades.unshift({ ms, price: tr.price || 0, qty: tr.quantity || 0, buy: tr.side === "SIDE_BUY" });
    if (trades.length > MAX_TRADES) trades.length = MAX_TRADES;
    tradesDirty = true;
    bucket(candles5s, Math.floor(ms / 5000) * 5000, tr.price || 0, tr.quantity || 0);
    if (chartInterval === "5s") chartDirty = true;
  } else if (ev.candle) {
    const c = ev.candle;
    const t = Number(c.openTimeNs) / 1e6;
    candles1m.set(t, { t, o: c.open || 0, h: c.high || 0, l: c.low || 0, c: c.close || 0, v: c.volume || 0 });
    if (candles1m.size > MAX_CANDLES) candles1m.delete(Math.min(...candles1m.keys()));
    if (chartInterval === "1m") chartDirty = true;
  }
}

const ACTIONS = {
  SIGNAL_ACTION_STRONG_BUY: "STRONG_BUY",
  SIGNAL_ACTION_BUY: "BUY",
  SIGNAL_ACTION_HOLD: "HOLD",
  SIGNAL_ACTION_SELL: "SELL",
  SIGNAL_ACTION_STRONG_SELL: "STRONG_SELL",
};

/** Signals, sentiment and scan events (one subscription for the three). */
function onAnalytics(ev, meta) {
  if (ev.signal) {
    signals.set(meta.channel.slice(meta.channel.indexOf(".") + 1), ev.signal);
    signalsDirty = true;
  } else if (ev.sentiment) {
    sentiments.set(meta.channel.split(".")[1], ev.sentiment);
    sentimentDirty = true;
  } else if (!meta.snapshot) {
    onScan(ev); // a snapshot is an earlier scan's last event: not ours
  }
}

function onScan(ev) {
  const cur = scan.current;
  if (ev.scanStarted) {
    const s = ev.scanStarted;
    const total = s.total || 0;
    const req = scan.pending.get(String(s.requestId ?? "0"));
    if (req) {
      // ours (scan ids restart with the server: told apart by request id)
      scan.pending.delete(String(s.requestId));
      scan.current = {
        scanId: s.scanId,
        requestId: String(s.requestId),
        venue: req.venue,
        topN: req.topN,
        t0: performance.now(),
        pass: s.pass,
        passes: { quick: { processed: 0, total: 0 }, deep: { processed: 0, total: 0 } },
        last: null,
        result: null,
      };
      scan.current.passes[s.pass] = { processed: 0, total };
      scan.state = "running";
      note("info", `scan ${s.scanId} started: ${total} instruments on ${req.venue}, top ${req.topN}`);
    } else if (cur && s.scanId === cur.scanId) {
      cur.pass = s.pass;
      cur.passes[s.pass] = { processed: 0, total };
    } else return;
  } else if (ev.symbolAnalyzed) {
    const s = ev.symbolAnalyzed;
    if (!cur || s.scanId !== cur.scanId) return;
    cur.last = { instrument: s.instrument, score: s.score || 0 };
  } else if (ev.scanProgress) {
    const s = ev.scanProgress;
    if (!cur || s.scanId !== cur.scanId) return;
    const processed = s.processed || 0;
    cur.passes[s.pass] = { processed, total: processed + (s.remaining || 0) };
  } else if (ev.scanResult) {
    const s = ev.scanResult;
    if (!cur || s.scanId !== cur.scanId) return;
    cur.result = { pass: s.pass, entries: s.entries || [] };
  } else if (ev.scanDone) {
    const s = ev.scanDone;
    if (!cur || s.scanId !== cur.scanId) return;
    const ms = Math.round(performance.now() - cur.t0);
    const n = cur.result?.entries.length ?? 0;
    scan.state = "done";
    scan.notice = "";
    scan.text = `done: ${cur.scanId}, ${n} ranked of ${cur.passes.deep.total || cur.passes.quick.total} in ${ms} ms`;
    const top = (cur.result?.entries ?? []).slice(0, 3).map((e) => `${e.instrument} ${signed(e.score || 0)}`).join(", ");
    note("ok", `scan ${cur.scanId} done in ${ms} ms${top ? `: ${top}` : ""}`);
  } else if (ev.scanError) {
    const s = ev.scanError;
    const rid = String(s.requestId ?? "0");
    if (!(cur && s.scanId === cur.scanId) && !scan.pending.has(rid)) return;
    scan.pending.delete(rid);
    scan.state = "error";
    scan.notice = "";
    scan.text = `error: ${s.message || "scan failed"}`;
    note("error", `scan ${s.scanId || ""} failed: ${s.message || "unknown error"}`);
  } else return;
  scan.dirty = true;
}

/** The server refused a scan request (`error` answering its request id). */
function onScanRefused(e) {
  const rid = String(e.error.requestId);
  scan.pending.delete(rid);
  const limited = e.code === "ERROR_CODE_RATE_LIMITED";
  const why = limited ? "a scan is already running" : `${String(e.code || "").replace("ERROR_CODE_", "")}: ${e.message}`;
  note(limited ? "warn" : "error", `scan refused: ${why}${limited && e.message ? ` (${e.message})` : ""}`);
  if (scan.state === "running" || scan.pending.size) {
    scan.notice = `another request refused: ${why}`;
  } else {
    scan.state = limited ? "busy" : "error";
    scan.text = limited ? "a scan is already running: try again when it is done" : `error: ${why}`;
    scan.notice = "";
  }
  scan.dirty = true;
}

function requestScan() {
  const input = $("#scan-top");
  let topN = Math.round(Number(input.value));
  if (!Number.isFinite(topN) || topN < 1) topN = 5;
  topN = Math.min(topN, MAX_SCAN_TOP);
  if (input.value !== String(topN)) input.value = String(topN);
  const venue = selected ? selected.slice(0, selected.indexOf(".")) : instruments.values().next().value?.venue ?? "sim";
  const requestId = String(scan.nextRequest++);
  if (!client.send({ requestScan: { requestId, topN, venue } })) {
    scan.state = "error";
    scan.text = "error: not connected";
    scan.notice = "";
    scan.dirty = true;
    note("error", "scan not requested: not connected");
    return;
  }
  scan.pending.set(requestId, { venue, topN });
  scan.notice = "";
  if (scan.state !== "running") {
    scan.state = "pending";
    scan.text = `requested: top ${topN} on ${venue}…`;
  }
  scan.dirty = true;
}

function signed(v, d = 3) {
  return (v >= 0 ? "+" : "−") + Math.abs(v).toFixed(d);
}

function resetSelectionState() {
  book = new OrderBook();
  bookChecks.ok = bookChecks.bad = 0;
  trades = [];
  candles5s = new Map();
  candles1m = new Map();
  bookDirty = tradesDirty = chartDirty = true;
}

function resyncBook() {
  if (!bookSub) return;
  const patterns = bookSub.patterns;
  bookSub.unsubscribe();
  book = new OrderBook();
  bookSub = client.subscribe(patterns, onBook, { conflateMs: BOOK_CONFLATE_MS });
}

async function select(key) {
  if (selected === key) return;
  selected = key;
  for (const inst of instruments.values()) if (inst.row) inst.row.classList.toggle("sel", inst.key === key);
  resetSelectionState();
  bookSub?.unsubscribe();
  flowSub?.unsubscribe();
  bboSub?.unsubscribe();
  bookSub = flowSub = bboSub = null;
  bbo = null;
  const [venue, symbol] = [key.slice(0, key.indexOf(".")), key.slice(key.indexOf(".") + 1)];
  setText("chart-title", symbol);
  setText("book-title", symbol);
  setText("trades-title", symbol);
  bookSub = client.subscribe([`book.${key}`], onBook, { conflateMs: BOOK_CONFLATE_MS });
  // the consolidated tops across venues (quotes may be mapped together, so
  // the book is found by the venue's own instrument in its `tops`)
  bboSub = client.subscribe(["bbo.all.*"], onBbo);
  // Trades and candles start with what the server's history still holds:
  // resume from a seq before the current one replays it.
  const flow = [`trade.${key}`, `candle1m.${key}`];
  const resume = {};
  if (client.state === State.CONNECTED && client.welcome?.epoch) {
    try {
      for (const info of await client.listChannels(`*.${venue}.${symbol}`)) {
        const seq = Number(info.seq || 0);
        const back = info.channel.startsWith("trade.") ? TRADE_BACKFILL : info.channel.startsWith("candle") ? CANDLE_BACKFILL : 0;
        if (back && flow.includes(info.channel)) {
          resume[info.channel] = { seq: Math.max(0, seq - back), epoch: client.welcome.epoch };
          liveFrom.set(info.channel, seq);
        }
      }
    } catch (e) {
      note("warn", `history backfill unavailable: ${e.message}`);
    }
  }
  if (selected !== key) return; // another click meanwhile
  flowSub = client.subscribe(flow, onFlow, { resume });
  sentimentDirty = true; // the gauge follows the selected instrument's venue
  note("info", `selected ${symbol}`);
}

// ---------------------------------------------------------------------------
// connection events
// ---------------------------------------------------------------------------

client.on("state", (s) => {
  if ((s.state === State.RECONNECTING || s.state === State.CLOSED) && (scan.state === "running" || scan.state === "pending")) {
    scan.pending.clear();
    scan.state = "error";
    scan.text = "error: connection lost during the scan";
    scan.notice = "";
    scan.dirty = true;
    note("warn", "connection lost during the scan: press Scan again");
  }
  const el = $("#status");
  el.dataset.state = s.state;
  let text = s.state;
  if (s.state === State.CLOSED && s.code === 4001) text = "closed: unauthorized";
  el.textContent = text;
  if (s.state === State.CLOSED) {
    note("error", `closed${s.code ? ` (${s.code}${s.reason ? " " + s.reason : ""})` : ""}`);
  }
});
client.on("reconnect", (r) => {
  const why = r.code ? ` (${r.code}${r.reason ? " " + r.reason : ""})` : "";
  note("warn", `${r.attempt === 1 ? "disconnected" : "connection failed"}${why}; reconnecting in ${r.delayMs} ms (attempt ${r.attempt})`);
});
client.on("welcome", (w) => {
  note("ok", `connected: session ${w.sessionId}, server ${w.serverVersion}, epoch ${w.epoch}`);
  setText("session", `session ${w.sessionId} · epoch ${w.epoch}`);
  if (lastEpoch && w.epoch !== lastEpoch) {
    note("warn", `server restarted (epoch ${lastEpoch} → ${w.epoch}): resynchronising from snapshots`);
    trades = [];
    candles5s = new Map();
    candles1m = new Map();
    tradesDirty = chartDirty = true;
  }
  lastEpoch = w.epoch;
  bestRtt = Infinity;
  client.ping().catch(() => {});
});
client.on("subscribed", (s) => {
  const n = s.channels?.length ?? 0;
  if (s.recovered || s.resynced) {
    note(s.resynced ? "warn" : "ok", `subscribed ${n} channels: ${s.recovered} resumed from their last seq, ${s.resynced} resynced from snapshots`);
  } else {
    note("info", `subscribed ${n} channels`);
  }
  for (const e of s.errors) note("error", `subscribe refused: ${e.code} ${e.message}`);
});
client.on("resync", (r) => {
  if (r.reason === "lagged") return; // logged with the lagged message
  if (r.channel.startsWith("book.")) book = new OrderBook();
});
client.on("lagged", (l) => {
  note("warn", `lagged on ${l.channel}: seq ${l.firstSeq}–${l.lastSeq} skipped, resynced`);
  if (l.channel.startsWith("book.")) book = new OrderBook();
});
client.on("gap", (g) => note("error", `gap on ${g.channel}: expected seq ${g.expected}, got ${g.received}`));
client.on("error", (e) => {
  if (e.where === "server" && e.error && scan.pending.has(String(e.error.requestId ?? ""))) onScanRefused(e);
  else if (e.where === "server") note("error", `server error ${e.code}: ${e.message}`);
  else if (e.where !== "socket") note("error", `${e.where} error: ${e.error?.message ?? e.error}`);
});
client.on("close", (c) => {
  if (c.code === 4001) note("error", "token missing, invalid or expired (4001)");
});
client.on("pong", (p) => {
  if (p.rttMs === undefined) return;
  rtt = p.rttMs;
  if (p.rttMs < bestRtt && p.serverTimeNs) {
    // Server clock minus ours, known to +/- rtt/2: corrected for only when
    // clearly larger than that (same host or NTP-synced clocks: no offset).
    bestRtt = p.rttMs;
    const offset = Number(p.serverTimeNs) - (nowNs() - (p.rttMs * 1e6) / 2);
    clockOffsetNs = Math.abs(offset) > (p.rttMs / 2 + 1) * 1e6 ? offset : 0;
  }
});

// ---------------------------------------------------------------------------
// rendering (once per animation frame)
// ---------------------------------------------------------------------------

function renderPrices() {
  const tbody = $("#prices tbody");
  if (priceGridDirty) {
    priceGridDirty = false;
    const list = [...instruments.values()].sort((a, b) => a.key.localeCompare(b.key));
    const venues = new Set(list.map((i) => i.venue));
    for (const inst of list) {
      if (!inst.row) {
        const tr = document.createElement("tr");
        tr.dataset.key = inst.key;
        tr.innerHTML = `<td class="l sym"><b></b><small></small></td><td class="last"></td><td class="bid"></td><td class="ask"></td><td class="chg"></td><td class="vol"></td><td class="sig"><span class="sig-badge">–</span><span class="sig-str"><i></i></span></td>`;
        tr.querySelector("b").textContent = inst.symbol;
        tr.addEventListener("click", () => select(inst.key));
        inst.row = tr;
        inst.cells = {
          venue: tr.querySelector("small"),
          last: tr.querySelector(".last"),
          bid: tr.querySelector(".bid"),
          ask: tr.querySelector(".ask"),
          chg: tr.querySelector(".chg"),
          vol: tr.querySelector(".vol"),
          sig: tr.querySelector(".sig"),
          sigBadge: tr.querySelector(".sig-badge"),
          sigStr: tr.querySelector(".sig-str i"),
        };
        signalsDirty = true;
        tr.classList.toggle("sel", inst.key === selected);
      }
      inst.cells.venue.textContent = venues.size > 1 ? inst.venue : "";
      tbody.appendChild(inst.row); // keeps the sorted order
    }
    setText("n-instruments", `${instruments.size} instruments`);
  }
  if (signalsDirty) {
    signalsDirty = false;
    for (const inst of instruments.values()) {
      const sig = signals.get(inst.key);
      if (inst.row && sig && sig !== inst.shownSignal) {
        inst.shownSignal = sig;
        renderSignal(inst.cells, sig);
      }
    }
  }
  for (const inst of instruments.values()) {
    if (!inst.dirty || !inst.t) continue;
    inst.dirty = false;
    const t = inst.t;
    const d = decimalsFor(t.last || t.bid || 0);
    const c = inst.cells;
    const last = fmt(t.last, d);
    if (last !== inst.shown.last) {
      const up = inst.lastValue === undefined || (t.last || 0) >= inst.lastValue;
      c.last.textContent = last;
      c.last.className = "last " + (up ? "up" : "down");
      if (inst.shown.last !== undefined) flash(inst, "last", up);
      inst.shown.last = last;
      inst.lastValue = t.last || 0;
    }
    const bid = fmt(t.bid, d);
    if (bid !== inst.shown.bid) {
      if (inst.shown.bid !== undefined) flash(inst, "bid", (t.bid || 0) >= (inst.bidValue || 0));
      c.bid.textContent = inst.shown.bid = bid;
      inst.bidValue = t.bid || 0;
    }
    const ask = fmt(t.ask, d);
    if (ask !== inst.shown.ask) {
      if (inst.shown.ask !== undefined) flash(inst, "ask", (t.ask || 0) >= (inst.askValue || 0));
      c.ask.textContent = inst.shown.ask = ask;
      inst.askValue = t.ask || 0;
    }
    const pct = t.changePct24h || 0;
    const chg = (pct >= 0 ? "+" : "") + pct.toFixed(2) + "%";
    if (chg !== inst.shown.chg) {
      c.chg.textContent = inst.shown.chg = chg;
      c.chg.className = "chg " + (pct >= 0 ? "up" : "down");
    }
    const vol = compact(t.quoteVolume24h);
    if (vol !== inst.shown.vol) c.vol.textContent = inst.shown.vol = vol;
    inst.row.dataset.updates = String(inst.updates);
  }
}

/** One price grid signal cell: action badge, strength bar, reason as its tooltip. */
function renderSignal(c, sig) {
  const action = ACTIONS[sig.action] ?? "–";
  const strength = Math.max(0, Math.min(1, sig.strength || 0));
  const pct = Math.round(strength * 100);
  // until enough candles closed the engine says HOLD "warming up": show
  // that in the cell, not only in the tooltip
  const warming = /^warming up/i.test(sig.reason || "");
  const label = warming ? "WARMING UP" : action.replace("_", " ");
  if (c.sig.dataset.action !== action || c.sigBadge.textContent !== label) {
    c.sig.dataset.action = action;
    c.sigBadge.textContent = label;
  }
  c.sig.classList.toggle("warming", warming);
  c.sig.dataset.strength = String(pct);
  c.sigStr.style.width = `${pct}%`;
  c.sig.title = `${label} · strength ${pct}%${sig.interval ? ` · ${sig.interval}` : ""}\n${sig.reason || ""}`;
}

const FLASH_UP = [{ backgroundColor: "rgba(46,189,133,0.45)" }, { backgroundColor: "rgba(46,189,133,0)" }];
const FLASH_DOWN = [{ backgroundColor: "rgba(240,80,110,0.45)" }, { backgroundColor: "rgba(240,80,110,0)" }];
/** Flashes a changed cell green (up) or red (down); a newer change restarts it. */
function flash(inst, cell, up) {
  inst.flashes ??= {};
  inst.flashes[cell]?.cancel();
  inst.flashes[cell] = inst.cells[cell].animate(up ? FLASH_UP : FLASH_DOWN, { duration: 700, easing: "ease-out" });
}

let bookRows = null;
/** Writes a book cell only when its text changed. */
function set(row, cell, text) {
  const key = "_" + cell;
  if (row[key] !== text) row[cell].textContent = row[key] = text;
}

function renderBook() {
  if (!bookDirty) return;
  bookDirty = false;
  if (!bookRows) {
    bookRows = { asks: [], bids: [] };
    for (const side of ["asks", "bids"]) {
      const tbody = $(`#book tbody.${side}`);
      for (let i = 0; i < BOOK_LEVELS; i++) {
        const tr = document.createElement("tr");
        tr.innerHTML = `<td class="price"></td><td class="qty"></td><td class="total"></td><td class="venue l"></td>`;
        tbody.appendChild(tr);
        bookRows[side].push({ tr, price: tr.children[0], qty: tr.children[1], total: tr.children[2], venue: tr.children[3] });
      }
    }
  }
  const pd = book.priceDecimals;
  const sd = Math.min(book.sizeDecimals, 5);
  const selectedVenue = selected ? selected.slice(0, selected.indexOf(".")) : "";
  const asks = book.asks.slice(0, BOOK_LEVELS);
  const bids = book.bids.slice(0, BOOK_LEVELS);
  const cum = (side) => {
    let s = 0;
    return side.map((l) => (s += l.quantity));
  };
  const ca = cum(asks);
  const cb = cum(bids);
  const max = Math.max(ca[ca.length - 1] || 0, cb[cb.length - 1] || 0) || 1;
  const fill = (rows, levels, totals, reversed) => {
    for (let i = 0; i < BOOK_LEVELS; i++) {
      // asks are shown best at the bottom, next to the spread
      const r = rows[reversed ? BOOK_LEVELS - 1 - i : i];
      const l = levels[i];
      if (!l) {
        r.tr.className = "";
        set(r, "price", "");
        set(r, "qty", "");
        set(r, "total", "");
        set(r, "venue", "");
        continue;
      }
      set(r, "venue", selectedVenue);
      if (r.tr.className !== "level") r.tr.className = "level";
      set(r, "price", fmt(l.price, pd));
      set(r, "qty", fmt(l.quantity, sd));
      set(r, "total", fmt(totals[i], sd));
      const size = `${((totals[i] / max) * 100).toFixed(1)}% 100%`;
      if (r.size !== size) r.tr.style.backgroundSize = r.size = size;
    }
  };
  fill(bookRows.asks, asks, ca, true);
  fill(bookRows.bids, bids, cb, false);
  if (asks[0] && bids[0]) {
    const spread = asks[0].price - bids[0].price;
    const mid = (asks[0].price + bids[0].price) / 2;
    setText("book-spread", `spread ${fmt(spread, pd)} (${((spread / mid) * 1e4).toFixed(1)} bp) · ${book.bids.length}/${book.asks.length} levels`);
  } else setText("book-spread", book.ready ? "empty book" : "waiting for snapshot…");
  setText("book-bbo", bboText(bbo, pd));
  setText("book-check", book.ready ? `checksum ✓ ${bookChecks.ok}${bookChecks.bad ? ` ✗ ${bookChecks.bad}` : ""}` : "");
}

/** The consolidated line: best bid and ask across venues, with their venues. */
function bboText(v, pd) {
  if (!v) return "all venues: –";
  if (v.bid == null || v.ask == null) return `all venues: no venue in${v.out?.length ? ` (out: ${v.out.join(", ")})` : ""}`;
  const out = v.out?.length ? ` · out: ${v.out.join(", ")}` : "";
  return `all venues: bid ${fmt(v.bid, pd)} @${v.bid_venue} · ask ${fmt(v.ask, pd)} @${v.ask_venue} · spread ${fmt(v.spread, pd)}${v.crossed ? " · CROSSED" : ""} · ${v.venues.length} venue${v.venues.length === 1 ? "" : "s"}${out}`;
}

let tapeShown = []; // the trade objects the tape's rows show, newest first
function renderTrades() {
  if (!tradesDirty) return;
  tradesDirty = false;
  const tbody = $("#trades tbody");
  // new trades are inserted at the top, old rows dropped at the bottom: a
  // frame touches only the rows that changed
  const keep = tapeShown.length ? trades.indexOf(tapeShown[0]) : -1;
  if (keep < 0) {
    tbody.replaceChildren();
    tapeShown = [];
  }
  const fresh = keep < 0 ? trades : trades.slice(0, keep);
  const frag = document.createDocumentFragment();
  for (const t of fresh) {
    const tr = document.createElement("tr");
    const time = document.createElement("td");
    time.className = "l";
    time.textContent = clock(new Date(t.ms));
    const price = document.createElement("td");
    price.className = t.buy ? "up" : "down";
    price.textContent = fmt(t.price, decimalsFor(t.price));
    const qty = document.createElement("td");
    qty.textContent = fmt(t.qty, 5);
    tr.append(time, price, qty);
    frag.appendChild(tr);
  }
  tbody.prepend(frag);
  tapeShown = fresh.concat(tapeShown).slice(0, MAX_TRADES);
  while (tbody.childElementCount > MAX_TRADES) tbody.lastElementChild.remove();
}

// the canvas size comes from a ResizeObserver: reading it in the frame
// would force a layout after the DOM writes of the other panels
const chartSize = { w: 0, h: 0 };
new ResizeObserver(([entry]) => {
  chartSize.w = entry.contentRect.width;
  chartSize.h = entry.contentRect.height;
  chartDirty = true;
}).observe($("#chart"));
let lastChartDraw = 0;

function renderChart(now) {
  // a candle chart needs no 60 fps: at most 10 redraws a second
  if (!chartDirty || now - lastChartDraw < 100 || !chartSize.w) return;
  chartDirty = false;
  lastChartDraw = now;
  const canvas = $("#chart");
  const dpr = window.devicePixelRatio || 1;
  const w = chartSize.w;
  const h = chartSize.h;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const source = chartInterval === "5s" ? candles5s : candles1m;
  const step = chartInterval === "5s" ? 5000 : 60000;
  const axisW = 70;
  const axisH = 18;
  const slot = chartInterval === "5s" ? 9 : 14;
  const n = Math.max(1, Math.floor((w - axisW - 8) / slot));
  const all = [...source.values()].sort((a, b) => a.t - b.t);
  const list = all.slice(-n);
  g.font = "11px ui-sans-serif, system-ui, sans-serif";
  g.fillStyle = "#7d8794";
  if (list.length === 0) {
    g.fillText(selected ? "waiting for trades…" : "select an instrument", 12, 20);
    return;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of list) {
    if (c.l < lo) lo = c.l;
    if (c.h > hi) hi = c.h;
  }
  if (hi - lo < 1e-9) {
    hi += 1;
    lo -= 1;
  }
  const pad = (hi - lo) * 0.08;
  hi += pad;
  lo -= pad;
  const top = 10;
  const plotH = h - axisH - top;
  // prices in the upper 78 %, volume bars in the lowest 18 %
  const priceH = plotH * 0.78;
  const volH = plotH * 0.18;
  const volBase = top + plotH;
  const y = (p) => top + ((hi - p) / (hi - lo)) * priceH;
  let vmax = 0;
  for (const c of list) if (c.v > vmax) vmax = c.v;
  const d = decimalsFor(hi);
  // grid and price axis
  g.strokeStyle = "#232a33";
  g.lineWidth = 1;
  g.textBaseline = "middle";
  for (let i = 0; i <= 5; i++) {
    const p = lo + ((hi - lo) * i) / 5;
    const yy = Math.round(y(p)) + 0.5;
    g.beginPath();
    g.moveTo(0, yy);
    g.lineTo(w - axisW, yy);
    g.stroke();
    g.fillText(fmt(p, d), w - axisW + 6, yy);
  }
  // candles, newest at the right, each with its volume bar below
  const x0 = w - axisW - 4 - list.length * slot;
  const bodyW = Math.max(2, slot - 3);
  g.textBaseline = "alphabetic";
  let volumeBars = 0;
  if (vmax > 0) {
    g.fillStyle = "#7d8794";
    g.textBaseline = "top";
    g.fillText(`vol ${compact(vmax)}`, w - axisW + 6, volBase - volH);
    g.textBaseline = "alphabetic";
  }
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    const up = c.c >= c.o;
    const x = Math.round(x0 + i * slot + slot / 2) + 0.5;
    if (vmax > 0 && c.v > 0) {
      const vh = Math.max(1, (c.v / vmax) * volH);
      g.fillStyle = up ? "rgba(46,189,133,0.45)" : "rgba(240,80,110,0.45)";
      g.fillRect(Math.round(x - bodyW / 2), volBase - vh, bodyW, vh);
      volumeBars++;
    }
    g.strokeStyle = g.fillStyle = up ? "#2ebd85" : "#f0506e";
    g.beginPath();
    g.moveTo(x, y(c.h));
    g.lineTo(x, y(c.l));
    g.stroke();
    const bodyTop = y(Math.max(c.o, c.c));
    const bh = Math.max(1, y(Math.min(c.o, c.c)) - bodyTop);
    g.fillRect(Math.round(x - bodyW / 2), bodyTop, bodyW, bh);
    if ((c.t / step) % (chartInterval === "5s" ? 12 : 5) === 0) {
      g.fillStyle = "#7d8794";
      g.fillText(clock(new Date(c.t)).slice(0, 5), x - 14, h - 4);
    }
  }
  canvas.dataset.volumeBars = String(volumeBars);
  // last price marker
  const last = list[list.length - 1];
  const yl = Math.round(y(last.c)) + 0.5;
  g.strokeStyle = "#4ea1ff";
  g.setLineDash([3, 3]);
  g.beginPath();
  g.moveTo(0, yl);
  g.lineTo(w - axisW, yl);
  g.stroke();
  g.setLineDash([]);
  g.fillStyle = "#4ea1ff";
  g.fillRect(w - axisW + 2, yl - 8, axisW - 4, 16);
  g.fillStyle = "#0e1116";
  g.textBaseline = "middle";
  g.fillText(fmt(last.c, d), w - axisW + 6, yl);
}

function fearGreedClass(v) {
  if (v < 25) return "extreme fear";
  if (v < 45) return "fear";
  if (v <= 55) return "neutral";
  if (v <= 75) return "greed";
  return "extreme greed";
}

const GAUGE_BANDS = [
  [0, 25, "#f0506e"],
  [25, 45, "#e8875b"],
  [45, 55, "#7d8794"],
  [55, 75, "#8fcf6b"],
  [75, 100, "#2ebd85"],
];
const MOODS = { MOOD_BULLISH: "BULLISH", MOOD_NEUTRAL: "NEUTRAL", MOOD_BEARISH: "BEARISH" };

function renderSentiment() {
  if (!sentimentDirty) return;
  sentimentDirty = false;
  const venue = selected && sentiments.has(selected.slice(0, selected.indexOf("."))) ? selected.slice(0, selected.indexOf(".")) : sentiments.keys().next().value;
  const s = venue === undefined ? null : sentiments.get(venue);
  const v = s ? Math.max(0, Math.min(100, s.fearGreed || 0)) : null;
  // the gauge: a semicircle of bands, from fear (left) to greed (right)
  const canvas = $("#gauge");
  const dpr = window.devicePixelRatio || 1;
  const w = 220;
  const h = 124;
  if (canvas.width !== Math.round(w * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const cx = w / 2;
  const cy = 112;
  const r = 96;
  const angle = (x) => Math.PI + (x / 100) * Math.PI;
  g.lineWidth = 14;
  for (const [a, b, color] of GAUGE_BANDS) {
    g.strokeStyle = color;
    g.globalAlpha = v === null ? 0.25 : 0.8;
    g.beginPath();
    g.arc(cx, cy, r, angle(a) + 0.01, angle(b) - 0.01);
    g.stroke();
  }
  g.globalAlpha = 1;
  g.font = "10px ui-sans-serif, system-ui, sans-serif";
  g.fillStyle = "#7d8794";
  g.textAlign = "center";
  g.fillText("0", cx - r, h - 1);
  g.fillText("100", cx + r, h - 1);
  if (v !== null) {
    // marker on the arc and a needle stub pointing at it
    const a = angle(v);
    const mx = cx + Math.cos(a) * r;
    const my = cy + Math.sin(a) * r;
    g.strokeStyle = "#d7dde5";
    g.lineWidth = 3;
    g.beginPath();
    g.moveTo(cx + Math.cos(a) * (r - 34), cy + Math.sin(a) * (r - 34));
    g.lineTo(cx + Math.cos(a) * (r - 10), cy + Math.sin(a) * (r - 10));
    g.stroke();
    g.fillStyle = "#0e1116";
    g.beginPath();
    g.arc(mx, my, 8, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = "#d7dde5";
    g.beginPath();
    g.arc(mx, my, 5.5, 0, 2 * Math.PI);
    g.fill();
  }
  g.textAlign = "start";
  setText("sent-venue", venue === undefined ? "" : `${venue} · fear & greed`);
  setText("sent-value", v === null ? "–" : v.toFixed(0));
  setText("sent-class", v === null ? "waiting…" : fearGreedClass(v));
  const mood = s ? MOODS[s.mood] ?? "–" : "–";
  const moodEl = $("#sent-mood");
  if (moodEl.dataset.mood !== mood) moodEl.dataset.mood = mood;
  setText("sent-mood", mood.toLowerCase());
  setText("sent-conf", s ? `${Math.round((s.confidence || 0) * 100)}%` : "–");
  const adv = s?.advancing || 0;
  const dec = s?.declining || 0;
  const unch = s?.unchanged || 0;
  setText("sent-adv", s ? String(adv) : "–");
  setText("sent-dec", s ? String(dec) : "–");
  setText("sent-unch", s ? String(unch) : "–");
  const n = adv + dec + unch || 1;
  const bars = $("#sent-breadth").children;
  bars[0].style.width = `${(adv / n) * 100}%`;
  bars[1].style.width = `${(unch / n) * 100}%`;
  bars[2].style.width = `${(dec / n) * 100}%`;
}

let passRows = null;
let resultShown; // undefined: nothing drawn yet
function renderScanner() {
  if (!scan.dirty) return;
  scan.dirty = false;
  const cur = scan.current;
  passRows ??= Object.fromEntries(
    [...document.querySelectorAll(".scan-passes .pass")].map((el) => [
      el.dataset.pass,
      { el, bar: el.querySelector(".bar"), fill: el.querySelector(".bar i"), count: el.querySelector(".pass-count"), shown: "" },
    ]),
  );
  let partial = false;
  for (const [name, row] of Object.entries(passRows)) {
    const p = cur?.passes[name] ?? { processed: 0, total: 0 };
    const pct = p.total ? Math.min(100, (p.processed / p.total) * 100) : 0;
    const active = scan.state === "running" && cur?.pass === name;
    const key = `${p.processed}/${p.total}/${active}`;
    if (key === row.shown) continue;
    row.shown = key;
    row.fill.style.transform = `scaleX(${pct / 100})`;
    row.bar.setAttribute("aria-valuenow", String(Math.round(pct)));
    row.bar.title = `${name} pass: ${p.processed} of ${p.total}`;
    row.count.textContent = p.total ? `${p.processed}/${p.total} · ${Math.round(pct)}%` : "–";
    row.el.classList.toggle("active", active);
    row.el.classList.toggle("complete", p.total > 0 && p.processed >= p.total);
    if (pct > 0 && pct < 100) partial = true;
  }
  if (partial) scan.partialFrames++;
  // status line
  let text = scan.text;
  if (scan.state === "running" && cur) {
    const p = cur.passes[cur.pass] ?? { processed: 0, total: 0 };
    text = `running ${cur.scanId} on ${cur.venue}: ${cur.pass} pass ${p.processed}/${p.total}`;
    if (cur.last) text += ` · ${cur.last.instrument} ${signed(cur.last.score)}`;
  }
  if (scan.notice && (scan.state === "running" || scan.state === "pending")) text += ` — ${scan.notice}`;
  const status = $("#scan-status");
  if (status.dataset.state !== scan.state) status.dataset.state = scan.state;
  setText("scan-status", text);
  setText("scan-title", cur ? `${cur.result ? `${cur.result.pass} pass · ` : ""}${cur.scanId} · top ${cur.topN} on ${cur.venue}` : "");
  // ranked result of the latest pass
  const result = cur?.result ?? null;
  if (result === resultShown) return;
  resultShown = result;
  const tbody = $("#scan-results tbody");
  const frag = document.createDocumentFragment();
  if (!result || result.entries.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 4;
    td.className = "empty";
    td.textContent = result ? "no instruments ranked" : "no results yet";
    tr.appendChild(td);
    frag.appendChild(tr);
  }
  (result?.entries ?? []).forEach((e, i) => {
    const score = e.score || 0;
    const tr = document.createElement("tr");
    tr.dataset.instrument = e.instrument;
    const rank = document.createElement("td");
    rank.className = "rank";
    rank.textContent = String(i + 1);
    const inst = document.createElement("td");
    inst.className = "l inst";
    inst.textContent = e.instrument;
    const sc = document.createElement("td");
    sc.className = `score ${score >= 0 ? "up" : "down"}`;
    sc.textContent = signed(score);
    const reason = document.createElement("td");
    reason.className = "reason";
    reason.textContent = e.reason || "";
    reason.title = e.reason || "";
    tr.append(rank, inst, sc, reason);
    frag.appendChild(tr);
  });
  tbody.replaceChildren(frag);
}

function renderLog() {
  if (!logDirty) return;
  logDirty = false;
  const ol = $("#log");
  const frag = document.createDocumentFragment();
  for (const e of log) {
    const li = document.createElement("li");
    li.className = e.level;
    const time = document.createElement("time");
    time.textContent = e.t;
    const span = document.createElement("span");
    span.textContent = e.text;
    li.append(time, span);
    frag.appendChild(li);
  }
  ol.replaceChildren(frag);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const figures = { eps: 0, latP50: NaN, latP99: NaN, fps: 0, frameP95: 0, frameMax: 0 };
function renderFigures(now) {
  const dt = now - lastEps.t;
  if (dt < 500) return;
  const events = client.stats.events;
  figures.eps = ((events - lastEps.events) * 1000) / dt;
  lastEps = { t: now, events };
  const lat = latencies.sort((a, b) => a - b);
  figures.latP50 = percentile(lat, 0.5);
  figures.latP99 = percentile(lat, 0.99);
  latencies = [];
  // frames of the last two seconds
  while (frames.length && frames[0].t < now - 2000) frames.shift();
  const deltas = frames.map((f) => f.d).sort((a, b) => a - b);
  figures.fps = frames.length / 2;
  figures.frameP95 = percentile(deltas, 0.95) || 0;
  figures.frameMax = deltas[deltas.length - 1] || 0;
  setText("f-eps", compact(figures.eps));
  setText("f-lat", Number.isNaN(figures.latP50) ? "–" : `${figures.latP50.toFixed(1)} / ${figures.latP99.toFixed(1)}`);
  setText("f-gaps", String(client.stats.gaps));
  $("#f-gaps").classList.toggle("bad", client.stats.gaps > 0);
  setText("f-lagged", `${client.stats.lagged} / ${client.stats.resyncs}`);
  setText("f-reconnects", String(client.stats.reconnects));
  setText("f-rtt", rtt === null ? "–" : rtt.toFixed(1));
  setText("f-fps", `${Math.round(figures.fps)} · ${figures.frameP95.toFixed(0)}`);
}

// JS time spent per part of the render loop (ms, since the page loaded)
const renderCost = { prices: 0, book: 0, trades: 0, chart: 0, sentiment: 0, scanner: 0, log: 0, figures: 0 };
function timed(part, fn, arg) {
  const t0 = performance.now();
  fn(arg);
  renderCost[part] += performance.now() - t0;
}

function frame(t) {
  if (lastFrame) frames.push({ t, d: t - lastFrame });
  lastFrame = t;
  timed("prices", renderPrices);
  timed("book", renderBook);
  timed("trades", renderTrades);
  timed("chart", renderChart, t);
  timed("sentiment", renderSentiment);
  timed("scanner", renderScanner);
  timed("log", renderLog);
  timed("figures", renderFigures, t);
  requestAnimationFrame(frame);
}

// ---------------------------------------------------------------------------
// server figures from /stats (only while connected: no failing requests)
// ---------------------------------------------------------------------------

async function pollStats() {
  if (client.state !== State.CONNECTED) return;
  try {
    const resp = await fetch("/stats", { cache: "no-store" });
    if (!resp.ok) return;
    const s = await resp.json();
    const t = performance.now();
    setText("s-conns", compact(s.connections));
    setText("s-pub", compact(s.events_published));
    setText("s-deliv", compact(s.messages_delivered));
    setText("s-bytes", compact(s.bytes_delivered) + "B");
    setText("s-gzip", compact(s.gzip_compressed));
    setText("s-lagged", compact(s.lagged_sent));
    setText("s-uptime", `${Math.floor(s.uptime_secs / 60)}m ${Math.floor(s.uptime_secs % 60)}s`);
    if (serverPrev && s.epoch === serverPrev.epoch && t > serverPrev.t) {
      setText("s-rate", compact(((s.events_published - serverPrev.pub) * 1000) / (t - serverPrev.t)));
    }
    serverPrev = { t, pub: s.events_published, epoch: s.epoch };
  } catch {
    /* the server is going away; the status shows it */
  }
}

// ---------------------------------------------------------------------------
// start
// ---------------------------------------------------------------------------

for (const b of document.querySelectorAll("#chart-tabs button")) {
  b.addEventListener("click", () => {
    chartInterval = b.dataset.iv;
    for (const o of document.querySelectorAll("#chart-tabs button")) o.classList.toggle("on", o === b);
    chartDirty = true;
  });
}
window.addEventListener("resize", () => (chartDirty = true));
try {
  new PerformanceObserver((list) => (longTasks += list.getEntries().length)).observe({ type: "longtask", buffered: false });
} catch {
  /* not supported */
}

client.subscribe(["ticker.*.*"], onTicker, { conflateMs: TICKER_CONFLATE_MS });
// signals and sentiment (their snapshots come with the subscription), and
// the scanner's channels (a scan's events also come unasked to the page
// that requested it; this keeps them followed across reconnections)
client.subscribe(["signal.*.*", "sentiment.*.market", "scan.*.all"], onAnalytics);
$("#scan-btn").addEventListener("click", requestScan);
$("#scan-top").addEventListener("keydown", (e) => {
  if (e.key === "Enter") requestScan();
});
$("#scan-results tbody").addEventListener("click", (e) => {
  const tr = e.target.closest("tr[data-instrument]");
  const venue = scan.current?.venue;
  if (tr && venue && instruments.has(`${venue}.${tr.dataset.instrument}`)) select(`${venue}.${tr.dataset.instrument}`);
});
// `?subscribe=a,b` adds channels or patterns (e.g. `*.*.*` to load-test the
// page): their events are counted in events/s, not drawn.
const extra = (params.get("subscribe") || "").split(",").filter(Boolean);
if (extra.length) client.subscribe(extra, sampleLatency);
client.connect();
note("info", `connecting to ${wsUrl}`);
setInterval(pollStats, 2000);
requestAnimationFrame(frame);

// for tests and measurements (read-only view of the page's own figures)
window.dashboard = {
  client,
  figures: () => ({
    ...figures,
    events: client.stats.events,
    gaps: client.stats.gaps,
    lagged: client.stats.lagged,
    resyncs: client.stats.resyncs,
    reconnects: client.stats.reconnects,
    state: client.state,
    instruments: instruments.size,
    selected,
    bookLevels: { bids: book.bids.length, asks: book.asks.length },
    bookChecks: { ...bookChecks },
    longTasks,
    renderCost: { ...renderCost },
    signals: signals.size,
    sentiments: sentiments.size,
    scan: {
      state: scan.state,
      scanId: scan.current?.scanId ?? null,
      requestId: scan.current?.requestId ?? null,
      passes: scan.current ? JSON.parse(JSON.stringify(scan.current.passes)) : null,
      results: scan.current?.result?.entries.length ?? 0,
      partialFrames: scan.partialFrames,
    },
  }),
};
