//! Small helpers: ids, RFC 3339 formatting, image reference parsing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Value, json};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID-like id: 10 characters of millisecond timestamp and 16 random characters (26 in total).
pub(crate) fn ulid(rng: &mut impl Rng, unix_ms: u64) -> String {
    let mut out = String::with_capacity(26);
    for i in (0..10).rev() {
        let idx = ((unix_ms >> (i * 5)) & 31) as usize;
        out.push(char::from(CROCKFORD[idx]));
    }
    for _ in 0..16 {
        let idx = rng.random_range(0..32usize);
        out.push(char::from(CROCKFORD[idx]));
    }
    out
}

/// Milliseconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 with second precision, UTC, e.g. `2023-10-31T02:30:10Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A deterministic fake `sha256:` digest for an image without one (FNV-1a, widened to 64 hex digits).
fn fake_digest(image: &str) -> String {
    let mut out = String::from("sha256:");
    for round in 0u64..4 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ round;
        for b in image.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// Derive the Machine `image_ref` object from `config.image` (`registry/repository:tag@digest`).
///
/// A first path segment containing `.` or `:` (or `localhost`) is the registry; otherwise the registry is
/// `registry-1.docker.io` and a single-segment repository gets the `library/` prefix. An image without a digest
/// gets a deterministic fake one, as Fly resolves tags to digests.
pub(crate) fn image_ref(image: &str) -> Value {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, d.to_owned()),
        None => (image, fake_digest(image)),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    let (registry, repository) = match name.split_once('/') {
        Some((first, repo))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_owned(), repo.to_owned())
        }
        Some(_) => ("registry-1.docker.io".to_owned(), name.to_owned()),
        None => ("registry-1.docker.io".to_owned(), format!("library/{name}")),
    };
    let mut obj = json!({
        "registry": registry,
        "repository": repository,
        "digest": digest,
        "labels": {},
    });
    if let (Some(tag), Some(map)) = (tag, obj.as_object_mut()) {
        map.insert("tag".to_owned(), Value::String(tag.to_owned()));
    }
    obj
}

const ADJECTIVES: &[&str] = &[
    "aged",
    "ancient",
    "autumn",
    "billowing",
    "bitter",
    "black",
    "blue",
    "bold",
    "broad",
    "broken",
    "calm",
    "cold",
    "cool",
    "crimson",
    "damp",
    "dark",
    "dawn",
    "falling",
    "floral",
    "fragrant",
    "frosty",
    "green",
    "hidden",
    "holy",
    "icy",
    "late",
    "lingering",
    "little",
    "lively",
    "long",
    "misty",
    "morning",
    "muddy",
];
const NOUNS: &[&str] = &[
    "art",
    "band",
    "bar",
    "base",
    "bird",
    "block",
    "boat",
    "bonus",
    "bread",
    "breeze",
    "brook",
    "bush",
    "butterfly",
    "cake",
    "cell",
    "cherry",
    "cloud",
    "credit",
    "darkness",
    "dawn",
    "dew",
    "disk",
    "dream",
    "dust",
    "feather",
    "field",
    "fire",
    "firefly",
    "flower",
    "fog",
    "forest",
    "frog",
    "frost",
    "glade",
    "wind",
];

/// A machine name like `aged-wind-2649`.
pub(crate) fn machine_name(rng: &mut impl Rng) -> String {
    let a = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let n = NOUNS[rng.random_range(0..NOUNS.len())];
    format!("{a}-{n}-{}", rng.random_range(1000..10_000))
}

/// A lowercase hex string of `n` digits.
pub(crate) fn hex(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16usize)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_698_719_410);
        assert_eq!(rfc3339(t), "2023-10-31T02:30:10Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn image_ref_splits_registry_repository_tag_digest() {
        let r = image_ref("registry.fly.io/my-app:deployment-01H@sha256:abc");
        assert_eq!(r["registry"], "registry.fly.io");
        assert_eq!(r["repository"], "my-app");
        assert_eq!(r["tag"], "deployment-01H");
        assert_eq!(r["digest"], "sha256:abc");
        let r = image_ref("localhost:5000/team/app@sha256:def");
        assert_eq!(r["registry"], "localhost:5000");
        assert_eq!(r["repository"], "team/app");
        assert!(r.get("tag").is_none());
        let r = image_ref("nginx");
        assert_eq!(r["registry"], "registry-1.docker.io");
        assert_eq!(r["repository"], "library/nginx");
        assert!(r["digest"].as_str().is_some_and(|d| d.len() == 7 + 64));
    }

    #[test]
    fn ulid_has_26_crockford_chars() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let id = ulid(&mut rng, 1_700_000_000_000);
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|b| CROCKFORD.contains(&b)));
    }

    use rand::SeedableRng;
}
