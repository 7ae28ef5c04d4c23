//! credpool's HdrHistogram output read by an implementation credpool did not write: Java
//! HdrHistogram (Debian's `libhdrhistogram-java`, which `scripts/test` installs with a JDK). Every
//! histogram in a run's `summary.json` (compressed V2, `HISTF...`) and every interval log
//! (`hlog/`) must decode there to the counts, extremes and percentiles credpool computes.

use std::path::{Path, PathBuf};
use std::process::Command;

const JAR: &str = "/usr/share/java/hdrhistogram.jar";

/// Runs `tests/hdr_interop/Decode.java` (source-file mode) and returns its lines.
fn java(args: &[&str]) -> Vec<String> {
    assert!(
        Path::new(JAR).exists(),
        "{JAR} is missing: the README's test command (scripts/test) installs libhdrhistogram-java and default-jdk-headless"
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hdr_interop/Decode.java");
    let out = Command::new("java")
        .args(["-cp", JAR])
        .arg(&source)
        .args(args)
        .output()
        .expect("java runs (scripts/test installs default-jdk-headless)");
    assert!(
        out.status.success(),
        "java failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A run of a scenario long enough to have intervals, into a fresh folder.
fn run_scenario() -> (tempfile::TempDir, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/open-load-40rps.toml");
    let status = Command::new(env!("CARGO_BIN_EXE_credpool"))
        .args([
            "run",
            "--quiet",
            "--strategy",
            "lock_free",
            "--strategy",
            "global_mutex",
            "--out",
        ])
        .arg(out.path())
        .arg(&scenario)
        .status()
        .unwrap();
    assert!(status.success());
    let summary = serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    (out, summary)
}

/// What credpool's own decoding says of a payload, in the order Decode.java prints.
fn figures(payload: &str) -> String {
    let h = credpool::metrics::LatencyHistogram::from_base64_v2(payload).unwrap();
    let h = h.inner();
    let q = |p: f64| h.value_at_quantile(p);
    format!(
        "{} {} {} {} {} {} {}",
        h.len(),
        h.min(),
        h.max(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999)
    )
}

fn results(summary: &serde_json::Value) -> Vec<&serde_json::Value> {
    summary["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["results"].as_array().unwrap())
        .collect()
}

#[test]
fn java_hdrhistogram_decodes_every_payload_in_summary_json() {
    let (out, summary) = run_scenario();
    let mut payloads = Vec::new();
    for r in results(&summary) {
        payloads.push(r["histogram_v2"].as_str().unwrap().to_string());
        for p in r["phase_histograms_v2"].as_object().unwrap().values() {
            payloads.push(p.as_str().unwrap().to_string());
        }
        for i in r["interval_histograms"].as_array().unwrap() {
            payloads.push(i["histogram"].as_str().unwrap().to_string());
        }
    }
    assert!(payloads.len() > 20, "{}", payloads.len());
    assert!(
        payloads.iter().all(|p| p.starts_with("HISTF")),
        "compressed V2 expected"
    );
    let file: PathBuf = out.path().join("payloads.txt");
    std::fs::write(&file, payloads.join("\n")).unwrap();
    let decoded = java(&["payloads", file.to_str().unwrap()]);
    assert_eq!(decoded.len(), payloads.len());
    for (p, j) in payloads.iter().zip(&decoded) {
        assert_eq!(j, &figures(p), "Java and credpool disagree on {p}");
    }
    // And Java counts every request of the run in the first result's total histogram.
    let first = results(&summary)[0];
    let count: u64 = decoded[0].split(' ').next().unwrap().parse().unwrap();
    assert_eq!(count, first["requests"].as_u64().unwrap());
}

#[test]
fn java_reads_the_interval_logs() {
    let (out, summary) = run_scenario();
    assert_eq!(java_reads_every_interval_log(out.path(), &summary), 2);
}

/// A `[target]` scenario: the reference proxy (tests/reference_proxy) under an open load of 3 s.
fn target_scenario(dir: &Path) -> PathBuf {
    let proxy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference_proxy/proxy.py");
    let text = format!(
        r#"name = "target-hlog"
seed = 1

[pool]
credentials = 4
calls_per_rotation = 5

[load]
model = "open"
requests = 600
rate = 200

[upstream]
api_latency = "5ms"

[target]
name = "refproxy"
command = ["python3", "{}", "--port={{port}}", "--api-url={{api_url}}", "--token-url={{token_url}}", "--accounts={{accounts}}", "--calls-per-rotation=5"]
ready = "/healthz"
timeout = "1500ms"
protocol = "openai"
"#,
        proxy.display()
    );
    let path = dir.join("target-hlog.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn java_reads_a_target_runs_interval_log() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = target_scenario(dir.path());
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_credpool"))
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let modes: Vec<&str> = results(&summary).iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["target"]);
    assert_eq!(java_reads_every_interval_log(&out, &summary), 1);
}

/// Has Java read the `.hlog` of every result in `summary` (each must have intervals) and checks
/// each interval against `interval_histograms`; returns how many logs it read.
fn java_reads_every_interval_log(out: &Path, summary: &serde_json::Value) -> usize {
    let started = summary["started_at"].as_str().unwrap();
    let base_s = credpool::model::time::from_rfc3339(started).unwrap() as f64 / 1e3;
    let mut logs = 0;
    for r in results(summary) {
        let intervals = r["interval_histograms"].as_array().unwrap();
        assert!(intervals.len() >= 2, "the run lasts several seconds");
        let path = out
            .join("hlog")
            .join(r["scenario"].as_str().unwrap())
            .join(format!("{}.hlog", r["strategy"].as_str().unwrap()));
        let lines = java(&["hlog", path.to_str().unwrap()]);
        assert_eq!(lines.len(), intervals.len(), "{}", path.display());
        let mut total = 0;
        for (line, i) in lines.iter().zip(intervals) {
            let (start, rest) = line.split_once(' ').unwrap();
            let (end, figs) = rest.split_once(' ').unwrap();
            let start: f64 = start.parse().unwrap();
            let end: f64 = end.parse().unwrap();
            let want_start = base_s + i["start_s"].as_f64().unwrap();
            assert!((start - want_start).abs() < 0.002, "{start} vs {want_start}");
            assert!((end - start - i["length_s"].as_f64().unwrap()).abs() < 0.002);
            assert_eq!(figs, figures(i["histogram"].as_str().unwrap()));
            let count: u64 = figs.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(count, i["count"].as_u64().unwrap());
            total += count;
        }
        assert_eq!(
            total,
            r["requests"].as_u64().unwrap(),
            "the intervals hold every request"
        );
        logs += 1;
    }
    logs
}
