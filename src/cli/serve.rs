//! `credpool serve`: the credential pool as a running service (see [`crate::serve`] and
//! docs/serve.md). Flags override the `--config` file, which overrides the defaults.

use super::{CliResult, Failure};
use crate::duration::Span;
use crate::serve::config::{self, Settings};
use crate::serve::served::ServedName;
use crate::store::StoreMode;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The accounts.toml to serve (written through the store; unknown keys kept).
    #[arg(long)]
    accounts: Option<PathBuf>,
    /// global_mutex, rwlock, queue_pool, sharded, lock_free or fleet (needs --redis) [default: lock_free].
    #[arg(long)]
    strategy: Option<ServedName>,
    /// durable or group_commit [default: group_commit].
    #[arg(long)]
    store: Option<StoreMode>,
    /// `fleet`: the Redis holding the fleet's shared state, e.g. redis://127.0.0.1:6379.
    #[arg(long)]
    redis: Option<String>,
    /// `fleet`: the shared pool's name [default: default].
    #[arg(long)]
    pool: Option<String>,
    /// `fleet`: how long a refresh lease lasts; must exceed --refresh-timeout [default: 35s].
    #[arg(long, value_parser = span)]
    refresh_lease_ttl: Option<Span>,
    /// How long a token refresh may take [default: 30s].
    #[arg(long, value_parser = span)]
    refresh_timeout: Option<Span>,
    /// IP:PORT to listen on [default: 127.0.0.1:8787]; port 0 picks a free one (printed on stdout).
    #[arg(long)]
    listen: Option<String>,
    /// Client keys, one per line (mode 0600). Without it serve listens on loopback only.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Admin keys, one per line (mode 0600), for /v1/accounts and /metrics.
    #[arg(long)]
    admin_keys: Option<PathBuf>,
    // (`help =`, not a doc comment: the URL is for the terminal, not for rustdoc.)
    #[arg(long, help = "OAuth token endpoint [default: https://oauth2.googleapis.com/token]")]
    token_url: Option<String>,
    #[arg(
        long,
        help = "Upstream API the reverse proxy forwards to [default: https://cloudcode-pa.googleapis.com]"
    )]
    api_url: Option<String>,
    /// OAuth client id refreshes are made as (or CREDPOOL_CLIENT_ID).
    #[arg(long)]
    client_id: Option<String>,
    /// OAuth client secret (or CREDPOOL_CLIENT_SECRET, or client_secret in --config: better than this flag, which `ps` shows).
    #[arg(long)]
    client_secret: Option<String>,
    /// A TOML file with any of these settings (keys as the flags, `_` for `-`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A lease not completed within this is reclaimed [default: 10m].
    #[arg(long, value_parser = span)]
    lease_ttl: Option<Span>,
    /// How long a shutdown waits for leases in flight [default: 30s].
    #[arg(long, value_parser = span)]
    drain_timeout: Option<Span>,
}

fn span(text: &str) -> Result<Span, String> {
    crate::duration::parse_duration(text).map(Span)
}

/// A flag's value: no position in any file.
fn flag<T>(v: Option<T>) -> Option<Spanned<T>> {
    v.map(|v| Spanned::new(0..0, v))
}

pub fn run(args: ServeArgs) -> CliResult {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let flags = Settings {
        accounts: args.accounts,
        strategy: flag(args.strategy),
        store: flag(args.store),
        redis: flag(args.redis),
        pool: flag(args.pool),
        refresh_lease_ttl: args.refresh_lease_ttl,
        refresh_timeout: args.refresh_timeout,
        listen: flag(args.listen),
        keys: args.keys,
        admin_keys: args.admin_keys,
        token_url: flag(args.token_url),
        api_url: flag(args.api_url),
        client_id: args.client_id.or_else(|| env("CREDPOOL_CLIENT_ID")),
        client_secret: args.client_secret.or_else(|| env("CREDPOOL_CLIENT_SECRET")),
        lease_ttl: args.lease_ttl,
        drain_timeout: args.drain_timeout,
        ..Settings::default()
    };
    let config = config::resolve(flags, args.config.as_deref()).map_err(Failure::BadInput)?;
    init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(crate::serve::run(config, |addr| {
            // The one line on stdout: where to connect (scripts and tests read it).
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "credpool serve: listening on http://{addr}");
            let _ = out.flush();
        }))
        .map_err(Failure::BadInput)?;
    // Spawned tasks (refreshes, the reaper) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// Logs to stderr: `RUST_LOG` filters (default `info`); `CREDPOOL_LOG=json` for JSON lines.
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("CREDPOOL_LOG").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}
