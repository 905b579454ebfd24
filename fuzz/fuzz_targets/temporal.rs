//! Temporal `CountWorkflowExecutions` response bodies (gRPC frame + protobuf), decoded as the
//! collector does; and a well-formed frame around any count decodes to that count, whatever
//! unknown fields follow it.
#![no_main]

use fas_collect::TemporalCollector;
use libfuzzer_sys::fuzz_target;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fuzz_target!(|data: &[u8]| {
    let _ = TemporalCollector::decode_count_body(data);
    if data.len() >= 8 {
        let count = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let mut msg = Vec::new();
        msg.push(0x08); // field 1, varint
        varint(&mut msg, count as u64);
        // An unknown length-delimited field (groups = 2) with the rest as its payload.
        let rest = &data[8..];
        msg.push(0x12);
        varint(&mut msg, rest.len() as u64);
        msg.extend_from_slice(rest);
        let mut body = vec![0];
        body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        body.extend_from_slice(&msg);
        assert_eq!(TemporalCollector::decode_count_body(&body), Ok(count));
    }
});
