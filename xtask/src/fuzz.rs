//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo fuzz
//! targets in `fuzz/` (every parser of network input), each for N seconds
//! (default 10, what CI runs; longer runs find more), after one build of all
//! of them. A crash stops the run and leaves the input under
//! `fuzz/artifacts/TARGET/`; fix it and add the input as a regression test.
//!
//! cargo-fuzz of a pinned version is installed into target/tools on first
//! use. Its address-sanitizer build needs unstable flags, which the stable
//! toolchain accepts with RUSTC_BOOTSTRAP=1.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::{root, run};

const CARGO_FUZZ: &str = "0.13.2";

pub struct FuzzOptions {
    seconds: u64,
    /// Empty: all of them.
    targets: Vec<String>,
}

pub fn options(args: &[String]) -> anyhow::Result<FuzzOptions> {
    let mut options = FuzzOptions {
        seconds: 10,
        targets: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let n = args.next().context("--seconds needs a number")?;
                options.seconds = n.parse().context("--seconds needs a number")?;
            }
            flag if flag.starts_with('-') => {
                bail!("unknown option {flag} (fuzz takes --seconds N and target names)")
            }
            target => options.targets.push(target.to_owned()),
        }
    }
    Ok(options)
}

pub fn run_all(options: &FuzzOptions) -> anyhow::Result<()> {
    let cargo_fuzz = crate::tool("cargo-fuzz", "cargo-fuzz", CARGO_FUZZ, true)?;
    let fuzz = |args: &[&str]| {
        let mut cmd = Command::new(&cargo_fuzz);
        cmd.arg("fuzz")
            .args(args)
            .current_dir(root())
            .env("RUSTC_BOOTSTRAP", "1");
        cmd
    };
    let listed = fuzz(&["list"]).output().context("cargo fuzz list")?;
    let all: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let targets = if options.targets.is_empty() {
        all.clone()
    } else {
        options.targets.clone()
    };
    if let Some(unknown) = targets.iter().find(|t| !all.contains(t)) {
        bail!("no fuzz target {unknown} (there are: {})", all.join(", "));
    }
    run(&mut fuzz(&["build"]))?;
    for target in &targets {
        // Seeds (committed) are read; new findings go to the corpus (not).
        let corpus = root().join("fuzz/corpus").join(target);
        let seeds = root().join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = fuzz(&["run", target]);
        cmd.arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args(["--", &format!("-max_total_time={}", options.seconds)]);
        println!("fuzzing {target} for {} s", options.seconds);
        run(&mut cmd).with_context(|| {
            let artifacts: PathBuf = root().join("fuzz/artifacts").join(target);
            format!("{target} crashed: the input is in {}", artifacts.display())
        })?;
    }
    println!("{} fuzz targets ran clean", targets.len());
    Ok(())
}
