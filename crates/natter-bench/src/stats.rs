//! Latency histogram: log-linear buckets (64 per power of two, so every
//! reported value is within 1/64 ≈ 1.6 % of the true one), mergeable across
//! worker processes as a sparse `[[bucket, count], …]` list.

use serde_json::{json, Value};

/// Sub-buckets per power of two: 2^SUB_BITS.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are their own bucket (exact).
const LINEAR: u64 = 2 * SUB;
/// Buckets needed for the whole u64 range.
const BUCKETS: usize = (LINEAR + (63 - SUB_BITS as u64) * SUB) as usize;

/// A histogram of u64 values (nanoseconds in this tool).
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

/// The bucket holding `v`.
pub fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let shift = e - SUB_BITS;
    LINEAR as usize + (e - SUB_BITS - 1) as usize * SUB as usize + ((v >> shift) - SUB) as usize
}

/// The smallest value of bucket `i` and the bucket's width.
pub fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < LINEAR {
        return (i, 1);
    }
    let k = i - LINEAR;
    let shift = (k / SUB) as u32 + 1;
    ((SUB + k % SUB) << shift, 1 << shift)
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.count += 1;
        self.sum += v as u128;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding
    /// the ⌈q·count⌉-th smallest value, clamped to the observed min and max.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = bucket_range(i);
                return (lo + (width - 1) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Sparse form for the worker → parent pipe.
    pub fn to_json(&self) -> Value {
        let buckets: Vec<[u64; 2]> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| [i as u64, c])
            .collect();
        json!({"b": buckets, "sum": self.sum as f64, "min": self.min, "max": self.max})
    }

    pub fn from_json(v: &Value) -> Histogram {
        let mut h = Histogram::default();
        if let Some(b) = v["b"].as_array() {
            for pair in b {
                let i = pair[0].as_u64().unwrap_or(0) as usize;
                let c = pair[1].as_u64().unwrap_or(0);
                if i < BUCKETS {
                    h.counts[i] += c;
                    h.count += c;
                }
            }
        }
        h.sum = v["sum"].as_f64().unwrap_or(0.0) as u128;
        h.min = v["min"].as_u64().unwrap_or(u64::MAX);
        h.max = v["max"].as_u64().unwrap_or(0);
        h
    }

    /// Percentiles in microseconds (the values are nanoseconds).
    pub fn summary_us(&self) -> Value {
        let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
        json!({
            "count": self.count,
            "p50": us(self.quantile(0.50)),
            "p90": us(self.quantile(0.90)),
            "p99": us(self.quantile(0.99)),
            "p999": us(self.quantile(0.999)),
            "max": us(self.max()),
            "mean": us(self.mean() as u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(127), 127);
        assert_eq!(bucket(128), 128);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for i in 0..BUCKETS - 1 {
            let (lo, w) = bucket_range(i);
            let (next, _) = bucket_range(i + 1);
            assert_eq!(lo + w, next, "bucket {i}");
            assert_eq!(bucket(lo), i);
            assert_eq!(bucket(lo + w - 1), i);
        }
    }

    #[test]
    fn exact_percentiles_for_small_values() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(0.999), 100);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn relative_error_is_bounded() {
        for v in [1_000u64, 12_345, 999_999, 1_500_000, 123_456_789, 1 << 40] {
            let mut h = Histogram::default();
            h.record(1); // so clamping to min/max does not hide the error
            h.record(v);
            h.record(u64::MAX / 2);
            let got = h.quantile(0.5);
            let err = (got as f64 - v as f64).abs() / v as f64;
            assert!(err <= 1.0 / 64.0, "{v} -> {got} ({err})");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = Histogram::default();
        for v in 1..=1_000_000u64 {
            h.record(v * 1000); // 1 µs .. 1 s
        }
        for (q, want) in [
            (0.5, 500_000_000f64),
            (0.99, 990_000_000.0),
            (0.999, 999_000_000.0),
        ] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), 1_000_000_000);
    }

    #[test]
    fn merge_and_json_round_trip() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for v in 0..1000 {
            a.record(v * 7);
            b.record(v * 13 + 5);
        }
        let b2 = Histogram::from_json(&serde_json::from_str(&b.to_json().to_string()).unwrap());
        assert_eq!(b2.count(), b.count());
        assert_eq!(b2.quantile(0.9), b.quantile(0.9));
        let mut m = a.clone();
        m.merge(&b2);
        assert_eq!(m.count(), 2000);
        assert_eq!(m.max(), 999 * 13 + 5);
        let mut both = a;
        for v in 0..1000 {
            both.record(v * 13 + 5);
        }
        assert_eq!(both.quantile(0.5), m.quantile(0.5));
        assert_eq!(both.quantile(0.99), m.quantile(0.99));
    }

    #[test]
    fn empty_histogram() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.99), 0);
        assert_eq!(h.summary_us()["count"], 0);
    }
}
