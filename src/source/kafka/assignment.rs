//! Decoding of the classic consumer protocol's member assignment bytes
//! (ConsumerProtocolAssignment: version, [topic, [partition]], user data), as
//! DescribeGroups returns them. They come from a group leader's client: outside
//! input. Pure and defensive: bad bytes give None, and so do sizes past the
//! bounds below (a 1 MB assignment of long topic names would otherwise expand
//! to gigabytes of copies).

/// Kafka refuses topic names longer than this.
pub const MAX_TOPIC_NAME: usize = 249;
/// (topic, partition) pairs one member may be assigned.
pub const MAX_ASSIGNED: usize = 100_000;

/// The (topic, partition) pairs of one assignment, sorted; None if malformed
/// or past the bounds.
pub fn decode(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader(bytes);
    let _version = r.i16()?;
    let topics = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = usize::try_from(r.i16()?).ok()?;
        if len > MAX_TOPIC_NAME {
            return None;
        }
        let topic = String::from_utf8(r.take(len)?.to_vec()).ok()?;
        let n = usize::try_from(r.i32()?).unwrap_or(0);
        if out.len().saturating_add(n) > MAX_ASSIGNED {
            return None;
        }
        for _ in 0..n {
            out.push((topic.clone(), r.i32()?));
        }
    }
    // User data (nullable bytes) follows; lagwatch does not need it.
    out.sort();
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = vec![0, 1];
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes());
        b
    }

    #[test]
    fn an_assignment_decodes_to_sorted_topic_partitions() {
        let bytes = encode(&[("b", &[1, 0]), ("a", &[2])]);
        assert_eq!(
            decode(&bytes),
            Some(vec![("a".into(), 2), ("b".into(), 0), ("b".into(), 1)])
        );
    }

    #[test]
    fn empty_bytes_are_no_partitions_and_truncated_bytes_are_refused() {
        assert_eq!(decode(&[]), Some(vec![]));
        let bytes = encode(&[("topic", &[1, 2])]);
        for cut in 1..bytes.len() - 4 {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn hostile_sizes_are_refused_not_expanded() {
        // A topic name longer than Kafka allows.
        let long = "t".repeat(MAX_TOPIC_NAME + 1);
        assert_eq!(decode(&encode(&[(&long, &[0])])), None);
        // A partition count claiming more than the bound (the bytes need not
        // even be there: refused before any copy).
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 1, b'x'];
        b.extend(i32::MAX.to_be_bytes());
        assert_eq!(decode(&b), None);
        // The most partitions allowed still decode.
        let many: Vec<i32> = (0..i32::try_from(MAX_ASSIGNED).unwrap_or(0)).collect();
        assert_eq!(
            decode(&encode(&[("x", &many)])).map(|v| v.len()),
            Some(MAX_ASSIGNED)
        );
    }

    // Property tests: PROPTEST_CASES=100000 for a long run (docs/development.md).
    proptest::proptest! {
        /// Any bytes: no panic, and what comes out stays within the bounds.
        #[test]
        fn any_bytes_decode_within_bounds(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            if let Some(pairs) = decode(&bytes) {
                proptest::prop_assert!(pairs.len() <= MAX_ASSIGNED);
                proptest::prop_assert!(pairs.iter().all(|(t, _)| t.len() <= MAX_TOPIC_NAME));
            }
        }

        /// A well-formed assignment decodes to exactly its pairs, sorted.
        #[test]
        fn well_formed_assignments_round_trip(
            topics in proptest::collection::vec(("[a-zA-Z0-9._-]{1,40}", proptest::collection::vec(proptest::prelude::any::<i32>(), 0..30)), 0..8)
        ) {
            let borrowed: Vec<(&str, &[i32])> = topics.iter().map(|(t, p)| (t.as_str(), p.as_slice())).collect();
            let mut want: Vec<(String, i32)> = topics.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p))).collect();
            want.sort();
            proptest::prop_assert_eq!(decode(&encode(&borrowed)), Some(want));
        }

        /// A well-formed prefix followed by garbage, or cut anywhere: no panic.
        #[test]
        fn truncated_or_extended_assignments_do_not_panic(
            topics in proptest::collection::vec(("[a-z]{1,10}", proptest::collection::vec(0i32..64, 0..10)), 0..4),
            cut in 0usize..200,
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let borrowed: Vec<(&str, &[i32])> = topics.iter().map(|(t, p)| (t.as_str(), p.as_slice())).collect();
            let mut bytes = encode(&borrowed);
            bytes.truncate(cut.min(bytes.len()));
            let _ = decode(&bytes);
            bytes.extend(tail);
            let _ = decode(&bytes);
        }
    }
}
