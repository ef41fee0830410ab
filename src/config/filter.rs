//! Which names and groups this process watches: allow/deny regex lists
//! compiled once, and the shard of the groups it owns.

use regex::RegexSet;

/// A name passes when it matches some allow pattern (or the allow list is empty)
/// and no deny pattern. Patterns are unanchored, as in Burrow and kminion; write
/// `^name$` for an exact match.
#[derive(Clone, Debug, Default)]
pub struct NameFilter {
    allow: Option<RegexSet>,
    deny: Option<RegexSet>,
}

impl NameFilter {
    /// Compiles both lists; Err carries the regex crate's message (validation
    /// has already checked each pattern on its own, so this fails only on size
    /// limits of the combined set).
    pub fn compile(allow: &[String], deny: &[String]) -> Result<NameFilter, String> {
        let set = |pats: &[String]| -> Result<Option<RegexSet>, String> {
            if pats.is_empty() {
                Ok(None)
            } else {
                RegexSet::new(pats).map(Some).map_err(|e| e.to_string())
            }
        };
        Ok(NameFilter {
            allow: set(allow)?,
            deny: set(deny)?,
        })
    }

    /// Neither list is set: every name is allowed.
    pub fn allows_all(&self) -> bool {
        self.allow.is_none() && self.deny.is_none()
    }

    pub fn allows(&self, name: &str) -> bool {
        self.allow.as_ref().is_none_or(|a| a.is_match(name))
            && !self.deny.as_ref().is_some_and(|d| d.is_match(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(allow: &[&str], deny: &[&str]) -> NameFilter {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        NameFilter::compile(&own(allow), &own(deny)).unwrap()
    }

    #[test]
    fn an_empty_filter_allows_everything() {
        assert!(f(&[], &[]).allows("orders"));
    }

    #[test]
    fn deny_wins_over_allow() {
        let filter = f(&["^orders"], &["-dlq$"]);
        assert!(filter.allows("orders.created"));
        assert!(!filter.allows("orders-dlq"));
        assert!(!filter.allows("payments"));
    }
}

/// Which consumer groups this process watches when several lagwatch processes
/// split the work. Groups are spread by jump consistent hashing (Lamping & Veach,
/// 2014) of a stable 64-bit FNV-1a hash of `source/group`: every group belongs to
/// exactly one shard, and going from N to N+1 shards moves only about 1/(N+1) of
/// the groups. The hash is fixed by this code, not by the Rust version or a seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether this shard watches `group` (a Kafka group id, or a JetStream
    /// `stream/consumer`) of `source`.
    pub fn owns(&self, source: &str, group: &str) -> bool {
        self.count <= 1 || shard_of(source, group, self.count) == self.index
    }
}

/// The shard (0..count) a group belongs to.
pub fn shard_of(source: &str, group: &str, count: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(group.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    jump(h, count)
}

/// Jump consistent hash: maps a key to one of `buckets` buckets.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    u32::try_from(b).unwrap_or(0)
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    #[test]
    fn every_group_belongs_to_exactly_one_shard() {
        for n in 1..6u32 {
            for g in 0..500 {
                let name = format!("group-{g}");
                let owners = (0..n)
                    .filter(|i| {
                        Shard {
                            index: *i,
                            count: n,
                        }
                        .owns("prod", &name)
                    })
                    .count();
                assert_eq!(owners, 1, "{name} with {n} shards");
            }
        }
    }

    #[test]
    fn growing_from_two_to_three_shards_moves_about_a_third_of_the_groups() {
        let moved = (0..3000)
            .filter(|g| {
                let name = format!("g{g}");
                shard_of("prod", &name, 2) != shard_of("prod", &name, 3)
            })
            .count();
        // Ideal: 1/3 = 1000 of 3000.
        assert!((850..1150).contains(&moved), "moved {moved}");
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Pinned values: changing the hash would silently reshuffle every fleet.
        let pinned: Vec<u32> = (0..8)
            .map(|g| shard_of("prod", &format!("g{g}"), 4))
            .collect();
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u32; 8] = [2, 2, 3, 3, 2, 1, 0, 3];

    #[test]
    fn shards_are_balanced() {
        let mut counts = [0u32; 4];
        for g in 0..4000 {
            counts[shard_of("prod", &format!("g{g}"), 4) as usize] += 1;
        }
        for c in counts {
            assert!((850..1150).contains(&c), "{counts:?}");
        }
    }
}
