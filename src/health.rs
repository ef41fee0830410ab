//! The process's own liveness, for `/healthz` and `/readyz`: whether the
//! engine and the notifier are still running, whether snapshots keep coming,
//! and how often a source task had to be restarted. Shared by the tasks (they
//! report) and the HTTP server (it reads); a process that cannot do its job
//! fails its health check and is restarted, rather than serving frozen data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, Opts, Registry};

use crate::model::Millis;

/// See the module docs.
#[derive(Debug)]
pub struct Health {
    tasks: Mutex<BTreeMap<&'static str, Arc<AtomicBool>>>,
    /// When the engine last published a snapshot (ms since the epoch).
    last_publish: AtomicI64,
    /// A snapshot older than this fails the health check.
    publish_within: Duration,
    /// None only if the metric could not be made (logged).
    restarts: Option<IntCounterVec>,
    registry: Registry,
}

impl Health {
    /// `publish_within`: the longest a healthy engine goes without publishing
    /// (a few of the longest poll deadline: every poll, failed or not, publishes).
    pub fn new(publish_within: Duration) -> Arc<Health> {
        let registry = Registry::new();
        let restarts = IntCounterVec::new(
            Opts::new(
                "lagwatch_task_restarts_total",
                "Source tasks restarted after a panic, by source; each restart is logged at error level with the panic message.",
            ),
            &["source"],
        )
        .and_then(|c| registry.register(Box::new(c.clone())).map(|()| c))
        .map_err(|e| tracing::error!(error = %e, "cannot register lagwatch_task_restarts_total"))
        .ok();
        Arc::new(Health {
            tasks: Mutex::new(BTreeMap::new()),
            last_publish: AtomicI64::new(Millis::now().0),
            publish_within,
            restarts,
            registry,
        })
    }

    /// Registers a task that must keep running; the guard marks it dead when
    /// dropped (returned, or unwound by a panic).
    pub fn task(&self, name: &'static str) -> Alive {
        let flag = Arc::new(AtomicBool::new(true));
        if let Ok(mut t) = self.tasks.lock() {
            t.insert(name, flag.clone());
        }
        Alive(flag)
    }

    pub fn published(&self, at: Millis) {
        self.last_publish.store(at.0, Ordering::Relaxed);
    }

    pub fn restarted(&self, source: &str) {
        if let Some(r) = &self.restarts {
            r.with_label_values(&[source]).inc();
        }
    }

    /// The registry of `lagwatch_task_restarts_total`, for /metrics.
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Ok, or what is wrong.
    pub fn check(&self, now: Millis) -> Result<(), String> {
        let mut wrong = Vec::new();
        if let Ok(t) = self.tasks.lock() {
            for (name, alive) in t.iter() {
                if !alive.load(Ordering::Relaxed) {
                    wrong.push(format!("the {name} task is not running"));
                }
            }
        }
        let age = Duration::from_millis(
            u64::try_from(now.0 - self.last_publish.load(Ordering::Relaxed)).unwrap_or(0),
        );
        if age > self.publish_within {
            wrong.push(format!(
                "no snapshot published for {} (expected within {})",
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(self.publish_within)
            ));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }
}

/// Marks its task dead when dropped.
#[derive(Debug)]
pub struct Alive(Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_task_or_an_old_snapshot_fails_the_check() {
        let h = Health::new(Duration::from_secs(10));
        let now = Millis::now();
        h.published(now);
        let engine = h.task("engine");
        assert_eq!(h.check(now), Ok(()));
        assert!(h
            .check(Millis(now.0 + 11_000))
            .unwrap_err()
            .contains("no snapshot published for 11s"));
        drop(engine);
        assert!(h.check(now).unwrap_err().contains("engine task"));
    }

    #[test]
    fn a_panic_marks_the_task_dead() {
        let h = Health::new(Duration::from_secs(10));
        let alive = h.task("notifier");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _alive = alive;
            panic!("boom");
        }));
        assert!(r.is_err());
        assert!(h.check(Millis::now()).unwrap_err().contains("notifier"));
    }

    #[test]
    fn restarts_are_counted_per_source() {
        let h = Health::new(Duration::from_secs(10));
        h.restarted("k");
        h.restarted("k");
        let mut out = String::new();
        crate::export::encode_registry(&h.registry(), &mut out);
        assert!(
            out.contains("lagwatch_task_restarts_total{source=\"k\"} 2"),
            "{out}"
        );
    }
}
