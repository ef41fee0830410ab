//! The `recommend:` config section: mode, replica bounds, drain target, headroom,
//! hysteresis, capacity learning and KEDA options, with per-group overrides by
//! regex on the group name (first match wins, unset keys inherit).

use serde::Deserialize;

use super::keda::{KedaOptions, OffsetResetPolicy};
use crate::config::Seconds;

/// How the recommendation is computed.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// From rates, learned per-replica capacity and a drain target (default).
    #[default]
    RateAware,
    /// Exactly what KEDA's Kafka / NATS JetStream scaler and the HPA would run.
    Keda,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::RateAware => "rate_aware",
            Mode::Keda => "keda",
        }
    }
}

/// The whole section. Every key has a default; `{}` is a valid section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub mode: Mode,
    /// Rate-aware floor. 0 allows "scale to zero" advice for idle groups.
    #[serde(default = "default_min_replicas")]
    pub min_replicas: u32,
    /// Rate-aware ceiling. Unset: only the partition count bounds it.
    #[serde(default)]
    pub max_replicas: Option<u32>,
    /// The backlog should be gone within this long.
    #[serde(default = "default_target_drain_time")]
    pub target_drain_time: Seconds,
    /// Spare capacity on top of what the rates need (0.2 = 20 %).
    #[serde(default = "default_headroom")]
    pub headroom: f64,
    /// Scale-in is advised only after lower recommendations, with lag near zero
    /// and steady, for this long without a break.
    #[serde(default = "default_scale_in_after")]
    pub scale_in_after: Seconds,
    /// Relative changes up to this are ignored (0.1: 10 %), as the HPA does.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// "Lag near zero" for scale-in: the oldest unconsumed message is at most
    /// this old.
    #[serde(default = "default_scale_in_max_time_lag")]
    pub scale_in_max_time_lag: Seconds,
    /// Capacity is learned only after the group has been saturated (every
    /// partition behind) for this long, so the window's rate is a saturated one.
    #[serde(default = "default_learn_after")]
    pub learn_after: Seconds,
    /// A partition counts as behind when its backlog would take at least this
    /// long at its consume rate: its consumer never ran out of work.
    #[serde(default = "default_min_backlog")]
    pub min_backlog: Seconds,
    /// Per-replica capacity in msgs/s, when known from load tests; wins over
    /// the learned value.
    #[serde(default)]
    pub capacity_per_replica: Option<f64>,
    /// Current replicas when the broker cannot tell (JetStream pull consumers,
    /// push consumers with a deliver group).
    #[serde(default)]
    pub replicas: Option<u32>,
    #[serde(default)]
    pub keda: KedaOptions,
    /// Per-group overrides; the first whose `pattern` matches the group name
    /// (Kafka group id, JetStream consumer name) wins.
    #[serde(default)]
    pub groups: Vec<GroupSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            min_replicas: default_min_replicas(),
            max_replicas: None,
            target_drain_time: default_target_drain_time(),
            headroom: default_headroom(),
            scale_in_after: default_scale_in_after(),
            tolerance: default_tolerance(),
            scale_in_max_time_lag: default_scale_in_max_time_lag(),
            learn_after: default_learn_after(),
            min_backlog: default_min_backlog(),
            capacity_per_replica: None,
            replicas: None,
            keda: KedaOptions::default(),
            groups: Vec::new(),
        }
    }
}

fn default_min_replicas() -> u32 {
    // Advising zero replicas is a decision to take deliberately (min_replicas: 0).
    1
}
fn default_target_drain_time() -> Seconds {
    Seconds::from_secs(600)
}
fn default_headroom() -> f64 {
    // One replica in five spare: absorbs rate noise and a rebalance pause.
    0.2
}
fn default_scale_in_after() -> Seconds {
    // Twice the HPA's default 5 m scale-down stabilization window: lagwatch
    // advises, it does not act, so it may be slower to take capacity away.
    Seconds::from_secs(600)
}
fn default_tolerance() -> f64 {
    // Kubernetes' --horizontal-pod-autoscaler-tolerance default.
    0.1
}
fn default_scale_in_max_time_lag() -> Seconds {
    // One default poll interval: caught up as far as a poll can tell.
    Seconds::from_secs(30)
}
fn default_learn_after() -> Seconds {
    // Half the default analysis window: the window's consume rate is then at
    // least half saturated; the bias (if any) is low, towards more replicas.
    Seconds::from_secs(300)
}
fn default_min_backlog() -> Seconds {
    // One default poll interval of work queued on every partition.
    Seconds::from_secs(30)
}

/// One per-group override; unset keys inherit from the section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSettings {
    /// Regex on the group name (unanchored, as `regex` matches by default).
    pub pattern: String,
    pub mode: Option<Mode>,
    pub min_replicas: Option<u32>,
    pub max_replicas: Option<u32>,
    pub target_drain_time: Option<Seconds>,
    pub headroom: Option<f64>,
    pub scale_in_after: Option<Seconds>,
    pub tolerance: Option<f64>,
    pub scale_in_max_time_lag: Option<Seconds>,
    pub learn_after: Option<Seconds>,
    pub min_backlog: Option<Seconds>,
    pub capacity_per_replica: Option<f64>,
    pub replicas: Option<u32>,
    #[serde(default)]
    pub keda: KedaOverride,
}

/// KEDA options of one group override; unset keys inherit.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KedaOverride {
    pub lag_threshold: Option<i64>,
    pub activation_lag_threshold: Option<i64>,
    pub offset_reset_policy: Option<OffsetResetPolicy>,
    pub allow_idle_consumers: Option<bool>,
    pub limit_to_partitions_with_lag: Option<bool>,
    pub ensure_even_distribution_of_partitions: Option<bool>,
    pub scale_to_zero_on_invalid_offset: Option<bool>,
    pub exclude_persistent_lag: Option<bool>,
    pub min_replica_count: Option<u32>,
    pub max_replica_count: Option<u32>,
    pub hpa_tolerance: Option<f64>,
}

/// The settings of one group, every key resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub mode: Mode,
    pub min_replicas: u32,
    pub max_replicas: Option<u32>,
    pub target_drain_time: Seconds,
    pub headroom: f64,
    pub scale_in_after: Seconds,
    pub tolerance: f64,
    pub scale_in_max_time_lag: Seconds,
    pub learn_after: Seconds,
    pub min_backlog: Seconds,
    pub capacity_per_replica: Option<f64>,
    pub replicas: Option<u32>,
    pub keda: KedaOptions,
}

impl Default for Resolved {
    fn default() -> Self {
        Settings::default().global()
    }
}

fn ms(d: Seconds) -> i64 {
    i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX)
}

impl Resolved {
    pub fn target_drain_secs(&self) -> f64 {
        self.target_drain_time.get().as_secs_f64()
    }
    pub fn scale_in_after_ms(&self) -> i64 {
        ms(self.scale_in_after)
    }
    pub fn learn_after_ms(&self) -> i64 {
        ms(self.learn_after)
    }
    pub fn min_backlog_secs(&self) -> f64 {
        self.min_backlog.get().as_secs_f64()
    }
    pub fn scale_in_max_time_lag_secs(&self) -> f64 {
        self.scale_in_max_time_lag.get().as_secs_f64()
    }

    /// Problems as (key relative to the section or group, message).
    fn problems(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, m: String| out.push((k.to_string(), m));
        if let Some(max) = self.max_replicas {
            if max == 0 {
                push("max_replicas", "must be at least 1".into());
            } else if self.min_replicas > max {
                push(
                    "min_replicas",
                    format!(
                        "must not exceed max_replicas ({max}) (got {})",
                        self.min_replicas
                    ),
                );
            }
        }
        if self.target_drain_time.get().is_zero() {
            push("target_drain_time", "must be greater than 0s".into());
        }
        if !(self.headroom.is_finite() && (0.0..=10.0).contains(&self.headroom)) {
            push(
                "headroom",
                format!(
                    "must be between 0 and 10 (0.2 = 20 %) (got {})",
                    self.headroom
                ),
            );
        }
        if !(0.0..1.0).contains(&self.tolerance) {
            push(
                "tolerance",
                format!("must be in [0, 1) (got {})", self.tolerance),
            );
        }
        if self.min_backlog.get().is_zero() {
            push(
                "min_backlog",
                "must be greater than 0s, or any lag would count as saturation".into(),
            );
        }
        if let Some(c) = self.capacity_per_replica {
            if !(c.is_finite() && c > 0.0) {
                push(
                    "capacity_per_replica",
                    format!("must be a positive rate in msgs/s (got {c})"),
                );
            }
        }
        for (k, m) in self.keda.problems() {
            push(&format!("keda.{k}"), m);
        }
        out
    }
}

impl Settings {
    fn global(&self) -> Resolved {
        Resolved {
            mode: self.mode,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            target_drain_time: self.target_drain_time,
            headroom: self.headroom,
            scale_in_after: self.scale_in_after,
            tolerance: self.tolerance,
            scale_in_max_time_lag: self.scale_in_max_time_lag,
            learn_after: self.learn_after,
            min_backlog: self.min_backlog,
            capacity_per_replica: self.capacity_per_replica,
            replicas: self.replicas,
            keda: self.keda.clone(),
        }
    }

    /// Compiles the per-group patterns. A pattern that does not compile is
    /// skipped here; [`Settings::validate`] reports it first.
    pub fn resolver(&self) -> Resolver {
        let default = self.global();
        let groups: Vec<(String, Resolved)> = self
            .groups
            .iter()
            .map(|g| (g.pattern.clone(), g.apply(&default)))
            .collect();
        Resolver::new(default, groups)
    }

    /// Every problem, each with its dotted path under `path` (e.g. `recommend`).
    /// A problem inherited from the section is reported once, at the section.
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let at = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        let global = self.global();
        let top = global.problems();
        let mut out: Vec<(String, String)> = top.iter().map(|(k, m)| (at(k), m.clone())).collect();
        for (i, g) in self.groups.iter().enumerate() {
            let gat = at(&format!("groups[{i}]"));
            if let Some(message) = crate::config::group_pattern_problem(&g.pattern) {
                out.push((format!("{gat}.pattern"), message));
            }
            for p in g.apply(&global).problems() {
                if !top.contains(&p) {
                    out.push((format!("{gat}.{}", p.0), p.1));
                }
            }
        }
        out
    }
}

impl GroupSettings {
    fn apply(&self, d: &Resolved) -> Resolved {
        let k = &self.keda;
        let dk = &d.keda;
        Resolved {
            mode: self.mode.unwrap_or(d.mode),
            min_replicas: self.min_replicas.unwrap_or(d.min_replicas),
            max_replicas: self.max_replicas.or(d.max_replicas),
            target_drain_time: self.target_drain_time.unwrap_or(d.target_drain_time),
            headroom: self.headroom.unwrap_or(d.headroom),
            scale_in_after: self.scale_in_after.unwrap_or(d.scale_in_after),
            tolerance: self.tolerance.unwrap_or(d.tolerance),
            scale_in_max_time_lag: self
                .scale_in_max_time_lag
                .unwrap_or(d.scale_in_max_time_lag),
            learn_after: self.learn_after.unwrap_or(d.learn_after),
            min_backlog: self.min_backlog.unwrap_or(d.min_backlog),
            capacity_per_replica: self.capacity_per_replica.or(d.capacity_per_replica),
            replicas: self.replicas.or(d.replicas),
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
}

/// The settings of each group (first matching pattern, else the section's).
pub type Resolver = crate::config::PerGroup<Resolved>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupKey, SourceId};
    use std::sync::Arc;

    fn group(name: &str) -> GroupKey {
        GroupKey {
            source: SourceId::new("k"),
            scope: None,
            group: Arc::from(name),
        }
    }

    #[test]
    fn an_empty_section_gives_the_documented_defaults() {
        let s: Settings = serde_yaml::from_str("{}").unwrap();
        let r = s.resolver();
        let d = r.for_group(&group("any"));
        assert_eq!(d.mode, Mode::RateAware);
        assert_eq!((d.min_replicas, d.max_replicas), (1, None));
        assert_eq!(d.target_drain_time, Seconds::from_secs(600));
        assert_eq!((d.headroom, d.tolerance), (0.2, 0.1));
        assert_eq!(d.scale_in_after, Seconds::from_secs(600));
        assert_eq!(d.scale_in_max_time_lag, Seconds::from_secs(30));
        assert_eq!(d.learn_after, Seconds::from_secs(300));
        assert_eq!(d.min_backlog, Seconds::from_secs(30));
        assert_eq!((d.capacity_per_replica, d.replicas), (None, None));
        assert_eq!(d.keda, KedaOptions::default());
        assert_eq!(d.keda.lag_threshold, 10);
        assert_eq!(d.keda.activation_lag_threshold, 0);
        assert_eq!(d.keda.offset_reset_policy, OffsetResetPolicy::Latest);
        assert_eq!(
            (d.keda.min_replica_count, d.keda.max_replica_count),
            (0, 100)
        );
        assert!(s.validate("recommend").is_empty());
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        for bad in [
            "mdoe: keda",
            "keda: {lagThreshold: 5}",
            "groups: [{pattern: a, headrom: 1}]",
            "groups: [{pattern: a, keda: {lag_treshold: 1}}]",
            "mode: hpa",
        ] {
            let r: Result<Settings, _> = serde_yaml::from_str(bad);
            assert!(r.is_err(), "{bad}");
        }
    }

    #[test]
    fn validate_reports_every_problem_once_with_its_dotted_path() {
        let s: Settings = serde_yaml::from_str(
            "min_replicas: 5\nmax_replicas: 3\ntarget_drain_time: 0s\nheadroom: -1\n\
             tolerance: 1.5\ncapacity_per_replica: 0\n\
             keda: {lag_threshold: 0, allow_idle_consumers: true, limit_to_partitions_with_lag: true}\n\
             groups:\n  - {pattern: '(', max_replicas: 10}\n  - {pattern: 'x', min_replicas: 20, keda: {hpa_tolerance: 2}}",
        )
        .unwrap();
        let paths: Vec<String> = s.validate("recommend").into_iter().map(|p| p.0).collect();
        assert_eq!(
            paths,
            vec![
                "recommend.min_replicas",
                "recommend.target_drain_time",
                "recommend.headroom",
                "recommend.tolerance",
                "recommend.capacity_per_replica",
                "recommend.keda.lag_threshold",
                "recommend.keda.limit_to_partitions_with_lag",
                // groups[0]: bad regex; its max 10 fixes min 5 > max 3, nothing new.
                "recommend.groups[0].pattern",
                // groups[1]: min 20 > inherited max 3 is new; so is its tolerance.
                "recommend.groups[1].min_replicas",
                "recommend.groups[1].keda.hpa_tolerance",
            ]
        );
    }

    #[test]
    fn the_first_matching_group_pattern_wins_and_unset_keys_inherit() {
        let s: Settings = serde_yaml::from_str(
            "headroom: 0.5\nkeda: {lag_threshold: 100}\n\
             groups:\n  - {pattern: '^pay', mode: keda, keda: {activation_lag_threshold: 7}}\n  - {pattern: 'pay', replicas: 3}",
        )
        .unwrap();
        let r = s.resolver();
        // case 1: matches both: the first wins; lag_threshold and headroom inherited.
        let p = r.for_group(&group("payments"));
        assert_eq!(p.mode, Mode::Keda);
        assert_eq!(
            (p.keda.lag_threshold, p.keda.activation_lag_threshold),
            (100, 7)
        );
        assert_eq!((p.headroom, p.replicas), (0.5, None));
        // case 2: only the second.
        let p = r.for_group(&group("repay"));
        assert_eq!((p.mode, p.replicas), (Mode::RateAware, Some(3)));
        // case 3: none: the section.
        let p = r.for_group(&group("orders"));
        assert_eq!(
            (p.mode, p.keda.activation_lag_threshold),
            (Mode::RateAware, 0)
        );
    }
}
