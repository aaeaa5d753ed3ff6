//! Rates and latency percentiles.

use std::time::Duration;

use serde::Serialize;

/// Latencies of one run.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Adds one.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Adds every one of `other`.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (nearest rank), zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = (p / 100.0 * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank.min(sorted.len()) - 1]
    }

    /// Up to `n` values in milliseconds, evenly spaced through the sorted latencies (for plots).
    pub fn sorted_sample_ms(&self, n: usize) -> Vec<f64> {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let step = sorted.len().div_ceil(n.max(1)).max(1);
        sorted.iter().step_by(step).map(|d| ms(*d)).collect()
    }

    /// p50, p99 and max in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            p50_ms: ms(self.percentile(50.0)),
            p99_ms: ms(self.percentile(99.0)),
            max_ms: ms(self.percentile(100.0)),
        }
    }
}

/// Milliseconds with a microsecond resolution.
pub fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64 / 1000.0 * 100.0).round() / 100.0
}

/// Latency percentiles, for reports.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Events per second.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    round2(count as f64 / elapsed.as_secs_f64())
}

/// Rounded to two decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `a / b`, rounded to two decimals; zero when `b` is zero.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { round2(a / b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        for i in 1..=100 {
            l.push(Duration::from_millis(i));
        }
        assert_eq!(l.percentile(50.0), Duration::from_millis(50));
        assert_eq!(l.percentile(99.0), Duration::from_millis(99));
        assert_eq!(l.percentile(100.0), Duration::from_millis(100));
        assert_eq!(Latencies::default().percentile(50.0), Duration::ZERO);
    }
}
