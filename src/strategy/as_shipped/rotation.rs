//! The shipped manager's rotation state: the discovered list, the cursor into it, and the cached
//! "current account", kept apart as the shipped code kept them, stale pointer included.
//!
//! `AntigravityCredentialManager` held three things that a disable can pull apart:
//! `_credential_accounts` (the enabled accounts, rebuilt from the file by `_discover_credentials`
//! after every disable), `_current_credential_index` (a position in that list, never adjusted when
//! the list changes) and `_current_credential_account` (the account dict loaded from the list at
//! the last rotation, and returned by every `get_valid_credential` until the next one). Hence the
//! two defects this replays:
//!
//! - **the stale pointer**: after the current account is disabled, the list shrinks but the cached
//!   account stays, so it keeps being handed out (disabled) until the next rotation;
//! - **the skipped account**: the cursor keeps its old position in the shrunk list, which now holds
//!   the account that came after the removed one, so the next rotation (`index + 1`) passes over it.
//!
//! Indices here are positions in the pool (`PoolState::accounts`); the list holds them in file
//! order. Pure state, no lock: the manager keeps it under its short in-memory lock.

/// `_credential_accounts`, `_current_credential_index`, `_current_credential_account`,
/// `_call_count`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShippedRotation {
    /// The accounts the last discovery found enabled (pool indices, in file order).
    list: Vec<usize>,
    /// The cursor: a position in `list`, kept as is when `list` is rebuilt.
    index: usize,
    /// The account loaded at the last rotation (`None` until the first load). Not cleared when
    /// it is disabled: that is the stale pointer.
    current: Option<usize>,
    /// Calls counted since the last rotation (the router's `increment_call_count`).
    calls: u64,
}

impl ShippedRotation {
    /// The state after `initialize`: the enabled accounts discovered, nothing loaded yet.
    pub fn discovered(enabled: impl IntoIterator<Item = usize>) -> Self {
        ShippedRotation {
            list: enabled.into_iter().collect(),
            ..ShippedRotation::default()
        }
    }

    /// `_discover_credentials`: the list rebuilt from what the file says is enabled. The cursor
    /// and the cached account are left as they were.
    pub fn rediscover(&mut self, enabled: impl IntoIterator<Item = usize>) {
        self.list = enabled.into_iter().collect();
    }

    /// Accounts in the list (what `len(self._credential_accounts)` says).
    pub fn listed(&self) -> usize {
        self.list.len()
    }

    /// `_should_rotate`: more than one account listed and `calls_per_rotation` calls counted.
    pub fn should_rotate(&self, calls_per_rotation: u64) -> bool {
        self.list.len() > 1 && self.calls >= calls_per_rotation
    }

    /// `_rotate_credential`: the cursor one place on in the list as it is now, the count reset,
    /// and the account at the new place loaded.
    pub fn rotate(&mut self) {
        if self.list.is_empty() {
            return;
        }
        self.index = (self.index + 1) % self.list.len();
        self.calls = 0;
        self.load_current();
    }

    /// `_load_current_credential`: the account at the cursor becomes the current one. A cursor
    /// past the end of a shrunk list raised inside the method's `try`, which logged it and left
    /// the current account as it was.
    pub fn load_current(&mut self) {
        if let Some(&i) = self.list.get(self.index) {
            self.current = Some(i);
        }
    }

    /// `get_valid_credential`'s "if no current account is loaded, load the first".
    pub fn load_if_none(&mut self) {
        if self.current.is_none() {
            self.load_current();
        }
    }

    /// The cached current account (pool index), whatever happened to it since it was loaded.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// Counts one call on the current turn.
    pub fn count_call(&mut self) {
        self.calls += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `n` calls the way `get_valid_credential` does (rotate when due, load, count) and
    /// returns the accounts handed out.
    fn serve(r: &mut ShippedRotation, k: u64, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| {
                if r.should_rotate(k) {
                    r.rotate();
                }
                r.load_if_none();
                r.count_call();
                r.current().unwrap()
            })
            .collect()
    }

    #[test]
    fn an_unchanged_list_rotates_round_robin_every_k_calls() {
        let mut r = ShippedRotation::discovered(0..3);
        assert_eq!(serve(&mut r, 2, 7), vec![0, 0, 1, 1, 2, 2, 0]);
    }

    #[test]
    fn a_disabled_current_account_is_served_until_the_next_rotation_which_skips_the_next_one() {
        let mut r = ShippedRotation::discovered(0..3);
        assert_eq!(serve(&mut r, 3, 4), vec![0, 0, 0, 1]);
        // Account 1 (the current one, at position 1) is disabled: the list becomes [0, 2].
        r.rediscover([0, 2]);
        // Still handed out for the rest of its turn (the stale pointer) ...
        assert_eq!(serve(&mut r, 3, 2), vec![1, 1]);
        // ... then the rotation goes from position 1 to position 0: account 2, which slid into
        // position 1, never gets its turn.
        assert_eq!(serve(&mut r, 3, 6), vec![0, 0, 0, 2, 2, 2]);
    }

    #[test]
    fn a_cursor_past_the_end_of_the_shrunk_list_keeps_the_stale_account_and_wraps_past_the_first() {
        let mut r = ShippedRotation::discovered(0..3);
        r.index = 2;
        r.load_current();
        r.rediscover([0, 1]);
        r.load_current();
        assert_eq!(
            r.current(),
            Some(2),
            "the failed load leaves the current account as it was"
        );
        r.rotate();
        assert_eq!(r.current(), Some(1), "(2 + 1) mod 2: account 0 is passed over");
    }

    #[test]
    fn one_listed_account_never_rotates() {
        let mut r = ShippedRotation::discovered([4]);
        assert_eq!(serve(&mut r, 1, 3), vec![4, 4, 4]);
        r.rediscover([]);
        r.rotate();
        assert_eq!((r.listed(), r.current()), (0, Some(4)));
    }
}
