//! `credpool run --repeat N` and `credpool compare` over repetitions, through the binary: the
//! repetitions land in summary.json, compare.json holds one entry per comparison with its
//! verdict, a run without repetitions is compared descriptively, and summary.json files written
//! before fairness, herd and repetitions existed are still read by `report` and `compare`.

mod report_common;

use report_common::{credpool_ok, write_scenario};
use std::path::Path;

/// An open load with a lognormal upstream whose median is `median_ms`.
fn scenario(median_ms: u32) -> String {
    format!(
        r#"name = "reps"
seed = 3
mode = "virtual"
strategies = ["global_mutex", "lock_free"]
[pool]
credentials = 2
record_outcomes = false
[load]
model = "open"
rate = 50
requests = 300
[upstream]
api_latency = {{ dist = "lognormal", median = "{median_ms}ms", p99 = "{p99}ms" }}
"#,
        p99 = median_ms * 3
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn repeated_runs_are_compared_by_verdicts_in_compare_json() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    let file = write_scenario(dir.path(), "reps.toml", &scenario(100));
    let run = |out: &Path| {
        credpool_ok(
            dir.path(),
            &[
                "run",
                "-q",
                "--repeat",
                "10",
                "--out",
                out.to_str().unwrap(),
                file.to_str().unwrap(),
            ],
            0,
        )
    };
    run(&old);
    // 10% slower upstream.
    write_scenario(dir.path(), "reps.toml", &scenario(110));
    run(&new);

    let summary = json(&new.join("summary.json"));
    let result = &summary["scenarios"][0]["results"][0];
    let reps = result["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 10);
    assert_eq!(reps[0]["seed"], 3, "repetition 0 keeps the scenario's seed");
    assert_eq!(
        reps[0]["latency_ms"], result["latency_ms"],
        "the result describes repetition 0"
    );
    let seeds: std::collections::HashSet<u64> = reps.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds.len(), 10);
    assert!(result["fairness"]["jain_accounts"].is_f64());
    assert!(result["herd"]["max_waiters"].is_u64());
    assert_eq!(result["self_audit"]["dropped"]["total"], 0);

    let out = credpool_ok(
        dir.path(),
        &["compare", old.to_str().unwrap(), new.to_str().unwrap()],
        0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdicts over repetitions"), "{text}");
    let c = json(&new.join("compare.json"));
    assert!(c["method"]["verdict_rule"].as_str().unwrap().contains("Mann-Whitney"));
    assert_eq!(c["method"]["resamples"], 10_000);
    let entries = c["comparisons"].as_array().unwrap();
    assert_eq!(entries.len(), 2 * 6, "2 strategies x 6 figures");
    for e in entries {
        assert_eq!(e["old_values"].as_array().unwrap().len(), 10);
        assert!(e["p_value"].is_f64() && e["change"]["low"].is_f64(), "{e}");
    }
    let lock_free_mean = entries
        .iter()
        .find(|e| e["strategy"] == "lock_free" && e["figure"] == "mean")
        .unwrap();
    assert_eq!(lock_free_mean["verdict"], "regressed", "{lock_free_mean}");
    let html = std::fs::read_to_string(new.join("compare.html")).unwrap();
    assert!(html.contains("Verdicts over repetitions") && html.contains("regressed"));
    assert!(html.contains("not independent"));
    let page = std::fs::read_to_string(new.join("index.html")).unwrap();
    assert!(page.contains("Fairness, refresh herd, self-audit"));
}

#[test]
fn a_run_without_repetitions_is_compared_descriptively_and_old_files_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/summary-before-issue-17.json");
    let old = dir.path().join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::copy(&fixture, old.join("summary.json")).unwrap();
    // `credpool report` redraws a file without fairness, herd, self-audit or repetitions.
    credpool_ok(dir.path(), &["report", old.to_str().unwrap()], 0);
    let page = std::fs::read_to_string(old.join("index.html")).unwrap();
    assert!(page.contains("seed-2-first-token-expired"));
    assert!(
        !page.contains("Fairness, refresh herd, self-audit"),
        "no figures, no section"
    );

    let new = dir.path().join("new");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/seed-2-first-token-expired.toml");
    credpool_ok(
        dir.path(),
        &[
            "run",
            "-q",
            "--strategy",
            "global_mutex,lock_free",
            "--out",
            new.to_str().unwrap(),
            scenarios.to_str().unwrap(),
        ],
        0,
    );
    let out = credpool_ok(
        dir.path(),
        &["compare", old.to_str().unwrap(), new.to_str().unwrap()],
        0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("descriptive only"), "{text}");
    let c = json(&new.join("compare.json"));
    for e in c["comparisons"].as_array().unwrap() {
        assert_eq!(e["verdict"], "descriptive", "{e}");
        assert!(e["p_value"].is_null());
    }
}

#[test]
fn bad_repeat_and_compare_options_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = report_common::credpool(
        dir.path(),
        &["run", "--repeat", "0"],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/summary-before-issue-17.json");
    let f = fixture.to_str().unwrap();
    let out = report_common::credpool(
        dir.path(),
        &[
            "compare",
            f,
            f,
            "--alpha",
            "1.5",
            "--out",
            dir.path().join("c.html").to_str().unwrap(),
        ],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--alpha must be in (0, 1)"));
}

/// `summary.json` without what differs from one execution to the next: wall times, when it
/// started, the command line (it names the output folder).
fn figures(mut v: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for key in ["wall_time_s", "started_at", "command"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn repetitions_give_the_same_figures_whatever_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), "reps.toml", &scenario(100));
    let run = |jobs: &str| {
        let out = dir.path().join(format!("jobs-{jobs}"));
        let args = [
            "run",
            "-q",
            "--repeat",
            "4",
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
            file.to_str().unwrap(),
        ];
        credpool_ok(dir.path(), &args, 0);
        json(&out.join("summary.json"))
    };
    let (one, two) = (run("1"), run("2"));
    assert_eq!(
        one["scenarios"][0]["results"][0]["repetitions"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(figures(one), figures(two), "the job pool changed a figure");
    // A zero is refused as bad usage.
    credpool_ok(dir.path(), &["run", "-q", "--jobs", "0", file.to_str().unwrap()], 2);
}
