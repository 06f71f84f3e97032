//! A browser's request to the relay's one port: the head parses or is
//! answered 400, and no URL path maps to a file outside the web folder.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use relay::web::{file_for, parse_request};

fuzz_target!(|data: &[u8]| {
    let dir = Path::new("/srv/thin/web");
    if let Ok(request) = parse_request(data) {
        check(dir, &request.path);
    }
    if let Ok(path) = std::str::from_utf8(data) {
        check(dir, path);
    }
});

fn check(dir: &Path, path: &str) {
    if let Some(file) = file_for(dir, path) {
        let below = file
            .strip_prefix(dir)
            .expect("a file outside the web folder");
        assert!(
            below
                .components()
                .all(|c| matches!(c, Component::Normal(_))),
            "{path:?} maps to {file:?}"
        );
    }
}
