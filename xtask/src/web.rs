//! `cargo xtask web`: the browser client, ready for `thin-relay serve --web`.
//!
//! RECIPES.md's wasm recipe: Debian's rustc builds std for wasm32, the
//! `wasm-bindgen` CLI of exactly the lockfile's version makes the JavaScript
//! glue, binaryen's `wasm-opt` shrinks the module, and gzip copies let the
//! relay send compressed files.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::{debian_cargo, root, run};

const TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile of the wasm build (see the workspace Cargo.toml).
const PROFILE: &str = "web";
/// Records how `out` was made.
const STAMP: &str = ".built-with";

pub struct WebOptions {
    pub out: PathBuf,
    /// Skip wasm-opt (faster, bigger; for quick local tries).
    pub no_opt: bool,
}

pub fn options(args: &[String]) -> anyhow::Result<WebOptions> {
    let mut options = WebOptions {
        out: root().join("target/web"),
        no_opt: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => options.out = PathBuf::from(args.next().context("--out needs a folder")?),
            "--no-opt" => options.no_opt = true,
            other => bail!("unknown option {other} (web takes --out DIR and --no-opt)"),
        }
    }
    Ok(options)
}

pub fn build(options: &WebOptions) -> anyhow::Result<()> {
    let wasm = cargo_build()?;
    let out = &options.out;
    let optimise = !options.no_opt && wasm_opt_works();
    let stamp = format!("wasm-opt: {optimise}\n");
    if up_to_date(&wasm, out, &stamp) {
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
            "--out-name",
            "web",
            "--out-dir",
        ])
        .arg(out)
        .arg(&wasm))?;
    let module = out.join("web_bg.wasm");
    if optimise {
        run(Command::new("wasm-opt")
            .arg("-Oz")
            // The features rustc enables for wasm32 by default.
            .args([
                "--enable-bulk-memory",
                "--enable-mutable-globals",
                "--enable-nontrapping-float-to-int",
                "--enable-sign-ext",
                "--enable-reference-types",
                "--enable-multivalue",
                "--enable-simd",
            ])
            .arg(&module)
            .arg("-o")
            .arg(&module))
        .context("wasm-opt comes from Debian's binaryen package")?;
    }
    // How the module was made (hidden: the relay does not serve it).
    std::fs::write(out.join(STAMP), stamp)?;
    let module_bytes = std::fs::metadata(&module)?.len();
    copy_static(out, module_bytes)?;
    let mut gzipped = 0;
    for name in ["web_bg.wasm", "web.js", "loader.js", "index.html"] {
        let size = gzip(&out.join(name))?;
        if name == "web_bg.wasm" {
            gzipped = size;
        }
    }
    println!(
        "{}: web_bg.wasm {:.2} MB, {:.2} MB gzipped",
        out.display(),
        module_bytes as f64 / 1e6,
        gzipped as f64 / 1e6
    );
    Ok(())
}

/// Whether `out` was made from this module, the current page files and the
/// same `stamp` (wasm-opt takes a while; tests call this command every run).
fn up_to_date(wasm: &Path, out: &Path, stamp: &str) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(made) = modified(&out.join("web_bg.wasm.gz")) else {
        return false;
    };
    if std::fs::read_to_string(out.join(STAMP)).ok().as_deref() != Some(stamp) {
        return false;
    }
    let mut inputs = vec![wasm.to_owned()];
    if let Ok(entries) = std::fs::read_dir(root().join("web/static")) {
        inputs.extend(entries.flatten().map(|e| e.path()));
    }
    inputs
        .iter()
        .all(|input| modified(input).is_some_and(|m| m <= made))
}

/// Runs the web crate's `wasm-bindgen-test`s in headless Chromium (needs
/// Debian's `chromium chromium-driver`).
pub fn test() -> anyhow::Result<()> {
    let bindgen = wasm_bindgen_cli()?;
    let runner = bindgen.with_file_name("wasm-bindgen-test-runner");
    let mut cmd = wasm_cargo("test");
    cmd.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", runner)
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "120")
        // Tests build with the same panic strategy as std here (abort).
        .args(["-Zpanic-abort-tests", "-p", "web", "--test", "in_browser"]);
    run(&mut cmd)
}

/// Whether a usable `wasm-opt` is installed. Debian bookworm's binaryen
/// 108 turns this module into one the browser rejects at start
/// ("WebAssembly.Table.set(): Argument 1 is invalid for table"), so only
/// newer versions are used; without one the module ships unoptimised.
fn wasm_opt_works() -> bool {
    let version = Command::new("wasm-opt")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| {
            // "wasm-opt version 108"
            text.split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u32>().ok())
        });
    match version {
        Some(v) if v > 108 => true,
        Some(v) => {
            println!(
                "wasm-opt {v} breaks wasm-bindgen's output: skipping it (the module stays bigger)"
            );
            false
        }
        None => {
            println!("no wasm-opt (binaryen) found: skipping it (the module stays bigger)");
            false
        }
    }
}

/// Builds the `web` crate for wasm32 in its own target dir (so the native
/// build's cache stays valid) and returns the module.
fn cargo_build() -> anyhow::Result<PathBuf> {
    for tool in ["/usr/bin/rustc", "/usr/bin/cargo", "/usr/bin/wasm-ld"] {
        if !Path::new(tool).exists() {
            bail!("{tool} is missing: apt-get install rustc-web cargo-web rust-web-src lld");
        }
    }
    run(wasm_cargo("build").args(["-p", "web", "--lib"]))?;
    Ok(root()
        .join("target/wasm")
        .join(TARGET)
        .join(PROFILE)
        .join("web.wasm"))
}

/// `cargo <command>` for wasm32 with Debian's rustc building std, in its
/// own target dir (so the native build's cache stays valid). Builds and
/// tests share the profile, so the tests reuse the built dependencies.
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
    let version = locked_wasm_bindgen()?;
    let tools = root().join("target/tools");
    let bin = tools.join("bin/wasm-bindgen");
    if installed_version(&bin).as_deref() == Some(version.as_str()) {
        return Ok(bin);
    }
    println!(
        "installing wasm-bindgen-cli {version} into {}",
        tools.display()
    );
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "install",
                "wasm-bindgen-cli",
                "--force",
                "--version",
                &version,
                "--root",
            ])
            .arg(&tools),
    )?;
    Ok(bin)
}

fn installed_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    // "wasm-bindgen 0.2.130"
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.split_whitespace().nth(1)?.to_owned())
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
