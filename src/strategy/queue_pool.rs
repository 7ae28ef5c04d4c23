//! `queue_pool`: implemented by the strategies work.
