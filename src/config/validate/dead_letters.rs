//! `dead_letters:`: the window, the Kafka naming conventions and explicit
//! links, JetStream's advisories, and how many are tracked.

use std::time::Duration;

use crate::analysis::dead_letters::{DeadLetterSettings, Link};
use crate::config::problems::{At, Problems};
use crate::config::raw;

/// Longer than this is a typo: the counts are kept in memory for the window.
const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// A convention longer than this is not a convention.
const MAX_AFFIX: usize = 64;
/// Kafka's own limit on a topic name.
const MAX_TOPIC: usize = 249;
const MAX_LINKS: usize = 1000;
const MAX_TRACKED: usize = 100_000;

pub(super) fn settings(
    d: &raw::DeadLetters,
    at: &At,
    p: &mut Problems,
) -> Option<DeadLetterSettings> {
    let def = DeadLetterSettings::default();
    let before = p.len();
    let window = d.window.map_or(def.window, |w| w.get());
    if window < Duration::from_secs(10) || window > MAX_WINDOW {
        p.push(
            &at.key("window"),
            format!(
                "must be between 10s and 7d (got {})",
                humantime::format_duration(window)
            ),
        );
    }
    let kafka = at.key("kafka");
    let suffixes = affixes(
        d.kafka.suffixes.as_ref(),
        &def.suffixes,
        &kafka.key("suffixes"),
        p,
    );
    let prefixes = affixes(
        d.kafka.prefixes.as_ref(),
        &def.prefixes,
        &kafka.key("prefixes"),
        p,
    );
    let links = links(&d.kafka.topics, &kafka.key("topics"), p);
    let max_tracked = d.max_tracked.unwrap_or(def.max_tracked);
    if max_tracked == 0 || max_tracked > MAX_TRACKED {
        p.push(
            &at.key("max_tracked"),
            format!("must be between 1 and {MAX_TRACKED} (got {max_tracked})"),
        );
    }
    (p.len() == before).then(|| DeadLetterSettings {
        enabled: d.enabled.unwrap_or(def.enabled),
        window,
        suffixes,
        prefixes,
        links,
        advisories: d.jetstream.advisories.unwrap_or(def.advisories),
        max_tracked,
    })
}

/// `kafka.topics`: explicit links, each a real topic name, none twice.
fn links(topics: &[raw::DeadLetterLink], at: &At, p: &mut Problems) -> Vec<Link> {
    if topics.len() > MAX_LINKS {
        p.push(
            at,
            format!("at most {MAX_LINKS} entries (got {})", topics.len()),
        );
    }
    let mut links: Vec<Link> = Vec::new();
    for (i, l) in topics.iter().enumerate() {
        let at = at.index(i);
        for (key, v) in [
            ("dead_letter_topic", &l.dead_letter_topic),
            ("topic", &l.topic),
        ] {
            if v.is_empty() || v.len() > MAX_TOPIC {
                p.push(
                    &at.key(key),
                    format!("must be a topic name of 1 to {MAX_TOPIC} bytes"),
                );
            }
        }
        if l.dead_letter_topic == l.topic && !l.topic.is_empty() {
            p.push(
                &at.key("dead_letter_topic"),
                "must differ from topic: a topic cannot be its own dead-letter queue",
            );
        }
        if links
            .iter()
            .any(|o| o.dead_letter_topic == l.dead_letter_topic)
        {
            p.push(
                &at.key("dead_letter_topic"),
                format!("{:?} is linked twice", l.dead_letter_topic),
            );
        }
        if l.group.as_deref() == Some("") {
            p.push(
                &at.key("group"),
                "must not be empty; leave it out when unknown",
            );
        }
        links.push(Link {
            dead_letter_topic: l.dead_letter_topic.clone(),
            topic: l.topic.clone(),
            group: l.group.clone(),
        });
    }
    links
}

/// Suffixes or prefixes: the given list (which may be empty, to turn the
/// convention off) or the defaults; each non-empty and short.
fn affixes(
    given: Option<&Vec<String>>,
    default: &[String],
    at: &At,
    p: &mut Problems,
) -> Vec<String> {
    let Some(list) = given else {
        return default.to_vec();
    };
    for (i, a) in list.iter().enumerate() {
        if a.is_empty() || a.len() > MAX_AFFIX {
            p.push(
                &at.index(i),
                format!("must be 1 to {MAX_AFFIX} bytes (got {})", a.len()),
            );
        }
    }
    list.clone()
}
