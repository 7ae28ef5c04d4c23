//! `reports/index.html`: the page that opens the latest run. Rewritten after every run into the
//! default reports folder; it redirects to the latest run's `index.html` (meta refresh, no script)
//! and, for browsers or readers that do not follow it, links to it and to earlier runs.

use super::escape::text as esc;
use super::{page_end, page_start};
use std::fmt::Write;
use std::path::Path;

/// Earlier runs listed below the link to the latest.
const EARLIER_RUNS: usize = 30;

/// A path segment percent-encoded for a relative URL (run ids are timestamps, but be safe).
fn url_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Writes `reports_dir/index.html` pointing at `run_dir` (a folder inside `reports_dir`).
pub fn write(reports_dir: &Path, run_dir: &Path) -> std::io::Result<()> {
    let latest = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| std::io::Error::other(format!("{}: not a run folder", run_dir.display())))?;
    let mut runs: Vec<String> = std::fs::read_dir(reports_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(super::FILE).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| *n != latest)
        .collect();
    runs.sort_unstable_by(|a, b| b.cmp(a));
    runs.truncate(EARLIER_RUNS);
    crate::report::write_file(&reports_dir.join(super::FILE), render(&latest, &runs).as_bytes())
}

pub fn render(latest: &str, earlier: &[String]) -> String {
    let href = format!("{}/{}", url_segment(latest), super::FILE);
    let mut out = String::new();
    page_start(&mut out, "credpool reports");
    // page_start closed <head>; a meta refresh in <body> is honoured by browsers, but keep it
    // in <head> for validators: insert it before </head>.
    let refresh = format!("<meta http-equiv=\"refresh\" content=\"0; url={}\">\n", esc(&href));
    if let Some(i) = out.find("</head>") {
        out.insert_str(i, &refresh);
    }
    let _ = write!(
        out,
        "<header class=\"card\">\n<h1>credpool reports</h1>\n<p class=\"lead\">Opening the latest run: <a href=\"{}\">{}</a></p>\n</header>\n",
        esc(&href),
        esc(latest)
    );
    if !earlier.is_empty() {
        out.push_str("<section class=\"card\">\n<h2>Earlier runs</h2>\n<ul>\n");
        for r in earlier {
            let _ = writeln!(
                out,
                "<li><a href=\"{}/{}\">{}</a></li>",
                esc(&url_segment(r)),
                super::FILE,
                esc(r)
            );
        }
        out.push_str("</ul>\n</section>\n");
    }
    page_end(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_and_links_to_the_latest() {
        let page = render("20261126T062800Z", &["20261125T100000Z".to_string()]);
        assert!(
            page.contains("<meta http-equiv=\"refresh\" content=\"0; url=20261126T062800Z/index.html\">\n</head>"),
            "{page}"
        );
        assert!(page.contains("<a href=\"20261126T062800Z/index.html\">20261126T062800Z</a>"));
        assert!(page.contains("<a href=\"20261125T100000Z/index.html\">"));
        assert_eq!(url_segment("a b/<c>"), "a%20b%2F%3Cc%3E");
    }
}
