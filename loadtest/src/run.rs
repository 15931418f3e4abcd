//! One load run: ramp the clients up, measure a steady window, report.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use prost::Message as _;
use tickwire::protocol::pb::{ClientMessage, Subscribe, client_message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::arrival::Arrival;
use crate::procstat;
use crate::progress::Progress;
use crate::wire::{self, FrameReader, Seen};
use crate::{Plan, Target};

/// Counters shared by every client; each client flushes its local counts
/// every few messages so the hot loop touches no shared cache line.
#[derive(Default)]
struct Shared {
    measuring: AtomicBool,
    deliveries: AtomicU64,
    bytes: AtomicU64,
    gaps: AtomicU64,
    /// Messages skipped inside the gaps in the window (seq jumps summed).
    missed: AtomicU64,
    lagged: AtomicU64,
    /// `conflated` announcements, and the seqs they skipped in the window.
    conflated: AtomicU64,
    conflated_skipped: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
    storm_connected: AtomicU64,
    storm_failed: AtomicU64,
    unstamped_reads: AtomicU64,
    closes: Mutex<BTreeMap<String, u64>>,
    hist: Mutex<Option<Histogram<u64>>>,
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub plan: Plan,
    pub connected: u64,
    pub connect_failures: u64,
    pub storm_connected: u64,
    pub storm_failed: u64,
    pub window_s: f64,
    pub deliveries: u64,
    pub bytes: u64,
    pub gaps: u64,
    /// Messages the gaps in the window skipped (a jump from seq 5 to 9
    /// misses 3): what a peer that skips slow clients dropped.
    pub missed: u64,
    pub lagged: u64,
    /// `conflated` announcements (with `conflate_ms`): intended skips, not
    /// gaps; and the seqs they named inside the window.
    pub conflated: u64,
    pub conflated_skipped: u64,
    pub closes: BTreeMap<String, u64>,
    pub latency_us: [u64; 5],
    pub latency_count: u64,
    /// With `--arrival kernel`: reads the kernel gave no timestamp.
    pub unstamped_reads: u64,
    /// Server RSS before any client connected.
    pub rss_before_clients_kib: u64,
    pub rss_start_kib: u64,
    pub rss_max_kib: u64,
    pub server_cpu_s: f64,
    /// The load generator's own CPU time in the window: near the number of
    /// its threads x the window, the client (not the server) is the limit.
    pub client_cpu_s: f64,
    pub events_published_per_s: Option<f64>,
}

async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

async fn events_published(addr: SocketAddr) -> Option<u64> {
    let body = http_get(addr, "/stats").await?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["events_published"].as_u64()
}

/// Instruments (third channel token) of each venue, from `/channels`.
async fn instruments(addr: SocketAddr) -> Vec<(String, String)> {
    let Some(body) = http_get(addr, "/channels").await else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut out: Vec<(String, String)> = v["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["channel"].as_str())
        .filter_map(|name| {
            let mut t = name.split('.');
            let (_, venue, inst) = (t.next()?, t.next()?, t.next()?);
            Some((venue.to_string(), inst.to_string()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

struct ClientSpec {
    index: usize,
    json: bool,
    /// Decode every message (else count frames and bytes only).
    decode: bool,
    subscribe: Vec<String>,
    /// Storm clients only connect (and count as such).
    storm: bool,
}

pub async fn run(plan: Plan, pid: Option<u32>, show_progress: bool) -> Report {
    let mut progress = Progress::new(show_progress, Duration::from_secs(1));
    let shared = Arc::new(Shared::default());
    let plan = Arc::new(plan);
    let inst = if plan.per_client_instrument {
        instruments(plan.addr).await
    } else {
        Vec::new()
    };
    if plan.per_client_instrument && inst.is_empty() {
        eprintln!(
            "tickwire-load: --per-client-instrument found no channels at {}",
            plan.addr
        );
    }
    let json_every = if plan.json_ratio > 0.0 {
        (1.0 / plan.json_ratio).round().max(1.0) as usize
    } else {
        0
    };
    let decode_every = if plan.decode_ratio > 0.0 {
        (1.0 / plan.decode_ratio).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    let rss_before_clients_kib = pid.map(procstat::rss_kib).unwrap_or(0);
    let mut tasks = Vec::with_capacity(plan.clients + plan.storm_clients);
    let ramp_start = Instant::now();
    for i in 0..plan.clients {
        let due = ramp_start + Duration::from_secs_f64(i as f64 / plan.ramp_per_sec.max(1.0));
        tokio::time::sleep_until(due.into()).await;
        let subscribe = if plan.idle {
            Vec::new()
        } else if plan.per_client_instrument && !inst.is_empty() {
            let (venue, name) = &inst[i % inst.len()];
            vec![format!("*.{venue}.{name}")]
        } else {
            plan.subscribe.clone()
        };
        let spec = ClientSpec {
            index: i,
            json: json_every > 0 && i % json_every == 0,
            decode: i % decode_every == 0,
            subscribe,
            storm: false,
        };
        tasks.push(tokio::spawn(client(spec, plan.clone(), shared.clone())));
    }
    let all_up = Instant::now() + Duration::from_secs(30);
    while shared.connected.load(Relaxed) + shared.failed.load(Relaxed) < plan.clients as u64
        && Instant::now() < all_up
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        progress.connects(
            shared.connected.load(Relaxed),
            shared.failed.load(Relaxed),
            plan.clients,
        );
    }
    if show_progress {
        eprintln!(
            "connected {}/{} ({} failed); measuring for {:?} after {:?} of warm-up",
            shared.connected.load(Relaxed),
            plan.clients,
            shared.failed.load(Relaxed),
            plan.duration,
            plan.warmup
        );
    }
    tokio::time::sleep(plan.warmup).await;

    // the measurement window
    let published0 = if plan.target == Target::Tickwire {
        events_published(plan.addr).await
    } else {
        None
    };
    // events/s is counted between the two /stats answers: a saturated
    // server may answer the second one seconds after the window ends
    let published0_at = Instant::now();
    let cpu0 = pid.map(procstat::cpu_secs).unwrap_or(0.0);
    let me = std::process::id();
    let client_cpu0 = procstat::cpu_secs(me);
    let rss_start_kib = pid.map(procstat::rss_kib).unwrap_or(0);
    let d0 = shared.deliveries.load(Relaxed);
    let b0 = shared.bytes.load(Relaxed);
    let t0 = Instant::now();
    shared.measuring.store(true, Relaxed);
    if plan.storm_clients > 0 {
        let (plan2, shared2) = (plan.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let mut storm = Vec::new();
            for j in 0..plan2.storm_clients {
                let due = t0
                    + plan2
                        .storm_within
                        .mul_f64(j as f64 / plan2.storm_clients as f64);
                tokio::time::sleep_until(due.into()).await;
                let spec = ClientSpec {
                    index: plan2.clients + j,
                    json: false,
                    decode: false,
                    subscribe: Vec::new(),
                    storm: true,
                };
                storm.push(tokio::spawn(client(spec, plan2.clone(), shared2.clone())));
            }
            std::future::pending::<()>().await;
            drop(storm);
        }));
    }
    let mut rss_max_kib = rss_start_kib;
    progress.reset(d0, cpu0);
    while t0.elapsed() < plan.duration {
        tokio::time::sleep(
            Duration::from_millis(250).min(plan.duration.saturating_sub(t0.elapsed())),
        )
        .await;
        let server = pid.map(|pid| (procstat::rss_kib(pid), procstat::cpu_secs(pid)));
        if let Some((rss, _)) = server {
            rss_max_kib = rss_max_kib.max(rss);
        }
        progress.window(
            t0.elapsed(),
            shared.deliveries.load(Relaxed),
            shared.gaps.load(Relaxed),
            shared.lagged.load(Relaxed),
            server,
        );
    }
    shared.measuring.store(false, Relaxed);
    let window_s = t0.elapsed().as_secs_f64();
    let cpu1 = pid.map(procstat::cpu_secs).unwrap_or(0.0);
    let client_cpu1 = procstat::cpu_secs(me);
    let published1 = if plan.target == Target::Tickwire {
        events_published(plan.addr).await
    } else {
        None
    };
    let published_span_s = published0_at.elapsed().as_secs_f64();
    // let clients flush what they counted inside the window
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries = shared.deliveries.load(Relaxed) - d0;
    let bytes = shared.bytes.load(Relaxed) - b0;
    for t in &tasks {
        t.abort();
    }
    let hist = shared
        .hist
        .lock()
        .expect("hist lock")
        .take()
        .unwrap_or_else(new_hist);
    let q = |p: f64| hist.value_at_quantile(p);
    Report {
        plan: (*plan).clone(),
        connected: shared.connected.load(Relaxed),
        connect_failures: shared.failed.load(Relaxed),
        storm_connected: shared.storm_connected.load(Relaxed),
        storm_failed: shared.storm_failed.load(Relaxed),
        window_s,
        deliveries,
        bytes,
        gaps: shared.gaps.load(Relaxed),
        missed: shared.missed.load(Relaxed),
        lagged: shared.lagged.load(Relaxed),
        conflated: shared.conflated.load(Relaxed),
        conflated_skipped: shared.conflated_skipped.load(Relaxed),
        closes: shared.closes.lock().expect("closes lock").clone(),
        latency_us: [q(0.5), q(0.9), q(0.99), q(0.999), hist.max()],
        latency_count: hist.len(),
        unstamped_reads: shared.unstamped_reads.load(Relaxed),
        rss_before_clients_kib,
        rss_start_kib,
        rss_max_kib,
        server_cpu_s: cpu1 - cpu0,
        client_cpu_s: client_cpu1 - client_cpu0,
        events_published_per_s: match (published0, published1) {
            (Some(a), Some(b)) => Some((b - a) as f64 / published_span_s),
            _ => None,
        },
    }
}

/// Per-client tallies, flushed to [`Shared`] every few messages.
struct Local {
    deliveries: u64,
    bytes: u64,
    latencies: Vec<u64>,
    /// next expected seq per channel
    next: HashMap<Box<[u8]>, u64>,
}

impl Local {
    fn flush(&mut self, shared: &Shared) {
        if self.deliveries > 0 {
            shared.deliveries.fetch_add(self.deliveries, Relaxed);
            shared.bytes.fetch_add(self.bytes, Relaxed);
            self.deliveries = 0;
            self.bytes = 0;
        }
        if !self.latencies.is_empty() {
            let mut h = shared.hist.lock().expect("hist lock");
            let h = h.get_or_insert_with(new_hist);
            for v in self.latencies.drain(..) {
                h.saturating_record(v);
            }
        }
    }

    /// Counts a delivery without decoding it (no gap or latency check).
    fn count(&mut self, shared: &Shared, frame_bytes: usize) {
        if shared.measuring.load(Relaxed) {
            self.deliveries += 1;
            self.bytes += frame_bytes as u64;
            if self.deliveries >= 16 {
                self.flush(shared);
            }
        } else if self.deliveries > 0 {
            self.flush(shared);
        }
    }

    /// An announced conflation skip: the channel's next event is
    /// `last_seq + 1`; counted apart from gaps.
    fn conflated(&mut self, shared: &Shared, channel: &[u8], first_seq: u64, last_seq: u64) {
        shared.conflated.fetch_add(1, Relaxed);
        if shared.measuring.load(Relaxed) {
            shared
                .conflated_skipped
                .fetch_add((last_seq + 1).saturating_sub(first_seq), Relaxed);
        }
        match self.next.get_mut(channel) {
            Some(want) => *want = last_seq + 1,
            None => {
                self.next.insert(channel.into(), last_seq + 1);
            }
        }
    }

    fn event(
        &mut self,
        shared: &Shared,
        channel: &[u8],
        seq: u64,
        publish_time_ns: i64,
        arrived_ns: i64,
        frame_bytes: usize,
    ) {
        match self.next.get_mut(channel) {
            Some(want) => {
                if seq != *want {
                    shared.gaps.fetch_add(1, Relaxed);
                    if seq > *want && shared.measuring.load(Relaxed) {
                        shared.missed.fetch_add(seq - *want, Relaxed);
                    }
                }
                *want = seq + 1;
            }
            None => {
                self.next.insert(channel.into(), seq + 1);
            }
        }
        if shared.measuring.load(Relaxed) {
            self.deliveries += 1;
            self.bytes += frame_bytes as u64;
            let latency_us = ((arrived_ns - publish_time_ns).max(0) / 1000) as u64;
            self.latencies.push(latency_us.max(1));
            if self.latencies.len() >= 256 || self.deliveries >= 16 {
                self.flush(shared);
            }
        } else if self.deliveries > 0 || !self.latencies.is_empty() {
            self.flush(shared);
        }
    }
}

fn record_close(shared: &Shared, code: String) {
    *shared
        .closes
        .lock()
        .expect("closes lock")
        .entry(code)
        .or_default() += 1;
}

async fn client(spec: ClientSpec, plan: Arc<Plan>, shared: Arc<Shared>) {
    let (ok, fail) = if spec.storm {
        (&shared.storm_connected, &shared.storm_failed)
    } else {
        (&shared.connected, &shared.failed)
    };
    let ip = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        2 + (spec.index % plan.source_ips as usize) as u8,
    ));
    let connect = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(ip, 0))?;
        let mut stream = socket.connect(plan.addr).await?;
        stream.set_nodelay(true)?;
        if plan.arrival == Arrival::Kernel {
            crate::arrival::enable_kernel_stamps(&stream)?;
        }
        let path = if spec.json { "/ws?format=json" } else { "/ws" };
        let leftover = wire::handshake(&mut stream, &plan.addr.to_string(), path).await?;
        Ok::<_, std::io::Error>((stream, leftover))
    };
    let (stream, leftover) = match tokio::time::timeout(Duration::from_secs(30), connect).await {
        Ok(Ok(v)) => v,
        _ => {
            fail.fetch_add(1, Relaxed);
            return;
        }
    };
    ok.fetch_add(1, Relaxed);
    let (mut rd, mut wr) = stream.into_split();
    if !spec.subscribe.is_empty() && plan.target == Target::Tickwire {
        let msg = ClientMessage {
            kind: Some(client_message::Kind::Subscribe(Subscribe {
                request_id: 1,
                channels: spec.subscribe.clone(),
                resume: Default::default(),
                snapshot: Some(false),
                conflate_ms: plan.conflate_ms,
            })),
        };
        let frame = if spec.json {
            wire::client_frame(0x1, serde_json::to_string(&msg).expect("json").as_bytes())
        } else {
            wire::client_frame(0x2, &msg.encode_to_vec())
        };
        if wr.write_all(&frame).await.is_err() {
            record_close(&shared, "write-error".into());
            return;
        }
    }
    let mut reader = FrameReader::with_arrival(256 * 1024, &leftover, plan.arrival);
    let mut local = Local {
        deliveries: 0,
        bytes: 0,
        latencies: Vec::with_capacity(256),
        next: HashMap::new(),
    };
    let mut gunzipped = Vec::new();
    loop {
        let (frame, frame_bytes) = match reader.next(&mut rd).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                record_close(&shared, "eof".into());
                break;
            }
            Err(_) => {
                record_close(&shared, "reset".into());
                break;
            }
        };
        let unstamped = reader.take_unstamped();
        if unstamped > 0 {
            shared.unstamped_reads.fetch_add(unstamped, Relaxed);
        }
        let arrived = reader.arrived_ns();
        let payload = reader.payload(&frame);
        match frame.opcode {
            0x8 => {
                let code = payload
                    .get(..2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                record_close(&shared, code.to_string());
                break;
            }
            0x9 => {
                let pong = wire::client_frame(0xA, payload);
                let _ = wr.write_all(&pong).await;
                continue;
            }
            0x1 | 0x2 => {}
            _ => continue,
        }
        if spec.storm {
            continue; // storm clients only prove they were accepted
        }
        if !spec.decode {
            local.count(&shared, frame_bytes);
            continue;
        }
        let mut data = payload;
        if frame.opcode == 0x2 && data.starts_with(&[0x1f, 0x8b]) {
            gunzipped.clear();
            if flate2::read::GzDecoder::new(data)
                .read_to_end(&mut gunzipped)
                .is_err()
            {
                continue;
            }
            data = &gunzipped;
        }
        match plan.target {
            Target::Peer => {
                if let Some((seq, t)) = wire::decode_peer(data) {
                    local.event(&shared, b"peer", seq, t, arrived, frame_bytes);
                }
            }
            Target::Tickwire if spec.json || (frame.opcode == 0x1) => {
                if let Some(seen) = wire::decode_json(data) {
                    if seen.lagged {
                        shared.lagged.fetch_add(1, Relaxed);
                        local.next.clear();
                    }
                    if let Some((channel, first, last)) = seen.conflated {
                        local.conflated(&shared, channel.as_bytes(), first, last);
                    }
                    if let Some((channel, seq, t)) = seen.event {
                        local.event(&shared, channel.as_bytes(), seq, t, arrived, frame_bytes);
                    }
                }
            }
            Target::Tickwire => match wire::decode_proto(data) {
                Some(Seen::Event {
                    channel,
                    seq,
                    publish_time_ns,
                }) => {
                    let channel = channel.to_vec();
                    local.event(
                        &shared,
                        &channel,
                        seq,
                        publish_time_ns,
                        arrived,
                        frame_bytes,
                    )
                }
                Some(Seen::Lagged) => {
                    shared.lagged.fetch_add(1, Relaxed);
                    local.next.clear();
                }
                Some(Seen::Conflated {
                    channel,
                    first_seq,
                    last_seq,
                }) => {
                    let channel = channel.to_vec();
                    local.conflated(&shared, &channel, first_seq, last_seq);
                }
                _ => {}
            },
        }
    }
    local.flush(&shared);
}
