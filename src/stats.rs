//! Latency statistics with HDR histograms: queueing latency (emit → handler start) and
//! service time (handler start → end), opt-in per subscription
//! ([`SubscribeBuilder::histograms`](crate::SubscribeBuilder::histograms)), and the
//! HdrHistogram percentile-distribution text format ([`write_hgrm`]).
//!
//! Each histogram covers 1 ns to 60 s with 3 significant figures (about 30 KB once
//! touched): never on by default. The runner records into the subscription's histograms
//! under a lock it takes once per batch (or per inline drain), so [`Subscription::latency`]
//! copies them out without stopping anyone for long. (`hdrhistogram`'s `SyncHistogram`
//! is not used: its `refresh` waits for every recorder to record again, which an idle
//! actor never does.)
//!
//! [`Subscription::latency`]: crate::Subscription::latency

use std::io;

use hdrhistogram::Histogram;

/// The highest value a latency histogram tracks: 60 s in nanoseconds (larger values are
/// clamped to it, `saturating_record`).
pub const MAX_TRACKED_NANOS: u64 = 60_000_000_000;

/// Runtimes alive that aggregate histograms ([`RuntimeBuilder::histograms`]): while any
/// does, every message is timestamped, whichever subscription it goes to (an emitter does
/// not know which runtime's thread will run it).
///
/// [`RuntimeBuilder::histograms`]: crate::RuntimeBuilder::histograms
static RECORDING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether messages must carry their emit instant for a runtime's aggregate (a load of a
/// word written only when such a runtime starts or ends).
#[inline]
pub(crate) fn recording() -> bool {
    RECORDING.load(std::sync::atomic::Ordering::Relaxed) != 0
}

/// A runtime's aggregate histograms; counts in [`RECORDING`] from its start until its
/// threads are told to stop (or it is dropped).
pub(crate) struct RuntimeLatency {
    pub(crate) hist: crate::sync::Mutex<LatencyStats>,
    counted: std::sync::atomic::AtomicBool,
}

impl RuntimeLatency {
    pub(crate) fn new() -> Self {
        RECORDING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            hist: crate::sync::Mutex::new(LatencyStats::default()),
            counted: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// No more messages need timestamps for this runtime (once).
    pub(crate) fn stop(&self) {
        if self
            .counted
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            RECORDING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Drop for RuntimeLatency {
    fn drop(&mut self) {
        self.stop();
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NANOS, 3).expect("the bounds are valid")
}

/// A subscription's latency histograms, in nanoseconds.
#[derive(Clone, Debug)]
pub struct LatencyStats {
    /// Emit → handler start (time spent queued).
    pub queueing: Histogram<u64>,
    /// Handler start → handler end.
    pub service: Histogram<u64>,
}

impl Default for LatencyStats {
    fn default() -> Self {
        Self {
            queueing: histogram(),
            service: histogram(),
        }
    }
}

impl LatencyStats {
    /// Records one invocation.
    pub(crate) fn record(&mut self, queueing: std::time::Duration, service: std::time::Duration) {
        let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.queueing.saturating_record(nanos(queueing).max(1));
        self.service.saturating_record(nanos(service).max(1));
    }

    /// Adds another subscription's histograms to these (per-runtime or per-group
    /// aggregates).
    pub fn merge(&mut self, other: &LatencyStats) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.queueing.add(&other.queueing);
        let _ = self.service.add(&other.service);
    }
}

/// Writes `histogram` (values in nanoseconds) in the HdrHistogram percentile-distribution
/// text format (the Java library's `outputPercentileDistribution`, which its plotter and
/// HdrHistogram's online viewer read): a header, one line per percentile step (5 steps per
/// halving of the distance to 100%), and the `#[Mean …]`, `#[Max …]`, `#[Buckets …]`
/// summary lines. Values are divided by `scale` (`1000.0`: microseconds).
///
/// # Errors
///
/// The writer's errors.
///
/// # Examples
///
/// ```
/// let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
/// for v in 1..=100u64 {
///     h.record(v * 1000).unwrap();
/// }
/// let mut out = Vec::new();
/// ventus::write_hgrm(&h, 1000.0, &mut out).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
/// assert!(text.contains("Total count    =          100]"));
/// ```
pub fn write_hgrm(
    histogram: &Histogram<u64>,
    scale: f64,
    out: &mut impl io::Write,
) -> io::Result<()> {
    const TICKS_PER_HALF_DISTANCE: u32 = 5;
    let digits = usize::from(histogram.sigfig());
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / scale;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            writeln!(
                out,
                "{value:>12.digits$} {quantile:>2.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - quantile)
            )?;
        } else {
            writeln!(out, "{value:>12.digits$} {quantile:>2.12} {total:>10}")?;
        }
    }
    let mean = histogram.mean() / scale;
    let stdev = histogram.stdev() / scale;
    let max = histogram.max() as f64 / scale;
    writeln!(
        out,
        "#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]"
    )?;
    writeln!(
        out,
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]",
        histogram.len()
    )?;
    // The sub-bucket count: the power of two at or above 2 × 10^sigfig, as in every
    // HdrHistogram implementation.
    let sub_buckets = (2 * 10u64.pow(u32::from(histogram.sigfig()))).next_power_of_two();
    writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        histogram.buckets(),
        sub_buckets
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for value in 1..=1000u64 {
            histogram.record(value * 1000).unwrap(); // 1 µs … 1 ms in nanoseconds
        }
        histogram
    }

    fn text(histogram: &Histogram<u64>) -> String {
        let mut out = Vec::new();
        write_hgrm(histogram, 1000.0, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn header_rows_and_footer_follow_the_java_format() {
        let histogram = sample();
        let text = text(&histogram);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines.next().unwrap(), "");
        let rows: Vec<Vec<&str>> = lines
            .clone()
            .take_while(|line| !line.starts_with('#'))
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["1.000", "0.000000000000", "1", "1.00"]);
        let (last, body) = rows.split_last().unwrap();
        assert!(body.iter().all(|row| row.len() == 4));
        assert_eq!(last.len(), 3, "the 100% row has no 1/(1-p) column");
        assert_eq!((last[1], last[2]), ("1.000000000000", "1000"));
        let median = rows.iter().find(|row| row[1] == "0.500000000000").unwrap();
        assert!((499.0..=501.0).contains(&median[0].parse::<f64>().unwrap()));
        let footer: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(footer.len(), 3);
        assert!(
            footer[0].starts_with("#[Mean    =      500."),
            "{}",
            footer[0]
        );
        assert!(footer[1].ends_with("Total count    =         1000]"));
        assert!(footer[2].ends_with("SubBuckets     =         2048]"));
    }

    #[test]
    fn record_clamps_and_merge_adds() {
        let mut a = LatencyStats::default();
        a.record(std::time::Duration::ZERO, std::time::Duration::MAX);
        assert_eq!(a.queueing.len(), 1);
        assert_eq!(a.queueing.min(), 1);
        assert!(a.service.max() >= MAX_TRACKED_NANOS);
        let mut b = LatencyStats::default();
        b.record(
            std::time::Duration::from_micros(5),
            std::time::Duration::from_micros(7),
        );
        a.merge(&b);
        assert_eq!(a.queueing.len(), 2);
        assert_eq!(a.service.len(), 2);
    }
}
