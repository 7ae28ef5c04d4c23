//! One target run: the mock of Google started for the scenario, the target's accounts file
//! written with the mock's tokens, the target started and made ready, the `[load]` driven through
//! it, the target stopped, and the audit computed from the mock's journal and the file.
//!
//! Any failure to get the target going (it cannot start, exits before it is ready, never answers
//! its `ready` path, its setup fails, or it exits during the run) is an error carrying the
//! target's output tail; the process group is killed on every path, so nothing is left behind.

use super::accounts_file;
use super::audit::{self, TargetAudit};
use super::load::{self, ClientSide};
use super::placeholders::Values;
use super::process::{run_setup, Launch, TargetProcess};
use super::protocol::Endpoint;
use crate::metrics::histogram::LatencyHistogram;
use crate::mock::Mock;
use crate::scenario::plan::Plan;
use crate::scenario::spec::AccountsFormat;
use crate::scenario::target_plan::{Reach, TargetPlan};
use crate::upstream::faults::RateLimitBody;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// SIGTERM, then this long before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// Most time a `setup` command may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the accounts file is read during the run.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// What one target run measured.
#[derive(Debug)]
pub struct TargetRun {
    pub name: String,
    pub client: ClientSide,
    pub audit: TargetAudit,
    /// The mock's own service time per request (journal: arrival to answer finished).
    pub mock_service: LatencyHistogram,
    /// How late the runtime (the load generator's and the mock's) fired a probe timer during the
    /// load (the self-audit's scheduler lag).
    pub timer_lag: LatencyHistogram,
    /// Requests the mock answered (API and token endpoint).
    pub upstream_requests: u64,
    /// Whether the target had to be SIGKILLed after [`STOP_GRACE`].
    pub killed: bool,
    pub wall_time: Duration,
}

impl TargetRun {
    /// Requests per second the client completed.
    pub fn throughput_rps(&self) -> f64 {
        self.client.requests as f64 / self.client.wall.as_secs_f64().max(1e-9)
    }

    /// `metric` of this run (see [`crate::metrics::expectation::Metric::of_targets`]); NaN for an
    /// audit figure not measured this run (a file figure when the file could not be read).
    pub fn metric(&self, metric: &crate::metrics::expectation::Metric) -> f64 {
        use crate::metrics::expectation::{Counts, Metric};
        let (c, a) = (&self.client, &self.audit);
        match metric {
            Metric::Audit(figure) => a.figure(figure).unwrap_or(f64::NAN),
            Metric::LostUpdates if a.lost_updates.is_none() => f64::NAN,
            other => {
                let counts = Counts {
                    throughput_rps: self.throughput_rps(),
                    lost_updates: a.lost_updates.unwrap_or(0),
                    errors: c.requests - c.successes,
                    refreshes: a.refreshes,
                    status_429: c.statuses.get(&429).copied().unwrap_or(0),
                    requests: c.requests,
                    ..Counts::default()
                };
                other.value(&c.latency.stats(), |_| Default::default(), &counts)
            }
        }
    }

    /// Checks this run against the plan's expectations on its `[target]`.
    pub fn check_expectations(&self, plan: &Plan) -> Vec<crate::metrics::expectation::ExpectationResult> {
        plan.expectations
            .iter()
            .filter(|e| e.strategy == crate::scenario::expect::Target::TheTarget)
            .map(|e| e.result(self.metric(&e.metric)))
            .collect()
    }
}

/// Runs `plan`'s `[target]` on a runtime of its own.
pub fn run(plan: &Plan) -> Result<TargetRun, String> {
    let target = plan
        .target
        .as_ref()
        .ok_or_else(|| format!("{}: the scenario has no [target] table", plan.path.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(run_async(plan, target))
}

/// Runs `target` under `plan`'s load, against a mock seeded from `plan`.
pub async fn run_async(plan: &Plan, target: &TargetPlan) -> Result<TargetRun, String> {
    let started = Instant::now();
    let Reach::Command(argv) = &target.reach else {
        return Err(format!(
            "target {}: `url` targets are not supported yet: use `command`",
            target.name
        ));
    };
    let workdir = tempfile::tempdir().map_err(|e| format!("cannot create a work folder: {e}"))?;
    let capacity = (plan.load.requests as usize * 8 + 10_000).min(crate::mock::server::DEFAULT_JOURNAL_CAPACITY);
    let (mock, accounts) = Mock::from_plan(plan, capacity);
    let running = mock
        .start("127.0.0.1:0".parse().expect("a loopback address"))
        .await
        .map_err(|e| format!("cannot start the mock upstream on 127.0.0.1: {e}"))?;
    let accounts_path = accounts_file::write(workdir.path(), target.accounts_format, accounts)
        .map_err(|e| format!("{}: cannot write the target's accounts: {e}", workdir.path().display()))?;
    // The file as written, read back the way the audit reads the final one (the baseline of
    // `damaged_accounts`).
    let written = match accounts_file::read(&accounts_path, target.accounts_format) {
        accounts_file::Read::Accounts(views) => views,
        _ => {
            return Err(format!(
                "{}: the accounts file credpool wrote does not read back",
                accounts_path.display()
            ))
        }
    };
    let port = super::free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");
    let mut values = Values::default();
    values
        .set("port", port.to_string())
        .set("api_url", running.url())
        .set("token_url", format!("{}/token", running.url()))
        .set("accounts", accounts_path.display().to_string())
        .set(
            "accounts_dir",
            accounts_dir(&accounts_path, target.accounts_format)
                .display()
                .to_string(),
        )
        .set("workdir", workdir.path().display().to_string())
        .set("url", url.clone());
    // `{credpool}`: this executable, so a scenario can put `credpool serve` under test wherever
    // credpool was built or installed.
    if let Ok(exe) = std::env::current_exe() {
        values.set("credpool", exe.display().to_string());
    }
    // `intercept`: the run's throwaway CA (certificate in the 0700 work folder, key in memory)
    // and the HTTPS proxy serving Google's host names from the mock.
    let intercept = if target.intercept {
        let ca = super::intercept::ca::ThrowawayCa::generate()?;
        let ca_file = workdir.path().join("intercept-ca.pem");
        ca.write_certificate(&ca_file)?;
        let proxy = super::intercept::proxy::InterceptProxy::start(&ca, running.addr).await?;
        values
            .set("ca_file", ca_file.display().to_string())
            .set("proxy_url", proxy.url());
        Some(proxy)
    } else {
        None
    };
    let expand = |argv: &[String]| -> Result<Vec<String>, String> {
        argv.iter()
            .map(|a| values.expand(a))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("target {}: {e}", target.name))
    };
    let launch = Launch {
        argv: expand(argv)?,
        env: target
            .env
            .iter()
            .map(|(k, v)| values.expand(v).map(|v| (k.clone(), v)))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("target {}: {e}", target.name))?,
        // credpool's own working directory, so a relative path in `command` means what it says;
        // `{workdir}` is the run's scratch folder.
        workdir: std::env::current_dir().unwrap_or_else(|_| workdir.path().to_path_buf()),
        log: None,
    };
    let fail = |e: super::process::TargetError| format!("target {}: {e}", target.name);
    let mut process = TargetProcess::start(&launch).map_err(fail)?;
    if let Err(e) = process
        .wait_ready(&format!("{url}{}", target.ready), target.ready_timeout)
        .await
    {
        process.stop(Duration::ZERO).await;
        return Err(fail(e));
    }
    if let Some(setup) = &target.setup {
        let setup = Launch {
            argv: expand(setup)?,
            ..launch.clone()
        };
        if let Err(e) = run_setup(&setup, SETUP_TIMEOUT).await {
            process.stop(STOP_GRACE).await;
            return Err(fail(e));
        }
    }

    let polling = Arc::new(AtomicBool::new(true));
    let poller = {
        let polling = polling.clone();
        let path = accounts_path.clone();
        let format = target.accounts_format;
        std::thread::spawn(move || {
            let mut tally = accounts_file::PollTally::default();
            while polling.load(Ordering::Relaxed) {
                tally.add(&accounts_file::read(&path, format));
                std::thread::sleep(POLL_INTERVAL);
            }
            tally
        })
    };
    let endpoint = Endpoint {
        base_url: url,
        protocol: target.protocol,
        model: String::new(),
        api_key: target.api_key.clone(),
        timeout: target.timeout,
        upstream_url: running.url(),
    };
    let probe = crate::metrics::timer_lag::TimerLagProbe::start();
    let client = load::drive(&endpoint, &plan.load, plan.seed, target.model.as_deref()).await;
    let timer_lag = probe.stop();
    polling.store(false, Ordering::Relaxed);
    let polled = poller
        .join()
        .map_err(|_| "the accounts file poller panicked".to_string())?;
    let exited_during_run = !process.is_running();
    let tail = process.output_tail();
    let (_, killed) = process.stop(STOP_GRACE).await;
    if exited_during_run {
        running.stop().await;
        return Err(format!(
            "target {}: the target exited during the run; its output ended with:\n{tail}",
            target.name
        ));
    }
    let last = accounts_file::read(&accounts_path, target.accounts_format);
    let unmocked_requests = match intercept {
        Some(proxy) => Some(proxy.stop().await),
        None => None,
    };
    running.stop().await;

    let records = mock.journal().records();
    let mut mock_service = LatencyHistogram::default();
    for r in &records {
        mock_service.record(Duration::from_nanos(r.finish_ns.saturating_sub(r.arrival_ns)));
    }
    let ban = match mock.model().rate_limit_body() {
        RateLimitBody::Neither => None,
        _ => mock.model().retry_delay,
    };
    let journal_origin_ms = mock.now_ms() - (mock.journal().now_ns() / 1_000_000) as i64;
    let audit = audit::audit(&audit::Inputs {
        records: &records,
        journal_dropped: mock.journal().dropped(),
        tokens: mock.tokens(),
        journal_origin_ms,
        policy: &plan.policy,
        token_lifetime_ms: mock.model().token_lifetime_s.saturating_mul(1000),
        ban,
        policy_ban: policy_ban(&plan.policy, mock.model()),
        client: &client,
        polled: &polled,
        last: &last,
        written: &written,
        unmocked_requests,
    });
    Ok(TargetRun {
        name: target.name.clone(),
        client,
        audit,
        mock_service,
        timer_lag,
        upstream_requests: records.len() as u64,
        killed,
        wall_time: started.elapsed(),
    })
}

/// The folder of the accounts: the file's parent, or the `json_dir` folder itself.
fn accounts_dir(path: &Path, format: AccountsFormat) -> &Path {
    match format {
        AccountsFormat::AccountsToml => path.parent().unwrap_or(path),
        AccountsFormat::JsonDir => path,
    }
}

/// The ban the scenario's policy sets for the mock's 429 body, read by the policy's own parser:
/// what a correct proxy keeps, against which `over_bans` is judged.
fn policy_ban(policy: &crate::model::Policy, model: &crate::upstream::faults::UpstreamModel) -> Duration {
    let now = chrono::Utc::now().timestamp_millis();
    let delay = model.retry_delay.unwrap_or_default();
    let body = crate::mock::google::rate_limited(model.rate_limit_body(), delay, now, "audit");
    let hint = crate::model::parse_error_body(&body);
    let until = policy.ban_until(now, hint.reset_at, hint.retry_delay_ms);
    Duration::from_millis(until.saturating_sub(now).max(0) as u64)
}
