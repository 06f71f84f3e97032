//! `cargo xtask web`: the browser client, ready for `thin-relay serve --web`.
//!
//! RECIPES.md's wasm recipe: Debian's rustc builds std for wasm32 (opt-level
//! z, fat LTO, one codegen unit), the `wasm-bindgen` CLI of exactly the
//! lockfile's version makes the JavaScript glue and drops the function
//! names, and gzip copies let the relay send compressed files. The UI's
//! font ships as a file beside the module, fetched while it downloads.
//!
//! No wasm-opt: measured on this module, binaryen's `-Oz` makes the
//! gzipped download larger (2.10 MB against 2.02 MB), `-O1` saves 1 %, and
//! Debian's binaryen 108 writes a module Chromium rejects
//! ("WebAssembly.Table.set(): Argument 1 is invalid for table").

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::{debian_cargo, root, run};

const TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile of the wasm build (see the workspace Cargo.toml).
const PROFILE: &str = "web";
/// The UI's font, served beside the module (`web/static/loader.js`).
const UI_FONT: &str = "NotoSansJP-ui.otf";

pub struct WebOptions {
    pub out: PathBuf,
}

pub fn options(args: &[String]) -> anyhow::Result<WebOptions> {
    let mut options = WebOptions {
        out: root().join("target/web"),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => options.out = PathBuf::from(args.next().context("--out needs a folder")?),
            other => bail!("unknown option {other} (web takes --out DIR)"),
        }
    }
    Ok(options)
}

pub fn build(options: &WebOptions) -> anyhow::Result<()> {
    let wasm = cargo_build()?;
    let out = &options.out;
    if up_to_date(&wasm, out) {
        println!("{}: up to date", out.display());
        return Ok(());
    }
    let bindgen = wasm_bindgen_cli()?;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    std::fs::create_dir_all(out)?;
    run(Command::new(&bindgen)
        .args([
            "--target",
            "web",
            "--no-typescript",
            // Function names are for debuggers; they are 40 % of the module.
            "--remove-name-section",
            "--out-name",
            "web",
            "--out-dir",
        ])
        .arg(out)
        .arg(&wasm))?;
    let module = out.join("web_bg.wasm");
    let module_bytes = std::fs::metadata(&module)?.len();
    copy_static(out, module_bytes)?;
    std::fs::copy(root().join("assets/fonts").join(UI_FONT), out.join(UI_FONT))?;
    let module_gz = gzip(&module)?;
    let mut page_gz = module_gz;
    for name in ["web.js", "loader.js", "index.html", UI_FONT] {
        page_gz += gzip(&out.join(name))?;
    }
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!(
        "{}: web_bg.wasm {:.2} MB, {:.2} MB gzipped; the whole page (module, glue, \
         loader, HTML, font) {:.2} MB gzipped",
        out.display(),
        mb(module_bytes),
        mb(module_gz),
        mb(page_gz),
    );
    Ok(())
}

/// Whether `out` was made from this module and the current page and font
/// files (tests call this command every run).
fn up_to_date(wasm: &Path, out: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(made) = modified(&out.join("web_bg.wasm.gz")) else {
        return false;
    };
    let mut inputs = vec![wasm.to_owned()];
    inputs.push(root().join("assets/fonts").join(UI_FONT));
    if let Ok(entries) = std::fs::read_dir(root().join("web/static")) {
        inputs.extend(entries.flatten().map(|e| e.path()));
    }
    inputs
        .iter()
        .all(|input| modified(input).is_some_and(|m| m <= made))
}

/// Runs the web crate's `wasm-bindgen-test`s in headless Chromium (needs
/// Debian's `chromium chromium-driver`). Reuses what `build` compiled.
pub fn test() -> anyhow::Result<()> {
    let bindgen = wasm_bindgen_cli()?;
    let runner = bindgen.with_file_name("wasm-bindgen-test-runner");
    let mut cmd = wasm_tests();
    cmd.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", runner)
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "120");
    run(&mut cmd)
}

/// Builds the `web` crate for wasm32 and returns the module. It is built
/// the way its tests build it (`cargo test --no-run`), so the tests find
/// everything compiled: a plain `cargo build` resolves features without the
/// test-only dependencies and would compile all 340 crates a second time.
fn cargo_build() -> anyhow::Result<PathBuf> {
    for tool in ["/usr/bin/rustc", "/usr/bin/cargo", "/usr/bin/wasm-ld"] {
        if !Path::new(tool).exists() {
            bail!("{tool} is missing: apt-get install rustc-web cargo-web rust-web-src lld");
        }
    }
    let out = wasm_tests()
        .args(["--no-run", "--message-format=json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cargo runs")?;
    if !out.status.success() {
        bail!("the wasm build failed");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == "web")
        .flat_map(|message| {
            let files = message["filenames"].as_array().cloned().unwrap_or_default();
            files
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|file| file.extension().is_some_and(|e| e == "wasm"))
        .context("cargo made no web.wasm")
}

/// `cargo test` of the web crate's browser tests (built with the same
/// panic strategy as std here: abort).
fn wasm_tests() -> Command {
    let mut cmd = wasm_cargo("test");
    cmd.args(["-Zpanic-abort-tests", "-p", "web", "--test", "in_browser"]);
    cmd
}

/// `cargo <command>` for wasm32 with Debian's rustc building std, in its
/// own target dir (so the native build's cache stays valid).
fn wasm_cargo(command: &str) -> Command {
    let mut cmd = debian_cargo("target/wasm");
    cmd.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld")
        // SIMD (every current browser has it) lets the text renderer's
        // vector code (fearless_simd in vello_cpu) compile to one small
        // variant instead of a large scalar fallback. For a smaller
        // download, panics keep their message but not their source location,
        // and derived `Debug` prints only type and variant names.
        .env(
            "RUSTFLAGS",
            "--cfg getrandom_backend=\"wasm_js\" -Ctarget-feature=+simd128 -Zlocation-detail=none \
             -Zfmt-debug=shallow",
        )
        .args([
            command,
            "--locked",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .arg("-Zbuild-std=std,panic_abort");
    cmd
}

/// The wasm-bindgen version in Cargo.lock: the CLI must match it exactly.
fn locked_wasm_bindgen() -> anyhow::Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(version.to_owned());
            }
        }
    }
    bail!("Cargo.lock holds no wasm-bindgen")
}

/// `wasm-bindgen` of the locked version, installed under `target/tools`
/// the first time (about 3.5 minutes).
pub fn wasm_bindgen_cli() -> anyhow::Result<PathBuf> {
    // Its own lockfile does not build here (RECIPES.md).
    crate::tool(
        "wasm-bindgen-cli",
        "wasm-bindgen",
        &locked_wasm_bindgen()?,
        false,
    )
}

/// The page and its loader, with the module's size for the progress bar.
fn copy_static(out: &Path, module_bytes: u64) -> anyhow::Result<()> {
    let dir = root().join("web/static");
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().expect("a file name");
        let text = std::fs::read_to_string(&path)?;
        let text = text.replace("__WASM_BYTES__", &module_bytes.to_string());
        std::fs::write(out.join(name), text)?;
    }
    Ok(())
}

/// Writes `file.gz` beside `file`; returns its size.
fn gzip(file: &Path) -> anyhow::Result<u64> {
    use std::io::Write as _;
    let data = std::fs::read(file)?;
    let gz = PathBuf::from(format!("{}.gz", file.display()));
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz)?, flate2::Compression::best());
    encoder.write_all(&data)?;
    encoder.finish()?;
    Ok(std::fs::metadata(&gz)?.len())
}
