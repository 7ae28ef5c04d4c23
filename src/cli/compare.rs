//! `credpool compare OLD NEW [--out FILE] [--alpha A] [--noise F] [--resamples B]`: how each
//! percentile, the throughput, the errors and the lost updates moved between two runs, per
//! scenario and strategy, with a verdict over the runs' repetitions; printed, and written as
//! `compare.html` and `compare.json` in NEW's folder (or beside `--out`).

use super::report::run_folder;
use super::{CliResult, Failure};
use crate::analysis::stats::verdict::Rule;
use crate::report::{compare, html, json, verdicts};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The earlier run: a run folder or its summary.json.
    pub old: PathBuf,
    /// The later run: a run folder or its summary.json.
    pub new: PathBuf,
    /// Where to write the HTML comparison (default: NEW/compare.html); compare.json goes beside it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Significance level of the Mann-Whitney test over repetitions.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Noise threshold: relative changes whose interval reaches inside ±this are no_change.
    #[arg(long, default_value_t = 0.02)]
    pub noise: f64,
    /// Bootstrap resamples for the confidence interval.
    #[arg(long, default_value_t = crate::analysis::stats::bootstrap::DEFAULT_RESAMPLES)]
    pub resamples: usize,
}

pub fn run(args: CompareArgs) -> CliResult {
    let valid = args.alpha > 0.0 && args.alpha < 1.0 && args.noise >= 0.0 && args.noise.is_finite();
    if !valid || args.resamples == 0 {
        return Err(Failure::BadInput(format!(
            "--alpha must be in (0, 1), --noise a non-negative fraction (0.02 = 2%), --resamples at least 1: got {}, {}, {}",
            args.alpha, args.noise, args.resamples
        )));
    }
    let old = json::read(&args.old).map_err(Failure::BadInput)?;
    let new = json::read(&args.new).map_err(Failure::BadInput)?;
    let rule = Rule {
        alpha: args.alpha,
        noise: args.noise,
        resamples: args.resamples,
        ..Rule::default()
    };
    let c = compare::compare(
        &old,
        &args.old.display().to_string(),
        &new,
        &args.new.display().to_string(),
        &rule,
    );
    if c.pairs.is_empty() {
        return Err(Failure::BadInput(format!(
            "{} and {} have no scenario and strategy in common: nothing to compare",
            args.old.display(),
            args.new.display()
        )));
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), compare::render_terminal(&c).as_bytes());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| run_folder(&args.new).join(html::compare::FILE));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::BadInput(format!("{}: cannot create the folder: {e}", parent.display())))?;
    }
    html::compare::write(&out, &c, &old, &new)
        .map_err(|e| Failure::BadInput(format!("{}: cannot write the comparison: {e}", out.display())))?;
    let json_out = out.with_file_name(verdicts::FILE);
    verdicts::write(&json_out, &c)
        .map_err(|e| Failure::BadInput(format!("{}: cannot write the comparison: {e}", json_out.display())))?;
    println!("comparison: {} and {}", out.display(), json_out.display());
    Ok(())
}
