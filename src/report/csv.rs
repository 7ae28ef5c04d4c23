//! `summary.csv`: one row per scenario × strategy with the headline figures, for spreadsheets
//! and scripts. Latencies in ms with nanosecond resolution; the full record is `summary.json`.

use super::summary::{ResultSummary, ScenarioSummary, Summary};
use crate::metrics::Phase;
use std::path::Path;

pub const FILE: &str = "summary.csv";

/// A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number to nanosecond resolution (for ms) without trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

const STATS: [&str; 7] = ["min", "mean", "p50", "p90", "p99", "p999", "max"];

fn stats(s: &crate::metrics::histogram::LatencyStats) -> [f64; 7] {
    [s.min, s.mean, s.p50, s.p90, s.p99, s.p999, s.max]
}

fn header() -> String {
    let mut cols: Vec<String> = [
        "scenario",
        "strategy",
        "mode",
        "seed",
        "load_model",
        "closed_loop",
        "store",
        "credentials",
        "requests",
        "errors",
        "status_429",
        "exhausted",
        "throughput_rps",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cols.extend(STATS.iter().map(|s| format!("latency_{s}_ms")));
    for p in Phase::ALL {
        cols.push(format!("{}_p50_ms", p.as_str()));
        cols.push(format!("{}_p99_ms", p.as_str()));
    }
    cols.extend(
        [
            "refreshes",
            "refresh_failures",
            "disables",
            "store_updates",
            "store_writes",
            "fsyncs",
            "lost_updates",
            "resurrected_accounts",
            "deadlock",
            "expectations_failed",
            "scenario_sha256",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    cols.join(",")
}

fn row(s: &ScenarioSummary, r: &ResultSummary) -> String {
    let mut cols = vec![
        field(&s.name),
        field(&r.strategy),
        field(&r.mode),
        s.seed.to_string(),
        field(&s.load_model),
        s.closed_loop.to_string(),
        field(&s.store),
        s.credentials.to_string(),
        r.requests.to_string(),
        r.errors.to_string(),
        r.status_429.to_string(),
        r.exhausted.to_string(),
        num(r.throughput_rps),
    ];
    cols.extend(stats(&r.latency_ms).iter().map(|v| num(*v)));
    for p in Phase::ALL {
        let st = r.phases_ms.get(p.as_str()).copied().unwrap_or_default();
        cols.push(num(st.p50));
        cols.push(num(st.p99));
    }
    cols.extend([
        r.refreshes.to_string(),
        r.refresh_failures.to_string(),
        r.disables.to_string(),
        r.store_updates.to_string(),
        r.store_writes.to_string(),
        r.fsyncs.to_string(),
        r.lost_updates.to_string(),
        r.resurrected_accounts.to_string(),
        r.deadlock.is_some().to_string(),
        r.failed_expectations().count().to_string(),
        field(&s.sha256),
    ]);
    cols.join(",")
}

/// The whole file.
pub fn render(summary: &Summary) -> String {
    let mut out = header();
    out.push('\n');
    for s in &summary.scenarios {
        for r in &s.results {
            out.push_str(&row(s, r));
            out.push('\n');
        }
    }
    out
}

pub fn write(dir: &Path, summary: &Summary) -> std::io::Result<()> {
    crate::report::write_file(&dir.join(FILE), render(summary).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("plain"), "plain");
        assert_eq!(num(2035.0000000001), "2035");
        assert_eq!(num(0.03125), "0.03125");
        assert_eq!(num(0.0), "0");
    }
}
