//! SVG charts of the sustained scenario (`plotters`, SVG backend only), written next to
//! `BENCHMARKS.md` by `bench`:
//!
//! - `throughput.svg`: creates/s and deliveries/s against the number of creating clients, beside
//!   their ceilings taken in the same runs (the store's durable creates/s, bare POSTs/s);
//! - `timeline.svg`: creates and deliveries in each second of the run at the headline
//!   concurrency (keeping pace shows as two curves that stay together, the drain as the tail);
//! - `latency.svg`: the distribution of create → `PAID` webhook latency (as a CDF).

use std::path::Path;

use plotters::prelude::*;

use crate::sustained::SustainedFigure;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing {chart}: {message}")]
pub struct PlotError {
    chart: &'static str,
    message: String,
}

fn err(chart: &'static str) -> impl Fn(String) -> PlotError {
    move |message| PlotError { chart, message }
}

const SIZE: (u32, u32) = (860, 480);
const CREATES: RGBColor = RGBColor(31, 119, 180);
const DELIVERIES: RGBColor = RGBColor(214, 39, 40);
const STORE: RGBColor = RGBColor(44, 160, 44);
const BARE: RGBColor = RGBColor(148, 103, 189);

/// Writes the three charts into `dir` (created if needed); returns their paths.
pub fn write_charts(
    dir: &Path,
    runs: &[SustainedFigure],
    headline: &SustainedFigure,
) -> Result<Vec<String>, PlotError> {
    std::fs::create_dir_all(dir).map_err(|e| err("charts")(e.to_string()))?;
    let throughput = dir.join("throughput.svg");
    let timeline = dir.join("timeline.svg");
    let latency = dir.join("latency.svg");
    throughput_chart(&throughput, runs).map_err(err("throughput.svg"))?;
    timeline_chart(&timeline, headline).map_err(err("timeline.svg"))?;
    latency_chart(&latency, headline).map_err(err("latency.svg"))?;
    Ok([throughput, timeline, latency]
        .iter()
        .map(|p| p.display().to_string())
        .collect())
}

type Chart<'a> = ChartContext<
    'a,
    SVGBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A white chart with a caption, both axes from zero, described, with integer labels.
fn chart<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    caption: &str,
    (max_x, max_y): (f64, f64),
    (x_desc, y_desc): (&str, &str),
) -> Result<Chart<'a>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..max_x, 0f64..max_y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

fn legend(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

fn throughput_chart(path: &Path, runs: &[SustainedFigure]) -> Result<(), String> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let max_x = runs.iter().map(|r| r.connections).max().unwrap_or(1) as f64 * 1.1;
    let max_y = runs
        .iter()
        .flat_map(|r| {
            [
                r.creates_per_second,
                r.deliveries_per_second_window,
                r.store_ceiling.creates_per_second,
            ]
        })
        .fold(1.0f64, f64::max)
        * 1.15;
    let mut chart = chart(
        &root,
        "Sustained load: throughput against creating clients",
        (max_x, max_y),
        ("creating clients (connections)", "per second"),
    )?;
    let series = |f: fn(&SustainedFigure) -> f64| runs.iter().map(move |r| (r.connections as f64, f(r)));
    for (name, color, f) in [
        (
            "creates/s accepted",
            CREATES,
            (|r: &SustainedFigure| r.creates_per_second) as fn(&SustainedFigure) -> f64,
        ),
        ("webhooks delivered/s", DELIVERIES, |r| r.deliveries_per_second_window),
        ("ceiling: store creates/s alone", STORE, |r| {
            r.store_ceiling.creates_per_second
        }),
    ] {
        chart
            .draw_series(LineSeries::new(series(f), color.stroke_width(2)).point_size(4))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(legend(color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    let bare = runs.iter().map(|r| r.bare_posts_per_second).fold(0.0, f64::max);
    root.draw(&Text::new(
        format!("bare POSTs to the receiver, same runs: {bare:.0}/s (off the scale)"),
        (90, SIZE.1 as i32 - 70),
        ("sans-serif", 14).into_font().color(&BARE),
    ))
    .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn timeline_chart(path: &Path, f: &SustainedFigure) -> Result<(), String> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let max_x = f.series.len().max(1) as f64;
    let max_y = f
        .series
        .iter()
        .map(|s| s.creates.max(s.deliveries) as f64)
        .fold(1.0, f64::max)
        * 1.15;
    let caption = format!(
        "{} clients: {} s warm-up, {} s window, then the drain",
        f.connections, f.warmup_s, f.window_s
    );
    let mut chart = chart(
        &root,
        &caption,
        (max_x, max_y),
        ("seconds since the load started", "per second"),
    )?;
    let webhooks_owed = f.series.iter().map(|s| (s.t as f64, (s.creates * 4) as f64));
    for (name, color, points) in [
        (
            "creates accepted",
            CREATES,
            f.series
                .iter()
                .map(|s| (s.t as f64, s.creates as f64))
                .collect::<Vec<_>>(),
        ),
        ("webhooks owed (4 per create)", STORE, webhooks_owed.collect()),
        (
            "webhooks delivered",
            DELIVERIES,
            f.series.iter().map(|s| (s.t as f64, s.deliveries as f64)).collect(),
        ),
        (
            "creates refused (429)",
            BARE,
            f.series.iter().map(|s| (s.t as f64, s.refused as f64)).collect(),
        ),
    ] {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(legend(color));
    }
    let window_end = (f.warmup_s + f.window_s) as f64;
    for x in [f.warmup_s as f64, window_end] {
        chart
            .draw_series(LineSeries::new(vec![(x, 0.0), (x, max_y)], BLACK.mix(0.4)))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn latency_chart(path: &Path, f: &SustainedFigure) -> Result<(), String> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let sample = &f.create_to_paid_sample_ms;
    let max_x = sample.last().copied().unwrap_or(1.0).max(1.0) * 1.05;
    let caption = format!(
        "Create call → its PAID webhook, {} clients (p50 {:.0} ms, p99 {:.0} ms)",
        f.connections, f.create_to_paid.p50_ms, f.create_to_paid.p99_ms
    );
    let mut chart = chart(
        &root,
        &caption,
        (max_x, 100.0),
        ("milliseconds", "% of requests at most this long"),
    )?;
    let n = sample.len().max(1) as f64;
    chart
        .draw_series(LineSeries::new(
            sample
                .iter()
                .enumerate()
                .map(|(i, ms)| (*ms, (i + 1) as f64 / n * 100.0)),
            DELIVERIES.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
