//! A latency histogram: HdrHistogram (3 significant digits, nanoseconds up to one day) plus the
//! exact count, sum, minimum and maximum, so min/mean/max are exact and percentiles are within 0.1%.

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

const MAX_NS: u64 = 86_400 * 1_000_000_000;

#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    count: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            hist: Histogram::new_with_bounds(1, MAX_NS, 3).expect("static bounds are valid"),
            count: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }
}

/// The figures every report shows, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        let ns = (d.as_nanos().min(MAX_NS as u128)) as u64;
        self.hist.saturating_record(ns.max(1));
        self.count += 1;
        self.sum_ns += ns as u128;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count as f64 / 1e6
        }
    }

    pub fn min_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.min_ns as f64 / 1e6
        }
    }

    pub fn max_ms(&self) -> f64 {
        self.max_ns as f64 / 1e6
    }

    /// The value at quantile `q` (0..=1), ms. The extremes are exact.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        if q <= 0.0 {
            return self.min_ms();
        }
        if q >= 1.0 {
            return self.max_ms();
        }
        // HdrHistogram reports the highest value equivalent to the bucket; clamp into [min, max].
        (self.hist.value_at_quantile(q) as f64 / 1e6).clamp(self.min_ms(), self.max_ms())
    }

    pub fn stats(&self) -> LatencyStats {
        LatencyStats {
            count: self.count,
            min: self.min_ms(),
            mean: self.mean_ms(),
            p50: self.quantile_ms(0.5),
            p90: self.quantile_ms(0.9),
            p99: self.quantile_ms(0.99),
            p999: self.quantile_ms(0.999),
            max: self.max_ms(),
        }
    }

    pub fn inner(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// HdrHistogram's V2 serialisation (values in ns), base64: what other HdrHistogram tools read.
    pub fn to_base64_v2(&self) -> String {
        use base64::Engine;
        let mut buf = Vec::new();
        V2Serializer::new().serialize(&self.hist, &mut buf).expect("serialising into a Vec cannot fail");
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    /// Rebuilds a histogram from [`Self::to_base64_v2`]. Exact min/max/mean are recomputed from
    /// the buckets (within 0.1%).
    pub fn from_base64_v2(text: &str) -> Result<LatencyHistogram, String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
        let hist: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("not an HdrHistogram V2 payload: {e:?}"))?;
        let count = hist.len();
        Ok(LatencyHistogram {
            count,
            sum_ns: (hist.mean() * count as f64) as u128,
            min_ns: if count == 0 { u64::MAX } else { hist.min() },
            max_ns: hist.max(),
            hist,
        })
    }

    /// The percentile distribution in HdrHistogram's text format (`.hgrm`), values in ms.
    pub fn to_hgrm(&self) -> String {
        let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
        let scale = 1e6;
        let mut cumulative = 0u64;
        for v in self.hist.iter_quantiles(5) {
            let q = v.quantile_iterated_to();
            cumulative += v.count_since_last_iteration();
            let inv = if q < 1.0 { format!("{:14.2}", 1.0 / (1.0 - q)) } else { String::new() };
            out.push_str(&format!("{:12.3} {:14.12} {:10} {}\n", v.value_iterated_to() as f64 / scale, q, cumulative, inv));
        }
        out.push_str(&format!(
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]\n#[Buckets = {:12}, SubBuckets     = {:12}]\n",
            self.mean_ms(),
            self.hist.stdev() / scale,
            self.max_ms(),
            self.count,
            self.hist.buckets(),
            self.hist.distinct_values()
        ));
        out
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.hist.add(&other.hist).expect("same bounds");
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_extremes_and_close_percentiles() {
        let mut h = LatencyHistogram::default();
        for k in 1..=100u64 {
            h.record(Duration::from_millis(30 * k));
        }
        let s = h.stats();
        assert_eq!(s.min, 30.0);
        assert_eq!(s.max, 3000.0);
        assert!((s.mean - 1515.0).abs() < 1e-9);
        assert!((s.p50 - 1500.0).abs() / 1500.0 < 0.001, "{}", s.p50);
    }

    #[test]
    fn v2_round_trip() {
        let mut h = LatencyHistogram::default();
        for k in 1..=1000u64 {
            h.record(Duration::from_micros(k * 37));
        }
        let back = LatencyHistogram::from_base64_v2(&h.to_base64_v2()).unwrap();
        assert_eq!(back.count(), 1000);
        assert!((back.quantile_ms(0.99) - h.quantile_ms(0.99)).abs() < 0.01);
        assert!(h.to_hgrm().contains("Total count"));
    }
}
