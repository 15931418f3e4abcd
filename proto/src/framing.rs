//! Length-delimited protobuf messages: a varint length, then the message.
//! The framing of `.twr` recordings and of protobuf publish batches.

use prost::Message;

/// Why a frame could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum FramingError {
    /// The input ends inside a length prefix or a message (a cut file).
    Truncated,
    /// The length prefix is not a valid varint or exceeds `max_len`.
    BadLength,
    /// The bytes are not a valid message.
    Decode(prost::DecodeError),
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "input ends inside a length-delimited message"),
            Self::BadLength => write!(f, "bad length prefix"),
            Self::Decode(e) => write!(f, "bad message: {e}"),
        }
    }
}

impl std::error::Error for FramingError {}

/// Appends `message` with its length prefix to `out`.
pub fn write<M: Message>(message: &M, out: &mut Vec<u8>) {
    message
        .encode_length_delimited(out)
        .expect("a Vec grows as needed");
}

/// Splits the next frame off the front of `input`: `Ok(None)` at a clean
/// end, the message bytes otherwise. A frame longer than `max_len` is
/// refused before anything is buffered for it.
pub fn next_frame<'a>(
    input: &mut &'a [u8],
    max_len: usize,
) -> Result<Option<&'a [u8]>, FramingError> {
    if input.is_empty() {
        return Ok(None);
    }
    let mut len: u64 = 0;
    let mut pos = 0;
    loop {
        let Some(&b) = input.get(pos) else {
            return Err(FramingError::Truncated);
        };
        if pos == 10 {
            return Err(FramingError::BadLength);
        }
        len |= u64::from(b & 0x7f) << (7 * pos);
        pos += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    let len = usize::try_from(len).map_err(|_| FramingError::BadLength)?;
    if len > max_len {
        return Err(FramingError::BadLength);
    }
    let end = pos.checked_add(len).ok_or(FramingError::BadLength)?;
    if input.len() < end {
        return Err(FramingError::Truncated);
    }
    let frame = &input[pos..end];
    *input = &input[end..];
    Ok(Some(frame))
}

/// Decodes every length-delimited message of `input`.
pub fn read_all<M: Message + Default>(
    mut input: &[u8],
    max_len: usize,
) -> Result<Vec<M>, FramingError> {
    let mut out = Vec::new();
    while let Some(frame) = next_frame(&mut input, max_len)? {
        out.push(M::decode(frame).map_err(FramingError::Decode)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::Event;

    #[test]
    fn frames_round_trip_and_a_cut_is_reported() {
        let events: Vec<Event> = (1..=3)
            .map(|seq| Event {
                channel: "a.b.c".into(),
                seq,
                ..Default::default()
            })
            .collect();
        let mut buf = Vec::new();
        for e in &events {
            write(e, &mut buf);
        }
        assert_eq!(read_all::<Event>(&buf, 1 << 20).unwrap(), events);
        let cut = &buf[..buf.len() - 1];
        assert_eq!(
            read_all::<Event>(cut, 1 << 20),
            Err(FramingError::Truncated)
        );
        assert_eq!(read_all::<Event>(&buf, 2), Err(FramingError::BadLength));
    }
}
