//! PNG charts from results files (`--json`): post→receive latency by
//! percentile for every fanout run, and server RSS per connection for every
//! idle run. Text is drawn with DejaVu Sans from Debian's `fonts-dejavu-core`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;

use crate::run::{Load, RunResult};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn colour(target: &str) -> RGBColor {
    match target {
        "roomcast" => RGBColor(0x1f, 0x77, 0xb4),
        "reference" => RGBColor(0xd6, 0x27, 0x28),
        t if t.starts_with("roomcast-split") => RGBColor(0x2c, 0xa0, 0x2c),
        _ => RGBColor(0x55, 0x55, 0x55),
    }
}

fn load_font() -> anyhow::Result<()> {
    let bytes = std::fs::read(FONT)
        .with_context(|| format!("{FONT} (apt-get install fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    Ok(())
}

/// Draw every chart the inputs allow into `out_dir`.
pub fn draw(inputs: &[PathBuf], out_dir: &Path) -> anyhow::Result<()> {
    load_font()?;
    let mut runs: Vec<RunResult> = Vec::new();
    for p in inputs {
        let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
        let mut these: Vec<RunResult> =
            serde_json::from_str(&text).with_context(|| p.display().to_string())?;
        runs.append(&mut these);
    }
    std::fs::create_dir_all(out_dir)?;
    let fanout: Vec<&RunResult> = runs.iter().filter(|r| r.expected > 0).collect();
    // One chart per (sockets, post rate) setting.
    let mut groups: Vec<(String, Vec<&RunResult>)> = Vec::new();
    for r in fanout {
        let rate = match r.params.load {
            Load::Fanout {
                rate: Some(rate), ..
            } => format!("{rate} posts/s"),
            _ => "max posts/s".to_owned(),
        };
        let key = format!("{} sockets, {rate}", r.params.conns);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    for (key, group) in &groups {
        let file: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = out_dir.join(format!("latency-{}.png", file.replace("--", "-")));
        latency_chart(&path, key, group)?;
        eprintln!("wrote {}", path.display());
    }
    let idle: Vec<&RunResult> = runs.iter().filter(|r| r.scenario == "idle").collect();
    if !idle.is_empty() {
        let path = out_dir.join("memory-per-connection.png");
        memory_chart(&path, &idle)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn latency_chart(path: &Path, setting: &str, runs: &[&RunResult]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let labels: Vec<String> = runs[0]
        .latency
        .curve
        .iter()
        .map(|(q, _)| format!("p{q}"))
        .collect();
    let max = runs
        .iter()
        .flat_map(|r| r.latency.curve.iter().map(|(_, v)| *v))
        .fold(1.0_f64, f64::max);
    let min = runs
        .iter()
        .flat_map(|r| r.latency.curve.iter().map(|(_, v)| *v))
        .fold(f64::INFINITY, f64::min)
        .max(0.01);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("post → receiveMessage latency, {setting}"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..labels.len() - 1, (min * 0.8..max * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(labels.len())
        .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
        .y_desc("ms (log scale)")
        .draw()?;
    let mut labelled = Vec::new();
    for r in runs {
        let c = colour(&r.target);
        let series = chart.draw_series(LineSeries::new(
            r.latency
                .curve
                .iter()
                .enumerate()
                .map(|(i, (_, v))| (i, v.max(min))),
            c.stroke_width(2),
        ))?;
        // One legend entry per target, however many rounds it ran.
        if !labelled.contains(&r.target) {
            labelled.push(r.target.clone());
            series.label(&r.target).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
            });
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn memory_chart(path: &Path, runs: &[&RunResult]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = runs
        .iter()
        .map(|r| r.rss_per_conn_kib)
        .fold(1.0_f64, f64::max);
    let labels: Vec<String> = runs
        .iter()
        .map(|r| format!("{} ({} conns)", r.target, r.params.conns))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption("server RSS per idle connection", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..runs.len(), 0.0..max * 1.2)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(runs.len() + 1)
        .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
        .y_desc("KiB per connection")
        .draw()?;
    chart.draw_series(runs.iter().enumerate().map(|(i, r)| {
        let c = colour(&r.target);
        Rectangle::new([(i, 0.0), (i + 1, r.rss_per_conn_kib)], c.mix(0.8).filled())
    }))?;
    root.present()?;
    Ok(())
}
