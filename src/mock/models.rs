//! Model names interned to small ids, so a journal record stays fixed-size.
//!
//! The names come from requests (paths and bodies a proxy sends), so the table is bounded: past
//! [`MAX_MODELS`] distinct names every new one gets [`OTHER`] and is counted, never silently
//! merged.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinct names kept; beyond them, [`OTHER`].
pub const MAX_MODELS: usize = 4096;
/// No model (the token endpoint).
pub const NONE: u16 = 0;
/// A name past the table's bound.
pub const OTHER: u16 = u16::MAX;

/// Names to ids, and ids (positions) to names.
#[derive(Default)]
struct Table {
    ids: HashMap<Box<str>, u16>,
    names: Vec<Box<str>>,
}

pub struct ModelNames {
    inner: RwLock<Table>,
    /// Requests whose model got [`OTHER`].
    overflowed: AtomicU64,
}

impl Default for ModelNames {
    fn default() -> Self {
        ModelNames {
            inner: RwLock::new(Table {
                ids: HashMap::new(),
                names: vec!["".into()],
            }),
            overflowed: AtomicU64::new(0),
        }
    }
}

impl ModelNames {
    /// The id of `name`, adding it if there is room.
    pub fn intern(&self, name: &str) -> u16 {
        if let Some(&id) = self.inner.read().ids.get(name) {
            return id;
        }
        let mut inner = self.inner.write();
        if let Some(&id) = inner.ids.get(name) {
            return id;
        }
        if inner.names.len() >= MAX_MODELS {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            return OTHER;
        }
        let id = inner.names.len() as u16;
        inner.names.push(name.into());
        inner.ids.insert(name.into(), id);
        id
    }

    /// The name of `id` (`""` for [`NONE`], `"(other)"` for [`OTHER`]).
    pub fn name(&self, id: u16) -> String {
        if id == OTHER {
            return "(other)".into();
        }
        self.inner
            .read()
            .names
            .get(id as usize)
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    /// Every name by id, for writing a journal out.
    pub fn names(&self) -> Vec<String> {
        self.inner.read().names.iter().map(|s| s.to_string()).collect()
    }

    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_bounded() {
        let m = ModelNames::default();
        let a = m.intern("gemini-2.5-pro");
        assert_eq!(m.intern("gemini-2.5-pro"), a);
        assert_ne!(m.intern("claude"), a);
        assert_eq!(m.name(a), "gemini-2.5-pro");
        for i in 0..MAX_MODELS {
            m.intern(&format!("m{i}"));
        }
        assert_eq!(m.intern("one-too-many"), OTHER);
        assert!(m.overflowed() >= 1);
        assert_eq!(m.intern("gemini-2.5-pro"), a);
    }
}
