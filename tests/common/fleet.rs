//! A real-time fleet for the tests and benches/fleet_serve.rs: one private `redis-server`, N
//! `credpool serve --strategy fleet` processes on free loopback ports sharing one accounts file
//! (`durable` by default, or `group_commit`: both hold the cross-process lock on `<file>.lock`
//! across each read-modify-write, so several processes may share the file without losing
//! updates), the local token endpoint of tests/common/serve.rs, and the load spread over the
//! instances round-robin. Included with `#[path]` beside tests/common/serve.rs as `serve_common`.
//! Every process is killed when the harness is dropped.

#![allow(dead_code)] // each test file uses its own subset

use crate::serve_common::{accounts_toml, base_args, client, complete, lease, write_file, Serve, TokenServer, MODEL};
use credpool::fleet::server::RedisServer;
use std::path::PathBuf;
use std::time::Duration;

pub struct Fleet {
    pub redis: RedisServer,
    pub tokens: TokenServer,
    pub dir: tempfile::TempDir,
    pub accounts: PathBuf,
    /// `None`: stopped (killed or terminated).
    pub instances: Vec<Option<Serve>>,
    pub calls_per_rotation: u64,
    pub client: reqwest::Client,
    started: usize,
}

/// How the instances are started.
#[derive(Clone)]
pub struct FleetSetup {
    pub accounts: usize,
    pub expired: bool,
    pub calls_per_rotation: u64,
    /// The token endpoint's delay per refresh.
    pub token_delay: Duration,
    pub refresh_timeout: Duration,
    pub refresh_lease_ttl: Duration,
    /// `durable` or `group_commit` (both hold the cross-process lock).
    pub store: &'static str,
}

impl Default for FleetSetup {
    fn default() -> Self {
        FleetSetup {
            accounts: 4,
            expired: false,
            calls_per_rotation: 3,
            token_delay: Duration::ZERO,
            refresh_timeout: Duration::from_secs(2),
            refresh_lease_ttl: Duration::from_secs(3),
            store: "durable",
        }
    }
}

fn span(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl Fleet {
    /// Redis, the token endpoint and the accounts file; no instance yet.
    pub async fn new(setup: &FleetSetup) -> (Fleet, FleetSetup) {
        let dir = tempfile::tempdir().unwrap();
        let accounts = write_file(
            dir.path(),
            "accounts.toml",
            &accounts_toml(setup.accounts, setup.expired),
            0o600,
        );
        let fleet = Fleet {
            redis: RedisServer::start(),
            tokens: TokenServer::start(setup.token_delay).await,
            dir,
            accounts,
            instances: Vec::new(),
            calls_per_rotation: setup.calls_per_rotation,
            client: client(),
            started: 0,
        };
        (fleet, setup.clone())
    }

    /// Starts one more instance against `redis_url` (the fleet's Redis, or a fault proxy in
    /// front of it). Returns its index.
    pub fn start_instance(&mut self, setup: &FleetSetup, redis_url: &str) -> usize {
        let mut args = base_args(&self.accounts, &self.tokens.url);
        args.extend(
            [
                "--strategy",
                "fleet",
                "--store",
                setup.store,
                "--redis",
                redis_url,
                "--refresh-timeout",
                &span(setup.refresh_timeout),
                "--refresh-lease-ttl",
                &span(setup.refresh_lease_ttl),
            ]
            .map(String::from),
        );
        let i = self.started;
        self.started += 1;
        let log = self.dir.path().join(format!("serve-{i}.log"));
        // calls_per_rotation: through a config file (no flag for it).
        let config = write_file(
            self.dir.path(),
            &format!("serve-{i}.toml"),
            &format!("calls_per_rotation = {}\n", self.calls_per_rotation),
            0o600,
        );
        args.extend(["--config".into(), config.display().to_string()]);
        self.instances.push(Some(Serve::start(&args, log)));
        self.instances.len() - 1
    }

    pub async fn start(setup: &FleetSetup, n: usize) -> Fleet {
        let (mut fleet, setup) = Fleet::new(setup).await;
        let url = fleet.redis.url();
        for _ in 0..n {
            fleet.start_instance(&setup, &url);
        }
        fleet
    }

    pub fn base(&self, i: usize) -> &str {
        &self.instances[i].as_ref().expect("instance running").base
    }

    /// The instances running now.
    pub fn running(&self) -> Vec<usize> {
        (0..self.instances.len())
            .filter(|&i| self.instances[i].is_some())
            .collect()
    }

    /// Lease then complete 200 on instance `i`: `Some(account)` if the lease was answered 200 and the completion 204 (acknowledged: on disk).
    pub async fn call(&self, i: usize) -> Option<String> {
        let (status, body, _) = lease(&self.client, self.base(i), None, MODEL, "u").await;
        if status != 200 {
            return None;
        }
        let id = body["lease"].as_str()?.to_string();
        let account = body["account"].as_str()?.to_string();
        let (status, _) = complete(
            &self.client,
            self.base(i),
            None,
            &id,
            serde_json::json!({"status": 200}),
        )
        .await;
        (status == 204).then_some(account)
    }

    /// One `/metrics` figure of instance `i` (0 if absent).
    pub async fn metric(&self, i: usize, name: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base(i)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// SIGKILLs instance `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(s) = self.instances[i].take() {
            s.kill();
        }
    }

    pub fn signal(&self, i: usize, sig: i32) {
        self.instances[i].as_ref().expect("instance running").signal(sig);
    }

    /// Every instance's log, for failure messages.
    pub fn logs(&self) -> String {
        (0..self.started)
            .map(|i| {
                let p = self.dir.path().join(format!("serve-{i}.log"));
                format!("--- serve-{i}\n{}", std::fs::read_to_string(p).unwrap_or_default())
            })
            .collect()
    }
}
