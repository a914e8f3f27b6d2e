//! Output: one table per run, an A/B summary (median per target, and the
//! ratio roomcast/reference with its min–max over paired rounds).

use std::collections::BTreeMap;

use crate::run::RunResult;

/// Print one run's figures.
pub fn print_run(r: &RunResult) {
    println!(
        "\n{} — {} ({} conns, {} rooms)",
        r.scenario, r.target, r.params.conns, r.params.rooms
    );
    for (k, v) in rows(r) {
        println!("  {k:<34} {v:>14}");
    }
}

fn rows(r: &RunResult) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        (
            "server RSS before connects (MiB)",
            format!("{:.1}", r.rss_before as f64 / 1048576.0),
        ),
        (
            "server RSS loaded (MiB)",
            format!("{:.1}", r.rss_loaded as f64 / 1048576.0),
        ),
        (
            "RSS per connection (KiB)",
            format!("{:.2}", r.rss_per_conn_kib),
        ),
        ("connect+join all (s)", format!("{:.2}", r.connect_secs)),
        (
            "connect+join p50 / p99 (ms)",
            format!(
                "{:.1} / {:.1}",
                r.connect_join.p50_ms, r.connect_join.p99_ms
            ),
        ),
    ];
    if r.expected > 0 {
        rows.extend([
            ("posts/s", format!("{:.0}", r.posts_per_sec)),
            (
                "server CPU per post (µs)",
                format!("{:.0}", r.cpu_us_per_post),
            ),
            (
                "engine CPU per post (µs)",
                r.engine_cpu_us_per_post
                    .map_or_else(|| "–".to_owned(), |n| format!("{n:.0}")),
            ),
            (
                "outbox backlog max (rows)",
                r.backlog_max_rows
                    .map_or_else(|| "–".to_owned(), |n| n.to_string()),
            ),
            ("deliveries/s", format!("{:.0}", r.deliveries_per_sec)),
            ("latency p50 (ms)", format!("{:.2}", r.latency.p50_ms)),
            ("latency p99 (ms)", format!("{:.2}", r.latency.p99_ms)),
            ("latency p99.9 (ms)", format!("{:.2}", r.latency.p999_ms)),
            ("latency max (ms)", format!("{:.2}", r.latency.max_ms)),
            (
                "server CPU-s per million deliveries",
                format!("{:.2}", r.cpu_secs_per_million),
            ),
            (
                "delivered / expected",
                format!("{}/{}", r.delivered, r.expected),
            ),
            (
                "lost / duplicated",
                format!("{} / {}", r.lost, r.duplicates),
            ),
        ]);
    }
    if r.expected > 0 && split(r) {
        rows.push((
            "gateway CPU-s per million deliveries",
            format!("{:.2}", r.gateway_cpu_secs_per_million),
        ));
    }
    rows.push((
        "post errors / disconnects",
        format!("{} / {}", r.post_errors, r.disconnects),
    ));
    rows
}

/// Whether the run measured more than one server process (the gateway's
/// CPU is then a figure of its own).
fn split(r: &RunResult) -> bool {
    r.target.starts_with("roomcast-split-")
}

/// The metrics compared across targets, with whether lower is better.
fn metrics(r: &RunResult) -> Vec<(&'static str, f64)> {
    let mut m = vec![
        ("RSS per connection (KiB)", r.rss_per_conn_kib),
        ("connect+join all (s)", r.connect_secs),
    ];
    if r.expected > 0 {
        m.extend([
            ("posts/s", r.posts_per_sec),
            ("server CPU per post (µs)", r.cpu_us_per_post),
            (
                "engine CPU per post (µs)",
                r.engine_cpu_us_per_post.unwrap_or(f64::NAN),
            ),
            (
                "outbox backlog max (rows)",
                r.backlog_max_rows.map_or(f64::NAN, |n| n as f64),
            ),
            ("deliveries/s", r.deliveries_per_sec),
            ("latency p50 (ms)", r.latency.p50_ms),
            ("latency p99 (ms)", r.latency.p99_ms),
            ("latency max (ms)", r.latency.max_ms),
            ("CPU-s per million deliveries", r.cpu_secs_per_million),
            (
                "gateway CPU-s per million deliveries",
                r.gateway_cpu_secs_per_million,
            ),
            ("lost + duplicated", (r.lost + r.duplicates) as f64),
        ]);
    }
    m
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Print medians per target and, when the reference ran, each other
/// target's ratio to it (median over paired rounds, with min–max).
pub fn print_summary(results: &[RunResult]) {
    let mut by_target: BTreeMap<&str, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        by_target.entry(&r.target).or_default().push(r);
    }
    if by_target.is_empty() {
        return;
    }
    let first = &results[0];
    println!(
        "\n## {} summary ({} conns, {} rooms, {} round(s))",
        first.scenario,
        first.params.conns,
        first.params.rooms,
        results.len() / by_target.len()
    );
    let names: Vec<&str> = by_target.keys().copied().collect();
    let compared: Vec<&str> = if by_target.contains_key("reference") {
        names
            .iter()
            .copied()
            .filter(|n| *n != "reference")
            .collect()
    } else {
        Vec::new()
    };
    print!("| metric |");
    for n in &names {
        print!(" {n} (median) |");
    }
    for n in &compared {
        print!(" {n}/reference (median, min–max) |");
    }
    println!();
    println!("|---|{}", "---|".repeat(names.len() + compared.len()));
    let any_split = results.iter().any(split);
    for (i, (label, _)) in metrics(first).iter().enumerate() {
        if label.starts_with("gateway") && !any_split {
            continue;
        }
        print!("| {label} |");
        for n in &names {
            let v = median(by_target[n].iter().map(|r| metrics(r)[i].1).collect());
            print!(" {v:.2} |");
        }
        for n in &compared {
            let ratios: Vec<f64> = by_target[n]
                .iter()
                .zip(&by_target["reference"])
                .map(|(a, b)| metrics(a)[i].1 / metrics(b)[i].1)
                .filter(|x| x.is_finite())
                .collect();
            if ratios.is_empty() {
                print!(" – |");
            } else {
                let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                print!(" {:.2} ({lo:.2}–{hi:.2}) |", median(ratios.clone()));
            }
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
