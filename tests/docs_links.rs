//! The README is the front door and `docs/` the depth: every relative link in them must lead
//! somewhere (the file, and the heading when the link names one), every `credpool` command the
//! README shows must be one the binary has, and the README stays short enough to read to the end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The README's length limit (issue 18): the depth belongs in `docs/`.
const README_MAX_LINES: usize = 300;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every `docs/*.md`.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// Lines with their 1-based numbers.
type Numbered<'a> = Vec<(usize, &'a str)>;

/// The lines of `text` outside and inside fenced code blocks, with their numbers (fence lines
/// themselves in neither).
fn split_lines(text: &str) -> (Numbered<'_>, Numbered<'_>) {
    let (mut prose, mut code) = (Vec::new(), Vec::new());
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            code.push((n + 1, line));
        } else {
            prose.push((n + 1, line));
        }
    }
    (prose, code)
}

fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    split_lines(text).0
}

fn code_lines(text: &str) -> Vec<(usize, &str)> {
    split_lines(text).1
}

/// Markdown link targets `[text](target)` on a line (inline code spans left out).
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => in_code = !in_code,
            b']' if !in_code && bytes.get(i + 1) == Some(&b'(') => {
                if let Some(end) = line[i + 2..].find(')') {
                    out.push(line[i + 2..i + 2 + end].trim().to_string());
                    i += 2 + end;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c)
            } else if c == ' ' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

fn anchors(doc: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(doc).unwrap();
    prose_lines(&text)
        .into_iter()
        .filter_map(|(_, l)| l.strip_prefix('#').map(|h| h.trim_start_matches('#')))
        .map(slug)
        .collect()
}

/// Every relative link that does not resolve, as `file:line: target (why)`.
fn broken_links() -> Vec<String> {
    let mut broken = Vec::new();
    // Each linked document's headings, read once however many links point into it.
    let mut headings: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let file = if path.is_empty() {
                    doc.clone()
                } else {
                    doc.parent().unwrap().join(path)
                };
                if !file.exists() {
                    broken.push(format!("{name}:{n}: {target} (no such file)"));
                } else if let Some(a) = anchor {
                    let is_md = file.extension().is_some_and(|e| e == "md");
                    if is_md
                        && !headings
                            .entry(file.clone())
                            .or_insert_with(|| anchors(&file))
                            .contains(a)
                    {
                        broken.push(format!("{name}:{n}: {target} (no heading #{a})"));
                    }
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let broken = broken_links();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The checker itself finds what is broken (a test of the test).
#[test]
fn the_link_checker_sees_a_missing_file_and_a_missing_heading() {
    assert_eq!(
        link_targets("see [a](docs/x.md) and `[b](not.md)` [c](#h)"),
        ["docs/x.md", "#h"]
    );
    assert_eq!(
        slug("The pool as a service: `credpool serve`"),
        "the-pool-as-a-service-credpool-serve"
    );
    let readme_anchors = anchors(&root().join("README.md"));
    assert!(readme_anchors.contains("commands"), "{readme_anchors:?}");
    assert!(!readme_anchors.contains("no-such-heading"));
}

/// The subcommands a `credpool [...] --help` lists.
fn subcommands(args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_credpool"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// `credpool X [Y]` (or `cargo run ... -- X [Y]`) as the README's code shows it.
fn commands_shown(readme: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    for (n, line) in code_lines(readme) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let start = words
            .iter()
            .position(|w| *w == "credpool" || w.ends_with("/credpool"))
            .map(|i| i + 1)
            .or_else(|| {
                (words.first() == Some(&"cargo") && words.get(1) == Some(&"run"))
                    .then(|| words.iter().position(|w| *w == "--").map(|i| i + 1))
                    .flatten()
            });
        if let Some(i) = start {
            let cmd: Vec<String> = words[i..]
                .iter()
                .take(2)
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-'))
                .map(|w| w.to_string())
                .collect();
            if !cmd.is_empty() {
                out.push((n, cmd));
            }
        }
    }
    out
}

#[test]
fn every_command_the_readme_shows_exists_in_credpool_help() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let top = subcommands(&[]);
    assert!(top.contains("run") && top.contains("serve"), "{top:?}");
    let shown = commands_shown(&readme);
    assert!(shown.len() >= 15, "the README's command tour: {shown:?}");
    let mut missing = Vec::new();
    for (n, cmd) in shown {
        if !top.contains(&cmd[0]) {
            missing.push(format!("README.md:{n}: credpool {} (not in credpool --help)", cmd[0]));
            continue;
        }
        let sub = subcommands(&[&cmd[0]]);
        if let (Some(second), false) = (cmd.get(1), sub.is_empty()) {
            if !sub.contains(second) {
                missing.push(format!(
                    "README.md:{n}: credpool {} {second} (not in credpool {} --help)",
                    cmd[0], cmd[0]
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_readme_starts_with_the_two_commands_and_stays_short() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines (at most {README_MAX_LINES}: move depth into docs/)"
    );
    let first_code: Vec<&str> = code_lines(&readme).into_iter().map(|(_, l)| l).take(6).collect();
    let first_code = first_code.join("\n");
    assert!(first_code.contains("cargo run --release -- run"), "{first_code}");
    assert!(first_code.contains("scripts/test"), "{first_code}");
}
