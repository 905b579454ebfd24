//! Hand-written protobuf and gRPC framing for the two messages of
//! `WorkflowService/CountWorkflowExecutions`.
//!
//! ```text
//! message CountWorkflowExecutionsRequest  { string namespace = 1; string query = 2; }
//! message CountWorkflowExecutionsResponse { int64 count = 1; repeated AggregationGroup groups = 2; }
//! ```

/// Why a response message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProtoError(pub(crate) String);

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_string(out: &mut Vec<u8>, field: u32, value: &str) {
    // proto3: default (empty) values are not written.
    if value.is_empty() {
        return;
    }
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// Encodes a `CountWorkflowExecutionsRequest`.
pub(crate) fn encode_count_request(namespace: &str, query: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(namespace.len() + query.len() + 8);
    put_string(&mut out, 1, namespace);
    put_string(&mut out, 2, query);
    out
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, ProtoError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf
            .get(*pos)
            .ok_or_else(|| ProtoError("truncated varint".into()))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ProtoError("varint longer than 10 bytes".into()))
}

fn skip(buf: &[u8], pos: &mut usize, len: u64) -> Result<(), ProtoError> {
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| pos.checked_add(len))
        .filter(|end| *end <= buf.len())
        .ok_or_else(|| ProtoError("field runs past the end of the message".into()))?;
    *pos = end;
    Ok(())
}

/// Decodes the `count` of a `CountWorkflowExecutionsResponse`, ignoring other fields
/// (an absent count is proto3's default, 0).
pub(crate) fn decode_count_response(buf: &[u8]) -> Result<i64, ProtoError> {
    let mut count = 0i64;
    let mut pos = 0;
    while pos < buf.len() {
        let key = get_varint(buf, &mut pos)?;
        let (field, wire_type) = (key >> 3, key & 7);
        match (field, wire_type) {
            // int64 is a two's complement varint
            (1, 0) => count = get_varint(buf, &mut pos)? as i64,
            (1, other) => {
                return Err(ProtoError(format!(
                    "field 1 (count) has wire type {other}, expected 0"
                )));
            }
            (_, 0) => {
                get_varint(buf, &mut pos)?;
            }
            (_, 1) => skip(buf, &mut pos, 8)?,
            (_, 2) => {
                let len = get_varint(buf, &mut pos)?;
                skip(buf, &mut pos, len)?;
            }
            (_, 5) => skip(buf, &mut pos, 4)?,
            (_, other) => return Err(ProtoError(format!("unsupported wire type {other}"))),
        }
    }
    Ok(count)
}

/// Wraps one message in a gRPC length-prefixed frame (uncompressed).
pub(crate) fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    // A request message is a few hundred bytes; u32 overflow would need a 4 GiB query.
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    out
}

/// The message of the first gRPC frame of a response body.
pub(crate) fn grpc_unframe(body: &[u8]) -> Result<&[u8], ProtoError> {
    let [flag, a, b, c, d, rest @ ..] = body else {
        return Err(ProtoError(format!(
            "grpc frame header truncated ({} bytes)",
            body.len()
        )));
    };
    if *flag != 0 {
        return Err(ProtoError(
            "compressed grpc messages are not supported".into(),
        ));
    }
    let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    rest.get(..len).ok_or_else(|| {
        ProtoError(format!(
            "grpc frame says {len} bytes, body has {}",
            rest.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding_matches_protoc_bytes() {
        // Bytes as protoc/prost encode { namespace: "default", query: "WorkflowType=\"T\"" }.
        let mut want = vec![0x0a, 7];
        want.extend_from_slice(b"default");
        want.extend_from_slice(&[0x12, 16]);
        want.extend_from_slice(b"WorkflowType=\"T\"");
        assert_eq!(encode_count_request("default", "WorkflowType=\"T\""), want);
        assert_eq!(encode_count_request("", ""), Vec::<u8>::new());
        // a 200-byte query needs a two-byte length varint (0xc8 0x01)
        let long = "q".repeat(200);
        let enc = encode_count_request("n", &long);
        assert_eq!(&enc[..5], &[0x0a, 1, b'n', 0x12, 0xc8]);
        assert_eq!(enc[5], 0x01);
        assert_eq!(enc.len(), 6 + 200);
    }

    #[test]
    fn response_decoding_reads_count_and_skips_other_fields() {
        assert_eq!(decode_count_response(&[]), Ok(0));
        assert_eq!(decode_count_response(&[0x08, 3]), Ok(3));
        assert_eq!(decode_count_response(&[0x08, 0xac, 0x02]), Ok(300));
        // count 4 plus a groups entry (field 2, length 3) and an unknown fixed64 and fixed32 field
        let msg = [
            0x12, 3, 1, 2, 3, 0x08, 4, 0x19, 0, 0, 0, 0, 0, 0, 0, 0, 0x25, 1, 2, 3, 4,
        ];
        assert_eq!(decode_count_response(&msg), Ok(4));
        // -1 as int64 is ten varint bytes
        let mut neg = vec![0x08];
        neg.extend_from_slice(&[0xff; 9]);
        neg.push(0x01);
        assert_eq!(decode_count_response(&neg), Ok(-1));
    }

    #[test]
    fn malformed_responses_are_errors_not_panics() {
        assert!(decode_count_response(&[0x08]).is_err());
        assert!(decode_count_response(&[0x08, 0x80]).is_err());
        assert!(decode_count_response(&[0x12, 10, 1]).is_err());
        assert!(decode_count_response(&[0x0a, 1, 1]).is_err()); // count with the wrong wire type
        assert!(decode_count_response(&[0x0b]).is_err()); // wire type 3 (groups) unsupported
        assert!(
            decode_count_response(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .is_err()
        );
    }

    #[test]
    fn grpc_framing_round_trips() {
        let framed = grpc_frame(b"abc");
        assert_eq!(framed, [0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(grpc_unframe(&framed), Ok(&b"abc"[..]));
        assert!(grpc_unframe(&[0, 0, 0]).is_err());
        assert!(grpc_unframe(&[0, 0, 0, 0, 9, 1]).is_err());
        assert!(grpc_unframe(&[1, 0, 0, 0, 0]).is_err());
    }
}
