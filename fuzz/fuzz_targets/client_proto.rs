//! The protobuf ClientMessage decoder: any bytes a client sends in proto
//! mode must give a message or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tickwire::protocol::{Format, codec};

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_client(Format::Proto, false, data);
});
