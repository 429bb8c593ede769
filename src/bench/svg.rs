//! `--svg DIR`: the latency percentile curves of ventus and its baseline, one SVG per
//! latency row, drawn with `plotters` (SVG backend, line series). The x axis is the
//! percentile on the usual HdrHistogram scale, 1/(1 − p), logarithmic; the y axis is the
//! latency in microseconds, logarithmic.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use super::Res;
use super::report::{Kind, Row};

/// A side's name, its points and its colour.
type Curve<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

/// (1/(1 − p), µs) points of `histogram`'s percentile distribution, below p = 1.
fn curve(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    histogram
        .iter_quantiles(5)
        .map(|step| (step.quantile_iterated_to(), step.value_iterated_to()))
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, v)| (1.0 / (1.0 - q), (v as f64 / 1e3).max(1e-3)))
        .collect()
}

/// Draws one row's curves into `path`.
pub(crate) fn draw(row: &Row, path: &Path) -> Res<()> {
    let sides: Vec<Curve<'_>> = [
        ("ventus", row.ours.histogram.as_ref(), RGBColor(200, 60, 30)),
        (
            row.baseline,
            row.base.histogram.as_ref(),
            RGBColor(30, 90, 200),
        ),
    ]
    .into_iter()
    .filter_map(|(name, h, color)| h.map(|h| (name, curve(h), color)))
    .filter(|(_, points, _)| !points.is_empty())
    .collect();
    if sides.is_empty() {
        return Ok(());
    }
    let x_max = sides
        .iter()
        .flat_map(|(_, p, _)| p.iter().map(|(x, _)| *x))
        .fold(10.0f64, f64::max);
    let (y_min, y_max) = sides
        .iter()
        .flat_map(|(_, p, _)| p.iter().map(|(_, y)| *y))
        .fold((f64::MAX, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{} {} ({}, K={}): latency by percentile",
        row.scenario, row.case, row.mode, row.subscribers
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (1.0f64..x_max * 1.5).log_scale(),
            ((y_min * 0.8).max(1e-3)..y_max * 1.25).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_label_formatter(&|x| {
            let p = format!("{:.4}", 100.0 * (1.0 - 1.0 / x));
            format!("{}%", p.trim_end_matches('0').trim_end_matches('.'))
        })
        .y_label_formatter(&|y| {
            if *y >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .draw()?;
    for (name, points, color) in sides {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Draws every latency row into `dir`; how many files were written.
pub(crate) fn draw_all(rows: &[Row], dir: &Path) -> Res<usize> {
    let mut written = 0;
    for row in rows
        .iter()
        .filter(|r| r.kind == Kind::Latency && r.unavailable.is_none())
    {
        if row.ours.histogram.is_none() && row.base.histogram.is_none() {
            continue;
        }
        draw(row, &dir.join(format!("{}.svg", row.stem())))?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::histogram;

    #[test]
    fn draws_an_svg_with_both_curves() {
        let mut row = Row::new("pingpong", "round trip", "dedicated");
        row.kind = Kind::Latency;
        let (mut a, mut b) = (histogram(), histogram());
        for v in 1..=2000u64 {
            a.record(300 + v).unwrap();
            b.record(200 + v / 2).unwrap();
        }
        row.ours.add_latencies(&a);
        row.base.add_latencies(&b);
        let dir = std::env::temp_dir().join(format!("ventus-svg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(draw_all(&[row], &dir).unwrap(), 1);
        let path = dir.join("pingpong-round-trip-dedicated-k1-b1.svg");
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        assert!(svg.contains("ventus") && svg.contains("crossbeam"));
        // Each side: its curve and its legend mark, in its own colour.
        for colour in ["#C83C1E", "#1E5AC8"] {
            let lines = svg
                .split("<polyline")
                .skip(1)
                .filter(|element| element.split('>').next().unwrap().contains(colour))
                .count();
            assert_eq!(lines, 2, "{colour}");
        }
    }

    #[test]
    fn curve_points_rise() {
        let mut h = histogram();
        for v in 1..=1000u64 {
            h.record(v * 100).unwrap();
        }
        let points = curve(&h);
        assert!(points.len() > 10);
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        assert_eq!(points[0].0, 1.0);
    }
}
