//! `cargo xtask <command>`: chores that are not part of the build.
//!
//! - `font`: regenerate `assets/fonts/NotoSansJP-ui.otf`, the subset of
//!   Noto Sans CJK JP holding every character in the UI's source (plus
//!   ASCII, kana and Japanese punctuation). Needs Debian's `fonts-noto-cjk`
//!   and `python3-fonttools`; run it after changing UI texts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

const NOTO_CJK: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
const FONT_OUT: &str = "assets/fonts/NotoSansJP-ui.otf";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_owned()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("font") => font(),
        _ => bail!("usage: cargo xtask font"),
    }
}

/// Characters the UI needs: everything in the translations, plus ranges
/// users see in any Japanese text.
fn ui_characters() -> anyhow::Result<BTreeSet<char>> {
    let mut chars = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("ui/src"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path)?;
            chars.extend(source.chars().filter(|c| !c.is_ascii_control()));
        }
    }
    let ranges = [
        (0x20, 0x7e),     // ASCII
        (0x3000, 0x303f), // CJK punctuation
        (0x3040, 0x309f), // hiragana
        (0x30a0, 0x30ff), // katakana
        (0xff01, 0xff5e), // full-width ASCII
        (0xff61, 0xff9f), // half-width katakana
    ];
    for (from, to) in ranges {
        chars.extend((from..=to).filter_map(char::from_u32));
    }
    chars.extend("々〆〇ー・「」『』【】〜…※→←↑↓○×△□".chars());
    Ok(chars)
}

fn font() -> anyhow::Result<()> {
    if !Path::new(NOTO_CJK).exists() {
        bail!("{NOTO_CJK} is missing: apt-get install fonts-noto-cjk python3-fonttools");
    }
    let chars = ui_characters()?;
    let unicodes: Vec<String> = chars
        .iter()
        .map(|c| format!("U+{:04X}", u32::from(*c)))
        .collect();
    let out = root().join(FONT_OUT);
    let status = Command::new("/usr/bin/python3")
        .args(["-m", "fontTools.subset", NOTO_CJK, "--font-number=0"])
        .arg(format!("--unicodes={}", unicodes.join(",")))
        .arg(format!("--output-file={}", out.display()))
        .args(["--layout-features=*", "--name-IDs=*"])
        .status()
        .context("cannot run python3 -m fontTools.subset")?;
    if !status.success() {
        bail!("fontTools.subset failed");
    }
    let size = std::fs::metadata(&out)?.len();
    println!(
        "{} characters → {} ({} KiB)",
        chars.len(),
        out.display(),
        size / 1024
    );
    Ok(())
}
