//! `rwlock`: implemented by the strategies work.
