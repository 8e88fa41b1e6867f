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

#[cfg(test)]
mod tests {
    use super::*;

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
