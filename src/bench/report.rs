//! Results: one [`Row`] per measured case (ventus and its baseline side by side), printed
//! as a table, as JSON lines, and checked against the issue's targets.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// What a row measures, which decides its ratio (higher is better only for throughput).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Events per second; `throughput_ratio` = ventus / baseline.
    Throughput,
    /// A latency distribution; `latency_ratio` = ventus p50 / baseline p50.
    Latency,
    /// RSS growth per subscription; `memory_ratio` = ventus / baseline.
    Memory,
}

/// One side of a comparison (ventus, or a baseline), over all repetitions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Side {
    /// Events per second, one per repetition.
    pub(crate) rates: Vec<f64>,
    /// Deliveries per event (the number of receivers).
    pub(crate) fanout: f64,
    /// Latencies in nanoseconds, every repetition merged.
    pub(crate) histogram: Option<Histogram<u64>>,
    /// The p50 of each repetition, nanoseconds.
    pub(crate) rep_p50: Vec<f64>,
    /// Bytes of RSS growth per subscription, one per repetition.
    pub(crate) bytes: Vec<f64>,
}

impl Side {
    /// A side with `fanout` deliveries per event.
    pub(crate) fn new(fanout: usize) -> Self {
        Side {
            fanout: fanout as f64,
            ..Side::default()
        }
    }

    /// Adds one repetition's latencies.
    pub(crate) fn add_latencies(&mut self, rep: &Histogram<u64>) {
        if rep.is_empty() {
            return;
        }
        self.rep_p50.push(rep.value_at_quantile(0.5) as f64);
        match &mut self.histogram {
            Some(all) => all.add(rep).expect("histograms with the same bounds"),
            None => self.histogram = Some(rep.clone()),
        }
    }

    /// The median events per second.
    pub(crate) fn events_per_sec(&self) -> Option<f64> {
        median(&self.rates)
    }

    /// The latency at quantile `q`, nanoseconds.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let h = self.histogram.as_ref()?;
        Some(if q >= 1.0 {
            h.max() as f64
        } else {
            h.value_at_quantile(q) as f64
        })
    }
}

/// The median of `values` (`None` when empty).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// A latency histogram in nanoseconds, 1 ns to 60 s, 3 significant figures.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// One measured case.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    /// `unicast`, `fanout`, ….
    pub(crate) scenario: &'static str,
    /// What within the scenario (`single`, `hot key @100000`, …).
    pub(crate) case: String,
    /// `pooled`, `dedicated`, `spin`, `inline` or `rayon`.
    pub(crate) mode: &'static str,
    /// Subscriptions receiving each event.
    pub(crate) subscribers: usize,
    /// Events per emit call (1: single emits).
    pub(crate) batch: usize,
    /// Payload size in bytes (8: a `u64`).
    pub(crate) payload: usize,
    /// What is measured.
    pub(crate) kind: Kind,
    /// Events (or round trips, subscribes, subscriptions) per repetition.
    pub(crate) events: u64,
    /// ventus.
    pub(crate) ours: Side,
    /// The baseline's name (`crossbeam`, `naive`).
    pub(crate) baseline: &'static str,
    /// The baseline.
    pub(crate) base: Side,
    /// What was checked (counts and sums), or what the baseline lost.
    pub(crate) check: String,
    /// Set when the case cannot run in this version (no numbers are shown).
    pub(crate) unavailable: Option<String>,
    /// Events ventus lost (a failed check, shown in the row; the run then fails at the end).
    pub(crate) lost: u64,
}

impl Row {
    /// A row with no measurements yet.
    pub(crate) fn new(scenario: &'static str, case: impl Into<String>, mode: &'static str) -> Self {
        Row {
            scenario,
            case: case.into(),
            mode,
            subscribers: 1,
            batch: 1,
            payload: 8,
            kind: Kind::Throughput,
            events: 0,
            ours: Side::new(1),
            baseline: "crossbeam",
            base: Side::new(1),
            check: String::new(),
            unavailable: None,
            lost: 0,
        }
    }

    /// The median over repetitions of ventus / baseline, paired by repetition (adjacent in
    /// time, so a drifting machine affects both alike).
    pub(crate) fn ratio(&self) -> Option<f64> {
        let (ours, base) = match self.kind {
            Kind::Throughput => (&self.ours.rates, &self.base.rates),
            Kind::Latency => (&self.ours.rep_p50, &self.base.rep_p50),
            Kind::Memory => (&self.ours.bytes, &self.base.bytes),
        };
        let pairs: Vec<f64> = ours
            .iter()
            .zip(base)
            .filter(|(_, b)| **b > 0.0)
            .map(|(o, b)| o / b)
            .collect();
        median(&pairs)
    }

    /// The JSON name of [`Row::ratio`].
    pub(crate) fn ratio_field(&self) -> &'static str {
        match self.kind {
            Kind::Throughput => "throughput_ratio",
            Kind::Latency => "latency_ratio",
            Kind::Memory => "memory_ratio",
        }
    }

    /// A file-name stem: `scenario-case-mode-kK`.
    pub(crate) fn stem(&self) -> String {
        let case: String = self
            .case
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let case = case.trim_matches('-').replace("--", "-");
        format!(
            "{}-{}-{}-k{}-b{}",
            self.scenario, case, self.mode, self.subscribers, self.batch
        )
    }
}

/// `12.3M`, `850k`, `97`.
pub(crate) fn rate(value: f64) -> String {
    if value >= 1e9 {
        format!("{:.2}G", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// `412ns`, `3.40µs`, `1.25ms`, `2.0s`.
pub(crate) fn duration(nanos: f64) -> String {
    if nanos < 1e3 {
        format!("{nanos:.0}ns")
    } else if nanos < 1e6 {
        format!("{:.2}µs", nanos / 1e3)
    } else if nanos < 1e9 {
        format!("{:.2}ms", nanos / 1e6)
    } else {
        format!("{:.1}s", nanos / 1e9)
    }
}

/// `1.1KiB`, `300B`.
pub(crate) fn bytes(value: f64) -> String {
    if value >= 1024.0 {
        format!("{:.2}KiB", value / 1024.0)
    } else {
        format!("{value:.0}B")
    }
}

const QUANTILES: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 1.0];

fn side_cells(row: &Row, side: &Side) -> String {
    let dash = |s: Option<String>| s.unwrap_or_else(|| "-".to_owned());
    let (first, second) = match row.kind {
        Kind::Memory => (
            median(&side.bytes).map(|b| format!("{}/sub", bytes(b))),
            None,
        ),
        _ => (
            side.events_per_sec().map(rate),
            side.events_per_sec().map(|r| rate(r * side.fanout)),
        ),
    };
    let mut cells = format!("{:>10} {:>10}", dash(first), dash(second));
    for q in QUANTILES {
        let _ = write!(cells, " {:>8}", dash(side.quantile(q).map(duration)));
    }
    cells
}

/// The table: two lines per row (ventus, then its baseline), the ratio on the first.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:<22} {:<9} {:>2} {:>5}  {:<9} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>11}  check",
        "scenario",
        "case",
        "mode",
        "K",
        "batch",
        "side",
        "events/s",
        "deliv/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "ratio"
    );
    for row in rows {
        let lead = format!(
            "{:<9} {:<22} {:<9} {:>2} {:>5}",
            row.scenario, row.case, row.mode, row.subscribers, row.batch
        );
        if let Some(why) = &row.unavailable {
            let _ = writeln!(out, "{lead}  {why}");
            continue;
        }
        let ratio = match (row.ratio(), row.kind) {
            (Some(r), Kind::Throughput) => format!("{r:.2}x thr"),
            (Some(r), Kind::Latency) => format!("{r:.2}x lat"),
            (Some(r), Kind::Memory) => format!("{r:.2}x mem"),
            (None, _) => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{lead}  {:<9} {}  {ratio:>11}  {}",
            "ventus",
            side_cells(row, &row.ours),
            row.check
        );
        let _ = writeln!(
            out,
            "{:<51}  {:<9} {}",
            "",
            row.baseline,
            side_cells(row, &row.base)
        );
    }
    out
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "null".to_owned(),
    }
}

fn json_side(side: &Side, kind: Kind) -> String {
    let mut out = String::from("{");
    match kind {
        Kind::Memory => {
            let _ = write!(
                out,
                "\"bytes_per_subscription\":{}",
                json_number(median(&side.bytes))
            );
        }
        _ => {
            let _ = write!(
                out,
                "\"events_per_sec\":{},\"deliveries_per_sec\":{}",
                json_number(side.events_per_sec()),
                json_number(side.events_per_sec().map(|r| r * side.fanout))
            );
            for (name, q) in ["p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"]
                .into_iter()
                .zip(QUANTILES)
            {
                let _ = write!(out, ",\"{name}\":{}", json_number(side.quantile(q)));
            }
        }
    }
    out.push('}');
    out
}

/// One JSON object (one line) for a row.
pub(crate) fn json(row: &Row) -> String {
    let mut out = format!(
        "{{\"scenario\":{},\"case\":{},\"subscribers\":{},\"mode\":{},\"batch\":{},\"payload_bytes\":{},\"events\":{},\"baseline\":{}",
        json_string(row.scenario),
        json_string(&row.case),
        row.subscribers,
        json_string(row.mode),
        row.batch,
        row.payload,
        row.events,
        json_string(row.baseline),
    );
    match &row.unavailable {
        Some(why) => {
            let _ = write!(out, ",\"available\":false,\"note\":{}}}", json_string(why));
        }
        None => {
            let _ = write!(
                out,
                ",\"available\":true,\"{}\":{},\"ventus\":{},\"baseline_result\":{},\"lost\":{},\"check\":{}}}",
                row.ratio_field(),
                json_number(row.ratio()),
                json_side(&row.ours, row.kind),
                json_side(&row.base, row.kind),
                row.lost,
                json_string(&row.check)
            );
        }
    }
    out
}

/// A target's verdict.
fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "NOT MET",
        None => "not measured in this run",
    }
}

fn find<'r>(rows: &'r [Row], scenario: &str, case: &str, mode: &str, k: usize) -> Option<&'r Row> {
    rows.iter().find(|r| {
        r.scenario == scenario
            && r.case == case
            && r.mode == mode
            && r.subscribers == k
            && r.unavailable.is_none()
    })
}

/// The issue's targets, each with its measured value from `rows` (when the run measured
/// it).
pub(crate) fn targets(rows: &[Row], registry_max: usize) -> String {
    let mut out = String::new();
    // The registry targets are at 100k registered events; a smaller run says so.
    let small = registry_max < 100_000;
    let mut line = |name: &str, value: String, met: Option<bool>| {
        let verdict = match met {
            Some(_) if small && name.contains(" @") => {
                "not measured (the target is at 100000 events)"
            }
            _ => verdict(met),
        };
        let _ = writeln!(out, "  {name:<50} {value:<34} {verdict}");
    };
    let ratio_of = |row: Option<&Row>| row.and_then(Row::ratio);
    let show = |value: Option<f64>, unit: &str| {
        value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}{unit}"))
    };

    let r = ratio_of(find(rows, "unicast", "single", "pooled", 1));
    line(
        "unicast single emits >= 0.5x crossbeam (pooled)",
        show(r, "x"),
        r.map(|r| r >= 0.5),
    );
    let batch = rows
        .iter()
        .find(|r| r.scenario == "unicast" && r.case == "emit_batch" && r.mode == "pooled");
    match batch {
        Some(row) if row.unavailable.is_some() => line(
            "unicast emit_batch >= 1.0x crossbeam (pooled)",
            "emit_batch not available yet".to_owned(),
            None,
        ),
        Some(row) => {
            let r = row.ratio();
            line(
                "unicast emit_batch >= 1.0x crossbeam (pooled)",
                show(r, "x"),
                r.map(|r| r >= 1.0),
            );
        }
        None => line(
            "unicast emit_batch >= 1.0x crossbeam (pooled)",
            "-".to_owned(),
            None,
        ),
    }
    let r = ratio_of(find(rows, "fanout", "single", "pooled", 4));
    line(
        "fanout-4 >= 1.0x crossbeam (pooled)",
        show(r, "x"),
        r.map(|r| r >= 1.0),
    );
    let r = ratio_of(find(rows, "pingpong", "round trip", "dedicated", 1));
    line(
        "ping-pong p50 <= 1.3x crossbeam (dedicated)",
        show(r, "x"),
        r.map(|r| r <= 1.3),
    );

    let paced = rows
        .iter()
        .find(|r| r.scenario == "paced" && r.mode == "spin" && r.unavailable.is_none());
    let p50 = paced.and_then(|r| r.ours.quantile(0.5));
    let p99 = paced.and_then(|r| r.ours.quantile(0.99));
    line(
        "paced p50 <= 500 ns (spin)",
        p50.map_or("-".to_owned(), duration),
        p50.map(|v| v <= 500.0),
    );
    line(
        "paced p99 <= 5 µs (spin)",
        p99.map_or("-".to_owned(), duration),
        p99.map(|v| v <= 5_000.0),
    );

    let hot = |size: usize| {
        find(rows, "registry", &format!("hot key @{size}"), "inline", 1)
            .and_then(|r| r.ours.events_per_sec())
    };
    let cost = match (hot(1), hot(registry_max)) {
        (Some(one), Some(many)) if many > 0.0 => Some(one / many),
        _ => None,
    };
    line(
        &format!("hot-key emit @{registry_max} events <= 1.25x @1"),
        show(cost, "x"),
        cost.map(|c| c <= 1.25),
    );
    let sub = find(
        rows,
        "registry",
        &format!("subscribe @{registry_max}"),
        "inline",
        1,
    );
    let p50 = sub.and_then(|r| r.ours.quantile(0.5));
    let p99 = sub.and_then(|r| r.ours.quantile(0.99));
    line(
        &format!("subscribe @{registry_max} p50 <= 20 µs"),
        p50.map_or("-".to_owned(), duration),
        p50.map(|v| v <= 20_000.0)
            .filter(|_| registry_max >= 100_000),
    );
    line(
        &format!("subscribe @{registry_max} p99 <= 100 µs"),
        p99.map_or("-".to_owned(), duration),
        p99.map(|v| v <= 100_000.0)
            .filter(|_| registry_max >= 100_000),
    );

    let churn = rows
        .iter()
        .find(|r| r.scenario == "churn" && r.baseline == "naive" && r.unavailable.is_none());
    let r = ratio_of(churn);
    let lost = churn.map_or(0, |row| row.lost);
    line(
        "churn >= 1.0x the naive ArcSwap shape, zero loss",
        format!("{}, lost {lost}", show(r, "x")),
        r.map(|r| r >= 1.0 && lost == 0),
    );
    let used = rows
        .iter()
        .find(|r| r.scenario == "memory" && r.case == "used once, idle")
        .and_then(|r| median(&r.ours.bytes));
    line(
        "memory <= 2 KiB per used-then-idle subscription",
        used.map_or("-".to_owned(), bytes),
        used.map(|b| b <= 2048.0),
    );
    let r = ratio_of(
        rows.iter()
            .find(|r| r.scenario == "nexus" && r.kind == Kind::Throughput),
    );
    line(
        "nexus >= 0.4x crossbeam unicast",
        show(r, "x"),
        r.map(|r| r >= 0.4),
    );
    let p99 = rows
        .iter()
        .find(|r| r.scenario == "nexus" && r.kind == Kind::Latency)
        .and_then(|r| r.ours.quantile(0.99));
    line(
        "nexus timer lateness p99 <= 300 µs",
        p99.map_or("-".to_owned(), duration),
        p99.map(|v| v <= 300_000.0),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: Kind, ours: &[f64], base: &[f64]) -> Row {
        let mut row = Row::new("unicast", "single", "pooled");
        row.kind = kind;
        match kind {
            Kind::Throughput => {
                row.ours.rates = ours.to_vec();
                row.base.rates = base.to_vec();
            }
            Kind::Latency => {
                row.ours.rep_p50 = ours.to_vec();
                row.base.rep_p50 = base.to_vec();
            }
            Kind::Memory => {
                row.ours.bytes = ours.to_vec();
                row.base.bytes = base.to_vec();
            }
        }
        row
    }

    #[test]
    fn ratios_are_medians_of_pairs() {
        // Pairs: 0.5, 0.5, 4.0 → median 0.5 (the ratio of medians would be 1.0).
        let r = row(Kind::Throughput, &[1.0, 2.0, 8.0], &[2.0, 4.0, 2.0]);
        assert_eq!(r.ratio(), Some(0.5));
        // An even count: the mean of the middle two.
        assert_eq!(
            row(Kind::Memory, &[1.0, 3.0], &[2.0, 2.0]).ratio(),
            Some(1.0)
        );
        assert_eq!(r.ratio_field(), "throughput_ratio");
        assert_eq!(row(Kind::Latency, &[], &[]).ratio(), None);
        assert_eq!(
            row(Kind::Latency, &[3.0], &[2.0]).ratio_field(),
            "latency_ratio"
        );
    }

    #[test]
    fn json_has_the_fields_the_issue_names() {
        let mut r = row(Kind::Throughput, &[2.0e6], &[4.0e6]);
        r.check = "ok: sums match".into();
        let line = json(&r);
        for field in [
            "\"scenario\":\"unicast\"",
            "\"subscribers\":1",
            "\"mode\":\"pooled\"",
            "\"batch\":1",
            "\"throughput_ratio\":0.500",
            "\"events_per_sec\":2000000.000",
            "\"p50_ns\":null",
        ] {
            assert!(line.contains(field), "{field} in {line}");
        }
        assert!(!line.contains('\n'));
        let mut latency = row(Kind::Latency, &[300.0], &[200.0]);
        let mut h = histogram();
        h.record(300).unwrap();
        latency.ours.add_latencies(&h);
        let line = json(&latency);
        assert!(line.contains("\"latency_ratio\":1.500"), "{line}");
        assert!(!line.contains("throughput_ratio"));
        let mut missing = Row::new("unicast", "emit_batch", "pooled");
        missing.unavailable = Some("not \"available\" yet".into());
        assert!(
            json(&missing).contains("\"available\":false,\"note\":\"not \\\"available\\\" yet\"")
        );
    }

    #[test]
    fn table_shows_both_sides_and_unavailable_rows() {
        let mut r = row(Kind::Throughput, &[2.0e6], &[4.0e6]);
        r.check = "ok".into();
        let mut missing = Row::new("unicast", "emit_batch", "pooled");
        missing.unavailable = Some("emit_batch: not available yet".into());
        let text = table(&[r, missing]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[1].contains("ventus")
                && lines[1].contains("2.00M")
                && lines[1].contains("0.50x thr")
        );
        assert!(lines[2].contains("crossbeam") && lines[2].contains("4.00M"));
        assert!(lines[3].ends_with("emit_batch: not available yet"));
    }

    #[test]
    fn units() {
        assert_eq!(rate(12_345_678.0), "12.35M");
        assert_eq!(duration(412.0), "412ns");
        assert_eq!(duration(3_400.0), "3.40µs");
        assert_eq!(bytes(4870.0), "4.76KiB");
    }
}
