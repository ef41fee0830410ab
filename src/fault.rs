//! Fault injection for the fault-tolerance tests (tests/faults.rs): debug
//! builds only, driven by the `LAGWATCH_FAULT` environment variable. Release
//! builds compile every hook to nothing.
//!
//! `LAGWATCH_FAULT` is a comma-separated list of:
//! - `panic-source=NAME:N`: the poll of source NAME panics N times (its first
//!   poll always succeeds, so the source is seen up first);
//! - `panic-engine=N`: the engine panics while applying its N-th batch;
//! - `api-delay=MS`: every JSON API request takes MS milliseconds longer
//!   (holding its place in the API's concurrency limit).

/// Called by a source task before each poll.
pub fn before_poll(source: &str) {
    #[cfg(debug_assertions)]
    imp::before_poll(source);
    #[cfg(not(debug_assertions))]
    let _ = source;
}

/// Called by the engine before applying each batch.
pub fn before_batch() {
    #[cfg(debug_assertions)]
    imp::before_batch();
}

/// Awaited by the JSON API's handlers.
pub async fn api_delay() {
    #[cfg(debug_assertions)]
    {
        let ms = imp::api_delay_ms();
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
}

#[cfg(debug_assertions)]
mod imp {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Mutex, OnceLock};

    #[derive(Debug, Default)]
    struct Faults {
        /// Source name -> panics left.
        source_panics: HashMap<String, u32>,
        engine_panic_at: Option<u32>,
        api_delay_ms: u64,
    }

    pub fn api_delay_ms() -> u64 {
        faults().lock().map_or(0, |f| f.api_delay_ms)
    }

    fn faults() -> &'static Mutex<Faults> {
        static FAULTS: OnceLock<Mutex<Faults>> = OnceLock::new();
        FAULTS.get_or_init(|| {
            let mut f = Faults::default();
            let spec = std::env::var("LAGWATCH_FAULT").unwrap_or_default();
            for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if let Some(rest) = item.strip_prefix("panic-source=") {
                    if let Some((name, n)) = rest.rsplit_once(':') {
                        f.source_panics
                            .insert(name.to_string(), n.parse().unwrap_or(1));
                    }
                } else if let Some(n) = item.strip_prefix("panic-engine=") {
                    f.engine_panic_at = n.parse().ok();
                } else if let Some(ms) = item.strip_prefix("api-delay=") {
                    f.api_delay_ms = ms.parse().unwrap_or(0);
                }
            }
            Mutex::new(f)
        })
    }

    static POLLS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
    static BATCHES: AtomicU32 = AtomicU32::new(0);

    pub fn before_poll(source: &str) {
        let polls = {
            let Ok(mut p) = POLLS.lock() else { return };
            let n = p
                .get_or_insert_with(HashMap::new)
                .entry(source.to_string())
                .or_default();
            *n += 1;
            *n
        };
        if polls < 2 {
            return;
        }
        let fire = {
            let Ok(mut f) = faults().lock() else { return };
            match f.source_panics.get_mut(source) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            }
        };
        if fire {
            panic!("LAGWATCH_FAULT: injected panic in the poll of source `{source}`");
        }
    }

    pub fn before_batch() {
        let n = BATCHES.fetch_add(1, Ordering::Relaxed) + 1;
        let at = faults().lock().ok().and_then(|f| f.engine_panic_at);
        if at == Some(n) {
            panic!("LAGWATCH_FAULT: injected panic in the engine at batch {n}");
        }
    }
}
