//! The YAML configuration through the path of `--config`: `${VAR}` expansion from the
//! environment, figment over the environment, Go durations, expressions compiled and checked.
//! Input: the YAML, then NUL-separated `KEY=VALUE` environment variables.
#![no_main]

use std::sync::OnceLock;

use fas_fuzz::text_and_pairs;
use fly_autoscaler::config::{Purpose, Sources, load};
use libfuzzer_sys::fuzz_target;

fn path() -> &'static std::path::PathBuf {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fas-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("fly-autoscaler.yml")
    })
}

fuzz_target!(|data: &[u8]| {
    let (yaml, env) = text_and_pairs(data);
    std::fs::write(path(), yaml.as_bytes()).expect("write the config file");
    let sources = Sources {
        env,
        file: Some(path().clone()),
    };
    let first = load(&sources, Purpose::Serve);
    // Loading is a pure function of its sources: the same input gives the same verdict.
    let again = load(&sources, Purpose::Serve);
    match (&first, &again) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            assert!(!a.to_string().is_empty(), "an error says what is wrong");
        }
        _ => panic!("the same sources loaded once and failed once"),
    }
});
