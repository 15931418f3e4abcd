//! The inbound WebSocket frame parser: never a panic, and a frame it
//! accepts always lies inside the buffer and within the size limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tickwire::protocol::inbound;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(head)) = inbound::parse(data, 65536) {
        assert!(head.total_len() <= data.len());
        assert!(head.payload_len <= 65536);
        let mut payload = data[head.header_len..head.total_len()].to_vec();
        inbound::unmask(&mut payload, head.mask);
    }
});
