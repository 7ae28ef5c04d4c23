//! `lock_free`: implemented by the strategies work.
