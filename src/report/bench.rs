//! The benchmark summary: criterion's latest results as one table, with the ratios the product's
//! performance claims are stated in (DESIGN.md §5) and a verdict for each claim.
//!
//! criterion writes, per benchmark, `<dir>/<group>/<function>/<value>/new/benchmark.json` (its
//! id and throughput) and `new/estimates.json` (the statistics of the time per iteration). This
//! module reads every such pair under a directory ([`load`]) and renders Markdown ([`render`]),
//! so the output pastes into docs/benchmarks.md as it is. `benches/store.rs` adds `credpool-stats.json`
//! beside a store case's `new/` (fsyncs per update, lost updates), which is read too.
//!
//! Times are criterion's **median** time per iteration: on a shared, noisy machine a load spike
//! inflates the mean and the regression slope, and the median of the samples is the most robust
//! of criterion's estimates. An iteration is divided by the benchmark's element count (tasks per
//! round, updates per round, simulated requests per run) to give a time per element.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One benchmark's latest result.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchResult {
    pub group: String,
    pub function: String,
    /// The parameter (`64` tasks, `256` writers), if any.
    pub value: Option<String>,
    /// Elements per iteration (1 without a throughput).
    pub elements: u64,
    /// Median time per iteration, ns.
    pub median_ns: f64,
    /// `benches/store.rs`'s counts, for store cases.
    pub store: Option<StoreCounts>,
}

impl BenchResult {
    /// Time per element, ns.
    pub fn ns_per_element(&self) -> f64 {
        self.median_ns / self.elements as f64
    }

    /// Elements per second.
    pub fn per_second(&self) -> f64 {
        1e9 / self.ns_per_element()
    }
}

/// What `benches/store.rs` counted for one store case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct StoreCounts {
    pub acknowledged: u64,
    pub failed: u64,
    pub lost: u64,
    pub corrupt_files: u64,
    pub fsyncs_per_update: f64,
    pub writes_per_update: f64,
}

#[derive(Deserialize)]
struct BenchmarkJson {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    throughput: Option<ThroughputJson>,
}

#[derive(Deserialize)]
enum ThroughputJson {
    Elements(u64),
    Bytes(u64),
    BytesDecimal(u64),
}

#[derive(Deserialize)]
struct EstimatesJson {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Every benchmark result under `dir` (criterion's output folder), sorted by id.
pub fn load(dir: &Path) -> Result<Vec<BenchResult>, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{}: no criterion results here (run `cargo bench` first, or pass --dir)",
            dir.display()
        ));
    }
    let mut found = Vec::new();
    find_new_dirs(dir, &mut found).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut results = Vec::new();
    for new in found {
        results.push(read_one(&new)?);
    }
    results.sort_by(|a, b| {
        (&a.group, &a.function, value_key(&a.value)).cmp(&(&b.group, &b.function, value_key(&b.value)))
    });
    Ok(results)
}

/// Numeric parameters sort as numbers (2 before 16), others as text.
fn value_key(v: &Option<String>) -> (u64, String) {
    match v {
        Some(s) => (s.parse().unwrap_or(u64::MAX), s.clone()),
        None => (0, String::new()),
    }
}

/// The `new/` folders holding a `benchmark.json` (criterion's `report/` folders are skipped).
fn find_new_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") && path.join("benchmark.json").is_file() {
            out.push(path);
        } else if path.file_name().is_none_or(|n| n != "report") {
            find_new_dirs(&path, out)?;
        }
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not criterion's format: {e}", path.display()))
}

fn read_one(new: &Path) -> Result<BenchResult, String> {
    let id: BenchmarkJson = read_json(&new.join("benchmark.json"))?;
    let estimates: EstimatesJson = read_json(&new.join("estimates.json"))?;
    let elements = match id.throughput {
        Some(ThroughputJson::Elements(n) | ThroughputJson::Bytes(n) | ThroughputJson::BytesDecimal(n)) => n.max(1),
        None => 1,
    };
    let stats = new.with_file_name("credpool-stats.json");
    let store = if stats.is_file() {
        Some(read_json(&stats)?)
    } else {
        None
    };
    Ok(BenchResult {
        group: id.group_id,
        function: id.function_id.unwrap_or_default(),
        value: id.value_str,
        elements,
        median_ns: estimates.median.point_estimate,
        store,
    })
}

/// The function each group's ratios are taken against.
fn baseline_of(group: &str) -> Option<&'static str> {
    match group {
        "acquire_complete" | "refresh" => Some("global_mutex"),
        "store_update" => Some("durable"),
        "simulator" => Some("bare_loop"),
        _ => None,
    }
}

fn find<'a>(results: &'a [BenchResult], group: &str, function: &str, value: Option<&str>) -> Option<&'a BenchResult> {
    results
        .iter()
        .find(|r| r.group == group && r.function == function && r.value.as_deref() == value)
}

/// A duration per element, in the unit that fits it.
fn time(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// A rate with thousands separators.
fn rate(per_second: f64) -> String {
    let digits = format!("{:.0}", per_second);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One claim of DESIGN.md §5, checked against the results.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub claim: &'static str,
    pub measured: String,
    /// `None` when a benchmark it needs has no result.
    pub met: Option<bool>,
}

/// The product's performance claims that criterion measures (the memory claim is measured
/// separately; see docs/benchmarks.md).
pub fn verdicts(results: &[BenchResult]) -> Vec<Verdict> {
    let ac = |f: &str, v: &str| find(results, "acquire_complete", f, Some(v));
    let store = |f: &str, v: &str| find(results, "store_update", f, Some(v));
    let sim = |f: &str| find(results, "simulator", f, None);
    let mut out = Vec::new();

    let lf1 = ac("lock_free", "1");
    out.push(Verdict {
        claim: "lock_free acquire + complete, uncontended: ≤ 50 ns",
        measured: lf1.map_or("no result".into(), |r| time(r.ns_per_element())),
        met: lf1.map(|r| r.ns_per_element() <= 50.0),
    });

    let (lf64, gm64, pl64) = (
        ac("lock_free", "64"),
        ac("global_mutex", "64"),
        ac("parking_lot_reference", "64"),
    );
    let ratio = lf64.zip(gm64).map(|(lf, gm)| gm.ns_per_element() / lf.ns_per_element());
    out.push(Verdict {
        claim: "lock_free at 64 tasks: ≥ 10× global_mutex's throughput",
        measured: ratio.map_or("no result".into(), |x| format!("{x:.1}×")),
        met: ratio.map(|x| x >= 10.0),
    });
    let ratio = lf64.zip(pl64).map(|(lf, pl)| lf.ns_per_element() / pl.ns_per_element());
    out.push(Verdict {
        claim: "lock_free at 64 tasks: within 1.5× of the parking_lot reference",
        measured: ratio.map_or("no result".into(), |x| format!("{x:.2}× its time per request")),
        met: ratio.map(|x| x <= 1.5),
    });

    let (gc, du) = (store("group_commit", "256"), store("durable", "256"));
    let ratio = gc.zip(du).map(|(gc, du)| du.ns_per_element() / gc.ns_per_element());
    let lost = gc.and_then(|g| g.store).map(|s| s.lost);
    out.push(Verdict {
        claim: "group_commit at 256 writers: ≥ 150× durable's updates/s, zero lost",
        measured: match (ratio, lost) {
            (Some(x), Some(lost)) => format!("{x:.0}×, {lost} lost"),
            (Some(x), None) => format!("{x:.0}×, lost updates not counted"),
            _ => "no result".into(),
        },
        met: ratio.zip(lost).map(|(x, lost)| x >= 150.0 && lost == 0),
    });

    let (lf, bare) = (sim("lock_free"), sim("bare_loop"));
    out.push(Verdict {
        claim: "simulator (lock_free): ≥ 500,000 simulated requests/s on one core",
        measured: lf.map_or("no result".into(), |r| format!("{}/s", rate(r.per_second()))),
        met: lf.map(|r| r.per_second() >= 500_000.0),
    });
    let share = lf.zip(bare).map(|(lf, bare)| lf.per_second() / bare.per_second());
    out.push(Verdict {
        claim: "simulator (lock_free): ≥ 60% of the bare paused-clock loop",
        measured: share.map_or("no result".into(), |x| format!("{:.0}%", x * 100.0)),
        met: share.map(|x| x >= 0.6),
    });
    out
}

/// The whole summary as Markdown: one table per group, then the claims.
pub fn render(results: &[BenchResult]) -> String {
    let mut out = String::new();
    let mut groups: BTreeMap<&str, Vec<&BenchResult>> = BTreeMap::new();
    for r in results {
        groups.entry(r.group.as_str()).or_default().push(r);
    }
    for (group, rows) in &groups {
        let baseline = baseline_of(group);
        let _ = writeln!(out, "### {group}\n");
        let store = rows.iter().any(|r| r.store.is_some());
        let mut header = String::from("| benchmark | time per element | elements/s |");
        let mut rule = String::from("|---|---:|---:|");
        if let Some(b) = baseline {
            let _ = write!(header, " × {b} |");
            rule.push_str("---:|");
        }
        if store {
            header.push_str(" fsyncs/update | lost |");
            rule.push_str("---:|---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for r in rows {
            let id = match &r.value {
                Some(v) => format!("{}/{v}", r.function),
                None => r.function.clone(),
            };
            let _ = write!(
                out,
                "| {id} | {} | {} |",
                time(r.ns_per_element()),
                rate(r.per_second())
            );
            if let Some(b) = baseline {
                match find(results, group, b, r.value.as_deref()) {
                    Some(base) => {
                        let _ = write!(out, " {:.2} |", base.ns_per_element() / r.ns_per_element());
                    }
                    None => out.push_str(" |"),
                }
            }
            if store {
                match r.store {
                    Some(s) => {
                        let _ = write!(out, " {:.3} | {} |", s.fsyncs_per_update, s.lost);
                    }
                    None => out.push_str(" | |"),
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    let _ = writeln!(out, "### targets\n\n| claim | measured | met |\n|---|---:|:---:|");
    for v in verdicts(results) {
        let met = match v.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "?",
        };
        let _ = writeln!(out, "| {} | {} | {met} |", v.claim, v.measured);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a fake criterion result: `median` ns per iteration of `elements` elements.
    fn fake(dir: &Path, group: &str, function: &str, value: Option<&str>, elements: u64, median: f64) {
        let mut path = dir.join(group).join(function);
        if let Some(v) = value {
            path = path.join(v);
        }
        let new = path.join("new");
        std::fs::create_dir_all(&new).unwrap();
        let id = serde_json::json!({
            "group_id": group, "function_id": function, "value_str": value,
            "throughput": {"Elements": elements}, "full_id": "x", "directory_name": "x", "title": "x"
        });
        std::fs::write(new.join("benchmark.json"), id.to_string()).unwrap();
        let est = serde_json::json!({
            "mean": {"point_estimate": median * 3.0},
            "median": {"point_estimate": median, "standard_error": 1.0}
        });
        std::fs::write(new.join("estimates.json"), est.to_string()).unwrap();
        // criterion's own HTML folder must be ignored.
        std::fs::create_dir_all(path.join("report")).unwrap();
    }

    #[test]
    fn reads_criterion_output_and_checks_each_claim() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fake(d, "acquire_complete", "lock_free", Some("1"), 1, 40.0);
        fake(d, "acquire_complete", "lock_free", Some("64"), 64, 64.0 * 60.0);
        fake(d, "acquire_complete", "global_mutex", Some("64"), 64, 64.0 * 700.0);
        fake(
            d,
            "acquire_complete",
            "parking_lot_reference",
            Some("64"),
            64,
            64.0 * 30.0,
        );
        fake(d, "store_update", "durable", Some("256"), 256, 256.0 * 1_000_000.0);
        fake(d, "store_update", "group_commit", Some("256"), 256, 256.0 * 5_000.0);
        let stats = d.join("store_update/group_commit/256/credpool-stats.json");
        let counts = r#"{"mode":"group_commit","writers":256,"acknowledged":512,"failed":0,"lost":0,
            "corrupt_files":0,"writes":4,"fsyncs":8,"fsyncs_per_update":0.015625,"writes_per_update":0.0078125}"#;
        std::fs::write(stats, counts).unwrap();
        fake(d, "simulator", "bare_loop", None, 50_000, 50_000.0 * 1_000.0);
        fake(d, "simulator", "lock_free", None, 50_000, 50_000.0 * 1_500.0);

        let results = load(d).unwrap();
        assert_eq!(results.len(), 8);
        let lf64 = find(&results, "acquire_complete", "lock_free", Some("64")).unwrap();
        assert_eq!(lf64.ns_per_element(), 60.0, "the median per iteration over 64 elements");

        let v = verdicts(&results);
        let met: Vec<Option<bool>> = v.iter().map(|v| v.met).collect();
        // 40 ns ≤ 50; 700/60 = 11.7× ≥ 10; 60/30 = 2× > 1.5; 200× ≥ 150 and none lost;
        // 666,667/s ≥ 500,000; 67% ≥ 60%.
        assert_eq!(
            met,
            vec![Some(true), Some(true), Some(false), Some(true), Some(true), Some(true)]
        );
        assert_eq!(v[1].measured, "11.7×");
        assert_eq!(v[3].measured, "200×, 0 lost");

        let text = render(&results);
        assert!(
            text.contains("| lock_free/64 | 60.0 ns | 16,666,667 | 11.67 |"),
            "{text}"
        );
        assert!(
            text.contains("| group_commit/256 | 5.00 µs | 200,000 | 200.00 | 0.016 | 0 |"),
            "{text}"
        );
        assert!(text.contains("| lock_free at 64 tasks: within 1.5× of the parking_lot reference | 2.00× its time per request | **no** |"), "{text}");
    }

    #[test]
    fn missing_results_are_unknown_not_failures() {
        let dir = tempfile::tempdir().unwrap();
        fake(dir.path(), "acquire_complete", "lock_free", Some("1"), 1, 80.0);
        let v = verdicts(&load(dir.path()).unwrap());
        assert_eq!(v[0].met, Some(false));
        assert!(v[1..].iter().all(|v| v.met.is_none() && v.measured == "no result"));
    }

    #[test]
    fn a_missing_folder_or_a_foreign_file_is_an_error_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing");
        assert!(load(&missing).unwrap_err().contains("nothing"));
        let new = dir.path().join("g/f/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("benchmark.json"), "{}").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(
            err.contains("benchmark.json") && err.contains("not criterion's format"),
            "{err}"
        );
    }
}
