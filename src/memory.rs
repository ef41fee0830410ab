//! Heap housekeeping for a long-running daemon on glibc.
//!
//! Each poll builds a new generation of samples and views and frees the old
//! one. glibc's malloc keeps freed memory in the arena of the thread that
//! allocated it and hands it back to the kernel only from the top of a heap,
//! so without help the resident size settles at the peak of every poll's
//! allocations, spread over up to 8 arenas per core. Two calls fix that:
//! fewer arenas at start, and `malloc_trim` once per published snapshot.
//! Other allocators and platforms: both are no-ops.

/// Arenas glibc may create (its default is 8 per core). lagwatch's allocating
/// threads are the engine, the pollers and librdkafka's; two arenas keep lock
/// contention negligible at one poll per source per interval.
pub const ARENAS: i32 = 2;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "two glibc allocator calls without Rust bindings"
)]
mod glibc {
    use std::os::raw::c_int;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
    }

    /// glibc's malloc.h: `#define M_ARENA_MAX -8`.
    const M_ARENA_MAX: c_int = -8;

    pub fn limit_arenas(n: i32) -> bool {
        // SAFETY: mallopt takes two integers and changes allocator settings;
        // M_ARENA_MAX only bounds arenas created later. Called before any
        // thread is spawned.
        unsafe { mallopt(M_ARENA_MAX, n) == 1 }
    }

    pub fn trim() -> bool {
        // SAFETY: malloc_trim takes a byte count and releases free memory;
        // it locks each arena itself and is safe to call from any thread.
        unsafe { malloc_trim(0) == 1 }
    }
}

/// Caps the number of malloc arenas; call first thing in `main`. Returns
/// whether the allocator took the setting.
pub fn limit_arenas() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::limit_arenas(ARENAS)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Returns the heap's free memory to the kernel. Returns whether any was.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::trim()
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;
    use crate::process::resident_bytes;

    #[test]
    fn trim_gives_freed_heap_back_to_the_kernel() {
        // 64 MiB in small blocks (below the mmap threshold, so they live in the
        // heap), with every second one kept so the freed half is not at the
        // top of the heap and glibc would not release it by itself.
        let blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|_| vec![1u8; 1000]).collect();
        let kept: Vec<Vec<u8>> = blocks
            .into_iter()
            .enumerate()
            .filter_map(|(i, b)| (i % 64 == 0).then_some(b))
            .collect();
        let before = resident_bytes();
        trim();
        let after = resident_bytes();
        assert!(kept.iter().all(|b| b[0] == 1));
        assert!(
            after + 16 * 1024 * 1024 < before,
            "RSS {before} -> {after}: trim released less than 16 MiB of ~63 MiB freed"
        );
    }
}
