//! Machines API JSON: a machine, a list, a lease, start and wait answers, apps, releases, and the
//! error mapping. Input: the first byte picks the type, the rest is the JSON. Round-trippable
//! types: decode → encode → decode gives the same value.
#![no_main]

use fas_flyapi::{App, Lease, Machine, Release, StartResponse, WaitResponse};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(json: &[u8]) {
    let Ok(first) = serde_json::from_slice::<T>(json) else {
        return;
    };
    let encoded = serde_json::to_vec(&first).expect("a decoded value encodes");
    let second: T = serde_json::from_slice(&encoded).unwrap_or_else(|e| {
        panic!(
            "re-decoding failed ({e}): {}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(first, second, "{}", String::from_utf8_lossy(&encoded));
}

fuzz_target!(|data: &[u8]| {
    let Some((kind, json)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        0 => round_trip::<Machine>(json),
        1 => round_trip::<Vec<Machine>>(json),
        2 => round_trip::<Lease>(json),
        3 => round_trip::<StartResponse>(json),
        4 => round_trip::<WaitResponse>(json),
        5 => round_trip::<App>(json),
        6 => round_trip::<Release>(json),
        _ => {
            let status = 400 + u16::from(kind / 8) % 200;
            let e = fas_flyapi::fuzzing::error_from_response(status, json);
            assert!(!e.to_string().is_empty());
            if status != 404 && status != 409 && status != 412 && status != 429 {
                assert_eq!(e.status(), Some(status), "{e}");
            }
        }
    }
});
