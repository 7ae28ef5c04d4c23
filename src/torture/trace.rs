//! What a torture update is, and how to tell whether it is in the file.
//!
//! Every update leaves its own trace, so "is this acknowledged update on disk?" is a yes/no
//! question about that one update. A counter would not do: an update that was written but never
//! acknowledged (its process killed between the rename and the ack) would make up for a lost
//! acknowledged one, and the count would hide the loss.
//!
//! The trace: update `i` of worker `w` records HTTP status code `100 + i / lanes` on the account
//! of lane `i % lanes` of worker `w` (a plain `Change::Error`, the production change a failed
//! request records). An account's `error_codes` keep each code once, in order, and nothing in a
//! torture run clears them (no update is a success), so the code is in that account's list exactly
//! when the update's write survived. Codes run from 100 to 599, so one account holds 500 distinct
//! updates, and a worker gets `ceil(updates / 500)` accounts (lanes).

use crate::model::{Account, AccountId, AccountsFile, Change};
use crate::secret::Secret;

/// Distinct codes one account can record (100..=599).
pub const CODES_PER_ACCOUNT: u64 = 500;

/// Which account and code each update of each worker uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Updates each worker applies.
    pub updates: u64,
    /// Accounts per worker.
    pub lanes: u64,
}

impl Layout {
    /// The layout for workers of `updates` updates each.
    pub fn new(updates: u64) -> Layout {
        Layout {
            updates,
            lanes: updates.div_ceil(CODES_PER_ACCOUNT).max(1),
        }
    }

    /// The account of lane `lane` of worker `worker`.
    pub fn account(&self, worker: u64, lane: u64) -> AccountId {
        AccountId(format!("w{worker}.lane{lane}@torture.invalid").into())
    }

    /// The account and code of update `i` of worker `worker`.
    pub fn target(&self, worker: u64, i: u64) -> (AccountId, u16) {
        debug_assert!(i < self.updates);
        (self.account(worker, i % self.lanes), (100 + i / self.lanes) as u16)
    }

    /// The change update `i` applies (to the account [`Layout::target`] names).
    pub fn change(&self, i: u64) -> Change {
        Change::Error {
            code: (100 + i / self.lanes) as u16,
            ban: None,
            disable: false,
        }
    }

    /// The file a torture run starts from: one account per lane per worker, no codes yet. The
    /// tokens are fake (`torture-access-…`) but are written as tokens are, so the run exercises
    /// the same file shape as a real pool.
    pub fn initial_file(&self, workers: u64) -> String {
        let mut accounts = Vec::new();
        for w in 0..workers {
            for lane in 0..self.lanes {
                let n = accounts.len();
                let mut a = Account::synthetic(n, 0, 3600);
                a.id = self.account(w, lane);
                a.access_token = Secret::new(format!("torture-access-{n}"));
                a.refresh_token = Secret::new(format!("torture-refresh-{n}"));
                accounts.push(a);
            }
        }
        AccountsFile::from_accounts(accounts).to_toml_string()
    }

    /// Whether update `i` of worker `worker` is recorded in `file`.
    pub fn is_on_disk(&self, file: &AccountsFile, worker: u64, i: u64) -> bool {
        let (id, code) = self.target(worker, i);
        file.find(&id)
            .is_some_and(|k| file.accounts[k].error_codes.contains(&code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::Path;

    #[test]
    fn every_update_of_every_worker_has_its_own_trace() {
        let layout = Layout::new(1200);
        assert_eq!(layout.lanes, 3);
        let traces: HashSet<_> = (0..4)
            .flat_map(|w| (0..1200).map(move |i| layout.target(w, i)))
            .collect();
        assert_eq!(traces.len(), 4 * 1200);
        assert!(traces.iter().all(|(_, c)| (100..=599).contains(c)));
    }

    #[test]
    fn an_applied_update_is_found_and_only_that_one() {
        let layout = Layout::new(10);
        let mut file = AccountsFile::parse(Path::new("t"), &layout.initial_file(2)).unwrap();
        assert_eq!(file.accounts.len(), 2);
        let (id, _) = layout.target(1, 7);
        let k = file.find(&id).unwrap();
        file.accounts[k].apply(&layout.change(7));
        let file = AccountsFile::parse(Path::new("t"), &file.to_toml_string()).unwrap();
        assert!(layout.is_on_disk(&file, 1, 7));
        assert!(!layout.is_on_disk(&file, 1, 6));
        assert!(!layout.is_on_disk(&file, 0, 7));
    }
}
