//! The JSON ClientMessage decoder and the request-id salvage used on bad
//! JSON: never a panic, whatever the text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tickwire::protocol::{Format, codec};

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_client(Format::Json, true, data);
    let _ = codec::salvage_json_request_id(data);
});
