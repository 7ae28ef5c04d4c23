//! A private `redis-server` per test: [`credpool::fleet::server::RedisServer`] (a free
//! 127.0.0.1 port, nothing on disk, killed on drop), which the fleet benchmark uses too.

#[allow(unused_imports)] // only the test files that start a server use it
pub use credpool::fleet::server::RedisServer;
