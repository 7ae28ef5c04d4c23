//! A latency histogram: HdrHistogram (3 significant digits, nanoseconds up to one day) plus the
//! exact count, sum, minimum and maximum, so min/mean/max are exact and percentiles are within 0.1%.

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
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

    /// [`Self::quantile_ms`] at each of `qs` (ascending), in one pass over the histogram instead
    /// of one per quantile: what drawing a percentile curve needs.
    pub fn quantiles_ms(&self, qs: &[f64]) -> Vec<f64> {
        let total = self.hist.len();
        let mut out = Vec::with_capacity(qs.len());
        let mut recorded = self.hist.iter_recorded();
        let mut running = 0u64;
        let mut value = 0u64;
        for &q in qs {
            if self.count == 0 || q <= 0.0 || q >= 1.0 {
                out.push(self.quantile_ms(q));
                continue;
            }
            // As HdrHistogram's value_at_quantile: the first value whose cumulative count
            // reaches ceil(q × total).
            let wanted = ((q * total as f64).ceil() as u64).max(1);
            while running < wanted {
                match recorded.next() {
                    Some(v) => {
                        running += v.count_at_value();
                        value = v.value_iterated_to();
                    }
                    None => break,
                }
            }
            out.push((value as f64 / 1e6).clamp(self.min_ms(), self.max_ms()));
        }
        out
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

    /// HdrHistogram's compressed V2 serialisation (V2 + DEFLATE, values in ns), base64: the
    /// `HISTF...` form that HdrHistogram's log tools, its Java and Python implementations and
    /// interval logs read. (Before issue 18 this was uncompressed V2, `HISTi...` when read as
    /// text; [`Self::from_base64_v2`] reads both.)
    pub fn to_base64_v2(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(compressed_v2(&self.hist))
    }

    /// Rebuilds a histogram from [`Self::to_base64_v2`], compressed or not (the deserializer
    /// tells them apart by their cookie). Exact min/max/mean are recomputed from the buckets
    /// (within 0.1%).
    pub fn from_base64_v2(text: &str) -> Result<LatencyHistogram, String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("not an HdrHistogram V2 payload: {e:?}"))?;
        let count = hist.len();
        Ok(LatencyHistogram {
            count,
            sum_ns: (hist.mean() * count as f64) as u128,
            min_ns: if count == 0 { u64::MAX } else { hist.min() },
            max_ns: hist.max(),
            hist,
        })
    }

    /// The percentile distribution in HdrHistogram's text format (`.hgrm`), values in ms: the
    /// output of Java HdrHistogram's `outputPercentileDistribution(out, 5, 1e6)`, byte for byte
    /// (five percentile ticks per half distance to 100%; the last line, at 100%, has no
    /// `1/(1-Percentile)` column; mean, standard deviation and max are the histogram's own, as
    /// Java computes them). HdrHistogram's plotting tools read it; `tests/data/hgrm/` holds
    /// Java's output for comparison.
    pub fn to_hgrm(&self) -> String {
        use std::fmt::Write;
        const TICKS_PER_HALF_DISTANCE: u32 = 5;
        let scale = 1e6;
        let digits = usize::from(self.hist.sigfig());
        let mut out = format!(
            "{:>12} {:>14} {:>10} {:>14}\n\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        for (value, percentile, total) in percentile_ticks(&self.hist, TICKS_PER_HALF_DISTANCE) {
            let value = value as f64 / scale;
            let q = percentile / 100.0;
            let _ = if percentile < 100.0 {
                writeln!(out, "{value:12.digits$} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q))
            } else {
                writeln!(out, "{value:12.digits$} {q:2.12} {total:10}")
            };
        }
        let max = if self.hist.is_empty() {
            0.0
        } else {
            self.hist.max() as f64 / scale
        };
        let _ = writeln!(
            out,
            "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
            self.hist.mean() / scale,
            self.hist.stdev() / scale
        );
        let _ = writeln!(
            out,
            "#[Max     = {max:12.digits$}, Total count    = {:12}]",
            self.hist.len()
        );
        let _ = writeln!(
            out,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            self.hist.buckets(),
            self.sub_bucket_count()
        );
        out
    }

    /// HdrHistogram's sub-bucket count: the power of two that gives unit resolution up to
    /// `2 × 10^sigfig` (2048 for 3 significant digits). The Rust crate keeps it private.
    fn sub_bucket_count(&self) -> u32 {
        let largest = 2.0 * 10f64.powi(i32::from(self.hist.sigfig()));
        1u32 << (largest.log2().ceil() as u32)
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.hist.add(&other.hist).expect("same bounds");
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

/// `hist` in HdrHistogram's compressed V2 encoding (V2 + DEFLATE).
pub(crate) fn compressed_v2(hist: &Histogram<u64>) -> Vec<u8> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut buf)
        .expect("serialising into a Vec cannot fail");
    buf
}

/// The rows of Java HdrHistogram's `PercentileIterator`: (highest equivalent value, percentile
/// level iterated to, total count up to that value). The Rust crate's `iter_quantiles` steps in
/// quantiles (0.1 + 0.1 + 0.1 > 0.3 in floating point) and so skips rows Java prints; this follows
/// Java's arithmetic in percent: a row whenever the running percentile reaches the level, the level
/// advancing by fixed ticks per half distance to 100%, and one last row at 100% once the last
/// recorded value is reached.
fn percentile_ticks(hist: &Histogram<u64>, ticks_per_half_distance: u32) -> Vec<(u64, f64, u64)> {
    let total = hist.len();
    let mut rows = Vec::new();
    if total == 0 {
        return rows;
    }
    let mut level = 0.0f64;
    let mut running = 0u64;
    for v in hist.iter_recorded() {
        running += v.count_at_value();
        let value = v.value_iterated_to();
        while 100.0 * running as f64 / total as f64 >= level {
            rows.push((value, level, running));
            if running >= total {
                rows.push((value, 100.0, running));
                return rows;
            }
            let halvings = ((100.0 / (100.0 - level)).ln() / 2f64.ln()) as u32;
            let ticks = f64::from(ticks_per_half_distance) * 2f64.powi(halvings as i32 + 1);
            let next = level + 100.0 / ticks;
            // Past f64's resolution the level stops moving: go straight to the last row.
            level = if next > level { next } else { 100.0 };
        }
    }
    rows
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

    /// The compressed form is what is written (`HISTF` once base64'd, the DEFLATE cookie), and
    /// an uncompressed V2 payload, as files from before issue 18 hold, still reads the same.
    #[test]
    fn writes_compressed_v2_and_reads_both() {
        use base64::Engine;
        use hdrhistogram::serialization::V2Serializer;
        let mut h = LatencyHistogram::default();
        for k in 1..=1000u64 {
            h.record(Duration::from_micros(k * 37));
        }
        let compressed = h.to_base64_v2();
        assert!(compressed.starts_with("HISTF"), "{}", &compressed[..12]);
        let mut plain = Vec::new();
        V2Serializer::new().serialize(h.inner(), &mut plain).unwrap();
        let plain = base64::engine::general_purpose::STANDARD.encode(plain);
        assert!(
            compressed.len() < plain.len() / 2,
            "{} vs {}",
            compressed.len(),
            plain.len()
        );
        for text in [&compressed, &plain] {
            let back = LatencyHistogram::from_base64_v2(text).unwrap();
            assert_eq!(back.inner(), h.inner());
        }
    }

    #[test]
    fn quantiles_in_one_pass_match_one_at_a_time() {
        let mut h = LatencyHistogram::default();
        for k in 1..=5000u64 {
            h.record(Duration::from_micros(k * k % 100_003 + 1));
        }
        let qs: Vec<f64> = (0..=300).map(|k| 1.0 - 10f64.powf(-f64::from(k) / 50.0)).collect();
        let one_pass = h.quantiles_ms(&qs);
        for (q, v) in qs.iter().zip(&one_pass) {
            assert_eq!(*v, h.quantile_ms(*q), "q = {q}");
        }
    }

    /// `tests/data/hgrm/*.hgrm` were written by Java HdrHistogram (scripts/hgrm-golden) from the
    /// `*.b64` payloads beside them; ours must be the same text.
    #[test]
    fn hgrm_matches_java_hdrhistogram() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hgrm");
        let mut compared = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "b64") {
                let h = LatencyHistogram::from_base64_v2(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let java = std::fs::read_to_string(path.with_extension("hgrm")).unwrap();
                let ours = h.to_hgrm();
                for (n, (a, b)) in ours.lines().zip(java.lines()).enumerate() {
                    assert_eq!(a, b, "{}: line {}", path.display(), n + 1);
                }
                assert_eq!(ours, java, "{}", path.display());
                compared += 1;
            }
        }
        assert!(compared >= 3, "expected the golden files in {}", dir.display());
    }

    #[test]
    fn empty_hgrm_has_header_and_footer() {
        let text = LatencyHistogram::default().to_hgrm();
        assert!(
            text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n#[Mean"),
            "{text}"
        );
        assert!(
            text.ends_with("#[Buckets =           37, SubBuckets     =         2048]\n"),
            "{text}"
        );
    }
}
