//! Handshake latency (ClientHello → ServerHello) as an HDR histogram.
//!
//! Values are microseconds from 1 µs to one hour at two significant digits (values beyond
//! are counted as one hour). In the JSON report the histogram is written as its non-empty
//! buckets, `[[value, count], ...]`, where `value` is the highest value of the bucket:
//! recording those back fills exactly the same buckets, so reports merge exactly.

use hdrhistogram::Histogram;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const LOWEST: u64 = 1;
const HIGHEST: u64 = 3_600_000_000;
const SIGFIG: u8 = 2;

#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(LOWEST, HIGHEST, SIGFIG)
                .expect("static histogram bounds are valid"),
        }
    }
}

impl PartialEq for Latency {
    fn eq(&self, other: &Self) -> bool {
        self.buckets() == other.buckets()
    }
}

/// Percentiles for reports, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Latency {
    pub fn record(&mut self, micros: u64) {
        self.hist.saturating_record(micros.clamp(LOWEST, HIGHEST));
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail; saturate as a fallback anyway.
        for (value, count) in other.buckets() {
            self.hist.saturating_record_n(value, count);
        }
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: self.hist.len(),
            p50_us: self.hist.value_at_quantile(0.50),
            p90_us: self.hist.value_at_quantile(0.90),
            p99_us: self.hist.value_at_quantile(0.99),
            max_us: self.hist.max(),
        }
    }

    /// Non-empty buckets as (highest value in the bucket, count).
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }
}

/// The JSON form: percentiles for people, buckets for merging.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(flatten)]
    percentiles: Percentiles,
    buckets: Vec<(u64, u64)>,
}

impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            percentiles: self.percentiles(),
            buckets: self.buckets(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        let mut latency = Latency::default();
        for (value, count) in wire.buckets {
            if value == 0 {
                return Err(D::Error::custom("latency bucket 0 (values start at 1 µs)"));
            }
            // The top bucket's highest value may lie above HIGHEST: it saturates into the
            // same bucket.
            latency.hist.saturating_record_n(value, count);
        }
        Ok(latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_and_merge_exactly() {
        let mut all = Latency::default();
        let (mut a, mut b) = (Latency::default(), Latency::default());
        for (i, v) in [5u64, 130, 1_234, 98_765, 1, 0, 7_200_000_000, 455]
            .into_iter()
            .enumerate()
        {
            all.record(v);
            if i % 2 == 0 { &mut a } else { &mut b }.record(v);
        }
        let json = serde_json::to_string(&a).unwrap();
        let mut back: Latency = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        back.merge(&b);
        assert_eq!(back, all);
        assert_eq!(back.percentiles(), all.percentiles());
        assert_eq!(all.count(), 8);
        assert!(all.percentiles().max_us >= 3_600_000_000);
    }
}
