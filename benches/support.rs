//! Process measurements for benchmarks: lagwatch's own /proc reader.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test and benchmark code: a panic is a failed run with its line; table tests are long by design"
)]
#![allow(dead_code, reason = "each bench uses a subset")]

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    lagwatch::process::resident_bytes()
}

/// User + system CPU time of this process so far, in seconds.
pub fn cpu_seconds() -> f64 {
    lagwatch::process::cpu_seconds()
}
