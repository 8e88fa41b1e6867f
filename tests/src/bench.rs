//! Support for the benchmark binaries (`src/bin/loadgen`, `src/bin/bench.rs`): one monotonic
//! clock shared by every process on the machine, a process's CPU time and memory from `/proc`,
//! and percentiles.

use serde_json::{Value, json};

/// Nanoseconds on `CLOCK_MONOTONIC`: the same clock in every process on this machine, so
/// several generator processes can be compared.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What `/proc` says about a process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU time, in seconds.
    pub cpu_secs: f64,
    /// Resident set size now, in KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size so far, in KiB (`VmHWM`).
    pub hwm_kib: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status` (`pid` 0: this process).
pub fn proc_sample(pid: u32) -> std::io::Result<ProcSample> {
    let dir = if pid == 0 {
        "/proc/self".to_owned()
    } else {
        format!("/proc/{pid}")
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are
    // fixed: state is field 3, utime 14 and stime 15.
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu_secs = (ticks(11) + ticks(12)) as f64 / hz;
    let status = std::fs::read_to_string(format!("{dir}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        cpu_secs,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// CPU seconds the whole machine has spent so far (every core), from the first line of
/// `/proc/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    /// Processes and hardware interrupts: user, nice, system and irq time.
    pub tasks: f64,
    /// Softirq time: on loopback, mostly the receive side of our own TCP traffic, which the
    /// kernel does not charge to the sending process.
    pub softirq: f64,
    /// Time the hypervisor gave this VM's CPUs to someone else.
    pub steal: f64,
}

pub fn machine_cpu() -> MachineCpu {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0) as f64;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    MachineCpu {
        tasks: (at(0) + at(1) + at(2) + at(5)) / hz,
        softirq: at(6) / hz,
        steal: at(7) / hz,
    }
}

/// The value at quantile `q` (0..=1) of sorted samples (nearest rank).
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p99, p99.9 and max of nanosecond samples, in microseconds (sorts `samples`).
pub fn latency_summary(samples: &mut [u64]) -> Value {
    samples.sort_unstable();
    let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
    json!({
        "count": samples.len(),
        "p50_us": us(quantile(samples, 0.50)),
        "p99_us": us(quantile(samples, 0.99)),
        "p999_us": us(quantile(samples, 0.999)),
        "max_us": us(samples.last().copied().unwrap_or(0)),
    })
}

/// The median of some numbers (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if !v.len().is_multiple_of(2) {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Latencies counted in buckets 1 % wide, so that windows measured apart (in several runs, or
/// drawn again and again by [`ratio_interval`]) can be pooled afterwards and any quantile of
/// the pool read within 1 %. Bucket 0 holds everything under 1 µs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogHistogram {
    counts: Vec<u64>,
}

/// Each bucket's upper edge is this many times its lower edge.
const BUCKET_GROWTH: f64 = 1.01;
const BUCKET_FLOOR_NS: f64 = 1_000.0;

impl LogHistogram {
    pub fn from_ns(samples: impl IntoIterator<Item = u64>) -> Self {
        let mut h = Self::default();
        for ns in samples {
            let b = Self::bucket(ns);
            if h.counts.len() <= b {
                h.counts.resize(b + 1, 0);
            }
            h.counts[b] += 1;
        }
        h
    }

    fn bucket(ns: u64) -> usize {
        let ns = ns as f64;
        if ns < BUCKET_FLOOR_NS {
            return 0;
        }
        1 + ((ns / BUCKET_FLOOR_NS).ln() / BUCKET_GROWTH.ln()).floor() as usize
    }

    /// The middle (geometric) of bucket `b`, in nanoseconds.
    fn value_ns(b: usize) -> f64 {
        match b {
            0 => BUCKET_FLOOR_NS / 2.0,
            _ => BUCKET_FLOOR_NS * BUCKET_GROWTH.powf(b as f64 - 0.5),
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn add(&mut self, other: &Self) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// The value at quantile `q` (nearest rank, as [`quantile`]), within 1 %; `None` if empty.
    pub fn quantile_ns(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (b, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::value_ns(b));
            }
        }
        None
    }

    /// `[[bucket, count], ...]` for the buckets that hold anything.
    pub fn to_json(&self) -> Value {
        let pairs: Vec<[u64; 2]> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| [b as u64, *n])
            .collect();
        json!(pairs)
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        let mut h = Self::default();
        for pair in v.as_array()? {
            let (b, n) = (pair.get(0)?.as_u64()? as usize, pair.get(1)?.as_u64()?);
            if b > 100_000 {
                return None;
            }
            if h.counts.len() <= b {
                h.counts.resize(b + 1, 0);
            }
            h.counts[b] += n;
        }
        Some(h)
    }
}

/// The attacked windows' quantile `q` over the quiet windows', each side pooled over `rounds`
/// (pairs of quiet and attacked histograms); `None` if a side is empty.
pub fn pooled_ratio(rounds: &[(&LogHistogram, &LogHistogram)], q: f64) -> Option<f64> {
    let (mut quiet, mut attacked) = (LogHistogram::default(), LogHistogram::default());
    for (q_h, a_h) in rounds {
        quiet.add(q_h);
        attacked.add(a_h);
    }
    Some(attacked.quantile_ns(q)? / quiet.quantile_ns(q)?)
}

/// How sure a ratio of pooled quantiles ([`pooled_ratio`]) is: paired rounds (a quiet window and the attacked one
/// after it) drawn again with replacement, `resamples` times, and the ratio at quantile `q` of
/// the attacked pool to the quiet pool taken each time; returns the middle `confidence` of those
/// ratios (`[low, high]`). Rounds, not deliveries, are drawn because a stall of the host or
/// the disk slows every delivery of a second together: the rounds are what is independent.
pub fn ratio_interval(
    rounds: &[(&LogHistogram, &LogHistogram)],
    q: f64,
    confidence: f64,
    resamples: usize,
) -> Option<[f64; 2]> {
    use rand::{Rng, SeedableRng};
    if rounds.is_empty() || resamples == 0 {
        return None;
    }
    // A fixed seed: the same measurement always gives the same interval.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut ratios = Vec::with_capacity(resamples);
    let mut drawn = Vec::with_capacity(rounds.len());
    for _ in 0..resamples {
        drawn.clear();
        drawn.extend((0..rounds.len()).map(|_| rounds[rng.random_range(0..rounds.len())]));
        ratios.extend(pooled_ratio(&drawn, q));
    }
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    let at = |p: f64| ratios[((p * ratios.len() as f64) as usize).min(ratios.len() - 1)];
    Some([at(tail), at(1.0 - tail)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_reads_quantiles_within_one_percent_and_pools_and_round_trips() {
        let samples: Vec<u64> = (1..=100_000).map(|i| i * 37).collect();
        let h = LogHistogram::from_ns(samples.iter().copied());
        assert_eq!(h.count(), 100_000);
        for q in [0.01, 0.5, 0.99, 0.999] {
            let exact = quantile(&samples, q) as f64;
            let got = h.quantile_ns(q).unwrap();
            assert!(
                (got / exact - 1.0).abs() <= 0.01,
                "q {q}: {got} against {exact}"
            );
        }
        // Two halves pooled are the whole.
        let (low, high) = samples.split_at(50_000);
        let mut pooled = LogHistogram::from_ns(low.iter().copied());
        pooled.add(&LogHistogram::from_ns(high.iter().copied()));
        assert_eq!(pooled, h);
        assert_eq!(LogHistogram::from_json(&h.to_json()), Some(h));
        assert_eq!(LogHistogram::default().quantile_ns(0.5), None);
        assert_eq!(LogHistogram::from_ns([10]).quantile_ns(0.5), Some(500.0));
    }

    #[test]
    fn the_interval_holds_the_ratio_and_narrows_when_rounds_agree() {
        // Rounds whose attacked window is 1.1x to 1.3x its quiet one.
        let quiet = LogHistogram::from_ns((1..=1000).map(|i| i * 1_000));
        let attacked: Vec<LogHistogram> = [1.1, 1.3, 1.2, 1.15, 1.25]
            .iter()
            .map(|f| LogHistogram::from_ns((1..=1000).map(|i| (i as f64 * 1_000.0 * f) as u64)))
            .collect();
        let rounds: Vec<_> = attacked.iter().map(|a| (&quiet, a)).collect();
        let [low, high] = ratio_interval(&rounds, 0.99, 0.9, 500).unwrap();
        assert!(low >= 1.09 && high <= 1.31 && low < high, "{low}..{high}");
        // Rounds that all agree leave no doubt.
        let same: Vec<_> = (0..5).map(|_| (&quiet, &attacked[0])).collect();
        let [low, high] = ratio_interval(&same, 0.99, 0.9, 200).unwrap();
        assert!((low - high).abs() < 1e-9 && (low - 1.1).abs() < 0.02);
        assert_eq!(ratio_interval(&[], 0.99, 0.9, 200), None);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 500);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&v, 0.999), 999);
        assert_eq!(quantile(&v, 1.0), 1000);
        assert_eq!(quantile(&[7], 0.001), 7);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let s = proc_sample(0).unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
