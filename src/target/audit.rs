//! The audits of a target: figures computed from what the mock of Google saw (its journal) and
//! from the target's accounts file, never from anything the target says about itself; and the
//! verdict on each figure, by a rule stated beside it.
//!
//! The rules (also in docs/target.md):
//!
//! - `expired_token_uses`, `revoked_token_uses`: API calls the mock found carrying a token past
//!   its expiry, or of a revoked grant. PASS at 0.
//! - `max_concurrent_refreshes`: the most refreshes of one account in flight at once at the
//!   token endpoint (arrival to answer). PASS at 1 or less (single flight).
//! - `refreshes_per_expiry`: refreshes over refresh episodes, an episode being a run of one
//!   account's refreshes each arriving before the previous ones had all been answered. Shown; its
//!   verdict is the same rule as `max_concurrent_refreshes` (1.0 means single flight).
//! - `wasted_refreshes`: refreshes that arrived before the account's newest token (the seeded one,
//!   or the last one the mock had issued it by then) reached the point where a refresh ahead of
//!   expiry may start: the refresh rule every credpool strategy keeps
//!   ([`crate::model::refresh_window`]), `max(expires − window, issued + lifetime/2)` with the
//!   window `max(refresh_margin, refresh_ahead)` of `[pool]`. Before it no strategy had a reason
//!   to refresh. A seeded token's issue time is not the mock's to know: for it, `expires −
//!   window`. PASS at 0.
//! - `banned_series_uses`: API calls for a model on an account that arrived inside the ban a 429
//!   for that model and account asked for (`[upstream] retry_delay`, from the 429's answer), after a
//!   reaction allowance of [`REACTION_ALLOWANCE`] for calls already dispatched. Counted only when
//!   the 429 bodies carry a delay. PASS at 0.
//! - `over_bans`: accounts a 429 took out of a model's rotation that were never used for that
//!   model again, although their ban had long ended: the last 429 of the account and model
//!   answered more than [`BAN_HORIZON`] times the ban the scenario's policy sets for the mock's
//!   429 body (the ban a correct proxy keeps: `2 ×` the delay, at least an hour with a reset
//!   timestamp, see [`Policy::ban_until`]) before a whole rotation's worth of calls for the model
//!   (credentials × K) reached other accounts, and none reached it. Catches a delay misread as
//!   far longer (the shipped proxy's `"479.417207ms"` read as 417,207 minutes). Accounts a
//!   refresh failed for or a call found revoked are left out (unused for another reason).
//!   PASS at 0.
//! - `calls_per_turn_max`: the longest run of consecutive API calls (by arrival) on one account,
//!   against `[pool] calls_per_rotation` K, leaving out calls within [`BAN_HORIZON`] bans (the
//!   ban the policy sets, as for `over_bans`) after any 429 (a pool with banned accounts rightly
//!   serves from fewer, and takes a turn or two to settle once they return), and calls arriving within one
//!   refresh's duration after a refresh of their account was answered (they waited on it and
//!   arrive together). PASS at K or less.
//! - `client_errors` (2xx answers carrying an error), `leaked_401s` (401s passed to clients),
//!   `hung` (no whole answer within `timeout`): PASS at 0.
//! - `file_unreadable_reads`, `file_empty_reads`: reads of the accounts file, polled during the
//!   run, that did not parse or were empty. PASS at 0.
//! - `lost_updates`: per account, in the file as read at the end: a refreshed token missing (the
//!   file's token is not one the mock issued in the account's last refresh episode), or an error
//!   status the mock answered the account (429, 5xx) missing from its `error_codes`. PASS at 0.
//! - `damaged_accounts`: accounts credpool wrote that the final file has not exactly once (by
//!   refresh token), or has without one of the keys credpool wrote at the entry's top level
//!   (lost, or moved into a sub-table). A file can parse and still be torn. PASS at 0.
//! - `resurrected_accounts`: accounts some read during the run found disabled that the final
//!   file has enabled again (nothing in a run re-enables an account). PASS at 0.
//! - `unmocked_requests` (with `intercept` only): requests the intercepting proxy refused, to a
//!   host it does not serve from the mock (they would have left the machine). PASS at 0.

use super::accounts_file::{identity, AccountView, PollTally, Read};
use crate::mock::journal::{Auth, Endpoint, Record, NO_ACCOUNT};
use crate::mock::tokens::{TokenCheck, TokenRegistry};
use crate::model::Policy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Every figure with a verdict, by the name `[[expect]]` writes after `audit.` (some are judged
/// only when measured: `banned_series_uses`, the file figures, `unmocked_requests`).
pub const FIGURES: &[&str] = &[
    "expired_token_uses",
    "revoked_token_uses",
    "max_concurrent_refreshes",
    "refreshes_per_expiry",
    "wasted_refreshes",
    "banned_series_uses",
    "over_bans",
    "calls_per_turn_max",
    "client_errors",
    "leaked_401s",
    "hung",
    "file_unreadable_reads",
    "file_empty_reads",
    "lost_updates",
    "damaged_accounts",
    "resurrected_accounts",
    "journal_dropped",
    "unmocked_requests",
];

/// Rotation is judged only this many bans after the last 429 (see [`longest_turn`]).
pub const BAN_HORIZON: u64 = 4;

/// Calls dispatched before the target could have seen a 429 are not counted against its ban.
pub const REACTION_ALLOWANCE: Duration = Duration::from_millis(100);

/// The audit of one target run (`summary.json`: the `audit` object of a target's result).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetAudit {
    pub expired_token_uses: u64,
    pub revoked_token_uses: u64,
    /// API calls with a token the mock never issued.
    pub unknown_token_uses: u64,
    /// Token endpoint calls for a known account.
    pub refreshes: u64,
    pub max_concurrent_refreshes: u64,
    pub refresh_episodes: u64,
    pub refreshes_per_expiry: f64,
    #[serde(default)]
    pub wasted_refreshes: u64,
    /// `None` when the 429 bodies carry no delay (nothing to obey).
    pub banned_series_uses: Option<u64>,
    #[serde(default)]
    pub over_bans: u64,
    pub calls_per_turn_max: u64,
    /// The K the rotation is judged against.
    pub calls_per_rotation: u64,
    pub client_errors: u64,
    pub leaked_401s: u64,
    pub hung: u64,
    pub file_reads: u64,
    pub file_unreadable_reads: u64,
    pub file_empty_reads: u64,
    /// `None` when the file could not be read at the end.
    pub lost_updates: Option<u64>,
    /// `None` when the file could not be read at the end.
    #[serde(default)]
    pub damaged_accounts: Option<u64>,
    /// `None` when the file could not be read at the end.
    #[serde(default)]
    pub resurrected_accounts: Option<u64>,
    /// Records the journal could not hold (the audit is incomplete when not 0).
    pub journal_dropped: u64,
    /// With `intercept`: requests the intercepting proxy refused (a host not served from the
    /// mock). `None` without `intercept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmocked_requests: Option<u64>,
    pub verdicts: Vec<AuditVerdict>,
}

/// One figure's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditVerdict {
    pub audit: String,
    pub value: f64,
    /// The rule, e.g. "PASS when <= 1".
    pub rule: String,
    pub pass: bool,
}

impl TargetAudit {
    pub fn violations(&self) -> impl Iterator<Item = &AuditVerdict> {
        self.verdicts.iter().filter(|v| !v.pass)
    }

    /// The figure a verdict named `figure` judged; `None` when it was not measured this run.
    pub fn figure(&self, figure: &str) -> Option<f64> {
        self.verdicts.iter().find(|v| v.audit == figure).map(|v| v.value)
    }

    /// The verdicts, from the figures, by the module's rules.
    fn judge(&mut self) {
        let mut v = Vec::new();
        let mut at_most = |audit: &str, value: f64, limit: f64| {
            v.push(AuditVerdict {
                audit: audit.into(),
                value,
                rule: format!("PASS when <= {limit}"),
                pass: value <= limit,
            })
        };
        at_most("expired_token_uses", self.expired_token_uses as f64, 0.0);
        at_most("revoked_token_uses", self.revoked_token_uses as f64, 0.0);
        at_most("max_concurrent_refreshes", self.max_concurrent_refreshes as f64, 1.0);
        at_most("refreshes_per_expiry", self.refreshes_per_expiry, 1.0);
        at_most("wasted_refreshes", self.wasted_refreshes as f64, 0.0);
        if let Some(n) = self.banned_series_uses {
            at_most("banned_series_uses", n as f64, 0.0);
        }
        at_most("over_bans", self.over_bans as f64, 0.0);
        at_most(
            "calls_per_turn_max",
            self.calls_per_turn_max as f64,
            self.calls_per_rotation as f64,
        );
        at_most("client_errors", self.client_errors as f64, 0.0);
        at_most("leaked_401s", self.leaked_401s as f64, 0.0);
        at_most("hung", self.hung as f64, 0.0);
        at_most("file_unreadable_reads", self.file_unreadable_reads as f64, 0.0);
        at_most("file_empty_reads", self.file_empty_reads as f64, 0.0);
        if let Some(n) = self.lost_updates {
            at_most("lost_updates", n as f64, 0.0);
        }
        if let Some(n) = self.damaged_accounts {
            at_most("damaged_accounts", n as f64, 0.0);
        }
        if let Some(n) = self.resurrected_accounts {
            at_most("resurrected_accounts", n as f64, 0.0);
        }
        at_most("journal_dropped", self.journal_dropped as f64, 0.0);
        if let Some(n) = self.unmocked_requests {
            at_most("unmocked_requests", n as f64, 0.0);
        }
        self.verdicts = v;
    }
}

/// Everything the audit reads.
pub struct Inputs<'a> {
    pub records: &'a [Record],
    pub journal_dropped: u64,
    pub tokens: &'a TokenRegistry,
    /// The journal's time 0 on the wall clock, epoch ms (token expiries are epoch ms).
    pub journal_origin_ms: i64,
    /// The scenario's `[pool]` rules: the refresh margin and window, and K for rotation.
    pub policy: &'a Policy,
    /// The lifetime of every token the mock issues (`[upstream] token_lifetime`).
    pub token_lifetime_ms: i64,
    /// The ban a 429 asks for, if its body carries one.
    pub ban: Option<Duration>,
    /// The ban the scenario's policy sets for the mock's 429 body (what a correct proxy keeps).
    pub policy_ban: Duration,
    pub client: &'a super::load::ClientSide,
    /// Reads polled during the run.
    pub polled: &'a PollTally,
    /// The read at the end.
    pub last: &'a Read,
    /// The file as credpool wrote it, read back before the target started.
    pub written: &'a [AccountView],
    /// With `intercept`: what the intercepting proxy refused.
    pub unmocked_requests: Option<u64>,
}

pub fn audit(input: &Inputs) -> TargetAudit {
    let records = input.records;
    let api: Vec<&Record> = {
        let mut a: Vec<&Record> = records.iter().filter(|r| r.endpoint.is_api()).collect();
        a.sort_by_key(|r| r.arrival_ns);
        a
    };
    let refreshes: Vec<&Record> = records
        .iter()
        .filter(|r| r.endpoint == Endpoint::Token && r.account != NO_ACCOUNT)
        .collect();
    let episodes = episodes(&refreshes);
    let mut out = TargetAudit {
        expired_token_uses: api.iter().filter(|r| r.auth == Auth::Expired).count() as u64,
        revoked_token_uses: api.iter().filter(|r| r.auth == Auth::Revoked).count() as u64,
        unknown_token_uses: api.iter().filter(|r| r.auth == Auth::Unknown).count() as u64,
        refreshes: refreshes.len() as u64,
        max_concurrent_refreshes: max_overlap(&refreshes),
        refresh_episodes: episodes.values().map(|e| e.len() as u64).sum(),
        refreshes_per_expiry: 0.0,
        wasted_refreshes: wasted(&refreshes, input),
        banned_series_uses: input.ban.map(|ban| banned_uses(&api, ban)),
        over_bans: over_bans(&api, &refreshes, input),
        calls_per_turn_max: longest_turn(&api, input.ban.map(|_| input.policy_ban), &refreshes),
        calls_per_rotation: input.policy.calls_per_rotation,
        client_errors: input.client.client_errors,
        leaked_401s: input.client.statuses.get(&401).copied().unwrap_or(0),
        hung: input.client.hung,
        file_reads: input.polled.reads,
        file_unreadable_reads: input.polled.unreadable,
        file_empty_reads: input.polled.empty,
        lost_updates: match input.last {
            Read::Accounts(accounts) => Some(lost_updates(&api, &episodes, accounts, input.tokens)),
            _ => None,
        },
        resurrected_accounts: match input.last {
            Read::Accounts(accounts) => Some(resurrected(input.polled, accounts)),
            _ => None,
        },
        damaged_accounts: match input.last {
            Read::Accounts(accounts) => Some(damaged(input.written, accounts)),
            _ => None,
        },
        journal_dropped: input.journal_dropped,
        unmocked_requests: input.unmocked_requests,
        verdicts: Vec::new(),
    };
    if out.refresh_episodes > 0 {
        out.refreshes_per_expiry = out.refreshes as f64 / out.refresh_episodes as f64;
    }
    out.judge();
    out
}

/// The most refreshes of one account whose [arrival, finish] intervals overlap.
fn max_overlap(refreshes: &[&Record]) -> u64 {
    let mut by_account: BTreeMap<u32, Vec<(u64, i32)>> = BTreeMap::new();
    for r in refreshes {
        let events = by_account.entry(r.account).or_default();
        events.push((r.arrival_ns, 1));
        events.push((r.finish_ns, -1));
    }
    let mut max = 0;
    for events in by_account.values_mut() {
        // An answer at the same instant as an arrival ends first: they did not overlap.
        events.sort_by_key(|&(t, delta)| (t, delta));
        let mut now = 0i64;
        for (_, delta) in events.iter() {
            now += *delta as i64;
            max = max.max(now);
        }
    }
    max as u64
}

/// Accounts enabled in `last` that some polled read found disabled.
fn resurrected(polled: &PollTally, last: &[AccountView]) -> u64 {
    last.iter()
        .filter(|a| !a.disabled && polled.disabled_seen.contains(&identity(a)))
        .count() as u64
}

/// See the module doc: each written account found once, with every key it was written with.
fn damaged(written: &[AccountView], last: &[AccountView]) -> u64 {
    written
        .iter()
        .filter(|w| {
            let mut found = last.iter().filter(|l| l.refresh_token == w.refresh_token);
            match (found.next(), found.next()) {
                (Some(only), None) => !w.keys.is_subset(&only.keys),
                _ => true,
            }
        })
        .count() as u64
}

/// Refreshes made before the account's newest token reached its refresh-ahead point.
fn wasted(refreshes: &[&Record], input: &Inputs) -> u64 {
    let expiries = input.tokens.expiries();
    let mut issued: Vec<&&Record> = refreshes.iter().filter(|r| r.status == 200).collect();
    issued.sort_by_key(|r| r.finish_ns);
    let mut by_arrival: Vec<&&Record> = refreshes.iter().collect();
    by_arrival.sort_by_key(|r| r.arrival_ns);
    // The newest generation each account held, as of the refresh being looked at (0: seeded).
    let mut newest: BTreeMap<u32, u32> = BTreeMap::new();
    let mut next = 0;
    let mut wasted = 0;
    for r in by_arrival {
        while next < issued.len() && issued[next].finish_ns < r.arrival_ns {
            let g = newest.entry(issued[next].account).or_insert(0);
            *g = (*g).max(issued[next].generation);
            next += 1;
        }
        let held = newest.get(&r.account).copied().unwrap_or(0);
        let at_ms = input.journal_origin_ms + (r.arrival_ns / 1_000_000) as i64;
        if expiries
            .get(&(r.account, held))
            .is_some_and(|&expires| at_ms < ahead_at(input.policy, input.token_lifetime_ms, held, expires))
        {
            wasted += 1;
        }
    }
    wasted
}

/// Where a refresh ahead of expiry may start for the token of `generation` expiring at `expires`,
/// the mock's tokens living `lifetime_ms` (a seeded token, generation 0: `expires − window`).
fn ahead_at(policy: &Policy, lifetime_ms: i64, generation: u32, expires: i64) -> i64 {
    let window = expires - policy.refresh_window_ms();
    if generation == 0 {
        return window;
    }
    policy
        .refresh_points(Some(expires - lifetime_ms), Some(lifetime_ms))
        .map_or(window, |p| p.ahead_at)
}

/// Each account's refresh episodes, in order; each episode the generations its refreshes were
/// issued (0 for a refresh that was refused).
fn episodes(refreshes: &[&Record]) -> BTreeMap<u32, Vec<Vec<u32>>> {
    let mut sorted: Vec<&&Record> = refreshes.iter().collect();
    sorted.sort_by_key(|r| r.arrival_ns);
    let mut out: BTreeMap<u32, (u64, Vec<Vec<u32>>)> = BTreeMap::new();
    for r in sorted {
        let (open_until, list) = out.entry(r.account).or_insert((0, Vec::new()));
        if list.is_empty() || r.arrival_ns >= *open_until {
            list.push(Vec::new());
            *open_until = 0;
        }
        *open_until = (*open_until).max(r.finish_ns);
        let generation = if r.status == 200 { r.generation } else { 0 };
        list.last_mut().expect("an episode").push(generation);
    }
    out.into_iter().map(|(a, (_, l))| (a, l)).collect()
}

/// API calls inside a ban: for a 429 answered at `f` for (account, model), calls for the same pair
/// arriving in (f + allowance, f + ban).
fn banned_uses(api: &[&Record], ban: Duration) -> u64 {
    let allowance = REACTION_ALLOWANCE.as_nanos() as u64;
    let ban = ban.as_nanos() as u64;
    let mut bans: BTreeMap<(u32, u16), Vec<u64>> = BTreeMap::new();
    for r in api.iter().filter(|r| r.status == 429 && r.account != NO_ACCOUNT) {
        bans.entry((r.account, r.model)).or_default().push(r.finish_ns);
    }
    api.iter()
        .filter(|r| {
            bans.get(&(r.account, r.model)).is_some_and(|ends| {
                ends.iter()
                    .any(|&f| r.arrival_ns > f + allowance && r.arrival_ns < f + ban)
            })
        })
        .count() as u64
}

/// See the module doc: `(account, model)` pairs whose ban ended long ago and whose account a
/// whole rotation of that model's calls passed over.
fn over_bans(api: &[&Record], refreshes: &[&Record], input: &Inputs) -> u64 {
    let horizon = (input.policy_ban.as_nanos() as u64).saturating_mul(BAN_HORIZON);
    let rotation = (input.tokens.accounts() as u64).saturating_mul(input.policy.calls_per_rotation.max(1));
    let excused: BTreeSet<u32> = refreshes
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| r.account)
        .chain(api.iter().filter(|r| r.auth == Auth::Revoked).map(|r| r.account))
        .collect();
    let mut last_429: BTreeMap<(u32, u16), u64> = BTreeMap::new();
    for r in api.iter().filter(|r| r.status == 429 && r.account != NO_ACCOUNT) {
        let f = last_429.entry((r.account, r.model)).or_default();
        *f = (*f).max(r.finish_ns);
    }
    last_429
        .iter()
        .filter(|((account, _), _)| !excused.contains(account))
        .filter(|&(&(account, model), &finish)| {
            let ended = finish.saturating_add(horizon);
            let mut later = api.iter().filter(|r| r.model == model && r.arrival_ns > ended);
            let others = later.clone().count() as u64;
            others >= rotation && !later.any(|r| r.account == account)
        })
        .count() as u64
}

/// The longest run of consecutive API calls (by arrival) on one account, among calls made while
/// no 429 was recent: within [`BAN_HORIZON`] times the ban after any 429 (ever after, when the
/// 429s carry no delay), a pool rightly serves from fewer accounts, and a call then breaks the
/// run instead of extending it. Calls that arrive within one refresh's duration after a refresh
/// of their account was answered are skipped (neither counted nor breaking the run): they waited
/// on it and reach the upstream together, whatever the rotation did.
fn longest_turn(api: &[&Record], ban: Option<Duration>, refreshes: &[&Record]) -> u64 {
    let horizon = ban.map_or(u64::MAX, |b| (b.as_nanos() as u64).saturating_mul(BAN_HORIZON));
    let limits: Vec<u64> = api.iter().filter(|r| r.status == 429).map(|r| r.finish_ns).collect();
    let mut waited_on: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
    for r in refreshes {
        let took = r.finish_ns.saturating_sub(r.arrival_ns);
        waited_on
            .entry(r.account)
            .or_default()
            .push((r.finish_ns, r.finish_ns.saturating_add(took)));
    }
    let mut next_429 = 0;
    let mut banned_until = 0u64;
    let (mut longest, mut run, mut current) = (0u64, 0u64, None);
    for r in api.iter().filter(|r| r.account != NO_ACCOUNT) {
        // 429s answered before this call arrived (both lists are in time order).
        while next_429 < limits.len() && limits[next_429] <= r.arrival_ns {
            banned_until = banned_until.max(limits[next_429].saturating_add(horizon));
            next_429 += 1;
        }
        if r.arrival_ns < banned_until && next_429 > 0 {
            current = None;
            run = 0;
            continue;
        }
        let waited = waited_on.get(&r.account).is_some_and(|w| {
            w.iter()
                .any(|&(from, until)| r.arrival_ns >= from && r.arrival_ns <= until)
        });
        if waited {
            continue;
        }
        if current == Some(r.account) {
            run += 1;
        } else {
            current = Some(r.account);
            run = 1;
        }
        longest = longest.max(run);
    }
    longest
}

/// See the module doc. `accounts` are in file order, which is account index order (credpool
/// wrote them so; a target that reorders its file is compared by token, not position).
fn lost_updates(
    api: &[&Record],
    episodes: &BTreeMap<u32, Vec<Vec<u32>>>,
    accounts: &[AccountView],
    tokens: &TokenRegistry,
) -> u64 {
    // The file's token per account, found through the mock's registry (whatever the file order).
    let mut in_file: BTreeMap<u32, (u32, &AccountView)> = BTreeMap::new();
    for view in accounts {
        let issued = match tokens.check(view.access_token.expose(), 0) {
            TokenCheck::Valid(i) | TokenCheck::Expired(i) | TokenCheck::Revoked(i) => i,
            TokenCheck::Unknown => continue,
        };
        in_file.insert(issued.account, (issued.generation, view));
    }
    let mut lost = 0;
    for (account, list) in episodes {
        let Some(last) = list.last() else { continue };
        let issued: BTreeSet<u32> = last.iter().copied().filter(|&g| g > 0).collect();
        if issued.is_empty() {
            continue; // the last episode issued nothing: no token to keep
        }
        match in_file.get(account) {
            Some((generation, _)) if issued.contains(generation) => {}
            _ => lost += 1,
        }
    }
    let mut answered: BTreeMap<u32, BTreeSet<u16>> = BTreeMap::new();
    for r in api.iter().filter(|r| r.status == 429 || r.status >= 500) {
        answered.entry(r.account).or_default().insert(r.status);
    }
    for (account, statuses) in answered {
        let kept: BTreeSet<u16> = in_file
            .get(&account)
            .map(|(_, v)| v.error_codes.iter().copied().collect())
            .unwrap_or_default();
        lost += statuses.difference(&kept).count() as u64;
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(endpoint: Endpoint, account: u32, arrival_ms: u64, finish_ms: u64, status: u16) -> Record {
        Record {
            arrival_ns: arrival_ms * 1_000_000,
            finish_ns: finish_ms * 1_000_000,
            account,
            generation: 1,
            model: 0,
            status,
            endpoint,
            auth: Auth::Valid,
            flags: 0,
        }
    }

    #[test]
    fn every_verdict_is_a_named_figure_and_every_figure_has_a_verdict_when_measured() {
        let mut a = TargetAudit {
            banned_series_uses: Some(0),
            lost_updates: Some(0),
            damaged_accounts: Some(0),
            resurrected_accounts: Some(0),
            unmocked_requests: Some(0),
            ..TargetAudit::default()
        };
        a.judge();
        let names: Vec<&str> = a.verdicts.iter().map(|v| v.audit.as_str()).collect();
        assert_eq!(names, FIGURES);
        assert_eq!(a.figure("over_bans"), Some(0.0));
        assert_eq!(a.figure("no_such_figure"), None);
    }

    #[test]
    fn a_refresh_is_wasted_before_the_refresh_rules_ahead_point_bounded_by_the_lifetime() {
        const MIN: i64 = 60_000;
        let policy = Policy {
            refresh_margin_ms: 5 * MIN,
            refresh_ahead_ms: 7 * MIN,
            ..Policy::default()
        };
        let expires = 100 * MIN;
        // Hour-long tokens: the window as written.
        assert_eq!(ahead_at(&policy, 60 * MIN, 1, expires), expires - 7 * MIN);
        // Seven-minute tokens: a window of seven minutes would open at issue; the rule waits half
        // the lifetime, so a refresh right after issue is wasted (the refresh storm).
        assert_eq!(ahead_at(&policy, 7 * MIN, 1, expires), expires - 7 * MIN / 2);
        // A seeded token, whose issue the mock did not see: the window.
        assert_eq!(ahead_at(&policy, 7 * MIN, 0, expires), expires - 7 * MIN);
    }

    #[test]
    fn damaged_accounts_are_lost_duplicated_or_missing_keys() {
        let view = |refresh: &str, keys: &[&str]| AccountView {
            refresh_token: crate::secret::Secret::new(refresh),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..AccountView::default()
        };
        let written = [
            view("a", &["email", "refresh_token"]),
            view("b", &["email", "refresh_token"]),
        ];
        let whole = [
            view("a", &["email", "refresh_token", "extra"]),
            view("b", &["email", "refresh_token"]),
        ];
        assert_eq!(damaged(&written, &whole), 0, "added keys are the target's business");
        let key_lost = [view("a", &["refresh_token"]), view("b", &["email", "refresh_token"])];
        assert_eq!(damaged(&written, &key_lost), 1);
        let duplicated = [
            view("a", &["email", "refresh_token"]),
            view("a", &["email", "refresh_token"]),
            view("b", &["email", "refresh_token"]),
        ];
        assert_eq!(damaged(&written, &duplicated), 1);
        assert_eq!(damaged(&written, &whole[..1]), 1, "account b is gone");
    }

    #[test]
    fn an_account_seen_disabled_and_enabled_at_the_end_is_resurrected() {
        let view = |refresh: &str, disabled: bool| AccountView {
            refresh_token: crate::secret::Secret::new(refresh),
            disabled,
            ..AccountView::default()
        };
        let mut polled = PollTally::default();
        polled.add(&Read::Accounts(vec![view("a", false), view("b", false)]));
        polled.add(&Read::Accounts(vec![view("a", true), view("b", false)]));
        polled.add(&Read::Empty);
        assert_eq!((polled.reads, polled.empty), (3, 1));
        assert_eq!(resurrected(&polled, &[view("a", true), view("b", false)]), 0);
        assert_eq!(resurrected(&polled, &[view("a", false), view("b", false)]), 1);
    }

    #[test]
    fn overlap_episodes_bans_and_turns() {
        let t = |a, s, f| rec(Endpoint::Token, a, s, f, 200);
        let single = [t(0, 0, 10), t(0, 10, 20), t(1, 5, 15)];
        let refs: Vec<&Record> = single.iter().collect();
        assert_eq!(max_overlap(&refs), 1);
        assert_eq!(episodes(&refs)[&0].len(), 2);
        let herd = [t(0, 0, 10), t(0, 2, 12), t(0, 4, 14)];
        let refs: Vec<&Record> = herd.iter().collect();
        assert_eq!(max_overlap(&refs), 3);
        assert_eq!(episodes(&refs)[&0].len(), 1);

        let g = |a, s, status| rec(Endpoint::GenerateContent, a, s, s + 1, status);
        let calls = [
            g(0, 0, 429),
            g(0, 50, 200),
            g(0, 500, 200),
            g(1, 600, 200),
            g(0, 3000, 200),
        ];
        let api: Vec<&Record> = calls.iter().collect();
        // Within the allowance (50 ms), inside the ban (500 ms), after it (3000 ms).
        assert_eq!(banned_uses(&api, Duration::from_secs(2)), 1);
        // The 429 answered at 1 ms (ban 2 s) leaves out every later call up to 8 s: only the 429
        // itself counts. Without it, the runs are 2 (account 0), 1, 1.
        assert_eq!(longest_turn(&api, Some(Duration::from_secs(2)), &[]), 1);
        let no_429: Vec<&Record> = calls[1..].iter().collect();
        assert_eq!(longest_turn(&no_429, Some(Duration::from_secs(2)), &[]), 2);
        // Calls that waited on a refresh of account 0 (answered at 40 ms after 40 ms) are skipped:
        // 0 0 0 [waited: 0 0 0] 1 gives a run of 3, not 6.
        let piled = [
            g(0, 0, 200),
            g(0, 1, 200),
            g(0, 2, 200),
            g(0, 41, 200),
            g(0, 42, 200),
            g(0, 43, 200),
            g(1, 44, 200),
        ];
        let piled: Vec<&Record> = piled.iter().collect();
        let refresh = [t(0, 0, 40)];
        let refresh: Vec<&Record> = refresh.iter().collect();
        assert_eq!(longest_turn(&piled, None, &refresh), 3);
        assert_eq!(longest_turn(&piled, None, &[]), 6);
    }
}
