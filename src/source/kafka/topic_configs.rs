//! Step 6, DescribeConfigs: the retention of the measured topics
//! (`retention.ms`, `cleanup.policy`), for the projected-loss analysis. Topic
//! configs rarely change: a topic is described when first measured and every
//! [`CONFIG_REFRESH_POLLS`] polls after; failures are counted, never fatal.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::lag::Tp;
use super::poll::Poll;
use crate::model::{ErrorKind, RetentionLimits};

/// Topic configs are described again after this many polls (10 minutes at the
/// default 30 s poll).
pub const CONFIG_REFRESH_POLLS: u32 = 20;

impl Poll<'_> {
    /// The retention of the topics in `measured` the plan asks about; topics the
    /// broker answered without a `retention.ms` (tansu answers only the configs
    /// set on the topic) have unknown retention and are left out.
    pub fn topic_configs(&mut self, measured: &[Tp]) -> HashMap<Arc<str>, Option<RetentionLimits>> {
        let topics: HashSet<&Arc<str>> = measured.iter().map(|(t, _)| t).collect();
        let wanted: Vec<String> = topics
            .into_iter()
            .filter(|t| self.plan.configs_refresh || !self.plan.configs_known.contains(t.as_ref()))
            .map(|t| t.to_string())
            .collect();
        let mut out = HashMap::new();
        if wanted.is_empty() || self.plan.step("DescribeConfigs").is_err() {
            return out;
        }
        let started = Instant::now();
        match self.admin.describe_topic_configs(&wanted) {
            Ok(answers) => {
                for (topic, answer) in answers {
                    match answer {
                        Ok(configs) => {
                            out.insert(Arc::from(topic.as_str()), limits(&configs));
                        }
                        Err(e) => {
                            self.count(ErrorKind::DescribeConfigs, 1);
                            tracing::debug!(source = %self.plan.source, topic, error = %e, "cannot describe topic config");
                        }
                    }
                }
            }
            Err(e) => {
                self.count(ErrorKind::DescribeConfigs, 1);
                tracing::debug!(source = %self.plan.source, error = %e, "DescribeConfigs failed");
            }
        }
        self.trace.phase("describe_configs", started, 1);
        out
    }
}

/// The retention a topic's config entries give, or None when they do not say.
/// Kafka deletes by age only with a `delete` cleanup policy (`compact` alone
/// keeps every key's latest value forever); `retention.ms` -1 is no age limit.
/// `retention.bytes` is not modelled: it needs the partitions' sizes.
pub fn limits(configs: &HashMap<String, String>) -> Option<RetentionLimits> {
    let deletes = configs
        .get("cleanup.policy")
        .is_none_or(|p| p.split(',').any(|x| x.trim() == "delete"));
    let ms: i64 = configs.get("retention.ms")?.trim().parse().ok()?;
    Some(RetentionLimits {
        max_age_seconds: (deletes && ms > 0).then(|| ms as f64 / 1000.0),
        ..RetentionLimits::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_from_topic_configs_table() {
        let c = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // (case, configs, max age)
        let cases = [
            // case 1: a day.
            (1, c(&[("retention.ms", "86400000")]), Some(Some(86400.0))),
            // case 2: -1: no age limit.
            (2, c(&[("retention.ms", "-1")]), Some(None)),
            // case 3: compacted only: nothing deleted by age.
            (
                3,
                c(&[("retention.ms", "1000"), ("cleanup.policy", "compact")]),
                Some(None),
            ),
            // case 4: compact,delete: the age limit holds.
            (
                4,
                c(&[
                    ("retention.ms", "1000"),
                    ("cleanup.policy", "compact,delete"),
                ]),
                Some(Some(1.0)),
            ),
            // case 5: not said: unknown.
            (5, c(&[("cleanup.policy", "delete")]), None),
            // case 6: garbage: unknown, never a guess.
            (6, c(&[("retention.ms", "soon")]), None),
        ];
        for (case, configs, want) in cases {
            assert_eq!(
                limits(&configs).map(|l| l.max_age_seconds),
                want,
                "case {case}"
            );
        }
    }
}
