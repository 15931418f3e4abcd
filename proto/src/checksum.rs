//! The order-book checksum of docs/protocol.md section 8 (Kraken's method):
//! CRC32 (IEEE) of the top 10 asks (ascending) then the top 10 bids
//! (descending), each level's price then quantity as fixed-point text with
//! the book's decimals, decimal point and leading zeros dropped.

use crate::pb::Level;

/// Levels per side that the checksum covers.
pub const CHECKSUM_DEPTH: usize = 10;

/// Longest checksum text of one level: two u64s of up to 20 digits.
pub const LEVEL_TEXT_MAX: usize = 40;

/// Writes `value` as fixed-point text with `decimals` (`scale` is
/// `10^decimals`), without the decimal point and without leading zeros, at
/// the start of `out`; returns its length. That text is exactly the decimal
/// digits of the integer `round(value * 10^decimals)` (nothing for zero), so
/// it is produced without formatting or allocating.
///
/// # Panics
/// When `out` is shorter than the digits (at most 20 bytes).
pub fn write_number(out: &mut [u8], value: f64, scale: f64) -> usize {
    let n = (value * scale).round().abs() as u64;
    if n == 0 {
        return 0;
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    out[..digits.len()].copy_from_slice(digits);
    digits.len()
}

/// Writes one level's checksum text (price digits then quantity digits) at
/// the start of `out` (at least [`LEVEL_TEXT_MAX`] bytes); returns its length.
pub fn write_level(out: &mut [u8], level: &Level, price_scale: f64, size_scale: f64) -> usize {
    let len = write_number(out, level.price, price_scale);
    len + write_number(&mut out[len..], level.quantity, size_scale)
}

/// The checksum of the given levels: the top [`CHECKSUM_DEPTH`] asks
/// ascending, then the top bids descending (the caller takes the top).
pub fn checksum<'a>(
    asks: impl Iterator<Item = &'a Level>,
    bids: impl Iterator<Item = &'a Level>,
    price_decimals: u32,
    size_decimals: u32,
) -> u32 {
    let price_scale = 10f64.powi(price_decimals as i32);
    let size_scale = 10f64.powi(size_decimals as i32);
    // One stack buffer hashed once for the usual 20 levels (crc32fast's
    // fast path needs long inputs); more levels are hashed buffer by buffer.
    let mut text = [0u8; 2 * CHECKSUM_DEPTH * LEVEL_TEXT_MAX];
    let mut len = 0;
    let mut hasher = crc32fast::Hasher::new();
    for level in asks.chain(bids) {
        if len + LEVEL_TEXT_MAX > text.len() {
            hasher.update(&text[..len]);
            len = 0;
        }
        len += write_level(&mut text[len..], level, price_scale, size_scale);
    }
    hasher.update(&text[..len]);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(price: f64, quantity: f64) -> Level {
        Level { price, quantity }
    }

    #[test]
    fn the_protocol_documents_example() {
        let asks = [level(100.5, 1.25)];
        let bids = [level(100.25, 0.5)];
        assert_eq!(
            checksum(asks.iter(), bids.iter(), 2, 3),
            crc32fast::hash(b"10050125010025500")
        );
    }
}
