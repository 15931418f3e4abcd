//! Channel names and patterns: parsing never panics, and what parses keeps
//! the invariants the hub relies on.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tickwire::protocol::{Pattern, validate_channel};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mid = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(text.chars().count() / 2)
        .unwrap_or(text.len());
    let (left, right) = text.split_at(mid);
    let valid_name = validate_channel(text).is_ok();
    if let Ok(p) = Pattern::parse(text) {
        assert!(text.len() <= tickwire::protocol::channel::MAX_CHANNEL_LEN);
        // a valid name is an exact pattern that matches itself
        if valid_name {
            assert!(p.is_exact() && p.matches(text) && p.covers(&p));
        }
        let _ = p.matches(left);
        let _ = p.matches(right);
        if let Ok(q) = Pattern::parse(right) {
            let _ = p.covers(&q);
        }
    } else {
        assert!(!valid_name, "a valid channel name must parse as a pattern");
    }
});
