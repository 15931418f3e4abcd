//! The shared frame log: every message is framed ONCE (WebSocket header and
//! payload) into one ring of whole frames that all clients read from. A
//! client is just a byte cursor into it, so a client costs no queue and no
//! copy, and the probe's memory is the ring whatever the number of clients.
//!
//! Offsets are absolute (bytes appended since the start, `u64`), so a
//! cursor never wraps; the ring holds the last `capacity` bytes. Its size is
//! a whole number of frames, so no frame straddles the ring's end and the
//! pending bytes of a client are at most two slices (one `writev`).

/// A ring of equal-length frames, addressed by absolute byte offsets.
pub struct FrameLog {
    buf: Vec<u8>,
    frame_len: usize,
    /// Bytes appended so far (the offset one past the newest frame).
    head: u64,
}

impl FrameLog {
    /// A log of `frames` frames of `frame_len` bytes each.
    pub fn new(frame_len: usize, frames: usize) -> Self {
        assert!(
            frame_len > 0 && frames >= 2,
            "a log needs room for two frames"
        );
        Self {
            buf: vec![0; frame_len * frames],
            frame_len,
            head: 0,
        }
    }

    /// Bytes the ring holds.
    pub fn capacity(&self) -> u64 {
        self.buf.len() as u64
    }

    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// The offset one past the newest frame (always a frame boundary).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Appends one frame, written in place by `fill` (it gets exactly
    /// `frame_len` bytes, overwriting the oldest frame once the ring is full).
    pub fn push(&mut self, fill: impl FnOnce(&mut [u8])) {
        let at = (self.head % self.capacity()) as usize;
        fill(&mut self.buf[at..at + self.frame_len]);
        self.head += self.frame_len as u64;
    }

    /// Whether the bytes from `from` to the head are all still in the ring.
    pub fn holds(&self, from: u64) -> bool {
        from <= self.head && self.head - from <= self.capacity()
    }

    /// The bytes from `from` to the head as at most two slices (the second
    /// is empty unless the range wraps the ring's end). `None` when
    /// [`FrameLog::holds`] is false (those bytes were overwritten).
    pub fn since(&self, from: u64) -> Option<(&[u8], &[u8])> {
        if !self.holds(from) {
            return None;
        }
        let len = (self.head - from) as usize;
        let at = (from % self.capacity()) as usize;
        let first = len.min(self.buf.len() - at);
        Some((&self.buf[at..at + first], &self.buf[..len - first]))
    }
}

#[cfg(test)]
mod tests {
    use super::FrameLog;

    fn log_with(frames: u8) -> FrameLog {
        let mut log = FrameLog::new(4, 3);
        for i in 1..=frames {
            log.push(|f| f.fill(i));
        }
        log
    }

    fn joined(log: &FrameLog, from: u64) -> Option<Vec<u8>> {
        log.since(from).map(|(a, b)| [a, b].concat())
    }

    #[test]
    fn pending_bytes_are_the_frames_since_the_cursor_in_order() {
        let log = log_with(2);
        assert_eq!(log.head(), 8);
        assert_eq!(joined(&log, 0).unwrap(), [1, 1, 1, 1, 2, 2, 2, 2]);
        // a cursor inside a frame (after a short write) continues mid-frame
        assert_eq!(joined(&log, 6).unwrap(), [2, 2]);
        assert_eq!(joined(&log, 8).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_range_across_the_ring_end_comes_as_two_slices() {
        // frames 3, 4, 5 remain; 3 is at the ring's end, 4 and 5 wrapped
        let log = log_with(5);
        let (a, b) = log.since(10).unwrap();
        assert_eq!(a, [3, 3]);
        assert_eq!(b, [4, 4, 4, 4, 5, 5, 5, 5]);
    }

    #[test]
    fn overwritten_bytes_are_refused_not_served() {
        let log = log_with(5); // 20 bytes appended, 12 kept
        assert!(log.since(7).is_none(), "frame 2 was overwritten");
        assert!(!log.holds(7));
        assert!(log.holds(8));
        assert!(log.since(21).is_none(), "past the head");
    }
}
