//! The core's costs against raw crossbeam-channel in the same run: inline unicast (single
//! emits and `emit_batch`) and the registry (hot-key and random-key emits, subscribe, with
//! 1, 1,000 and 100,000 registered events).
//!
//! `cargo bench --bench core` runs these scenarios of `ventus bench` at its full sizes and
//! prints the same table; it takes the same options (`cargo bench --bench core -- --help`),
//! e.g. `-- --quick` for a smoke run or `-- registry --events 200000`. See
//! `benches/README.md` for what each scenario measures and the latest figures.

// The scenario code is the binary's `src/bench/`: a few of its items serve only the binary,
// and its unit tests (which `cargo test --bin ventus` runs) are not collected here.
#[allow(dead_code, unused_imports)]
#[path = "../src/bench/mod.rs"]
mod bench;

use std::process::ExitCode;

use clap::Parser;

/// `cargo bench --bench core -- [OPTIONS]`.
#[derive(Debug, Parser)]
#[command(name = "core", about = "ventus bench: unicast (inline) and registry")]
struct Cli {
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> ExitCode {
    let mut args = Cli::parse().args;
    if args.scenarios.is_empty() {
        args.scenarios = vec![bench::Scenario::Unicast, bench::Scenario::Registry];
        if args.mode.is_empty() {
            args.mode = vec![bench::Mode::Inline];
        }
    }
    match bench::run(&args, bench::Preset::Full, &[]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("core bench: {error}");
            ExitCode::FAILURE
        }
    }
}
