//! `[target]` checked as a whole: the rules its TOML types cannot express (one of `command` and
//! `url`, placeholders that exist, a loopback URL, `stream` only for `openai`), each reported at
//! its line. What comes out is what the target runner ([`crate::target::runner`]) needs.

use super::spec::{AccountsFormat, TargetProtocol, TargetSpec};
use crate::input_error::InputError;
use crate::target::placeholders::Values;
use crate::target::protocol::Protocol;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// Default wait for the target's `ready` path.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Default per-request client timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the harness reaches a target: started by it, or already running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// argv with placeholders still in it (values exist only when a run starts).
    Command(Vec<String>),
    /// `http://127.0.0.1:PORT` of a proxy already running (refused for now: see [`validate`]).
    Url(String),
}

/// A validated `[target]`.
#[derive(Clone, Debug)]
pub struct TargetPlan {
    pub name: String,
    pub reach: Reach,
    /// (name, value with placeholders), sorted by name.
    pub env: Vec<(String, String)>,
    pub ready: String,
    pub ready_timeout: Duration,
    pub protocol: Protocol,
    /// `None`: the `[load]` models in turn.
    pub model: Option<String>,
    pub api_key: String,
    pub timeout: Duration,
    pub accounts_format: AccountsFormat,
    pub setup: Option<Vec<String>>,
    /// credpool as the target's HTTPS proxy (`{ca_file}`, `{proxy_url}`).
    pub intercept: bool,
}

/// Checks `spec` (spanned in `text`, the file at `path`).
pub fn validate(path: &Path, text: &str, spec: &Spanned<TargetSpec>) -> Result<TargetPlan, InputError> {
    let at = |span: std::ops::Range<usize>, msg: String| InputError::at(path, text, Some(span), msg);
    let t = spec.get_ref();
    let name = t.name.get_ref().trim().to_string();
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(at(
            t.name.span(),
            "`target.name` must be a non-empty name without slashes (it names the target in reports)".into(),
        ));
    }
    if crate::scenario::plan::resolve_strategies(std::slice::from_ref(&name)).is_ok() || name == "all" {
        return Err(at(
            t.name.span(),
            format!("`target.name` {name:?} is a built-in strategy's name: expected a name of its own, so reports can tell them apart"),
        ));
    }
    let placeholders = |list: &Spanned<Vec<String>>, key: &str| -> Result<Vec<String>, InputError> {
        if list.get_ref().is_empty() {
            return Err(at(list.span(), format!("`target.{key}` is empty: expected an argv such as [\"python3\", \"proxy.py\", \"--port={{port}}\"]")));
        }
        for arg in list.get_ref() {
            Values::check_names(arg, t.intercept).map_err(|m| at(list.span(), format!("`target.{key}`: {m}")))?;
        }
        Ok(list.get_ref().clone())
    };
    let reach = match (&t.command, &t.url) {
        (Some(_), Some(url)) => {
            return Err(at(
                url.span(),
                "`target.command` and `target.url` both given: expected one of them".into(),
            ))
        }
        (None, None) => {
            return Err(at(
                spec.span(),
                "`[target]` needs `command` (an argv credpool starts) or `url` (a proxy already running)".into(),
            ))
        }
        (Some(command), None) => Reach::Command(placeholders(command, "command")?),
        (None, Some(url)) => {
            let u = url.get_ref().trim_end_matches('/');
            let host = u.strip_prefix("http://").and_then(|r| r.split(['/', ':']).next());
            if !matches!(host, Some("127.0.0.1" | "localhost")) {
                return Err(at(
                    url.span(),
                    format!(
                        "`target.url` {u:?}: expected http://127.0.0.1:PORT (targets are reached on loopback only)"
                    ),
                ));
            }
            // The mock's address exists only once a run starts, so a proxy already running
            // cannot have been pointed at it.
            return Err(at(
                url.span(),
                format!("`target.url` {u:?} is not supported yet: a running proxy cannot be pointed at the mock credpool starts per run; use `command` with {{api_url}} and {{token_url}}"),
            ));
        }
    };
    let mut env = Vec::new();
    if let Some(vars) = &t.env {
        for (k, v) in vars.get_ref() {
            Values::check_names(v, t.intercept).map_err(|m| at(vars.span(), format!("`target.env.{k}`: {m}")))?;
            env.push((k.clone(), v.clone()));
        }
    }
    let ready = match &t.ready {
        Some(r) if !r.get_ref().starts_with('/') => {
            return Err(at(
                r.span(),
                format!("`target.ready` {:?}: expected a path starting with '/'", r.get_ref()),
            ))
        }
        Some(r) => r.get_ref().clone(),
        None => "/".into(),
    };
    let protocol = match (*t.protocol.get_ref(), t.stream) {
        (TargetProtocol::Openai, stream) => Protocol::OpenAi { stream },
        (_, true) => {
            return Err(at(
                t.protocol.span(),
                "`target.stream` is for protocol \"openai\": expected stream = false or protocol = \"openai\"".into(),
            ))
        }
        (TargetProtocol::Gemini, false) => Protocol::Gemini,
        (TargetProtocol::CodeAssist, false) => Protocol::CodeAssist,
        (TargetProtocol::Lease, false) => Protocol::Lease,
    };
    let setup = match &t.setup {
        Some(s) => Some(placeholders(s, "setup")?),
        None => None,
    };
    let timeout = t.timeout.map(|s| s.0).unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(at(t.protocol.span(), "`target.timeout` must be above 0".into()));
    }
    Ok(TargetPlan {
        name,
        reach,
        env,
        ready,
        ready_timeout: t.ready_timeout.map(|s| s.0).unwrap_or(DEFAULT_READY_TIMEOUT),
        protocol,
        model: t.model.clone(),
        api_key: t.api_key.clone(),
        timeout,
        accounts_format: t.accounts_format,
        setup,
        intercept: t.intercept,
    })
}

#[cfg(test)]
mod tests {
    use crate::scenario::plan::parse;
    use crate::target::protocol::Protocol;
    use std::path::Path;

    const BASE: &str = "name = \"t\"\n[pool]\ncredentials = 2\n[load]\nmodel = \"open\"\nrequests = 10\nrate = 10\n";

    fn plan(extra: &str) -> Result<crate::scenario::Plan, String> {
        parse(Path::new("t.toml"), &format!("{BASE}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_target_alone_runs_no_strategy_and_beside_written_strategies_both() {
        let alone = plan(
            "[target]\nname = \"p\"\ncommand = [\"p\", \"--port={port}\"]\nprotocol = \"openai\"\nstream = true\n",
        )
        .unwrap();
        assert!(alone.strategies.is_empty());
        let t = alone.target.unwrap();
        assert_eq!(t.protocol, Protocol::OpenAi { stream: true });
        assert_eq!((t.ready.as_str(), t.timeout), ("/", super::DEFAULT_TIMEOUT));
        let both = parse(
            Path::new("t.toml"),
            &format!(
                "strategies = [\"rwlock\"]\n{BASE}[target]\nname = \"p\"\ncommand = [\"p\"]\nprotocol = \"lease\"\n"
            ),
        )
        .map(|p| p.strategies.len());
        assert_eq!(both.unwrap(), 1);
    }

    #[test]
    fn cross_field_rules_are_refused_with_their_reason() {
        for (extra, expected) in [
            (
                "[target]\nname = \"p\"\ncommand = [\"p\"]\nprotocol = \"gemini\"\nstream = true\n",
                "is for protocol \"openai\"",
            ),
            (
                "[target]\nname = \"rwlock\"\ncommand = [\"p\"]\nprotocol = \"gemini\"\n",
                "built-in strategy",
            ),
            (
                "[target]\nname = \"p\"\ncommand = []\nprotocol = \"gemini\"\n",
                "is empty",
            ),
            (
                "[target]\nname = \"p\"\ncommand = [\"p\"]\nprotocol = \"gemini\"\nenv = { A = \"{nope}\" }\n",
                "unknown placeholder {nope}",
            ),
            (
                "[target]\nname = \"p\"\ncommand = [\"p\"]\nsetup = [\"{x\"]\nprotocol = \"gemini\"\n",
                "never closed",
            ),
            (
                "[target]\nname = \"p\"\ncommand = [\"p\"]\nprotocol = \"gemini\"\ntimeout = \"0s\"\n",
                "above 0",
            ),
        ] {
            let e = plan(extra).unwrap_err();
            assert!(e.contains(expected) && e.contains("t.toml:"), "{extra}: {e}");
        }
        // Closed users drive a target too (target::load).
        let closed = parse(
            Path::new("t.toml"),
            "name = \"t\"\n[pool]\ncredentials = 2\n[load]\nmodel = \"closed\"\nrequests = 10\n[target]\nname = \"p\"\ncommand = [\"p\"]\nprotocol = \"gemini\"\n",
        )
        .expect("a closed load with a [target]");
        assert!(closed.target.is_some());
    }
}
