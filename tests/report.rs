//! The report a run writes: no secret reaches it, it is self-contained and escaped, its size does
//! not grow with the number of requests, `credpool report` reproduces it from summary.json,
//! `credpool compare` shows what moved, and bad input is refused with exit code 2.

mod report_common;

use report_common::{credpool, credpool_ok, files_under, open_load, write_scenario};
use std::path::Path;
use std::time::Duration;

/// Token shapes that must never reach a report: the simulator's tokens and Google's formats.
const SECRET_MARKERS: [&str; 4] = ["sim-access-", "sim-refresh-", "ya29.", "1//0"];

/// The files under `dir` that contain any secret marker, with the marker.
fn leaks(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for m in SECRET_MARKERS {
            if text.contains(m) {
                found.push(format!("{}: {m}", f.display()));
            }
        }
    }
    found
}

/// Tokens are issued and refreshed (an expired token, a revoked one that gets disabled), in
/// virtual time and over real HTTP with real files; the scenario's text needs escaping.
const TOKENS_VIRTUAL: &str = r#"
name = "tokens <virtual> & \"quotes\""
description = "refresh, a revoked refresh token, 429s: <b>not bold</b>"
mode = "virtual"
strategies = ["global_mutex"]
[pool]
credentials = 3
calls_per_rotation = 10
expired = [0, 1]
failing_refresh = [1]
store = "locked"
[load]
model = "burst"
requests = 60
[costs]
check_quota = "1ms"
[upstream]
api_latency = "2ms"
refresh_latency = "20ms"
status_429_rate = 0.2
"#;

const TOKENS_REAL: &str = r#"
name = "tokens-real"
mode = "real"
strategies = ["global_mutex"]
[pool]
credentials = 2
expired = [0]
store = "durable"
[load]
model = "burst"
requests = 20
[costs]
check_quota = "1ms"
[upstream]
api_latency = "2ms"
refresh_latency = "20ms"
"#;

/// Runs `scenario` and checks that no token reached the output folder or the terminal, after
/// checking that the run did handle tokens (it refreshed at least one).
fn run_and_check_for_tokens(scenario: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let a = write_scenario(dir.path(), "a.toml", scenario);
    let out = dir.path().join("out");
    let run = credpool(
        dir.path(),
        &["run", "--quiet", "--out", out.to_str().unwrap(), a.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(
        matches!(run.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for m in SECRET_MARKERS {
        assert!(
            !String::from_utf8_lossy(&run.stdout).contains(m) && !String::from_utf8_lossy(&run.stderr).contains(m),
            "{m} printed"
        );
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let result = summary["scenarios"][0]["results"][0].clone();
    assert!(
        result["refreshes"].as_u64().unwrap() >= 1,
        "the run refreshed a token: {result}"
    );

    let files = files_under(&out);
    for expected in ["summary.json", "summary.csv", "index.html"] {
        assert!(out.join(expected).is_file(), "{expected} written");
    }
    assert_eq!(
        files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "hgrm"))
            .count(),
        1,
        "{files:?}"
    );
    assert_eq!(leaks(&out), Vec::<String>::new());

    // The check itself finds a token when one is there (negative control).
    std::fs::write(out.join("planted.txt"), "refresh_token = \"1//0gPLANTED\"").unwrap();
    assert_eq!(leaks(&out).len(), 1);
    result
}

#[test]
fn no_token_reaches_the_output_folder() {
    let result = run_and_check_for_tokens(TOKENS_VIRTUAL);
    assert!(
        result["refresh_failures"].as_u64().unwrap() >= 1,
        "the revoked token failed to refresh"
    );
}

/// Real mode: tokens issued over HTTP by the wiremock token endpoint, a real accounts.toml.
#[test]
fn no_token_reaches_the_output_folder_in_real_mode() {
    let result = run_and_check_for_tokens(TOKENS_REAL);
    assert_eq!(result["mode"], "real");
}

#[test]
fn the_page_is_self_contained_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_scenario(dir.path(), "a.toml", TOKENS_VIRTUAL);
    let out = dir.path().join("out");
    credpool_ok(
        dir.path(),
        &["run", "--quiet", "--out", out.to_str().unwrap(), a.to_str().unwrap()],
        0,
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    // Nothing loaded from anywhere: no script, stylesheet link, image, frame or CSS import.
    for forbidden in ["<script", "<link", "<img", "<iframe", "@import", "url(", "src="] {
        assert!(!html.contains(forbidden), "index.html contains {forbidden}");
    }
    // The only absolute URL is the SVG namespace.
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(
        urls,
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "only SVG namespaces"
    );
    // The scenario's own text is escaped, in the page and in the charts' titles.
    assert!(!html.contains("<virtual>") && !html.contains("<b>not bold</b>"));
    assert!(html.contains("tokens &lt;virtual&gt; &amp; &quot;quotes&quot;"));
    assert!(html.contains("&lt;b&gt;not bold&lt;/b&gt;"));
    // Charts carry their text as SVG text: titles, axis labels and the legend.
    assert!(
        html.matches("<svg ").count() >= 4,
        "spectrum, timeline, phases, prediction"
    );
    for text in [
        "latency by percentile",
        "percentile (log scale of 1/(1−p))",
        "request number (arrival order)",
        "where the time went",
        "global_mutex",
        "99%",
        "max",
    ] {
        assert!(html.contains(text), "{text} in the page");
    }
    assert!(html.contains("<text"), "SVG text elements");
    // The table and the reproducibility block.
    for text in [
        "p99.9",
        "lost updates",
        "refreshes",
        "sha256",
        "re-run",
        "credpool run ",
    ] {
        assert!(html.contains(text), "{text} in the page");
    }
}

#[test]
fn csv_and_hgrm_files_hold_every_result() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_scenario(dir.path(), "a.toml", &open_load("one", 500, 1));
    let b = write_scenario(dir.path(), "b.toml", &open_load("two, with a comma", 300, 2));
    let out = dir.path().join("out");
    credpool_ok(
        dir.path(),
        &[
            "run",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
        0,
    );
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let width = lines[0].split(',').count();
    assert!(
        lines[1].starts_with("one,global_mutex,virtual,1,open,false,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("\"two, with a comma\",global_mutex,"),
        "{}",
        lines[2]
    );
    // The quoted comma aside, every row has the header's width.
    assert_eq!(lines[1].split(',').count(), width);
    assert_eq!(lines[2].split(',').count(), width + 1);
    let requests = lines[0].split(',').position(|c| c == "requests").unwrap();
    assert_eq!(lines[1].split(',').nth(requests), Some("500"));

    for (folder, n) in [("one", 500), ("two__with_a_comma", 300)] {
        let hgrm = std::fs::read_to_string(out.join("hgrm").join(folder).join("global_mutex.hgrm")).unwrap();
        assert!(
            hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"),
            "{hgrm}"
        );
        assert!(hgrm.contains(&format!("Total count    = {n:>12}]")), "{hgrm}");
        let last_row = hgrm
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .unwrap();
        assert!(
            last_row.contains(" 1.000000000000 ") && last_row.trim_end().ends_with(&n.to_string()),
            "{last_row}"
        );
    }
}

#[test]
fn report_regenerates_the_same_files_from_summary_json() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_scenario(dir.path(), "a.toml", TOKENS_VIRTUAL);
    let b = write_scenario(dir.path(), "b.toml", &open_load("open", 2000, 5));
    let out = dir.path().join("out");
    credpool_ok(
        dir.path(),
        &[
            "run",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
        0,
    );
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = files_under(&out)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
        .collect();
    // Remove everything but the summary, then regenerate.
    for (f, _) in &before {
        if f.file_name().unwrap() != "summary.json" {
            std::fs::remove_file(f).unwrap();
        }
    }
    let regen = credpool_ok(dir.path(), &["report", out.to_str().unwrap()], 0);
    assert!(String::from_utf8_lossy(&regen.stdout).contains("index.html"));
    for (f, bytes) in &before {
        assert!(
            std::fs::read(f).unwrap() == *bytes,
            "{} differs after `credpool report`",
            f.display()
        );
    }
    // --out writes a complete copy elsewhere.
    let copy = dir.path().join("copy");
    credpool_ok(
        dir.path(),
        &[
            "report",
            out.join("summary.json").to_str().unwrap(),
            "--out",
            copy.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(
        std::fs::read(copy.join("index.html")).unwrap(),
        std::fs::read(out.join("index.html")).unwrap()
    );
    assert!(copy.join("summary.json").is_file());
}

#[test]
fn compare_shows_how_each_figure_moved() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_scenario(dir.path(), "a.toml", &open_load("open", 3000, 1));
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    credpool_ok(
        dir.path(),
        &["run", "--quiet", "--out", old.to_str().unwrap(), a.to_str().unwrap()],
        0,
    );
    // The same load with a 1 ms upstream call instead of none: every percentile rises.
    write_scenario(
        dir.path(),
        "a.toml",
        &open_load("open", 3000, 1).replace("api_latency = \"0ms\"", "api_latency = \"1ms\""),
    );
    credpool_ok(
        dir.path(),
        &["run", "--quiet", "--out", new.to_str().unwrap(), a.to_str().unwrap()],
        0,
    );
    let out = credpool_ok(
        dir.path(),
        &["compare", old.to_str().unwrap(), new.to_str().unwrap()],
        0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nopen\n"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("global_mutex"))
        .expect("a row for the strategy");
    assert!(row.contains('+'), "latencies rose: {row}");
    assert!(
        text.contains("p99 ") && text.contains(" → "),
        "old → new figures: {text}"
    );
    assert!(text.contains("not like for like: the scenario file changed"), "{text}");
    assert!(text.contains("worse"), "{text}");
    let html = std::fs::read_to_string(new.join("compare.html")).unwrap();
    assert!(html.contains("credpool comparison") && html.contains("class=\"worse\"") && html.contains("<svg "));
    assert!(html.contains("global_mutex (old)") && html.contains("global_mutex (new)"));

    // --out puts it elsewhere; comparing a run with itself moves nothing.
    let same = dir.path().join("same.html");
    let out = credpool_ok(
        dir.path(),
        &[
            "compare",
            old.to_str().unwrap(),
            old.join("summary.json").to_str().unwrap(),
            "--out",
            same.to_str().unwrap(),
        ],
        0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 figure(s) better, 0 worse, 10 unchanged"), "{text}");
    assert!(same.is_file());
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = credpool_ok(dir.path(), &["report", empty.to_str().unwrap()], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("empty: no summary.json in this folder") && err.contains("credpool run folder"),
        "{err}"
    );

    let out = credpool_ok(
        dir.path(),
        &["compare", empty.to_str().unwrap(), empty.to_str().unwrap()],
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no summary.json"));

    let out = credpool_ok(dir.path(), &["report", dir.path().join("missing").to_str().unwrap()], 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing: no such file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(empty.join("summary.json"), "{\"schema\": 1,\n \"oops\"").unwrap();
    let out = credpool_ok(dir.path(), &["report", empty.to_str().unwrap()], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("summary.json:2:") && err.contains("not a credpool summary"),
        "{err}"
    );
    assert!(!empty.join("index.html").exists(), "nothing written from a bad summary");
}

#[test]
fn default_run_folder_gets_an_index_that_opens_the_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_scenario(dir.path(), "a.toml", &open_load("open", 100, 1));
    credpool_ok(dir.path(), &["run", "--quiet", a.to_str().unwrap()], 0);
    let first: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "index.html")
        .collect();
    assert_eq!(first.len(), 1);
    // A second run (its folder name gets a suffix within the same second).
    credpool_ok(dir.path(), &["run", "--quiet", a.to_str().unwrap()], 0);
    let mut runs: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "index.html")
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 2);
    let latest = runs.iter().find(|r| **r != first[0]).unwrap();
    let index = std::fs::read_to_string(dir.path().join("reports/index.html")).unwrap();
    assert!(
        index.contains(&format!(
            "<meta http-equiv=\"refresh\" content=\"0; url={latest}/index.html\">"
        )),
        "{index}"
    );
    assert!(
        index.contains(&format!("<a href=\"{latest}/index.html\">{latest}</a>")),
        "a visible link: {index}"
    );
    assert!(
        index.contains(&format!("<a href=\"{}/index.html\">", first[0])),
        "earlier runs listed"
    );
    assert!(dir.path().join("reports").join(latest).join("index.html").is_file());
}

/// index.html of a run of `requests` requests.
fn report_size(dir: &Path, requests: u64) -> usize {
    let a = write_scenario(dir, &format!("s{requests}.toml"), &open_load("size", requests, 9));
    let out = dir.join(format!("out{requests}"));
    credpool_ok(
        dir,
        &["run", "--quiet", "--out", out.to_str().unwrap(), a.to_str().unwrap()],
        0,
    );
    std::fs::metadata(out.join("index.html")).unwrap().len() as usize
}

/// 200,000 requests take about 2 s in a debug build (1,000,000 about 9 s: see the ignored test
/// below). Measured here: 100 requests 42 kB, 2,000 61 kB, 200,000 64 kB, 1,000,000 65 kB; past
/// the timeline sample (2,000 requests) the page stops growing.
#[test]
fn report_size_does_not_grow_with_the_number_of_requests() {
    let dir = tempfile::tempdir().unwrap();
    let small = report_size(dir.path(), 100);
    let medium = report_size(dir.path(), 20_000);
    let large = report_size(dir.path(), 200_000);
    assert!(
        large <= 2 * small,
        "100 requests: {small} bytes, 200,000: {large} bytes"
    );
    assert!(
        large * 10 <= medium * 12,
        "20,000 requests: {medium} bytes, 200,000: {large} bytes"
    );
}

/// The issue's figure: 1,000,000 requests against 100. About 9 s in a debug build, too long for
/// the default suite on 2 cores, so it runs with `cargo test --test report -- --ignored` (about
/// a second in release).
#[test]
#[ignore = "about 9 s in a debug build; the 200,000-request variant runs by default"]
fn report_of_a_million_requests_is_the_size_of_one_of_a_hundred() {
    let dir = tempfile::tempdir().unwrap();
    let small = report_size(dir.path(), 100);
    let large = report_size(dir.path(), 1_000_000);
    assert!(
        large <= 2 * small,
        "100 requests: {small} bytes, 1,000,000: {large} bytes"
    );
}
