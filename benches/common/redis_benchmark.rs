//! `redis-benchmark` running the fleet's acquire script (`EVALSHA`, the same keys and arguments a
//! `fleet` acquisition sends): the baseline every fleet throughput is a ratio to, measured in the
//! same run (benches/fleet.rs, benches/fleet_serve.rs). Needs Debian's redis-server package.

use credpool::fleet::keys::Keys;
use std::process::Command;

/// `redis-benchmark` running the acquire script with `clients` clients: requests per second.
pub fn acquire_rate(port: u16, pool: &str, clients: usize, requests: usize, calls_per_rotation: u64) -> f64 {
    let sha = ::redis::Script::new(include_str!("../../src/fleet/scripts/acquire.lua"))
        .get_hash()
        .to_string();
    let k = Keys::new(pool);
    let calls_per_rotation = calls_per_rotation.to_string();
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", &clients.to_string()])
        .args(["-n", &requests.to_string(), "-q", "EVALSHA", &sha, "8"])
        .args([&k.meta, &k.ids, &k.tok, &k.gen, &k.exp, &k.dis, &k.bans, &k.ticket])
        .args([calls_per_rotation.as_str(), "gemini_3_series", ""])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    // The last report line: "EVALSHA ...: 41666.67 requests per second, p50=..."
    let line = text
        .rsplit(['\r', '\n'])
        .find(|l| l.contains("requests per second"))
        .unwrap_or_else(|| panic!("redis-benchmark said: {text}"));
    let before = line.split(" requests per second").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().expect("a rate")
}
