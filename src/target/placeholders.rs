//! `{name}` placeholders in a target's command line, environment and setup command.
//!
//! The harness chooses the values only when it starts a run (a free port, the mock's URLs, the
//! accounts file it wrote), so a scenario names them instead. An unknown placeholder is an error
//! naming the ones that exist: a typo must not reach the target as a literal `{prot}`. `{{` and
//! `}}` stand for literal braces.

use std::collections::BTreeMap;

/// Every placeholder a target's argv or environment may use.
pub const KNOWN: &[&str] = &[
    "port",
    "api_url",
    "token_url",
    "accounts",
    "accounts_dir",
    "workdir",
    "url",
    "ca_file",
    "proxy_url",
    "credpool",
];

/// The placeholders that have a value only when `intercept = true` (credpool is the target's HTTPS
/// proxy).
pub const INTERCEPT_ONLY: &[&str] = &["ca_file", "proxy_url"];

/// The values for one run. Names outside [`KNOWN`] cannot be set.
#[derive(Clone, Debug, Default)]
pub struct Values(BTreeMap<&'static str, String>);

impl Values {
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        debug_assert!(KNOWN.contains(&name), "{name} is not a known placeholder");
        self.0.insert(name, value.into());
        self
    }

    /// `text` with every placeholder replaced. Fails on an unknown name, a known one this run has
    /// no value for (e.g. `{ca_file}` without `intercept`), or an unclosed brace.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("{{") {
                out.push('{');
                rest = after;
            } else if let Some(after) = tail.strip_prefix("}}") {
                out.push('}');
                rest = after;
            } else if tail.starts_with('}') {
                return Err(format!("{text:?}: a lone '}}' (write '}}}}' for a literal brace)"));
            } else {
                let close = tail
                    .find('}')
                    .ok_or_else(|| format!("{text:?}: '{{' is never closed (write '{{{{' for a literal brace)"))?;
                let name = &tail[1..close];
                match self.0.get(name) {
                    Some(value) => out.push_str(value),
                    None if KNOWN.contains(&name) => {
                        return Err(format!("{text:?}: {{{name}}} has no value in this run"));
                    }
                    None => {
                        return Err(format!(
                            "{text:?}: unknown placeholder {{{name}}}; expected one of {}",
                            KNOWN.iter().map(|k| format!("{{{k}}}")).collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
                rest = &tail[close + 1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Checks `text` against the placeholder names alone (for `credpool check`, before any value
    /// exists): unknown names, broken braces, and [`INTERCEPT_ONLY`] names without `intercept`
    /// are errors.
    pub fn check_names(text: &str, intercept: bool) -> Result<(), String> {
        let mut all = Values::default();
        for name in KNOWN {
            if intercept || !INTERCEPT_ONLY.contains(name) {
                all.set(name, "");
            }
        }
        all.expand(text).map(|_| ()).map_err(|e| {
            if intercept {
                e
            } else {
                format!("{e} (`{{ca_file}}` and `{{proxy_url}}` exist only with `intercept = true`)")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        let mut v = Values::default();
        v.set("port", "8080").set("api_url", "http://127.0.0.1:9/api");
        v
    }

    #[test]
    fn expands_known_names_and_escapes() {
        let v = values();
        assert_eq!(v.expand("--port={port}").unwrap(), "--port=8080");
        assert_eq!(
            v.expand("{api_url}/v1 {port}").unwrap(),
            "http://127.0.0.1:9/api/v1 8080"
        );
        assert_eq!(v.expand("{{\"a\": 1}}").unwrap(), "{\"a\": 1}");
        assert_eq!(v.expand("plain").unwrap(), "plain");
    }

    #[test]
    fn refuses_unknown_missing_and_broken() {
        let v = values();
        let unknown = v.expand("{prot}").unwrap_err();
        assert!(
            unknown.contains("unknown placeholder {prot}") && unknown.contains("{port}"),
            "{unknown}"
        );
        assert!(v.expand("{ca_file}").unwrap_err().contains("has no value"));
        assert!(v.expand("{port").unwrap_err().contains("never closed"));
        assert!(v.expand("port}").unwrap_err().contains("lone"));
    }

    #[test]
    fn check_names_knows_every_placeholder() {
        for name in KNOWN {
            Values::check_names(&format!("x{{{name}}}y"), true).unwrap();
        }
        assert!(Values::check_names("{nope}", true).is_err());
        let without = Values::check_names("--ca={ca_file}", false).unwrap_err();
        assert!(without.contains("only with `intercept = true`"), "{without}");
        Values::check_names("--port={port}", false).unwrap();
    }
}
