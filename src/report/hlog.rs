//! `hlog/<scenario>/<strategy>.hlog`: each result's latency per interval of the run as an
//! HdrHistogram interval log (log format 1.3, as Java's `HistogramLogWriter` writes it), which
//! `HistogramLogReader`, `HistogramLogProcessor` and HistogramLogAnalyzer read: a latency that
//! moves during a run (a refresh storm, a ban wave) shows as it moves, which one distribution
//! for the whole run hides.
//!
//! Written from `interval_histograms` in the summary (so `credpool report DIR` rewrites them),
//! for results with at least two intervals: a shorter run has no intervals to tell apart.
//! Timestamps are seconds after the run began (`BaseTime` and `StartTime` are the run's
//! `started_at`); values are nanoseconds, `Interval_Max` milliseconds (the divisor is written in
//! the header, as the Rust and Java writers do).

use super::hgrm::paths_in;
use super::summary::{ResultSummary, Summary};
use crate::metrics::LatencyHistogram;
use std::fmt::Write;
use std::path::Path;

pub const DIR: &str = "hlog";
/// Values are recorded in ns; `Interval_Max` is written in ms.
const MAX_VALUE_DIVISOR: f64 = 1e6;

/// Writes the `.hlog` of every result that has two intervals or more.
pub fn write(dir: &Path, summary: &Summary) -> std::io::Result<()> {
    let base_s = crate::model::time::from_rfc3339(&summary.started_at).map_or(0.0, |ms| ms as f64 / 1e3);
    for (s, paths) in summary.scenarios.iter().zip(paths_in(summary, DIR, "hlog")) {
        for (r, rel) in s.results.iter().zip(paths) {
            if r.interval_histograms.len() < 2 {
                continue;
            }
            let text = log_text(r, base_s)
                .map_err(|e| std::io::Error::other(format!("{}/{}: interval_histograms: {e}", s.name, r.strategy)))?;
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            crate::report::write_file(&path, text.as_bytes())?;
        }
    }
    Ok(())
}

/// One result's interval log.
pub fn log_text(r: &ResultSummary, base_s: f64) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#[credpool: scenario {}, strategy {}, mode {}]",
        r.scenario, r.strategy, r.mode
    );
    out.push_str("#[Histogram log format version 1.3]\n");
    let _ = writeln!(out, "#[StartTime: {base_s:.3} (seconds since epoch)]");
    let _ = writeln!(out, "#[BaseTime: {base_s:.3} (seconds since epoch)]");
    let _ = writeln!(out, "#[MaxValueDivisor: {MAX_VALUE_DIVISOR:.3}]");
    out.push_str("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
    for i in &r.interval_histograms {
        let max_ms = LatencyHistogram::from_base64_v2(&i.histogram)?.inner().max() as f64 / MAX_VALUE_DIVISOR;
        let _ = writeln!(out, "{:.3},{:.3},{max_ms:.3},{}", i.start_s, i.length_s, i.histogram);
    }
    Ok(out)
}
