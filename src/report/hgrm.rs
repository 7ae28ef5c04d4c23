//! `hgrm/<scenario>/<strategy>.hgrm`: each result's latency distribution in HdrHistogram's
//! percentile-distribution text format (what Java HdrHistogram's `outputPercentileDistribution`
//! prints, values in ms), so HdrHistogram's own plotting tools can read and overlay them.
//!
//! Written from the V2 histogram in the summary (`histogram_v2`), so `credpool report DIR`
//! rewrites them from `summary.json` alone. The format itself is
//! [`LatencyHistogram::to_hgrm`], tested byte for byte against Java's output.

use super::summary::Summary;
use crate::metrics::LatencyHistogram;
use std::path::{Path, PathBuf};

pub const DIR: &str = "hgrm";

/// `name` as a file name: ASCII letters, digits, `.`, `_` and `-` kept, anything else `_`.
pub fn file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() {
        "unnamed".into()
    } else {
        s
    }
}

/// The `.hgrm` path of every result, relative to the run folder, indexed like
/// `summary.scenarios[i].results[j]`. Scenarios whose names map to the same folder get `-2`, `-3`.
pub fn paths(summary: &Summary) -> Vec<Vec<PathBuf>> {
    paths_in(summary, DIR, "hgrm")
}

/// Per-result paths as [`paths`] lays them out, under `dir` with extension `ext` (the interval
/// logs use the same layout).
pub fn paths_in(summary: &Summary, dir: &str, ext: &str) -> Vec<Vec<PathBuf>> {
    let mut used = std::collections::HashSet::new();
    summary
        .scenarios
        .iter()
        .map(|s| {
            let base = file_name(&s.name);
            let mut folder = base.clone();
            let mut k = 2;
            while !used.insert(folder.clone()) {
                folder = format!("{base}-{k}");
                k += 1;
            }
            s.results
                .iter()
                .map(|r| {
                    Path::new(dir)
                        .join(&folder)
                        .join(format!("{}.{ext}", file_name(&r.strategy)))
                })
                .collect()
        })
        .collect()
}

/// Writes every result's `.hgrm` under `dir`.
pub fn write(dir: &Path, summary: &Summary) -> std::io::Result<()> {
    for (s, paths) in summary.scenarios.iter().zip(paths(summary)) {
        for (r, rel) in s.results.iter().zip(paths) {
            let h = LatencyHistogram::from_base64_v2(&r.histogram_v2)
                .map_err(|e| std::io::Error::other(format!("{}/{}: histogram_v2: {e}", s.name, r.strategy)))?;
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            crate::report::write_file(&path, h.to_hgrm().as_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("seed-1 burst/100"), "seed-1_burst_100");
        assert_eq!(file_name("../etc"), "_etc");
        assert_eq!(file_name(".."), "unnamed");
        assert_eq!(file_name("global_mutex"), "global_mutex");
    }
}
