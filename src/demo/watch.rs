//! What the demo shows while it plays: a terminal summary per interval, and the
//! story's checkpoints (the [`Report`]) read off each snapshot.

use std::collections::HashSet;

use super::{story, Report};
use crate::model::Status;
use crate::recommend::Reason;
use crate::snapshot::Snapshot;

/// Folds snapshots into the report.
#[derive(Debug, Default)]
pub(super) struct Checkpoints {
    email_was_stopped: bool,
    seen_incidents: HashSet<String>,
    open_before: HashSet<String>,
}

impl Checkpoints {
    /// Marks what `snap`, at story time `t`, shows of the story.
    pub fn observe(&mut self, snap: &Snapshot, t: f64, report: &mut Report) {
        for src in &snap.sources {
            for g in src.groups.iter() {
                let Some(a) = &g.analysis else { continue };
                match &*g.key.group {
                    "email-service" => {
                        if a.status == Status::Stop {
                            self.email_was_stopped = true;
                            report.email_stopped = true;
                        }
                        if self.email_was_stopped
                            && t > story::EMAIL_DOWN_TO
                            && a.status == Status::Ok
                            // Caught up: only a commit interval's worth behind.
                            && a.time_lag_max.seconds().is_some_and(|s| s < 3.0)
                        {
                            report.email_recovered = true;
                        }
                    }
                    "payment-service" => {
                        if let Some(d) = &g.dead_letters {
                            report.dead_letters = report.dead_letters.max(d.recent);
                        }
                    }
                    "analytics" => {
                        if let Some(r) = &g.recommendation {
                            if r.recommended.is_some_and(|n| {
                                n > r.current.unwrap_or(story::ANALYTICS_CONSUMERS)
                            }) {
                                report.analytics_scale_out = true;
                            }
                            if r.reason == Reason::PartitionBound {
                                report.analytics_partition_bound = true;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let open: HashSet<String> = snap.incidents.iter().map(|i| i.id.to_string()).collect();
        for id in &open {
            if self.seen_incidents.insert(id.clone()) {
                report.notifications_fired += 1;
            }
        }
        report.notifications_resolved += self.open_before.difference(&open).count() as u64;
        self.open_before = open;
    }
}

/// One terminal line per group, worst first.
pub(super) fn summary(snap: &Snapshot, t: f64) -> Vec<String> {
    let mut out = vec![format!(
        "— t={t:>5.0}s (story) ———————————————————————————————————————————"
    )];
    let mut rows: Vec<(Status, String)> = Vec::new();
    for src in &snap.sources {
        if !src.up {
            out.push(format!("  {} is DOWN", src.id));
            continue;
        }
        for g in src.groups.iter() {
            let Some(a) = &g.analysis else { continue };
            let behind = a
                .time_lag_max
                .seconds()
                .map_or("?".to_string(), |s| format!("{s:.0}s"));
            let growth = a
                .lag_growth
                .map_or("–".to_string(), |r| format!("{r:+.0}/s"));
            let eta = a
                .eta_seconds
                .map_or("–".to_string(), |e| format!("{e:.0}s"));
            let why: Vec<&str> = g.causes.iter().map(|f| f.cause.as_str()).collect();
            let dead = g
                .dead_letters
                .as_ref()
                .filter(|d| d.recent > 0)
                .map_or(String::new(), |d| format!("  dead letters {}", d.recent));
            rows.push((
                a.status,
                format!(
                    "  {:<18} {:<6} lag {:>7}  behind {:>6}  growth {:>7}  eta {:>6}{}{dead}",
                    g.key.group,
                    a.status.as_str(),
                    a.lag_sum,
                    behind,
                    growth,
                    eta,
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!("  why {}", why.join(", "))
                    }
                ),
            ));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    out.extend(rows.into_iter().map(|(_, l)| l));
    out
}
