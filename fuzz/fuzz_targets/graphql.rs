//! GraphQL answers: the current release, the organization, a page of the org's apps.
//! Input: the first byte picks the query, the rest is the body.
#![no_main]

use fas_flyapi::fuzzing::{apps_page, current_release, organization};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((kind, body)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Ok(Some(release)) = current_release(body) {
                let json = serde_json::to_vec(&release).expect("encodes");
                let again: fas_flyapi::Release = serde_json::from_slice(&json).expect("decodes");
                assert_eq!(release, again);
            }
        }
        1 => {
            let _ = organization(body);
        }
        _ => {
            if let Ok((apps, _, _)) = apps_page(body) {
                for app in apps {
                    let json = serde_json::to_vec(&app).expect("encodes");
                    let again: fas_flyapi::OrgApp = serde_json::from_slice(&json).expect("decodes");
                    assert_eq!(app, again);
                }
            }
        }
    }
});
