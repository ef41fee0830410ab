//! Dead-letter topics of one poll: which topics of the metadata are ones (by
//! the configured conventions and links), and their heads, read by step 5's
//! ListOffsets together with the groups' partitions.

use std::collections::HashMap;
use std::sync::Arc;

use super::lag::Tp;
use super::metadata::Topics;
use super::poll::Plan;
use crate::analysis::dead_letters::Named;
use crate::model::{DeadLetterReading, DeadLetterReason};

/// One dead-letter topic found in the metadata.
pub(super) struct Found {
    pub topic: Arc<str>,
    pub partitions: i32,
    pub named: Named,
    /// This shard reports it.
    pub owned: bool,
}

/// The dead-letter topics among `topics`, at most `max_tracked` (by name).
pub(super) fn find(topics: &Topics, plan: &Plan) -> Vec<Found> {
    let d = &plan.dead_letters;
    let mut found: Vec<Found> = topics
        .iter()
        .filter_map(|(t, &n)| {
            d.classify(t).map(|named| {
                // The shard of the named group reports it; else the shard of
                // the dead-letter topic's name.
                let owner = named.group.as_deref().unwrap_or(t);
                Found {
                    topic: t.clone(),
                    partitions: n,
                    owned: plan.shard.owns(plan.source.as_str(), owner),
                    named,
                }
            })
        })
        .collect();
    if found.len() > d.max_tracked {
        tracing::warn!(
            source = %plan.source,
            found = found.len(),
            max_tracked = d.max_tracked,
            "more dead-letter topics than dead_letters.max_tracked; the rest (by name) are not watched"
        );
        found.truncate(d.max_tracked);
    }
    found
}

/// The partitions of `found`, for ListOffsets.
pub(super) fn partitions(found: &[Found]) -> impl Iterator<Item = Tp> + '_ {
    found
        .iter()
        .flat_map(|f| (0..f.partitions).map(move |p| (f.topic.clone(), p)))
}

/// One reading per dead-letter topic whose every partition's latest offset was
/// read; a topic with a partition missing is left out (kept stale by the
/// engine, never a smaller count) and counted in `skipped`.
pub(super) fn readings(
    found: &[Found],
    latest: &HashMap<Tp, i64>,
    earliest: &HashMap<Tp, i64>,
    sees_all_groups: bool,
    skipped: &mut u64,
) -> Vec<DeadLetterReading> {
    let mut out = Vec::with_capacity(found.len());
    'topics: for f in found {
        let (mut total, mut stored, mut stored_known) = (0u64, 0u64, true);
        for p in 0..f.partitions {
            let tp = (f.topic.clone(), p);
            let Some(&head) = latest.get(&tp) else {
                *skipped += 1;
                continue 'topics;
            };
            let head = u64::try_from(head).unwrap_or(0);
            total = total.saturating_add(head);
            match earliest.get(&tp).and_then(|&l| u64::try_from(l).ok()) {
                Some(low) => stored = stored.saturating_add(head.saturating_sub(low)),
                None => stored_known = false,
            }
        }
        out.push(DeadLetterReading {
            reason: DeadLetterReason::DeadLetterTopic,
            topic: Arc::from(f.named.topic.as_str()),
            dead_letter_topic: Some(f.topic.clone()),
            group: f.named.group.as_deref().map(Arc::from),
            total,
            stored: stored_known.then_some(stored),
            last: None,
            owned: f.owned,
            sees_all_groups,
            partitions: u32::try_from(f.partitions).unwrap_or(0),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_topic_is_read_whole_or_not_at_all() {
        let found = |topic: &str, partitions| Found {
            topic: Arc::from(topic),
            partitions,
            named: Named {
                topic: topic.trim_end_matches(".dlq").into(),
                group: None,
            },
            owned: true,
        };
        let all = [found("a.dlq", 2), found("b.dlq", 2)];
        let tp = |t: &str, p| (Arc::<str>::from(t), p);
        let latest: HashMap<Tp, i64> = [
            (tp("a.dlq", 0), 10),
            (tp("a.dlq", 1), 5),
            (tp("b.dlq", 0), 7),
        ]
        .into();
        let earliest: HashMap<Tp, i64> = [(tp("a.dlq", 0), 4), (tp("a.dlq", 1), 5)].into();
        let mut skipped = 0;
        let got = readings(&all, &latest, &earliest, true, &mut skipped);
        // a: 15 ever written, 6 stored; b: partition 1 unread, left out.
        assert_eq!(got.len(), 1);
        assert_eq!(&*got[0].topic, "a");
        assert_eq!((got[0].total, got[0].stored), (15, Some(6)));
        assert_eq!(skipped, 1);
        // Without the earliest offsets, stored is unknown, not 0.
        let got = readings(&all[..1], &latest, &HashMap::new(), true, &mut skipped);
        assert_eq!(got[0].stored, None);
    }
}
