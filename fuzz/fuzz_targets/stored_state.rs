//! An app's state document as PostgreSQL gives it back (`fas_app_state.state`, read by a replica
//! taking the app over; written by any replica version, or by hand): no panic, and a document
//! that decodes re-encodes to one that decodes to the same value.
#![no_main]

use fly_autoscaler::store::StoredApp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<StoredApp>(data) else {
        return;
    };
    let json = serde_json::to_vec(&doc).expect("a decoded document encodes");
    let again: StoredApp = serde_json::from_slice(&json).expect("its encoding decodes");
    assert_eq!(doc, again);
});
