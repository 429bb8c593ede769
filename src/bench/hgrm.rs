//! HdrHistogram percentile-distribution files (`.hgrm`), the text format written by the
//! Java library's `outputPercentileDistribution` and read by its plotter: a header, one
//! line per percentile step (5 ticks per half distance), and three `#[...]` summary lines.
//! The `hdrhistogram` crate has no writer, so this is one.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Steps per halving of the distance to 100% (the Java default).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The percentile distribution of `histogram` (values recorded in nanoseconds), with
/// values divided by `scale` (1000.0: microseconds) and printed with as many decimals as
/// the histogram has significant figures.
pub(crate) fn percentile_distribution(histogram: &Histogram<u64>, scale: f64) -> String {
    let digits = usize::from(histogram.sigfig());
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / scale;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(
                out,
                "{value:>12.digits$} {quantile:>2.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - quantile)
            );
        } else {
            let _ = writeln!(out, "{value:>12.digits$} {quantile:>2.12} {total:>10}");
        }
    }
    let mean = histogram.mean() / scale;
    let stdev = histogram.stdev() / scale;
    let max = histogram.max() as f64 / scale;
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]",
        histogram.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        histogram.buckets(),
        sub_buckets(histogram.sigfig())
    );
    out
}

/// The sub-bucket count of a histogram with `sigfig` significant figures: the power of two
/// at or above 2 × 10^sigfig (as in every HdrHistogram implementation).
fn sub_buckets(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
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

    #[test]
    fn header_and_columns_follow_the_java_format() {
        let text = percentile_distribution(&sample(), 1000.0);
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
        // The first row is the smallest value at percentile 0.
        assert_eq!(rows[0], ["1.000", "0.000000000000", "1", "1.00"]);
        // Every row but the last has four columns; values, percentiles and counts rise.
        let (last, body) = rows.split_last().unwrap();
        assert!(body.iter().all(|row| row.len() == 4));
        assert_eq!(last.len(), 3, "the 100% row has no 1/(1-p) column");
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[2], "1000");
        let column =
            |i: usize| -> Vec<f64> { rows.iter().map(|row| row[i].parse().unwrap()).collect() };
        for i in 0..3 {
            assert!(column(i).windows(2).all(|w| w[0] <= w[1]), "column {i}");
        }
        // The median is near 500 µs (3 significant figures), reached at count 500.
        let median = rows.iter().find(|row| row[1] == "0.500000000000").unwrap();
        assert!((499.0..=501.0).contains(&median[0].parse::<f64>().unwrap()));
        assert_eq!(median[2], "500");
        assert!(
            rows.iter()
                .all(|row| row[0].split('.').nth(1).unwrap().len() == 3)
        );
    }

    #[test]
    fn footer_has_mean_max_count_and_buckets() {
        let histogram = sample();
        let text = percentile_distribution(&histogram, 1000.0);
        let footer: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(footer.len(), 3);
        assert!(
            footer[0].starts_with("#[Mean    =      500."),
            "{}",
            footer[0]
        );
        assert!(footer[0].contains(", StdDeviation   = "));
        assert!(
            footer[1].starts_with("#[Max     =     1000."),
            "{}",
            footer[1]
        );
        assert!(footer[1].ends_with("Total count    =         1000]"));
        assert_eq!(
            footer[2],
            format!(
                "#[Buckets = {:>12}, SubBuckets     =         2048]",
                histogram.buckets()
            )
        );
    }

    #[test]
    fn sub_buckets_match_hdrhistogram() {
        assert_eq!(sub_buckets(1), 32);
        assert_eq!(sub_buckets(2), 256);
        assert_eq!(sub_buckets(3), 2048);
    }
}
