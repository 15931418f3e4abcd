// Shared helpers of the JS tests. They run against a real tickwire server
// started by the Rust integration tests (tests/js_client.rs, tests/browser.rs),
// which pass its address in TICKWIRE_ADDR.

import { createHmac } from "node:crypto";
import { createInterface } from "node:readline";

/** host:port of the server under test. */
export function serverAddr() {
  const addr = process.env.TICKWIRE_ADDR;
  if (!addr) throw new Error("TICKWIRE_ADDR is not set: run through `cargo test` (tests/js_client.rs)");
  return addr;
}

export const wsUrl = () => `ws://${serverAddr()}/ws`;
export const httpUrl = (path = "/") => `http://${serverAddr()}${path}`;

export async function getJson(path) {
  const resp = await fetch(httpUrl(path));
  if (!resp.ok) throw new Error(`GET ${path}: ${resp.status}`);
  return resp.json();
}

/**
 * A poll's pause, not exported: a test never sleeps and then looks. It
 * waits for the event with `eventually`, or proves that something did not
 * arrive with a ping barrier (`await client.ping()`: the server answers in
 * order and the client handles frames in order, so everything sent before
 * the pong has been handled).
 */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `cond` (sync or async) until it returns a truthy value and returns
 * that; fails after `timeoutMs`, a hang guard (never a speed assertion),
 * naming what was awaited.
 */
export async function eventually(what, cond, timeoutMs = 15000, everyMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}


/** An HS256 JWT (what `--jwt-secret` verifies). */
export function jwt(secret, claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  const sig = createHmac("sha256", secret).update(body).digest("base64url");
  return `${body}.${sig}`;
}

let lines;
/**
 * Asks the Rust test driving this script to do something (`stop`, `start`
 * the server) and resolves with its one-line answer.
 */
export async function control(command) {
  if (!lines) {
    const rl = createInterface({ input: process.stdin });
    const queue = [];
    const waiting = [];
    rl.on("line", (l) => (waiting.length ? waiting.shift()(l) : queue.push(l)));
    lines = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)));
  }
  process.stdout.write(`\nTICKWIRE-CONTROL ${command}\n`);
  const answer = await lines();
  if (answer === "unsupported" || answer.startsWith("error")) throw new Error(`control ${command}: ${answer}`);
  return answer;
}

/** Stops reading stdin so the process can exit. */
export function endControl() {
  process.stdin.pause();
  process.stdin.destroy();
}

/**
 * An independent check of the delivery contract, fed from subscription
 * callbacks: per channel, consecutive seqs; a snapshot only at the last seq
 * seen (or first on a channel).
 */
export class SeqChecker {
  constructor() {
    this.last = new Map();
    this.problems = [];
    this.events = 0;
  }

  observe(meta) {
    this.events++;
    const prev = this.last.get(meta.channel);
    if (prev !== undefined) {
      const want = meta.snapshot ? prev : prev + 1;
      if (meta.seq !== want) {
        this.problems.push(`${meta.channel}: seq ${meta.seq} after ${prev}${meta.snapshot ? " (snapshot)" : ""}`);
      }
    }
    this.last.set(meta.channel, meta.seq);
  }

  /** A channel's history restarts (new server epoch): follow it afresh. */
  forget(channel) {
    this.last.delete(channel);
  }
}
