//! `ventus bench`: ventus against raw crossbeam-channel, the same topology in the same
//! process, with interleaved repetitions and HDR latency histograms.
//!
//! This module belongs to the `ventus` binary, and the harness-free targets in `benches/`
//! include it with `#[path = "../src/bench/mod.rs"] mod bench;`, so the command and
//! `cargo bench` run one code path. It uses only ventus's public API (as a user measuring
//! ventus would), and keeps `clap` and `plotters` out of the library.
//!
//! Every run checks counts and sums (nothing lost) and fails when a check fails.

mod flow;
mod latency;
mod memory;
mod nexus;
pub(crate) mod payload;
mod registry;
mod report;
mod svg;
mod topology;

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};

pub(crate) use report::Row;

/// What a bench function returns.
pub(crate) type Res<T> = Result<T, Box<dyn Error>>;

/// A scenario of `ventus bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Scenario {
    /// 1 emitter → 1 subscription: single emits and `emit_batch`; events/s.
    Unicast,
    /// 1 emitter → K subscriptions (K = 1, 2, 4, 8); events/s and deliveries/s.
    Fanout,
    /// Request/reply round trip; latency percentiles.
    Pingpong,
    /// Emits at a fixed rate; one-way latency from emit to handler start.
    Paced,
    /// Emitting while another thread subscribes and unsubscribes; events/s, against
    /// crossbeam behind an RwLock and the naive ArcSwap snapshot shape.
    Churn,
    /// Emit cost on a hot key and on random keys, and subscribe cost, with 1 … 100k
    /// registered events (inline).
    Registry,
    /// RSS growth per subscription, never used and used once (in a child process).
    Memory,
    /// Producer → nexus handler throughput; timer lateness.
    Nexus,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Unicast => "unicast",
            Scenario::Fanout => "fanout",
            Scenario::Pingpong => "pingpong",
            Scenario::Paced => "paced",
            Scenario::Churn => "churn",
            Scenario::Registry => "registry",
            Scenario::Memory => "memory",
            Scenario::Nexus => "nexus",
        }
    }
}

/// Where the handlers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// The `Actors` strategy on a 2-worker runtime (`Placement::Default`).
    Pooled,
    /// A thread per subscription that parks when idle (`Placement::Dedicated(Spin::Backoff)`).
    Dedicated,
    /// A thread per subscription that never parks (`Placement::Dedicated(Spin::Forever)`).
    Spin,
    /// On the emitting thread (`Emitter::inline`).
    Inline,
    /// The `Rayon` strategy on the runtime's rayon pool (`Placement::Default`).
    Rayon,
}

impl Mode {
    /// The name used in the table and the JSON.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Mode::Pooled => "pooled",
            Mode::Dedicated => "dedicated",
            Mode::Spin => "spin",
            Mode::Inline => "inline",
            Mode::Rayon => "rayon",
        }
    }
}

/// `ventus bench` (and the `benches/` targets, which parse the same options).
#[derive(Args, Clone, Debug, Default)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct BenchArgs {
    /// Scenarios to run (all when none is named).
    #[arg(value_enum)]
    pub(crate) scenarios: Vec<Scenario>,
    /// Events per repetition (unicast, fanout, churn, nexus; emits per registry case), or
    /// in all, split across repetitions (pingpong round trips, paced events). Default:
    /// 2,000,000 unicast, 500,000 fanout and churn, 100,000 round trips and paced events,
    /// 1,000,000 emits, 5,000,000 nexus.
    #[arg(long, value_name = "N")]
    pub(crate) events: Option<u64>,
    /// Subscriptions per emission, comma-separated (fanout: default 1,2,4,8; churn: the
    /// stable subscribers, default 2; paced: default 1).
    #[arg(long, value_name = "K", value_delimiter = ',')]
    pub(crate) subscribers: Vec<usize>,
    /// Events per second for `paced` (default 100,000).
    #[arg(long, value_name = "R")]
    pub(crate) rate: Option<u64>,
    /// Where handlers run, comma-separated, for unicast, fanout, pingpong, paced and churn
    /// (default per scenario: unicast pooled,inline,rayon; fanout and churn pooled; pingpong
    /// dedicated,pooled; paced spin,dedicated,pooled). Registry always runs inline, memory
    /// pooled, nexus on its own loop thread (shown as `dedicated`).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) mode: Vec<Mode>,
    /// Payload size in bytes, moved by value: 8 (a u64), 64, 256, 1024 or 4096. Registry,
    /// memory and nexus always use a u64.
    #[arg(long, value_name = "BYTES", default_value_t = 8, value_parser = parse_payload)]
    pub(crate) payload: usize,
    /// Events per `emit_batch` call in unicast's batch rows (default 64).
    #[arg(long, value_name = "B")]
    pub(crate) batch: Option<usize>,
    /// Interleaved repetitions (ventus, baseline, ventus, …); medians are shown (default 5).
    #[arg(long, value_name = "N")]
    pub(crate) reps: Option<usize>,
    /// Print one JSON object per result on stdout (the table goes to stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// Write each latency histogram as an HdrHistogram percentile distribution
    /// (`DIR/<scenario>-<case>-<mode>-kK-bB-<side>.hgrm`, values in microseconds).
    #[arg(long, value_name = "DIR")]
    pub(crate) hgrm: Option<PathBuf>,
    /// Draw the latency percentile curves of ventus and its baseline
    /// (`DIR/<scenario>-<case>-<mode>-kK-bB.svg`).
    #[arg(long, value_name = "DIR")]
    pub(crate) svg: Option<PathBuf>,
    /// Tiny sizes (a smoke test: seconds, numbers meaningless).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Internal: measure memory in this (child) process and print the result.
    #[arg(long, hide = true, value_name = "SIDE:N")]
    pub(crate) memory_child: Option<String>,
    /// Ignored (`cargo bench` passes it to harness-free targets).
    #[arg(long, hide = true)]
    pub(crate) bench: bool,
}

const AFTER_HELP: &str = "\
Each scenario runs the same topology on raw crossbeam-channel (unbounded channels, one \
receiving thread per subscriber, the same payload by value) in the same process, \
alternating repetitions, and prints the median of the per-repetition ventus / crossbeam \
ratios: throughput ratios (higher is better) and latency ratios of p50 (lower is better) \
are separate. Every run checks counts and sums and fails if anything was lost.

Examples:
  ventus bench                          every scenario at full size (about 2 minutes)
  ventus bench unicast fanout --quick   a smoke test
  ventus bench paced --mode spin --rate 50000 --hgrm out --svg out
  ventus bench pingpong --json | jq .latency_ratio";

fn parse_payload(text: &str) -> Result<usize, String> {
    let bytes: usize = text.parse().map_err(|e| format!("{e}"))?;
    if payload::SIZES.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("supported sizes: {:?}", payload::SIZES))
    }
}

/// Sizes of every scenario.
#[derive(Clone, Debug)]
pub(crate) struct Sizes {
    /// Unicast events per repetition.
    pub(crate) unicast: u64,
    /// Events per `emit_batch` call.
    pub(crate) batch: usize,
    /// Fanout events per repetition.
    pub(crate) fanout: u64,
    /// Fanout's K values.
    pub(crate) fanout_k: Vec<usize>,
    /// Churn events per repetition.
    pub(crate) churn: u64,
    /// Churn's stable subscribers.
    pub(crate) churn_k: usize,
    /// Ping-pong round trips in all (split across repetitions).
    pub(crate) rounds: u64,
    /// Paced events in all (split across repetitions).
    pub(crate) paced: u64,
    /// Paced subscribers.
    pub(crate) paced_k: usize,
    /// Paced events per second.
    pub(crate) rate: u64,
    /// Registry sizes (registered events).
    pub(crate) registry: Vec<usize>,
    /// Registry emits per case and repetition.
    pub(crate) registry_emits: u64,
    /// Subscribes per registry size, in all.
    pub(crate) subscribes: u64,
    /// Subscriptions per memory child.
    pub(crate) memory: usize,
    /// Nexus events per repetition.
    pub(crate) nexus: u64,
    /// Nexus timers in all.
    pub(crate) timers: u64,
    /// Interleaved repetitions.
    pub(crate) reps: usize,
}

impl Sizes {
    /// `ventus bench` and `cargo bench`.
    pub(crate) fn full() -> Self {
        Sizes {
            unicast: 2_000_000,
            batch: 64,
            fanout: 500_000,
            fanout_k: vec![1, 2, 4, 8],
            churn: 500_000,
            churn_k: 2,
            rounds: 100_000,
            paced: 100_000,
            paced_k: 1,
            rate: 100_000,
            registry: vec![1, 1_000, 100_000],
            registry_emits: 1_000_000,
            subscribes: 10_000,
            memory: 1_000_000,
            nexus: 5_000_000,
            timers: 1_000,
            reps: 5,
        }
    }

    /// `--quick`: seconds in all.
    pub(crate) fn quick() -> Self {
        Sizes {
            unicast: 20_000,
            batch: 64,
            fanout: 10_000,
            fanout_k: vec![1, 2, 4, 8],
            churn: 10_000,
            churn_k: 2,
            rounds: 2_000,
            paced: 2_000,
            paced_k: 1,
            rate: 100_000,
            registry: vec![1, 1_000],
            registry_emits: 20_000,
            subscribes: 500,
            memory: 5_000,
            nexus: 50_000,
            timers: 20,
            reps: 2,
        }
    }

    /// The tour's closing bench: under 15 seconds.
    pub(crate) fn short() -> Self {
        Sizes {
            unicast: 300_000,
            batch: 64,
            fanout: 100_000,
            fanout_k: vec![4],
            churn: 100_000,
            churn_k: 2,
            rounds: 20_000,
            paced: 10_000,
            paced_k: 1,
            rate: 100_000,
            registry: vec![1, 100_000],
            registry_emits: 100_000,
            subscribes: 1_000,
            memory: 20_000,
            nexus: 300_000,
            timers: 60,
            reps: 3,
        }
    }
}

/// Which modes each mode-taking scenario runs by default.
#[derive(Clone, Debug)]
pub(crate) struct Modes {
    /// Unicast's modes.
    pub(crate) unicast: Vec<Mode>,
    /// Fanout's modes.
    pub(crate) fanout: Vec<Mode>,
    /// Ping-pong's modes.
    pub(crate) pingpong: Vec<Mode>,
    /// Paced's modes.
    pub(crate) paced: Vec<Mode>,
    /// Churn's modes.
    pub(crate) churn: Vec<Mode>,
}

impl Modes {
    fn full() -> Self {
        Modes {
            unicast: vec![Mode::Pooled, Mode::Inline, Mode::Rayon],
            fanout: vec![Mode::Pooled],
            pingpong: vec![Mode::Dedicated, Mode::Pooled],
            paced: vec![Mode::Spin, Mode::Dedicated, Mode::Pooled],
            churn: vec![Mode::Pooled],
        }
    }

    fn short() -> Self {
        Modes {
            unicast: vec![Mode::Pooled],
            fanout: vec![Mode::Pooled],
            pingpong: vec![Mode::Dedicated],
            paced: vec![Mode::Spin],
            churn: vec![Mode::Pooled],
        }
    }

    fn all(modes: &[Mode]) -> Self {
        Modes {
            unicast: modes.to_vec(),
            fanout: modes.to_vec(),
            pingpong: modes.to_vec(),
            paced: modes.to_vec(),
            churn: modes.to_vec(),
        }
    }
}

/// Everything a scenario needs.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// Sizes.
    pub(crate) sizes: Sizes,
    /// Modes per scenario.
    pub(crate) modes: Modes,
    /// Payload bytes (8: a u64).
    pub(crate) payload: usize,
    progress: bool,
    /// How to start this program as a memory child: the executable, then the arguments
    /// that reach `BenchArgs` (e.g. `bench` for the `ventus` binary).
    pub(crate) child_prefix: Vec<String>,
}

impl Ctx {
    /// Shows a progress line on a terminal (stderr), replacing the previous one.
    pub(crate) fn progress(&self, text: &str) {
        if self.progress {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K  {text}");
            let _ = err.flush();
        }
    }

    fn clear_progress(&self) {
        if self.progress {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// Which preset sizes to start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Preset {
    /// `ventus bench`, `cargo bench`.
    Full,
    /// The tour's closing bench.
    Short,
}

/// Runs `ventus bench` with `args`; `child_prefix` is what to pass this executable to
/// reach the same options again (for the memory child process).
pub(crate) fn run(args: &BenchArgs, preset: Preset, child_prefix: &[&str]) -> Res<()> {
    if let Some(spec) = &args.memory_child {
        return memory::child(spec);
    }
    let mut sizes = match (args.quick, preset) {
        (true, _) => Sizes::quick(),
        (false, Preset::Full) => Sizes::full(),
        (false, Preset::Short) => Sizes::short(),
    };
    if let Some(n) = args.events {
        let n = n.max(2);
        sizes.unicast = n;
        sizes.fanout = n;
        sizes.churn = n;
        sizes.rounds = n;
        sizes.paced = n;
        sizes.registry_emits = n;
        sizes.nexus = n;
    }
    if !args.subscribers.is_empty() {
        sizes.fanout_k = args.subscribers.clone();
        sizes.churn_k = args.subscribers[0];
        sizes.paced_k = args.subscribers[0];
    }
    if sizes.fanout_k.contains(&0) {
        return Err("--subscribers: K must be at least 1".into());
    }
    if let Some(rate) = args.rate {
        if rate == 0 {
            return Err("--rate must be at least 1".into());
        }
        sizes.rate = rate;
    }
    if let Some(batch) = args.batch {
        sizes.batch = batch.max(2);
    }
    if let Some(reps) = args.reps {
        sizes.reps = reps.max(1);
    }
    let modes = match (args.mode.is_empty(), preset) {
        (false, _) => Modes::all(&args.mode),
        (true, Preset::Short) if !args.quick => Modes::short(),
        (true, _) => Modes::full(),
    };
    let ctx = Ctx {
        sizes,
        modes,
        // `BenchArgs::default()` (the tour's bench) has 0: a u64.
        payload: if args.payload == 0 { 8 } else { args.payload },
        progress: std::io::stderr().is_terminal(),
        child_prefix: child_prefix.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut scenarios = args.scenarios.clone();
    if scenarios.is_empty() {
        scenarios = Scenario::value_variants().to_vec();
    }
    scenarios.sort();
    scenarios.dedup();

    let cores = std::thread::available_parallelism().map_or(0, |p| p.get());
    let header = format!(
        "ventus bench: {} | {cores} cores | runtime: 2 workers | {} interleaved repetition(s), medians | payload {} by value\n\
         baseline: raw crossbeam-channel, same topology, same process (unbounded channels, one receiving thread per subscriber)",
        scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        ctx.sizes.reps,
        if ctx.payload == 8 {
            "u64".to_owned()
        } else {
            format!("{} bytes", ctx.payload)
        },
    );
    let table_out = |text: &str| {
        if args.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    table_out(&header);

    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for scenario in &scenarios {
        let before = rows.len();
        let result = match scenario {
            Scenario::Unicast => flow::unicast(&ctx, &mut rows),
            Scenario::Fanout => flow::fanout(&ctx, &mut rows),
            Scenario::Churn => flow::churn(&ctx, &mut rows),
            Scenario::Pingpong => latency::pingpong(&ctx, &mut rows),
            Scenario::Paced => latency::paced(&ctx, &mut rows),
            Scenario::Registry => registry::registry(&ctx, &mut rows),
            Scenario::Memory => memory::memory(&ctx, &mut rows),
            Scenario::Nexus => nexus::nexus(&ctx, &mut rows),
        };
        ctx.clear_progress();
        if let Err(error) = result {
            // Shown in the table; the run fails at the end, after the other scenarios.
            let mut row = Row::new(scenario.name(), "-", "-");
            row.unavailable = Some(format!("FAILED: {error}"));
            failures.push(format!("{}: {error}", scenario.name()));
            rows.push(row);
        }
        for row in &mut rows[before..] {
            row.payload = match scenario {
                Scenario::Registry | Scenario::Memory | Scenario::Nexus => 8,
                _ => ctx.payload,
            };
        }
    }
    let elapsed = started.elapsed();

    table_out(&format!("\n{}", report::table(&rows)));
    let lost: u64 = rows.iter().map(|row| row.lost).sum();
    let checked = if !failures.is_empty() {
        "Some scenarios FAILED (see the rows marked FAILED); the others checked counts and sums."
    } else if lost == 0 {
        "Every run checked counts and sums: nothing lost (the naive churn shape's own losses, if any, are shown)."
    } else {
        "Every run checked counts and sums: ventus LOST events (see the rows marked LOST)."
    };
    table_out(&format!(
        "{checked}\n\
         ratio: median of per-repetition ventus / baseline; 'thr' higher is better, 'lat' (p50) and 'mem' lower is better.\n\
         {} rows in {:.1} s.",
        rows.len(),
        elapsed.as_secs_f64()
    ));
    let registry_max = ctx.sizes.registry.iter().copied().max().unwrap_or(0);
    table_out(&format!(
        "\nTargets (issue 8; reported, never asserted):\n{}",
        report::targets(&rows, registry_max)
    ));
    if args.json {
        let mut out = std::io::stdout().lock();
        for row in &rows {
            writeln!(out, "{}", report::json(row))?;
        }
    }
    if let Some(dir) = &args.hgrm {
        std::fs::create_dir_all(dir)?;
        let mut written = 0;
        for row in &rows {
            for (side, name) in [(&row.ours, "ventus"), (&row.base, row.baseline)] {
                if let Some(h) = &side.histogram {
                    let path = dir.join(format!("{}-{name}.hgrm", row.stem()));
                    // The library's writer (`ventus::write_hgrm`), values in microseconds.
                    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    ventus::write_hgrm(h, 1000.0, &mut file)?;
                    file.flush()?;
                    written += 1;
                }
            }
        }
        table_out(&format!("wrote {written} .hgrm files to {}", dir.display()));
    }
    if let Some(dir) = &args.svg {
        std::fs::create_dir_all(dir)?;
        let written = svg::draw_all(&rows, dir)?;
        table_out(&format!("wrote {written} .svg files to {}", dir.display()));
    }
    if lost > 0 {
        failures.push(format!("ventus lost {lost} events (see the table)"));
    }
    if !failures.is_empty() {
        return Err(failures.join("; ").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(line: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(line.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn options_parse_as_the_issue_names_them() {
        let args = parse(&[
            "fanout",
            "paced",
            "--events",
            "1000",
            "--subscribers",
            "1,4",
            "--rate",
            "5000",
            "--mode",
            "pooled,spin",
            "--payload",
            "64",
            "--reps",
            "3",
            "--json",
            "--hgrm",
            "out",
            "--svg",
            "out",
            "--quick",
            "--bench",
        ])
        .unwrap();
        assert_eq!(args.scenarios, [Scenario::Fanout, Scenario::Paced]);
        assert_eq!(args.events, Some(1000));
        assert_eq!(args.subscribers, [1, 4]);
        assert_eq!(args.mode, [Mode::Pooled, Mode::Spin]);
        assert_eq!(args.payload, 64);
        assert!(args.json && args.quick && args.bench);
        assert_eq!(parse(&[]).unwrap().payload, 8, "a u64 by default");
    }

    #[test]
    fn a_tiny_inline_run_checks_and_reports() {
        let args = parse(&[
            "unicast", "fanout", "churn", "registry", "--quick", "--mode", "inline", "--reps", "1",
            "--events", "300",
        ])
        .unwrap();
        run(&args, Preset::Full, &[]).unwrap();
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(parse(&["--payload", "100"]).is_err());
        assert!(parse(&["--mode", "threads"]).is_err());
        assert!(parse(&["nosuch"]).is_err());
        let args = parse(&["--subscribers", "0", "--quick"]).unwrap();
        let error = run(&args, Preset::Full, &[]).unwrap_err();
        assert!(error.to_string().contains("at least 1"), "{error}");
    }
}
