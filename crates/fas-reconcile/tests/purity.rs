//! The planner's purity is a dependency fact: `fas-reconcile` must not depend on an IO runtime,
//! an HTTP stack or the Fly client (ARCHITECTURE.md, "Invariants").

/// The names declared in one `[section]` of a Cargo manifest.
fn dependencies(manifest: &str, section: &str) -> Vec<String> {
    let header = format!("[{section}]");
    let mut in_section = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == header;
        } else if in_section && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.push(name.trim_matches('"').to_owned());
        }
    }
    names
}

#[test]
fn normal_dependencies_have_no_io() {
    let manifest = include_str!("../Cargo.toml");
    let deps = dependencies(manifest, "dependencies");
    assert!(!deps.is_empty(), "the parser found no dependencies");
    for banned in [
        "tokio",
        "hyper",
        "hyper-util",
        "reqwest",
        "fas-flyapi",
        "async-std",
        "smol",
    ] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "fas-reconcile must not depend on {banned}: {deps:?}"
        );
    }
    assert!(
        !manifest.contains("[target."),
        "no platform-specific dependencies either"
    );
}

#[test]
fn the_parser_sees_a_banned_dependency() {
    let manifest = "[dependencies]\nserde.workspace = true\ntokio = { version = \"1\" }\n\n[dev-dependencies]\nproptest = \"1\"\n";
    assert_eq!(dependencies(manifest, "dependencies"), ["serde", "tokio"]);
    assert_eq!(dependencies(manifest, "dev-dependencies"), ["proptest"]);
}
