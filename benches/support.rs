//! Process measurements for benchmarks, read from /proc (Linux).
#![allow(dead_code, reason = "each bench uses a subset")]

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    lagwatch::memory::resident_bytes()
}

/// User + system CPU time of this process so far, in seconds.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; index 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}
