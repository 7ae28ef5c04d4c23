//! `sharded`: implemented by the strategies work.
