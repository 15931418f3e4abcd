//! Length-delimited protobuf messages: a varint length, then the message.
//! The framing of `.twr` recordings and of protobuf publish batches.

use prost::Message;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FramingError {
    /// The input ends inside a length prefix or a message (a cut file).
    Truncated,
    /// The length prefix is not a valid varint or exceeds `max_len`.
    BadLength,
    /// The bytes are not a valid message.
    Decode(prost::DecodeError),
    /// Reading the input failed.
    Io(std::io::Error),
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "input ends inside a length-delimited message"),
            Self::BadLength => write!(f, "bad length prefix"),
            Self::Decode(e) => write!(f, "bad message: {e}"),
            Self::Io(e) => write!(f, "read: {e}"),
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

/// Reads the next frame of a stream into `buf` (resized to the message's
/// length): `Ok(false)` at a clean end (EOF before a length prefix),
/// [`FramingError::Truncated`] when the stream ends inside a frame (a file
/// cut by a crash), [`FramingError::BadLength`] over `max_len`.
pub fn read_frame(
    input: &mut impl std::io::Read,
    buf: &mut Vec<u8>,
    max_len: usize,
) -> Result<bool, FramingError> {
    let eof = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FramingError::Truncated
        } else {
            FramingError::Io(e)
        }
    };
    let mut len: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        match input.read(&mut b) {
            Ok(0) if i == 0 => return Ok(false),
            Ok(0) => return Err(FramingError::Truncated),
            Ok(_) => {}
            Err(e) => return Err(eof(e)),
        }
        len |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            let len = usize::try_from(len).map_err(|_| FramingError::BadLength)?;
            if len > max_len {
                return Err(FramingError::BadLength);
            }
            buf.resize(len, 0);
            input.read_exact(buf).map_err(eof)?;
            return Ok(true);
        }
    }
    Err(FramingError::BadLength)
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
    use prost::Message;

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
        assert!(matches!(
            read_all::<Event>(cut, 1 << 20),
            Err(FramingError::Truncated)
        ));
        assert!(matches!(
            read_all::<Event>(&buf, 2),
            Err(FramingError::BadLength)
        ));
        // the same through a stream
        let mut stream = &buf[..];
        let mut frame = Vec::new();
        for e in &events {
            assert!(read_frame(&mut stream, &mut frame, 1 << 20).unwrap());
            assert_eq!(&Event::decode(&frame[..]).unwrap(), e);
        }
        assert!(
            !read_frame(&mut stream, &mut frame, 1 << 20).unwrap(),
            "clean end"
        );
        let mut cut_stream = cut;
        let mut last = Ok(true);
        while let Ok(true) = last {
            last = read_frame(&mut cut_stream, &mut frame, 1 << 20);
        }
        assert!(matches!(last, Err(FramingError::Truncated)));
    }
}
