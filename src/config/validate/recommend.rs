//! `recommend:`: the section's settings, KEDA's own refusals, and per-group
//! overrides (first match wins, unset keys inherit). A problem a group inherits
//! from the section is reported once, at the section.

use super::group_pattern;
use crate::config::problems::{At, Problems};
use crate::config::raw;
use crate::recommend::{KedaOptions, Resolved, Resolver};

pub(super) fn settings(r: &raw::Recommend, at: &At, p: &mut Problems) -> Option<Resolver> {
    let before = p.len();
    let global = Resolved {
        mode: r.mode,
        min_replicas: r.min_replicas,
        max_replicas: r.max_replicas,
        target_drain_time: r.target_drain_time.get(),
        headroom: r.headroom,
        scale_in_after: r.scale_in_after.get(),
        tolerance: r.tolerance,
        scale_in_max_time_lag: r.scale_in_max_time_lag.get(),
        learn_after: r.learn_after.get(),
        min_backlog: r.min_backlog.get(),
        capacity_per_replica: r.capacity_per_replica,
        replicas: r.replicas,
        keda: r.keda.clone(),
    };
    let top = problems(&global);
    for (key, message) in &top {
        p.push(&at.key(key), message.clone());
    }
    let mut groups = Vec::with_capacity(r.groups.len());
    for (i, g) in r.groups.iter().enumerate() {
        let gat = at.key("groups").index(i);
        let re = group_pattern(p, &gat.key("pattern"), &g.pattern);
        let resolved = apply(g, &global);
        for problem in problems(&resolved) {
            if !top.contains(&problem) {
                p.push(&gat.key(&problem.0), problem.1);
            }
        }
        if let Some(re) = re {
            groups.push((re, resolved));
        }
    }
    (p.len() == before).then(|| Resolver::new(global, groups))
}

/// Problems of one resolved setting as (key relative to the section or group,
/// message): the same problem inherited by a group is then recognised.
fn problems(s: &Resolved) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, m: String| out.push((k.to_string(), m));
    if let Some(max) = s.max_replicas {
        if max == 0 {
            push("max_replicas", "must be at least 1".into());
        } else if s.min_replicas > max {
            push(
                "min_replicas",
                format!(
                    "must not exceed max_replicas ({max}) (got {})",
                    s.min_replicas
                ),
            );
        }
    }
    if s.target_drain_time.is_zero() {
        push("target_drain_time", "must be greater than 0s".into());
    }
    if !(s.headroom.is_finite() && (0.0..=10.0).contains(&s.headroom)) {
        push(
            "headroom",
            format!("must be between 0 and 10 (0.2 = 20 %) (got {})", s.headroom),
        );
    }
    if !(0.0..1.0).contains(&s.tolerance) {
        push(
            "tolerance",
            format!("must be in [0, 1) (got {})", s.tolerance),
        );
    }
    if s.min_backlog.is_zero() {
        push(
            "min_backlog",
            "must be greater than 0s, or any lag would count as saturation".into(),
        );
    }
    if let Some(c) = s.capacity_per_replica {
        if !(c.is_finite() && c > 0.0) {
            push(
                "capacity_per_replica",
                format!("must be a positive rate in msgs/s (got {c})"),
            );
        }
    }
    for (k, m) in s.keda.problems() {
        push(&format!("keda.{k}"), m);
    }
    out
}

/// A group override applied over the section's settings.
fn apply(g: &raw::GroupRecommend, d: &Resolved) -> Resolved {
    let k = &g.keda;
    let dk = &d.keda;
    Resolved {
        mode: g.mode.unwrap_or(d.mode),
        min_replicas: g.min_replicas.unwrap_or(d.min_replicas),
        max_replicas: g.max_replicas.or(d.max_replicas),
        target_drain_time: g.target_drain_time.map_or(d.target_drain_time, |v| v.get()),
        headroom: g.headroom.unwrap_or(d.headroom),
        scale_in_after: g.scale_in_after.map_or(d.scale_in_after, |v| v.get()),
        tolerance: g.tolerance.unwrap_or(d.tolerance),
        scale_in_max_time_lag: g
            .scale_in_max_time_lag
            .map_or(d.scale_in_max_time_lag, |v| v.get()),
        learn_after: g.learn_after.map_or(d.learn_after, |v| v.get()),
        min_backlog: g.min_backlog.map_or(d.min_backlog, |v| v.get()),
        capacity_per_replica: g.capacity_per_replica.or(d.capacity_per_replica),
        replicas: g.replicas.or(d.replicas),
        keda: KedaOptions {
            lag_threshold: k.lag_threshold.unwrap_or(dk.lag_threshold),
            activation_lag_threshold: k
                .activation_lag_threshold
                .unwrap_or(dk.activation_lag_threshold),
            offset_reset_policy: k.offset_reset_policy.unwrap_or(dk.offset_reset_policy),
            allow_idle_consumers: k.allow_idle_consumers.unwrap_or(dk.allow_idle_consumers),
            limit_to_partitions_with_lag: k
                .limit_to_partitions_with_lag
                .unwrap_or(dk.limit_to_partitions_with_lag),
            ensure_even_distribution_of_partitions: k
                .ensure_even_distribution_of_partitions
                .unwrap_or(dk.ensure_even_distribution_of_partitions),
            scale_to_zero_on_invalid_offset: k
                .scale_to_zero_on_invalid_offset
                .unwrap_or(dk.scale_to_zero_on_invalid_offset),
            exclude_persistent_lag: k
                .exclude_persistent_lag
                .unwrap_or(dk.exclude_persistent_lag),
            min_replica_count: k.min_replica_count.unwrap_or(dk.min_replica_count),
            max_replica_count: k.max_replica_count.unwrap_or(dk.max_replica_count),
            hpa_tolerance: k.hpa_tolerance.unwrap_or(dk.hpa_tolerance),
        },
    }
}
