// Type declarations for tickwire.js (the tickwire.v1 JSON mode shapes:
// lowerCamelCase names, 64-bit integers as strings, enums by name; fields
// with default values may be absent, as in the canonical proto3 JSON mapping).

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

export declare const State: Readonly<{
  IDLE: "idle";
  CONNECTING: "connecting";
  CONNECTED: "connected";
  RECONNECTING: "reconnecting";
  CLOSED: "closed";
}>;

export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  POLICY: 1008;
  TOO_BIG: 1009;
  INTERNAL: 1011;
  HEARTBEAT_TIMEOUT: 4000;
  UNAUTHORIZED: 4001;
  FORBIDDEN: 4003;
  SLOW_CONSUMER: 4008;
  TOO_MANY_REQUESTS: 4029;
}>;

/** A 64-bit integer as the JSON mode writes it. */
export type Int64 = string;

export type Side = "SIDE_UNSPECIFIED" | "SIDE_BUY" | "SIDE_SELL";
export type SignalAction =
  | "SIGNAL_ACTION_UNSPECIFIED"
  | "SIGNAL_ACTION_STRONG_SELL"
  | "SIGNAL_ACTION_SELL"
  | "SIGNAL_ACTION_HOLD"
  | "SIGNAL_ACTION_BUY"
  | "SIGNAL_ACTION_STRONG_BUY";
export type Mood = "MOOD_UNSPECIFIED" | "MOOD_BEARISH" | "MOOD_NEUTRAL" | "MOOD_BULLISH";
export type ErrorCode =
  | "ERROR_CODE_UNSPECIFIED"
  | "ERROR_CODE_BAD_REQUEST"
  | "ERROR_CODE_UNKNOWN_CHANNEL"
  | "ERROR_CODE_INVALID_CHANNEL"
  | "ERROR_CODE_TOO_MANY_SUBSCRIPTIONS"
  | "ERROR_CODE_RATE_LIMITED"
  | "ERROR_CODE_FORBIDDEN"
  | "ERROR_CODE_UNAUTHORIZED"
  | "ERROR_CODE_RESUME_UNAVAILABLE"
  | "ERROR_CODE_INTERNAL";

/** `count`: fills aggregated into this trade (OKX), absent when one trade is one fill. */
export interface Trade { price?: number; quantity?: number; side?: Side; tradeId?: string; count?: number }
export interface Ticker {
  last?: number; bid?: number; bidSize?: number; ask?: number; askSize?: number;
  open24h?: number; high24h?: number; low24h?: number; changePct24h?: number;
  volume24h?: number; quoteVolume24h?: number;
}
export interface Level { price?: number; quantity?: number }
export interface BookSnapshot {
  bids?: Level[]; asks?: Level[]; checksum?: number; priceDecimals?: number; sizeDecimals?: number;
}
export interface BookUpdate { bids?: Level[]; asks?: Level[]; checksum?: number }
export interface Candle {
  interval?: string; openTimeNs?: Int64; open?: number; high?: number; low?: number;
  close?: number; volume?: number; closed?: boolean; [extra: string]: unknown;
}
export interface Signal {
  action?: SignalAction; strength?: number; reason?: string; interval?: string;
  indicators?: Record<string, number>;
}
export interface Sentiment {
  fearGreed?: number; mood?: Mood; confidence?: number; advancing?: number; declining?: number;
}
export interface ScanEntry { instrument?: string; score?: number; reason?: string }
export interface Custom { data?: string /* base64 */; json?: string }

export type PayloadKind =
  | "trade" | "ticker" | "bookSnapshot" | "bookUpdate" | "candle" | "signal" | "sentiment"
  | "scanStarted" | "scanResult" | "symbolAnalyzed" | "scanProgress" | "scanDone" | "scanError"
  | "custom";

export interface FeedEvent {
  channel: string;
  seq: Int64;
  sourceTimeNs?: Int64;
  publishTimeNs?: Int64;
  trade?: Trade;
  ticker?: Ticker;
  bookSnapshot?: BookSnapshot;
  bookUpdate?: BookUpdate;
  candle?: Candle;
  signal?: Signal;
  sentiment?: Sentiment;
  scanStarted?: { requestId?: Int64; scanId?: string; pass?: string; total?: number };
  scanResult?: { scanId?: string; pass?: string; entries?: ScanEntry[] };
  symbolAnalyzed?: { scanId?: string; pass?: string; instrument?: string; score?: number };
  scanProgress?: { scanId?: string; pass?: string; processed?: number; remaining?: number };
  scanDone?: { requestId?: Int64; scanId?: string };
  scanError?: { requestId?: Int64; scanId?: string; message?: string };
  custom?: Custom;
}

export interface Welcome {
  sessionId?: string; serverVersion?: string; protocol?: string; format?: string;
  heartbeatIntervalMs?: number; maxSubscriptions?: number; maxRequestsPerSecond?: number;
  epoch?: string; gzipThresholdBytes?: number; maxInboundFrameBytes?: number;
}
export interface ChannelState { channel: string; seq?: Int64; epoch?: string; recovered?: boolean }
export interface Subscribed { requestId?: Int64; channels?: ChannelState[] }
export interface Unsubscribed { requestId?: Int64; channels?: string[] }
export interface Pong { requestId?: Int64; serverTimeNs?: Int64 }
export interface ServerError { requestId?: Int64; code?: ErrorCode; message?: string; channel?: string; channels?: string[] }
export interface Lagged { channel: string; firstSeq?: Int64; lastSeq?: Int64 }
/** To a subscriber with `conflateMs`: events firstSeq..lastSeq were folded into the next one (seq lastSeq + 1). */
export interface Conflated { channel: string; firstSeq?: Int64; lastSeq?: Int64 }
export interface ChannelInfo { channel: string; kind?: string; seq?: Int64 }

export interface ServerMessage {
  welcome?: Welcome;
  subscribed?: Subscribed;
  unsubscribed?: Unsubscribed;
  event?: FeedEvent;
  pong?: Pong;
  error?: ServerError;
  lagged?: Lagged;
  conflated?: Conflated;
  channelList?: { requestId?: Int64; channels?: ChannelInfo[] };
}

/** A ClientMessage in the JSON shape (what `send()` takes). */
export interface ClientMessage {
  subscribe?: {
    requestId: Int64; channels: string[];
    resume?: Record<string, { seq: Int64; epoch: string }>; snapshot?: boolean;
    /** 0 (absent) = every event; 10..60000 = at most one message per channel per interval. */
    conflateMs?: number;
  };
  unsubscribe?: { requestId: Int64; channels: string[] };
  ping?: { requestId: Int64 };
  auth?: { token: string };
  listChannels?: { requestId: Int64; pattern?: string };
  requestScan?: { requestId: Int64; topN?: number; venue?: string };
}

/** A WebSocket constructor: the browser's, or e.g. the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean: boolean }) => void) | null;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ReconnectOptions {
  /** First delay (ms) before reconnecting; default 500. */
  initialDelayMs?: number;
  /** Upper bound of the delay (ms); default 10000. */
  maxDelayMs?: number;
  /** Growth per failed attempt; default 2. */
  factor?: number;
  /** Fraction of the delay randomly taken off (0..1); default 0.5. */
  jitter?: number;
}

export interface ClientOptions {
  /** WebSocket implementation; default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** `"json"` (default) or `"proto"` (needs `decode` and `encode`). */
  format?: "json" | "proto";
  /** proto mode: decodes one (un-gzipped) ServerMessage into the JSON shape above. */
  decode?: (bytes: Uint8Array) => ServerMessage;
  /** proto mode: encodes a ClientMessage object (JSON shape above). */
  encode?: (message: ClientMessage) => Uint8Array;
  /** JWT sent as `?token=`; a function is asked again on every (re)connect. */
  token?: string | (() => string | Promise<string>);
  /** Reconnect policy, or `false` to stay closed after a disconnect. */
  reconnect?: ReconnectOptions | false;
  /** How often a `ping` message is sent (ms); default 10000; 0 disables. */
  pingIntervalMs?: number;
  /** How long (ms) a ping may stay unanswered, with nothing else received, before the link counts as dead and is reconnected; default 10000. */
  pongTimeoutMs?: number;
  /** Ask for snapshots on subscribe; default true. */
  snapshot?: boolean;
}

export interface EventMeta {
  channel: string;
  /** The event's seq as a number. */
  seq: number;
  /** Which payload the event carries. */
  kind: PayloadKind | undefined;
  /** True for the state sent on (re)subscribe or after `lagged` (a book snapshot, the last ticker...). */
  snapshot: boolean;
  /** Whether the frame arrived gzipped. */
  gzipped: boolean;
}

export interface SubscribedAnswer extends Subscribed {
  /** Channels resumed from the seq asked. */
  recovered: number;
  /** Channels whose resume was not possible (a fresh snapshot follows). */
  resynced: number;
  /** `error` answers for names of this request that were refused. */
  errors: ServerError[];
}

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  code?: number;
  reason?: string;
  attempt?: number;
  delayMs?: number;
  sessionId?: string;
  epoch?: string;
}

export interface ClientEvents {
  state: StateChange;
  open: { url: string; protocol: string };
  close: { code: number; reason: string; wasClean: boolean };
  /** A reconnect was scheduled (after every failed or lost connection). */
  reconnect: { code: number; reason: string; attempt: number; delayMs: number };
  welcome: Welcome;
  subscribed: SubscribedAnswer;
  unsubscribed: Unsubscribed;
  event: EventMeta & { event: FeedEvent };
  gap: { channel: string; expected: number; received: number };
  lagged: { channel: string; firstSeq: number; lastSeq: number };
  /** An announced conflation skip (not a gap, the state is kept): the next event has seq lastSeq + 1. */
  conflated: { channel: string; firstSeq: number; lastSeq: number };
  resync: { channel: string; reason: "lagged" | "resume unavailable"; from?: number; seq: number };
  error: { where: "server" | "socket" | "decode" | "connect" | "token"; error: unknown; code?: ErrorCode; message?: string };
  pong: { requestId: number; serverTimeNs?: Int64; rttMs?: number };
  message: ServerMessage;
}

export interface ClientStats {
  messages: number;
  events: number;
  gzipped: number;
  bytes: number;
  gaps: number;
  lagged: number;
  /** `conflated` announcements received. */
  conflated: number;
  resyncs: number;
  recovered: number;
  reconnects: number;
  errors: number;
}

export declare class Subscription {
  readonly client: TickwireClient;
  readonly patterns: string[];
  readonly callback?: (event: FeedEvent, meta: EventMeta) => void;
  active: boolean;
  /** The `subscribed` answer (null when every pattern was already subscribed). */
  readonly ready: Promise<SubscribedAnswer | null>;
  unsubscribe(): Promise<Unsubscribed | unknown>;
}

export declare class TickwireClient {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  readonly format: "json" | "proto";
  readonly state: ConnectionState;
  readonly welcome: Welcome | null;
  readonly stats: ClientStats;
  connect(): this;
  close(code?: number, reason?: string): void;
  subscribe(
    patterns: string | string[],
    callback?: (event: FeedEvent, meta: EventMeta) => void,
    options?: {
      resume?: Record<string, { seq: number | Int64; epoch: string }>;
      /** At most one message per channel per this many ms (10..60000), carrying the latest state; 0 = every event. */
      conflateMs?: number;
    },
  ): Subscription;
  ping(): Promise<{ requestId: number; serverTimeNs?: Int64; rttMs: number }>;
  listChannels(pattern?: string): Promise<ChannelInfo[]>;
  send(message: ClientMessage): boolean;
  position(channel: string): { seq: number; epoch: string } | undefined;
  on<K extends keyof ClientEvents>(name: K, fn: (value: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(name: K, fn: (value: ClientEvents[K]) => void): void;
  once<K extends keyof ClientEvents>(name: K, filter?: (value: ClientEvents[K]) => boolean): Promise<ClientEvents[K]>;
}

export declare class OrderBook {
  bids: Required<Level>[];
  asks: Required<Level>[];
  priceDecimals: number;
  sizeDecimals: number;
  seq: number;
  ready: boolean;
  applySnapshot(snapshot: BookSnapshot, seq?: number): boolean;
  applyUpdate(update: BookUpdate, seq?: number): boolean;
  checksum(): number;
}

export declare const PAYLOAD_KINDS: readonly PayloadKind[];
export declare function payloadKind(event: FeedEvent): PayloadKind | undefined;
export declare function matchPattern(pattern: string, channel: string): boolean;
export declare function isGzip(bytes: Uint8Array): boolean;
export declare function gunzip(bytes: Uint8Array): Promise<Uint8Array>;
export declare function crc32(text: string): number;
export declare function bookChecksum(
  asks: Level[], bids: Level[], priceDecimals: number, sizeDecimals: number, depth?: number,
): number;

export default TickwireClient;
