//! Keyed random draws: the same key gives the same number, whoever asks and in whatever order.
//!
//! Common random numbers across strategies need draws keyed by *what* is drawn (request 17's API
//! latency, credential 2's third refresh), not by a shared generator's position, which would
//! depend on the order a strategy happens to ask in. SplitMix64 over (seed, stream, key) is tiny,
//! fast enough for millions of draws per second, and statistically good for this purpose.

/// Independent sequences of draws within one seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    ApiLatency = 1,
    ApiStatus = 2,
    RefreshLatency = 3,
    RefreshFailure = 4,
    Arrival = 5,
    User = 6,
    Model = 7,
    Sample = 8,
    ThinkTime = 9,
    /// `credpool torture`: when to kill a writer process, and which.
    Torture = 10,
    /// `credpool compare`: the bootstrap's resampling.
    Bootstrap = 11,
    /// `credpool upstream`: connection resets and slow bodies.
    Wire = 12,
    /// `credpool upstream`: the random part of the tokens it issues.
    Token = 13,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The seed of repetition `index` of a run seeded `seed` (`credpool run --repeat`): repetition
/// 0 keeps `seed` itself, so a repeated run's first repetition is the plain run; the others are
/// SplitMix64 mixes of (seed, index), deterministic and far apart.
pub fn repetition_seed(seed: u64, index: u64) -> u64 {
    if index == 0 {
        seed
    } else {
        splitmix64(seed ^ splitmix64(index.wrapping_mul(0xD1B5_4A32_D192_ED03)))
    }
}

/// 64 keyed random bits for `key` in `stream` under `seed`.
pub fn bits(seed: u64, stream: Stream, key: u64) -> u64 {
    splitmix64(splitmix64(seed ^ splitmix64(stream as u64)) ^ key)
}

/// A uniform draw in `[0, 1)` for `key` in `stream` under `seed`.
pub fn uniform(seed: u64, stream: Stream, key: u64) -> f64 {
    let h = bits(seed, stream, key);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A second, independent uniform for the same key (Box-Muller needs two).
pub fn uniform2(seed: u64, stream: Stream, key: u64) -> f64 {
    uniform(seed, stream, key ^ 0xA5A5_A5A5_5A5A_5A5A)
}

/// A standard normal draw (Box-Muller).
pub fn normal(seed: u64, stream: Stream, key: u64) -> f64 {
    let u1 = uniform(seed, stream, key).max(f64::MIN_POSITIVE);
    let u2 = uniform2(seed, stream, key);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// An integer in `0..n` (n > 0).
pub fn index(seed: u64, stream: Stream, key: u64, n: u64) -> u64 {
    ((uniform(seed, stream, key) * n as f64) as u64).min(n.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_keyed_and_roughly_uniform() {
        assert_eq!(uniform(1, Stream::ApiLatency, 7), uniform(1, Stream::ApiLatency, 7));
        assert_ne!(uniform(1, Stream::ApiLatency, 7), uniform(1, Stream::ApiStatus, 7));
        assert_ne!(uniform(1, Stream::ApiLatency, 7), uniform(2, Stream::ApiLatency, 7));
        let n = 100_000;
        let mean: f64 = (0..n).map(|k| uniform(3, Stream::Arrival, k)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        let var: f64 = (0..n).map(|k| normal(3, Stream::Arrival, k).powi(2)).sum::<f64>() / n as f64;
        assert!((var - 1.0).abs() < 0.03, "normal variance {var}");
    }
}
