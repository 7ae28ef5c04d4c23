//! Reports: the terminal table and the files in a run's output folder.
//!
//! Measurement, analysis and reporting are separate stages (as in criterion.rs): a run produces a
//! [`summary::Summary`]; every output format is a function of that summary alone, one file per
//! format (hyperfine's exporters), so `credpool report DIR` can regenerate them from
//! `summary.json`:
//!
//! - [`json`]: `summary.json`, the complete record (histograms in HdrHistogram's compressed V2
//!   form, `HISTF...`);
//! - [`csv`]: `summary.csv`, one row per scenario × strategy;
//! - [`hgrm`]: `hgrm/<scenario>/<strategy>.hgrm`, HdrHistogram percentile distributions;
//! - [`hlog`]: `hlog/<scenario>/<strategy>.hlog`, HdrHistogram interval logs (runs of two
//!   intervals or more);
//! - [`html`]: `index.html`, with SVG [`charts`]; and [`compare`] for two runs side by side, with
//!   [`verdicts`] (`compare.json`: the statistics over repetitions);
//! - [`terminal`]: the table printed after a run;
//! - [`sweep`]: `sweep.json` and `sweep.html` of a load sweep (`credpool sweep`, `[sweep]`).

pub mod bench;
pub mod charts;
pub mod compare;
pub mod csv;
pub mod findings;
pub mod format;
pub mod hgrm;
pub mod hlog;
pub mod html;
pub mod summary;
pub mod sweep;
pub mod terminal;
pub mod verdicts;

use summary::ResultSummary;

/// The value of a metric by name in a result summary (ms for latencies), for references and
/// comparisons.
pub fn lookup(r: &ResultSummary, metric: &str) -> Option<f64> {
    use crate::metrics::expectation::{Counts, Metric};
    let m: Metric = metric.parse().ok()?;
    let counts = Counts {
        throughput_rps: r.throughput_rps,
        lost_updates: r.lost_updates,
        errors: r.errors,
        refreshes: r.refreshes,
        disables: r.disables,
        store_writes: r.store_writes,
        resurrected: r.resurrected_accounts,
        stale_tokens: r.stale_tokens,
        status_429: r.status_429,
        requests: r.requests,
        deadlocked: r.deadlock.is_some(),
        file_unreadable: !r.file_readable,
        served_disabled: r.served_disabled,
        rotation_skips: r.rotation_skips,
        longest_ban_hours: r.longest_ban_hours,
        usage_unflushed: r.usage_unflushed,
        refreshes_per_expiry: r.herd.as_ref().and_then(|h| h.refreshes_per_expiry).unwrap_or(0.0),
        longest_turn: r.longest_turn,
        account_calls_ratio: r.account_calls_ratio.unwrap_or(f64::INFINITY),
    };
    Some(m.value(
        &r.latency_ms,
        |p| r.phases_ms.get(p.as_str()).copied().unwrap_or_default(),
        &counts,
    ))
}

pub mod json;

/// Writes a report file through a temp file and rename, so a reader never sees half a file.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes every output format of a run into `dir` (summary.json is also written as the run goes,
/// so a crash leaves the data so far).
pub fn write_outputs(dir: &std::path::Path, summary: &summary::Summary) -> std::io::Result<()> {
    json::write(dir, summary)?;
    write_derived(dir, summary)
}

/// Writes every format derived from `summary.json` (all but the JSON itself): what
/// `credpool report` regenerates.
pub fn write_derived(dir: &std::path::Path, summary: &summary::Summary) -> std::io::Result<()> {
    csv::write(dir, summary)?;
    hgrm::write(dir, summary)?;
    hlog::write(dir, summary)?;
    let findings = findings::markdown(&summary.findings);
    if !findings.is_empty() {
        write_file(&dir.join(findings::FILE), findings.as_bytes())?;
    }
    sweep::redraw_linked(dir, summary)?;
    html::write(dir, summary)
}
