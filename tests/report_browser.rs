//! A generated report in a real browser: headless Chromium (Debian's `chromium`) loads index.html
//! and compare.html offline and they make no request besides the page itself (so none can fail)
//! and log nothing to the console. A negative control shows the same checks catch a page that
//! does load things, fail to, or throws.
//!
//! Chromium is required: when it is missing the test fails and says how to install it
//! (`scripts/test` installs it when run as root).

mod report_common;

use report_common::{credpool_ok, open_load, write_scenario};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin"]) {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "headless Chromium is needed to render the report and was not found (looked for `chromium` and \
         `chromium-browser` on PATH and in /usr/bin). Install Debian's package: \
         `apt-get update && apt-get install -y chromium` (scripts/test does this when run as root)."
    );
}

/// What Chromium saw while loading a page.
struct Load {
    dom: String,
    /// Every URL the page caused to be fetched (files and network), the page itself excluded.
    requests: Vec<String>,
    /// Console messages (the report has no script, so any message is a problem).
    console: Vec<String>,
}

/// Loads `page` in headless Chromium with networking features off, every host name unresolvable
/// (nothing can leave the machine), a throwaway profile, verbose logging (which names every file
/// it loads) and a NetLog (which names every network request and who started it).
fn load(page: &Path) -> Load {
    let profile = tempfile::tempdir().unwrap();
    let netlog = profile.path().join("netlog.json");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            &format!("--user-data-dir={}", profile.path().display()),
            "--enable-logging=stderr",
            "--v=1",
            &format!("--log-net-log={}", netlog.display()),
            "--dump-dom",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Read both pipes on threads (the verbose log is large) while enforcing a time limit.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish loading {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = out_thread.join().unwrap();
    let log = err_thread.join().unwrap();
    assert!(
        status.success(),
        "chromium failed on {url}: {status}\n{}",
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );

    let mut requests: Vec<String> = log
        .lines()
        .filter_map(|l| {
            l.split_once("FileURLLoader::Start: ")
                .map(|(_, u)| u.trim().to_string())
        })
        .filter(|u| *u != url)
        .collect();
    // Network requests the page started: its initiator is the page's (opaque) origin; Chromium's
    // own background requests have none ("not an origin").
    let net: serde_json::Value = serde_json::from_slice(&std::fs::read(&netlog).expect("chromium wrote the NetLog"))
        .expect("the NetLog is JSON");
    let start_job = net["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64();
    for e in net["events"].as_array().into_iter().flatten() {
        if e["type"].as_u64() == start_job {
            let p = &e["params"];
            if let (Some(u), Some(initiator)) = (p["url"].as_str(), p["initiator"].as_str()) {
                if initiator != "not an origin" {
                    requests.push(u.to_string());
                }
            }
        }
    }
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    Load { dom, requests, console }
}

#[test]
fn the_report_loads_offline_with_no_requests_and_no_console_messages() {
    let dir = tempfile::tempdir().unwrap();
    let seed2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/seed-2-first-token-expired.toml");
    // A calibrated scenario on which the shipped code deadlocks: a Findings section and a stuck table.
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/real-refresh-failure.toml");
    let open = write_scenario(dir.path(), "open.toml", &open_load("open & <escaped>", 5000, 1));
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    for out in [&old, &new] {
        credpool_ok(
            dir.path(),
            &[
                "run",
                "--quiet",
                "--strategy",
                "global_mutex,as_shipped",
                "--out",
                out.to_str().unwrap(),
                seed2.to_str().unwrap(),
                open.to_str().unwrap(),
                real.to_str().unwrap(),
            ],
            0,
        );
    }
    credpool_ok(
        dir.path(),
        &["compare", old.to_str().unwrap(), new.to_str().unwrap()],
        0,
    );

    let page = load(&new.join("index.html"));
    assert_eq!(page.requests, Vec::<String>::new(), "the report fetched something");
    assert_eq!(page.console, Vec::<String>::new(), "console messages");
    // It rendered: the headings, both scenarios' sections, their charts with their text.
    assert!(
        page.dom.contains("<h1>credpool report</h1>"),
        "{}",
        &page.dom[..page.dom.len().min(2000)]
    );
    assert!(page.dom.contains("seed-2-first-token-expired") && page.dom.contains("open &amp; &lt;escaped&gt;"));
    assert!(
        page.dom.matches("<svg").count() >= 7,
        "spectra, timelines, phase charts, throughput, prediction"
    );
    assert!(page.dom.contains("latency by percentile") && page.dom.contains("throughput over time"));
    assert!(page.dom.contains("id=\"findings\"") && page.dom.contains("step where requests were stuck"));

    let page = load(&new.join("compare.html"));
    assert_eq!(page.requests, Vec::<String>::new(), "the comparison fetched something");
    assert_eq!(page.console, Vec::<String>::new(), "console messages");
    assert!(page.dom.contains("<h1>credpool comparison</h1>") && page.dom.contains("<svg"));
}

/// The checks above can fail: a page that loads a stylesheet and an image that are not there,
/// reaches for the network and throws is caught on every count.
#[test]
fn a_page_that_fetches_or_throws_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>bad</title><link rel=\"stylesheet\" href=\"missing.css\"></head>\
         <body><p>bad</p><img src=\"missing.png\"><img src=\"http://example.invalid/x.png\">\
         <script>console.error(\"boom\");</script><script>nosuchfunction();</script></body></html>",
    )
    .unwrap();
    let page = load(&bad);
    let joined = page.requests.join("\n");
    assert!(
        joined.contains("missing.css") && joined.contains("missing.png") && joined.contains("example.invalid"),
        "{joined}"
    );
    let console = page.console.join("\n");
    assert!(
        console.contains("boom") && console.contains("nosuchfunction is not defined"),
        "{console}"
    );
}
