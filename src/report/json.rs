//! `summary.json`: written after every scenario, so a crash mid-run still leaves the data so far.

use super::summary::Summary;
use std::path::Path;

pub const FILE: &str = "summary.json";

pub fn write(dir: &Path, summary: &Summary) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    crate::report::write_file(&dir.join(FILE), text.as_bytes())
}

/// Reads a run's `summary.json` back (for `credpool report` and `credpool compare`).
pub fn read(dir: &Path) -> Result<Summary, String> {
    let path = if dir.is_dir() {
        dir.join(FILE)
    } else {
        dir.to_path_buf()
    };
    if dir.is_dir() && !path.exists() {
        return Err(format!(
            "{}: no {FILE} in this folder: expected a credpool run folder (such as reports/<run id>) or a {FILE}",
            dir.display()
        ));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {}", path.display(), crate::input_error::io_message(&e)))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a credpool summary: {}",
            path.display(),
            e.line(),
            e.column(),
            e
        )
    })
}
