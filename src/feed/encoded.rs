//! One published message, encoded once and shared by every connection.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use prost::Message;

use crate::metrics::{Metrics, inc};
use crate::protocol::Format;
use crate::protocol::codec::{self, ProtoEncoding};
use crate::protocol::pb::ServerMessage;

/// A `ServerMessage` encoded once: the proto frame eagerly, the JSON frame
/// lazily and at most once (only if a JSON client asks for it). Connections
/// hold it by `Arc` and write its frames as they are: no per-client copy.
#[derive(Debug)]
pub struct Encoded {
    /// Channel sequence number of the event (0 for non-event messages).
    pub seq: u64,
    /// When the hub published it (Unix ns); its age in the ring is measured from it.
    pub publish_time_ns: i64,
    /// The channel's proto frame bytes published up to and including this
    /// event (lets a connection size its backlog in O(1)).
    pub cum_bytes: u64,
    proto: ProtoEncoding,
    json_frame: OnceLock<Bytes>,
    gzip_threshold: usize,
}

impl Encoded {
    /// Encodes `msg` for proto clients now; JSON waits for its first reader.
    pub fn new(
        msg: &ServerMessage,
        seq: u64,
        publish_time_ns: i64,
        gzip_threshold: usize,
        metrics: &Metrics,
    ) -> Self {
        let proto = codec::encode_proto(msg, gzip_threshold);
        if proto.gzipped() {
            inc(&metrics.gzip_compressed);
        }
        Self {
            seq,
            publish_time_ns,
            cum_bytes: 0,
            proto,
            json_frame: OnceLock::new(),
            gzip_threshold,
        }
    }

    /// An event for the ring built in `spare`'s allocation when nobody else
    /// holds it (the event its channel just evicted), else a new one: at a
    /// full ring, publishing then allocates nothing. `proto` comes from
    /// `codec::encode_event_proto`, ideally written into `spare`'s buffer
    /// (see [`Encoded::spare_buffer`]).
    pub fn reuse_or_new(
        spare: Option<Arc<Encoded>>,
        proto: ProtoEncoding,
        seq: u64,
        publish_time_ns: i64,
        cum_bytes: u64,
        gzip_threshold: usize,
        metrics: &Metrics,
    ) -> Arc<Self> {
        if proto.gzipped() {
            inc(&metrics.gzip_compressed);
        }
        let fresh = Self {
            seq,
            publish_time_ns,
            cum_bytes,
            proto,
            json_frame: OnceLock::new(),
            gzip_threshold,
        };
        match spare {
            Some(mut old) => match Arc::get_mut(&mut old) {
                Some(slot) => {
                    *slot = fresh;
                    old
                }
                None => Arc::new(fresh),
            },
            None => Arc::new(fresh),
        }
    }

    /// Takes the proto frame's buffer out of an event nobody else holds, for
    /// the next event to be written into; empty when shared or gzipped.
    pub fn spare_buffer(event: &mut Arc<Encoded>) -> Vec<u8> {
        let Some(e) = Arc::get_mut(event) else {
            return Vec::new();
        };
        if e.proto.gzipped() {
            return Vec::new();
        }
        std::mem::take(&mut e.proto.frame)
            .try_into_mut()
            .map(|mut spare| {
                spare.clear(); // nothing to move when it becomes a Vec
                Vec::from(spare)
            })
            .unwrap_or_default()
    }

    /// Bytes of the proto frame.
    pub fn frame_len(&self) -> usize {
        self.proto.frame.len()
    }

    /// Where the proto frame's bytes start (for cache prefetching).
    pub(crate) fn frame_ptr(&self) -> *const u8 {
        self.proto.frame.as_ptr()
    }

    /// The plain protobuf encoding of the message (never gzipped).
    pub fn proto_payload(&self) -> &[u8] {
        self.proto.payload()
    }

    /// The frame a client in `format` receives.
    ///
    /// hot path: for JSON, the first caller renders (and maybe gzips) the
    /// JSON once; every later caller gets the same bytes.
    pub fn frame(&self, format: Format, metrics: &Metrics) -> &Bytes {
        match format {
            Format::Proto => &self.proto.frame,
            Format::Json => self.json_frame.get_or_init(|| {
                let msg = self.message();
                let (frame, gzipped) =
                    codec::json_frame(&codec::render_json(&msg), self.gzip_threshold);
                if gzipped {
                    inc(&metrics.gzip_compressed);
                }
                frame
            }),
        }
    }

    /// Whether the JSON frame has been rendered (for tests and benches).
    pub fn json_rendered(&self) -> bool {
        self.json_frame.get().is_some()
    }

    /// The message decoded back from its encoding (cold path).
    pub fn message(&self) -> ServerMessage {
        ServerMessage::decode(self.proto.payload())
            .expect("invariant: the payload was encoded from a valid ServerMessage")
    }
}
