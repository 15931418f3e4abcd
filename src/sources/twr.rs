//! The `.twr` file format: what `tickwire record` writes ([`Writer`], used
//! by `recording`) and the replay source reads ([`Reader`], used by
//! [`super::replay`]).
//!
//! File layout:
//!
//! ```text
//! "TWR1"                      magic
//! u8 flags                    bit 0: the rest of the file is gzip
//! u32 LE n, n bytes of JSON   header: {"format":1,"created_ns":..,"origin":..,"channels":[..]}
//! then, repeated to EOF:      varint length + tickwire.v1.Event (protobuf)
//! ```
//!
//! Events keep their channel, seq and both timestamps.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use prost::Message as _;
use thiserror::Error;
use tickwire_proto::framing::FramingError;

use crate::protocol::pb::Event;

const MAGIC: &[u8; 4] = b"TWR1";
const FLAG_GZIP: u8 = 1;

/// Largest event accepted from a file (a corrupt length must not allocate GBs).
const MAX_EVENT_BYTES: usize = 16 << 20;
const MAX_HEADER_BYTES: usize = 1 << 20;

/// What went wrong with a recording.
#[derive(Debug, Error)]
pub enum TwrError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a tickwire recording (bad magic)")]
    Magic { path: PathBuf },
    #[error("{path}: corrupt at event {index}: {reason}")]
    Corrupt {
        path: PathBuf,
        index: u64,
        reason: String,
    },
}

/// The JSON header of a recording.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Header {
    pub format: u32,
    pub created_ns: i64,
    /// Where the events came from (a server URL).
    pub origin: String,
    /// The subscribe patterns used.
    pub channels: Vec<String>,
}

/// Writes a recording.
pub struct Writer {
    out: Box<dyn Write + Send>,
    path: PathBuf,
    buf: Vec<u8>,
    events: u64,
}

impl Writer {
    /// Creates `path` and writes the header.
    pub fn create(path: &Path, gzip: bool, header: &Header) -> Result<Self, TwrError> {
        let io = |source| TwrError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = BufWriter::new(File::create(path).map_err(io)?);
        let json = serde_json::to_vec(header).expect("invariant: header serialises");
        file.write_all(MAGIC).map_err(io)?;
        file.write_all(&[if gzip { FLAG_GZIP } else { 0 }])
            .map_err(io)?;
        file.write_all(&(json.len() as u32).to_le_bytes())
            .map_err(io)?;
        file.write_all(&json).map_err(io)?;
        let out: Box<dyn Write + Send> = if gzip {
            Box::new(GzEncoder::new(file, Compression::default()))
        } else {
            Box::new(file)
        };
        Ok(Self {
            out,
            path: path.to_path_buf(),
            buf: Vec::with_capacity(1024),
            events: 0,
        })
    }

    /// Appends one event.
    pub fn write(&mut self, event: &Event) -> Result<(), TwrError> {
        self.buf.clear();
        event
            .encode_length_delimited(&mut self.buf)
            .expect("invariant: Vec grows");
        self.events += 1;
        self.out
            .write_all(&self.buf)
            .map_err(|source| TwrError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Pushes everything written so far to the file (a gzip sync flush):
    /// a recorder killed after this leaves a file that replays up to here.
    pub fn flush(&mut self) -> Result<(), TwrError> {
        self.out.flush().map_err(|source| TwrError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes and closes the file (finishing the gzip stream).
    pub fn finish(mut self) -> Result<u64, TwrError> {
        self.out.flush().map_err(|source| TwrError::Io {
            path: self.path.clone(),
            source,
        })?;
        drop(self.out); // GzEncoder writes its trailer on drop
        Ok(self.events)
    }
}

/// Reads a recording, one event at a time.
pub struct Reader {
    input: Box<dyn Read + Send>,
    path: PathBuf,
    header: Header,
    index: u64,
    buf: Vec<u8>,
    /// The file ended inside an event (a recorder killed mid-write).
    truncated: bool,
}

impl Reader {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, TwrError> {
        let file = File::open(path).map_err(|source| TwrError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_read(BufReader::new(file), path)
    }

    /// Reads a recording from `file` (named `path` in errors) and reads its
    /// header: [`Reader::open`] without the file system (the `twr_reader`
    /// fuzz target reads bytes).
    pub fn from_read(mut file: impl Read + Send + 'static, path: &Path) -> Result<Self, TwrError> {
        let io = |source| TwrError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut head = [0u8; 9];
        file.read_exact(&mut head).map_err(|_| TwrError::Magic {
            path: path.to_path_buf(),
        })?;
        if &head[..4] != MAGIC {
            return Err(TwrError::Magic {
                path: path.to_path_buf(),
            });
        }
        let corrupt = |reason: String| TwrError::Corrupt {
            path: path.to_path_buf(),
            index: 0,
            reason,
        };
        let len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
        if len > MAX_HEADER_BYTES {
            return Err(corrupt(format!("header of {len} bytes")));
        }
        let mut json = vec![0u8; len];
        file.read_exact(&mut json).map_err(io)?;
        let header: Header =
            serde_json::from_slice(&json).map_err(|e| corrupt(format!("header: {e}")))?;
        let input: Box<dyn Read + Send> = if head[4] & FLAG_GZIP != 0 {
            Box::new(BufReader::new(GzDecoder::new(file)))
        } else {
            Box::new(file)
        };
        Ok(Self {
            input,
            path: path.to_path_buf(),
            header,
            index: 0,
            buf: Vec::new(),
            truncated: false,
        })
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next event, or `None` at the end of the file.
    ///
    /// A file that ends inside an event (a recorder killed with SIGKILL, a
    /// gzip stream without its trailer) ends at its last whole event:
    /// `None`, with [`Reader::truncated`] set. Bytes that are there but
    /// wrong are an error.
    pub fn next_event(&mut self) -> Result<Option<Event>, TwrError> {
        if self.truncated {
            return Ok(None);
        }
        let corrupt = |index, reason: String| TwrError::Corrupt {
            path: self.path.clone(),
            index,
            reason,
        };
        // varint length; EOF before its first byte is the clean end
        match tickwire_proto::framing::read_frame(&mut self.input, &mut self.buf, MAX_EVENT_BYTES) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(FramingError::Truncated) => return Ok(self.cut()),
            Err(FramingError::BadLength) => {
                return Err(corrupt(self.index, "bad or oversized length prefix".into()));
            }
            Err(e) => return Err(corrupt(self.index, e.to_string())),
        }
        let event = Event::decode(&self.buf[..]).map_err(|e| corrupt(self.index, e.to_string()))?;
        self.index += 1;
        Ok(Some(event))
    }

    /// Ends the file at the last whole event.
    fn cut(&mut self) -> Option<Event> {
        self.truncated = true;
        None
    }

    /// Whether the file ended inside an event (see [`Reader::next_event`]).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Whole events read so far.
    pub fn events_read(&self) -> u64 {
        self.index
    }
}
