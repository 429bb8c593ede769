//! The actor runtime against raw crossbeam-channel in the same run: unicast (single emits
//! and `emit_batch`; pooled, inline, rayon), fanout to K = 1, 2, 4, 8, the ping-pong round
//! trip, paced one-way latency (spin, dedicated, pooled), emitting under subscribe churn
//! (against an RwLock registry and the naive ArcSwap shape), and the memory of idle
//! subscriptions (measured in a child process).
//!
//! `cargo bench --bench actors` runs these scenarios of `ventus bench` at its full sizes
//! and prints the same table; it takes the same options (`cargo bench --bench actors --
//! --help`), e.g. `-- --quick` for a smoke run or `-- unicast --mode pooled --events
//! 5000000` alone under `perf record`. See `benches/README.md` for the figures.

// The scenario code is the binary's `src/bench/`: a few of its items serve only the binary,
// and its unit tests (which `cargo test --bin ventus` runs) are not collected here.
#[allow(dead_code, unused_imports)]
#[path = "../src/bench/mod.rs"]
mod bench;

use std::process::ExitCode;

use clap::Parser;

/// `cargo bench --bench actors -- [OPTIONS]`.
#[derive(Debug, Parser)]
#[command(
    name = "actors",
    about = "ventus bench: unicast, fanout, pingpong, paced, churn, memory"
)]
struct Cli {
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> ExitCode {
    let mut args = Cli::parse().args;
    if args.scenarios.is_empty() && args.memory_child.is_none() {
        use bench::Scenario::*;
        args.scenarios = vec![Unicast, Fanout, Pingpong, Paced, Churn, Memory];
    }
    match bench::run(&args, bench::Preset::Full, &[]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("actors bench: {error}");
            ExitCode::FAILURE
        }
    }
}
