//! The crates' invariants from docs/architecture.md that a manifest can
//! break: what the client and the apps may depend on. Read from `cargo
//! metadata`, so a dependency added for one target only is caught too.

use std::process::Command;

/// Workspace crates each crate must never depend on (normal or build
/// dependencies; tests may use anything).
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "proto",
        &[
            "transport",
            "files",
            "relay",
            "host",
            "client-core",
            "ui",
            "demo",
            "test-desktop",
        ],
    ),
    (
        "transport",
        &["relay", "host", "client-core", "ui", "demo", "test-desktop"],
    ),
    (
        "client-core",
        &["relay", "host", "test-desktop", "demo", "ui", "cli"],
    ),
    ("ui", &["relay", "host", "test-desktop", "demo", "cli"]),
    (
        "web",
        &["relay", "host", "test-desktop", "demo", "cli", "files"],
    ),
    ("desktop", &["relay", "host", "test-desktop", "cli"]),
    // The office PC's settings app: the host's own crate, never the relay
    // or the in-process demo.
    (
        "host-settings",
        &["relay", "test-desktop", "demo", "cli", "client-core"],
    ),
];

#[test]
fn client_side_crates_depend_on_nothing_server_side() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let mut broken = Vec::new();
    for (name, forbidden) in FORBIDDEN {
        let package = packages
            .iter()
            .find(|p| p["name"] == *name)
            .unwrap_or_else(|| panic!("no crate {name} in the workspace"));
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            if dep["kind"] != "dev" && forbidden.contains(&dep_name) {
                broken.push(format!("{name} depends on {dep_name}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "against docs/architecture.md: {broken:?}"
    );
}
