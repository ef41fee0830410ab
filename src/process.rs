//! What Linux's /proc says about a process: resident and peak memory, CPU time.
//! One reader for everything that measures lagwatch (benchmarks, tests); other
//! platforms read zeros.

/// Resource usage of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// VmRSS: resident set size now.
    pub resident_bytes: u64,
    /// VmHWM: the highest resident set size so far.
    pub peak_resident_bytes: u64,
    /// utime + stime: CPU time in user and kernel mode so far.
    pub cpu_seconds: f64,
}

/// /proc/PID/stat counts CPU time in clock ticks of USER_HZ, which Linux fixes
/// at 100 per second for every user-visible interface, whatever the kernel's HZ.
const TICKS_PER_SECOND: f64 = 100.0;

/// Usage of process `pid` (`self` when None); zeros when /proc cannot say.
pub fn usage(pid: Option<u32>) -> Usage {
    let dir = pid.map_or_else(|| "self".to_string(), |p| p.to_string());
    let status = std::fs::read_to_string(format!("/proc/{dir}/status")).unwrap_or_default();
    // Values in kB, whatever the page size.
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let stat = std::fs::read_to_string(format!("/proc/{dir}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces and parentheses)
    // start after the last ')': utime and stime are fields 14 and 15 of stat,
    // indexes 11 and 12 from there.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Usage {
        resident_bytes: kb("VmRSS:"),
        peak_resident_bytes: kb("VmHWM:"),
        cpu_seconds: (ticks(11) + ticks(12)) / TICKS_PER_SECOND,
    }
}

/// Resident set size of this process in bytes.
pub fn resident_bytes() -> u64 {
    usage(None).resident_bytes
}

/// CPU time of this process so far, in seconds.
pub fn cpu_seconds() -> f64 {
    usage(None).cpu_seconds
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time_and_a_peak_at_least_its_size() {
        let busy: u64 = (0..5_000_000u64).map(|i| i % 7).sum();
        assert!(busy > 0);
        let u = usage(None);
        assert!(u.resident_bytes > 1024 * 1024, "{u:?}");
        assert!(u.peak_resident_bytes >= u.resident_bytes, "{u:?}");
        assert!(u.cpu_seconds > 0.0, "{u:?}");
        assert!(usage(Some(std::process::id())).peak_resident_bytes > 0);
    }
}
