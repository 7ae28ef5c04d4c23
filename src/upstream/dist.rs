//! Latency distributions as scenario files write them.
//!
//! `"800ms"` is a constant; a table picks a distribution:
//! `{ dist = "lognormal", median = "800ms", p99 = "5s" }`, `{ dist = "uniform", min = "100ms",
//! max = "1s" }`, `{ dist = "exponential", mean = "200ms" }`. Draws are keyed (see [`super::draw`]).

use super::draw::{self, Stream};
use crate::duration::Span;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// z-score of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum LatencyDist {
    Constant { value: Span },
    Uniform { min: Span, max: Span },
    Lognormal { median: Span, p99: Span },
    Exponential { mean: Span },
}

impl Default for LatencyDist {
    fn default() -> Self {
        LatencyDist::Constant { value: Span::ZERO }
    }
}

impl LatencyDist {
    pub fn constant(d: Duration) -> Self {
        LatencyDist::Constant { value: Span(d) }
    }

    /// The draw for `key` in `stream`.
    pub fn sample(&self, seed: u64, stream: Stream, key: u64) -> Duration {
        let secs = match *self {
            LatencyDist::Constant { value } => return value.0,
            LatencyDist::Uniform { min, max } => {
                let u = draw::uniform(seed, stream, key);
                min.0.as_secs_f64() + u * (max.0.as_secs_f64() - min.0.as_secs_f64())
            }
            LatencyDist::Lognormal { median, p99 } => {
                let mu = median.0.as_secs_f64().max(1e-9).ln();
                let sigma = ((p99.0.as_secs_f64().max(1e-9)).ln() - mu).max(0.0) / Z99;
                (mu + sigma * draw::normal(seed, stream, key)).exp()
            }
            LatencyDist::Exponential { mean } => {
                let u = draw::uniform(seed, stream, key);
                -mean.0.as_secs_f64() * (1.0 - u).ln()
            }
        };
        Duration::from_secs_f64(secs.clamp(0.0, crate::duration::MAX_DURATION.as_secs_f64()))
    }

    /// The distribution's mean, for predictions.
    pub fn mean(&self) -> Duration {
        let s = match *self {
            LatencyDist::Constant { value } => value.0.as_secs_f64(),
            LatencyDist::Uniform { min, max } => (min.0.as_secs_f64() + max.0.as_secs_f64()) / 2.0,
            LatencyDist::Lognormal { median, p99 } => {
                let mu = median.0.as_secs_f64().max(1e-9).ln();
                let sigma = ((p99.0.as_secs_f64().max(1e-9)).ln() - mu).max(0.0) / Z99;
                (mu + sigma * sigma / 2.0).exp()
            }
            LatencyDist::Exponential { mean } => mean.0.as_secs_f64(),
        };
        Duration::from_secs_f64(s)
    }
}

#[derive(Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
enum Table {
    Constant { value: Span },
    Uniform { min: Span, max: Span },
    Lognormal { median: Span, p99: Span },
    Exponential { mean: Span },
}

impl<'de> Deserialize<'de> for LatencyDist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LatencyDist;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"800ms\", or a table such as { dist = \"lognormal\", median = \"800ms\", p99 = \"5s\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LatencyDist, E> {
                crate::duration::parse_duration(v).map(LatencyDist::constant).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LatencyDist, A::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(match t {
                    Table::Constant { value } => LatencyDist::Constant { value },
                    Table::Uniform { min, max } => {
                        if max < min {
                            return Err(de::Error::custom("uniform latency needs min <= max"));
                        }
                        LatencyDist::Uniform { min, max }
                    }
                    Table::Lognormal { median, p99 } => {
                        if p99 < median {
                            return Err(de::Error::custom("lognormal latency needs median <= p99"));
                        }
                        LatencyDist::Lognormal { median, p99 }
                    }
                    Table::Exponential { mean } => LatencyDist::Exponential { mean },
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_hits_its_median_and_p99() {
        let d = LatencyDist::Lognormal { median: Span::from_millis(800), p99: Span::from_millis(5000) };
        let mut xs: Vec<f64> = (0..20_000).map(|k| d.sample(9, Stream::ApiLatency, k).as_secs_f64()).collect();
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = xs[xs.len() / 2];
        let p99 = xs[xs.len() * 99 / 100];
        assert!((median - 0.8).abs() < 0.04, "median {median}");
        assert!((p99 - 5.0).abs() < 0.5, "p99 {p99}");
    }

    #[test]
    fn parses_strings_and_tables() {
        #[derive(Deserialize, Debug)]
        struct W {
            a: LatencyDist,
            b: LatencyDist,
        }
        let w: W = toml::from_str("a = \"30ms\"\nb = { dist = \"uniform\", min = \"1ms\", max = \"3ms\" }").unwrap();
        assert_eq!(w.a, LatencyDist::constant(Duration::from_millis(30)));
        assert_eq!(w.b.mean(), Duration::from_millis(2));
        let e = toml::from_str::<W>("a = \"30ms\"\nb = { dist = \"gamma\" }").unwrap_err();
        assert!(e.to_string().contains("gamma"), "{e}");
    }
}
