//! Values keyed by sequence number, for keys that arrive in order and leave in any order: the
//! results `group_commit` holds for its callers between a batch's commit and each caller taking
//! its own.
//!
//! A window over a deque rather than a map: a result is stored at its offset from the oldest one
//! still held, so storing and taking are an index, with no hashing (SipHash on every insert and
//! take was about 500 instructions per update with 256 writers, callgrind on `benches/store.rs`)
//! and no tree to rebalance (a `BTreeMap` cost as much).

use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) struct SeqWindow<T> {
    /// The sequence number of `slots[0]`.
    first: u64,
    /// `None`: taken already, or a number that never gets a value (an abandoned update).
    slots: VecDeque<Option<T>>,
    /// How many slots hold a value.
    held: usize,
}

impl<T> SeqWindow<T> {
    pub(crate) fn new() -> Self {
        SeqWindow {
            first: 0,
            slots: VecDeque::new(),
            held: 0,
        }
    }

    /// Stores the value for `seq`. Numbers at or after the newest held so far, or in the gaps the
    /// window still spans, are stored; a number older than the window (its slot already gone,
    /// which the caller's ordering rules out) is dropped.
    pub(crate) fn insert(&mut self, seq: u64, value: T) {
        if self.slots.is_empty() {
            self.first = seq;
        }
        let Some(at) = seq.checked_sub(self.first) else {
            debug_assert!(false, "sequence {seq} is older than the window ({})", self.first);
            return;
        };
        let at = at as usize;
        if self.slots.len() <= at {
            self.slots.resize_with(at + 1, || None);
        }
        if self.slots[at].replace(value).is_none() {
            self.held += 1;
        }
    }

    /// Takes the value for `seq`, if one is held.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<T> {
        let at = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        let value = self.slots.get_mut(at)?.take()?;
        self.held -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.first += 1;
        }
        Some(value)
    }

    /// How many values are held.
    pub(crate) fn len(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn values_leave_in_any_order_and_the_window_shrinks_behind_them() {
        let mut w = SeqWindow::new();
        for seq in 1..=4 {
            w.insert(seq, seq * 10);
        }
        assert_eq!(w.remove(3), Some(30));
        assert_eq!(w.remove(3), None, "taken once");
        assert_eq!(w.remove(1), Some(10));
        assert_eq!(w.len(), 2);
        w.insert(7, 70); // 5 and 6 abandoned: gaps
        assert_eq!(w.remove(5), None);
        assert_eq!(w.remove(2), Some(20));
        assert_eq!(w.remove(4), Some(40));
        assert_eq!(w.remove(7), Some(70));
        assert_eq!(w.len(), 0);
        assert!(w.slots.is_empty(), "nothing kept once everything is taken");
        assert_eq!(w.remove(99), None);
    }

    proptest! {
        /// Against a map: ascending inserts with gaps, takes interleaved in any order.
        #[test]
        fn behaves_like_a_map_for_ascending_keys(
            ops in proptest::collection::vec((any::<bool>(), 0u64..3, 0usize..64), 1..200)
        ) {
            let mut w = SeqWindow::new();
            let mut model = BTreeMap::new();
            let mut next = 1u64;
            for (insert, gap, pick) in ops {
                if insert {
                    next += gap;
                    w.insert(next, next);
                    model.insert(next, next);
                    next += 1;
                } else {
                    let seq = model.keys().nth(pick % model.len().max(1)).copied().unwrap_or(next + 5);
                    prop_assert_eq!(w.remove(seq), model.remove(&seq));
                }
                prop_assert_eq!(w.len(), model.len());
            }
        }
    }
}
