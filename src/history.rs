//! Per-key history of samples: a fixed-capacity ring of points per consumer key,
//! restarted when the key's counters reset, and expiry of keys that vanished.
//! Pure data: no clock reads; every time is a parameter.

use std::collections::VecDeque;

use crate::model::{ConsumerKey, Millis, Sample, SourceId};

/// What one poll saw of one key, reduced to what analysis needs. 56 bytes
/// decoded; stored delta-encoded in about 10 (see `Ring`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    pub at: Millis,
    /// Next offset to consume. None: no commit.
    pub committed: Option<i64>,
    /// Next offset to be written.
    pub head: i64,
    /// Earliest offset still stored; None when the broker did not say.
    pub low: Option<i64>,
    /// Lag in messages as the source computed it.
    pub lag: u64,
}

impl Point {
    pub fn from_sample(sample: &Sample, at: Millis) -> Self {
        Self {
            at,
            committed: sample.committed,
            head: sample.head,
            low: sample.low,
            lag: sample.lag,
        }
    }
}

/// Why a key's ring was thrown away and started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RestartReason {
    /// `head` went down: the topic or stream was deleted and recreated, so old
    /// offsets name different messages and any slope across the change is a lie.
    /// (Everything stored being deleted at once, by a JetStream purge, a
    /// work-queue stream whose consumer acked it all, or a Kafka delete-records,
    /// is not a restart: offsets keep their meaning. A committed offset that
    /// jumps with it is a skip, see `analysis::rates`.)
    HeadDecreased,
    /// A sample is older than the last one: the wall clock stepped back. Least
    /// squares over non-monotonic time would be meaningless.
    ClockWentBack,
}

impl RestartReason {
    pub const ALL: [RestartReason; 2] =
        [RestartReason::HeadDecreased, RestartReason::ClockWentBack];
    /// The `reason` label of `lagwatch_history_restarts_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::HeadDecreased => "head_decreased",
            RestartReason::ClockWentBack => "clock_went_back",
        }
    }
}

/// The last restart of one key's ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restart {
    pub at: Millis,
    pub reason: RestartReason,
}

/// The last rise of `head` that fell off the front of the ring: `(at, head)`
/// before and after. It lets time lag still interpolate (instead of giving up)
/// for a consumer stuck on a message written just before the ring's oldest point,
/// the usual shape of a stalled consumer on a topic that went idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rise {
    pub from: (Millis, i64),
    pub to: (Millis, i64),
}

/// What a key measures, as far as its rates are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A Kafka partition: head counts the partition's messages.
    Kafka,
    /// A JetStream consumer; `filtered`: it sees only some of the stream's
    /// subjects, so the stream's sequence (head) counts messages it never gets.
    Jetstream { filtered: bool },
}

impl KeyKind {
    pub fn of(sample: &Sample) -> KeyKind {
        match &sample.jetstream {
            None => KeyKind::Kafka,
            Some(j) => KeyKind::Jetstream {
                filtered: j.filtered,
            },
        }
    }
}

/// The bounded history of one consumer key.
///
/// Invariants, kept by [`KeyHistory::push`]: never empty once created, at most
/// `capacity` points, `at` strictly increasing, `head` non-decreasing (a decrease
/// restarts the ring), so the ring is a sorted table of when each offset was
/// written and can be binary-searched. The points are stored delta-encoded (see
/// `Ring`); [`KeyHistory::decode_into`] gives them back as a `VecDeque<Point>`.
#[derive(Clone, Debug)]
pub struct KeyHistory {
    ring: Ring,
    /// The newest point, kept decoded: every push compares against it.
    last: Point,
    capacity: u32,
    kind: KeyKind,
    /// When this run of the ring started and the head then: the message at any
    /// offset below that head already existed at that time, however long ago
    /// it fell off the ring (a lower bound on its age that grows with the clock).
    first: (Millis, i64),
    /// The broker's timestamp of the message at an offset (the oldest
    /// unconsumed one when it was read), kept while that offset stays oldest.
    written: Option<(i64, Millis)>,
    /// Skips of the committed offset (the time of the point the jump landed on,
    /// messages skipped), judged once, when that point was the newest, and
    /// remembered while it is in the ring: later windows cannot judge it again.
    skips: Vec<(Millis, i64)>,
    /// When `committed` took its current value, as far as this history knows (a
    /// lower bound on its age after a start or restart). Kept outside the ring so
    /// "no commit progress for 20 minutes" survives a ring shorter than that.
    committed_since: Millis,
    earlier_rise: Option<Rise>,
    restarts: u32,
    last_restart: Option<Restart>,
}

impl KeyHistory {
    /// A history holding one point.
    pub fn new(capacity: usize, kind: KeyKind, first: Point) -> Self {
        let capacity = u32::try_from(capacity.max(MIN_CAPACITY)).unwrap_or(u32::MAX);
        let mut ring = Ring::default();
        ring.push_back(&first, None);
        Self {
            ring,
            last: first,
            capacity,
            kind,
            first: (first.at, first.head),
            written: None,
            skips: Vec::new(),
            committed_since: first.at,
            earlier_rise: None,
            restarts: 0,
            last_restart: None,
        }
    }

    /// Appends a point, restarting the ring first when the counters reset;
    /// returns why it restarted, if it did.
    pub fn push(&mut self, p: Point) -> Option<RestartReason> {
        let last = self.last;
        let reset = if p.at < last.at {
            Some(RestartReason::ClockWentBack)
        } else if p.head < last.head {
            Some(RestartReason::HeadDecreased)
        } else {
            None
        };
        if let Some(reason) = reset {
            self.ring.clear();
            self.ring.push_back(&p, None);
            self.last = p;
            self.first = (p.at, p.head);
            self.written = None;
            self.skips.clear();
            self.committed_since = p.at;
            self.earlier_rise = None;
            self.restarts = self.restarts.saturating_add(1);
            self.last_restart = Some(Restart { at: p.at, reason });
            return Some(reason);
        }
        if p.committed != last.committed {
            self.committed_since = p.at;
        }
        if p.at == last.at {
            // Two samples for one instant: the later reading wins, keeping `at`
            // strictly increasing for the least-squares fits. Rare (a clock
            // with coarse ticks), so the ring is simply rebuilt.
            let mut points = self.points();
            if let Some(back) = points.back_mut() {
                *back = p;
            }
            self.ring.rebuild(&points);
            self.last = p;
            return None;
        }
        if self.ring.len() >= self.capacity as usize {
            if let Some((gone, Some(front))) = self.ring.pop_front() {
                if gone.head < front.head {
                    self.earlier_rise = Some(Rise {
                        from: (gone.at, gone.head),
                        to: (front.at, front.head),
                    });
                }
                self.skips.retain(|(at, _)| *at >= front.at);
            }
        }
        self.ring.push_back(&p, Some(&last));
        self.last = p;
        None
    }

    /// The ring, oldest first, decoded into a new deque (tests and tools; the
    /// engine reuses one buffer through [`KeyHistory::decode_into`]).
    pub fn points(&self) -> VecDeque<Point> {
        let mut out = VecDeque::with_capacity(self.ring.len());
        self.ring.decode_into(&mut out);
        out
    }
    /// The ring, oldest first, decoded into `out` (cleared first).
    pub fn decode_into(&self, out: &mut VecDeque<Point>) {
        self.ring.decode_into(out);
    }
    /// Points held.
    pub fn len(&self) -> usize {
        self.ring.len()
    }
    /// Never true for a history `History` built (it holds at least one point).
    pub fn is_empty(&self) -> bool {
        self.ring.len() == 0
    }
    /// The newest point (None only for a history built empty, which `History`
    /// never does).
    pub fn last(&self) -> Option<&Point> {
        (!self.is_empty()).then_some(&self.last)
    }
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
    /// Heap bytes this key's ring holds (benchmarks report memory per key).
    pub fn heap_bytes(&self) -> usize {
        self.ring.heap_bytes()
    }
    /// The key is a JetStream consumer (its samples carried `jetstream` parts).
    pub fn is_jetstream(&self) -> bool {
        !matches!(self.kind, KeyKind::Kafka)
    }
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
    /// When this run of the ring started, and the head then.
    pub fn first(&self) -> (Millis, i64) {
        self.first
    }
    /// The broker's timestamp of the message at an offset, if one was read.
    pub fn written(&self) -> Option<(i64, Millis)> {
        self.written
    }
    /// Skips of the committed offset judged so far, by the time of the point
    /// each landed on.
    pub fn skips(&self) -> &[(Millis, i64)] {
        &self.skips
    }
    /// When `committed` took its current value (a lower bound on its age).
    pub fn committed_since(&self) -> Millis {
        self.committed_since
    }
    pub fn earlier_rise(&self) -> Option<Rise> {
        self.earlier_rise
    }
    /// How many times the ring was restarted (the engine counts each as it happens).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
    pub fn last_restart(&self) -> Option<Restart> {
        self.last_restart
    }
    /// When the key was last seen.
    pub fn last_seen(&self) -> Option<Millis> {
        self.last().map(|p| p.at)
    }
}

/// A key's points, oldest first, delta-encoded: each point is a flags byte
/// (which optional fields are present) and LEB128 varints of the zigzagged
/// differences of its fields from the previous point's (the first point's from
/// zero). A poll 30 s after the last one with a few thousand messages moved
/// costs 10-15 bytes instead of `size_of::<Point>()` (56): the history of
/// 50,000 keys fits in about a quarter of the memory, for one decode per key and
/// poll.
#[derive(Clone, Debug, Default)]
struct Ring {
    bytes: Vec<u8>,
    len: u32,
}

/// The most bytes one encoded point can take: a flags byte and five varints of
/// at most 10 bytes each.
const MAX_ENCODED: usize = 1 + 5 * 10;

const HAS_COMMITTED: u8 = 1;
const HAS_LOW: u8 = 2;

/// The point every ring's first point is encoded against.
const ZERO: Point = Point {
    at: Millis(0),
    committed: None,
    head: 0,
    low: None,
    lag: 0,
};

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Where encoded bytes go: the ring itself, or a stack buffer.
trait Sink {
    fn put(&mut self, b: u8);
}

impl Sink for Vec<u8> {
    fn put(&mut self, b: u8) {
        self.push(b);
    }
}

/// One encoded point on the stack (`pop_front` re-encodes one without
/// allocating).
struct OnePoint {
    data: [u8; MAX_ENCODED],
    len: usize,
}

impl Sink for OnePoint {
    fn put(&mut self, b: u8) {
        if let Some(slot) = self.data.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }
}

fn put_varint(out: &mut impl Sink, mut v: u64) {
    while v >= 0x80 {
        out.put((v as u8) | 0x80);
        v >>= 7;
    }
    out.put(v as u8);
}

/// Reads a varint at `*pos`. The ring only ever holds what `encode` wrote, so
/// running off the end cannot happen; if it did, the missing bytes read as 0.
fn get_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0u32;
    while let Some(&b) = bytes.get(*pos) {
        *pos += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

/// Appends `p` encoded against `prev`. Differences wrap: offsets are i64 and
/// `lag` u64, and decoding wraps back, so any values round-trip exactly.
fn encode(out: &mut impl Sink, p: &Point, prev: &Point) {
    let mut flags = 0;
    if p.committed.is_some() {
        flags |= HAS_COMMITTED;
    }
    if p.low.is_some() {
        flags |= HAS_LOW;
    }
    out.put(flags);
    put_varint(out, zigzag(p.at.0.wrapping_sub(prev.at.0)));
    put_varint(out, zigzag(p.head.wrapping_sub(prev.head)));
    if let Some(c) = p.committed {
        put_varint(out, zigzag(c.wrapping_sub(prev.committed.unwrap_or(0))));
    }
    if let Some(l) = p.low {
        put_varint(out, zigzag(l.wrapping_sub(prev.low.unwrap_or(0))));
    }
    put_varint(out, zigzag(p.lag.wrapping_sub(prev.lag) as i64));
}

/// Reads the point at `*pos`, encoded against `prev`.
fn decode(bytes: &[u8], pos: &mut usize, prev: &Point) -> Point {
    let flags = bytes.get(*pos).copied().unwrap_or(0);
    *pos += 1;
    let at = Millis(prev.at.0.wrapping_add(unzigzag(get_varint(bytes, pos))));
    let head = prev.head.wrapping_add(unzigzag(get_varint(bytes, pos)));
    let committed = (flags & HAS_COMMITTED != 0).then(|| {
        prev.committed
            .unwrap_or(0)
            .wrapping_add(unzigzag(get_varint(bytes, pos)))
    });
    let low = (flags & HAS_LOW != 0).then(|| {
        prev.low
            .unwrap_or(0)
            .wrapping_add(unzigzag(get_varint(bytes, pos)))
    });
    let lag = prev
        .lag
        .wrapping_add(unzigzag(get_varint(bytes, pos)) as u64);
    Point {
        at,
        committed,
        head,
        low,
        lag,
    }
}

impl Ring {
    fn len(&self) -> usize {
        self.len as usize
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.len = 0;
    }

    /// Appends `p`; `last` must be the current newest point (None when empty).
    fn push_back(&mut self, p: &Point, last: Option<&Point>) {
        // Grow by what one more point can take, not by doubling: a full ring's
        // length hardly changes from poll to poll (one point in, one out), so
        // this reallocates rarely and never holds twice what it needs.
        if self.bytes.capacity() - self.bytes.len() < MAX_ENCODED {
            self.bytes.reserve_exact(MAX_ENCODED + self.bytes.len() / 8);
        }
        encode(&mut self.bytes, p, last.unwrap_or(&ZERO));
        self.len += 1;
    }

    /// Removes the oldest point and returns it with the new oldest, if any.
    /// Only the second point is re-encoded (against zero); the rest keep their
    /// bytes, since each is relative to a neighbour that does not change.
    fn pop_front(&mut self) -> Option<(Point, Option<Point>)> {
        if self.len == 0 {
            return None;
        }
        let mut pos = 0;
        let gone = decode(&self.bytes, &mut pos, &ZERO);
        if self.len == 1 {
            self.clear();
            return Some((gone, None));
        }
        let front = decode(&self.bytes, &mut pos, &gone);
        let mut head = OnePoint {
            data: [0; MAX_ENCODED],
            len: 0,
        };
        encode(&mut head, &front, &ZERO);
        self.bytes
            .splice(0..pos, head.data.iter().take(head.len).copied());
        self.len -= 1;
        Some((gone, Some(front)))
    }

    /// Decodes every point, oldest first, into `out` (cleared first).
    fn decode_into(&self, out: &mut VecDeque<Point>) {
        out.clear();
        let mut pos = 0;
        let mut prev = ZERO;
        for _ in 0..self.len {
            prev = decode(&self.bytes, &mut pos, &prev);
            out.push_back(prev);
        }
    }

    /// Rebuilds the ring from `points`, oldest first.
    fn rebuild(&mut self, points: &VecDeque<Point>) {
        self.clear();
        let mut prev = ZERO;
        for p in points {
            encode(&mut self.bytes, p, &prev);
            prev = *p;
        }
        self.len = u32::try_from(points.len()).unwrap_or(u32::MAX);
    }

    /// Heap bytes held (for memory accounting in benches).
    fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Least squares needs two points; a ring smaller than that could never fit.
const MIN_CAPACITY: usize = 2;

/// The history of every key, owned by the engine alone.
#[derive(Clone, Debug)]
pub struct History {
    keys: crate::model::FastMap<ConsumerKey, KeyHistory>,
    capacity: usize,
}

impl History {
    /// `capacity` points per key; see `analysis::Settings::capacity_for`.
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: crate::model::FastMap::default(),
            capacity: capacity.max(MIN_CAPACITY),
        }
    }

    /// Records one sample seen at `at`, restarting the key's ring on a counter
    /// reset; returns the key's history and why it restarted, if it did.
    pub fn record(&mut self, sample: &Sample, at: Millis) -> (&KeyHistory, Option<RestartReason>) {
        let point = Point::from_sample(sample, at);
        let capacity = self.capacity;
        let kind = KeyKind::of(sample);
        // One clone of the key (four Arc increments) per sample, because std's
        // entry API wants an owned key; the whole poll, clones included, is
        // timed in benches/analysis.rs.
        let mut restarted = None;
        let kh = self
            .keys
            .entry(sample.key.clone())
            .and_modify(|kh| {
                kh.kind = kind;
                restarted = kh.push(point);
            })
            .or_insert_with(|| KeyHistory::new(capacity, kind, point));
        if let Some(w) = sample.oldest_written {
            kh.written = Some(w);
        }
        (kh, restarted)
    }

    /// Forgets the keys of `source` not seen for more than `ttl_ms` before `now`
    /// (a consumer or partition that vanished) and returns how many. Called after
    /// that source's successful poll, so a source that is down keeps its history
    /// until it comes back.
    pub fn expire_source(&mut self, source: &SourceId, now: Millis, ttl_ms: i64) -> usize {
        let before = self.keys.len();
        self.keys.retain(|k, h| {
            &k.group.source != source
                || h.last_seen()
                    .is_some_and(|seen| now.0.saturating_sub(seen.0) <= ttl_ms)
        });
        before - self.keys.len()
    }

    pub fn get(&self, key: &ConsumerKey) -> Option<&KeyHistory> {
        self.keys.get(key)
    }

    /// Remembers that the committed offset of `key` skipped `messages` at the
    /// point recorded at `at` (see `analysis::rates::SKIP_FACTOR`).
    pub fn note_skip(&mut self, key: &ConsumerKey, at: Millis, messages: u64) {
        if let Some(h) = self.keys.get_mut(key) {
            h.skips
                .push((at, i64::try_from(messages).unwrap_or(i64::MAX)));
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&ConsumerKey, &KeyHistory)> {
        self.keys.iter()
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupKey, SourceId};
    use std::sync::Arc;

    fn key(partition: i32) -> ConsumerKey {
        ConsumerKey {
            group: GroupKey {
                source: SourceId::new("k"),
                scope: None,
                group: Arc::from("g"),
            },
            topic: Arc::from("t"),
            partition: Some(partition),
        }
    }

    fn sample(partition: i32, committed: Option<i64>, head: i64, low: Option<i64>) -> Sample {
        Sample {
            key: key(partition),
            committed,
            head,
            low,
            lag: u64::try_from(head - committed.unwrap_or(head)).unwrap_or(0),
            jetstream: None,
            oldest_written: None,
        }
    }

    /// One step of a history table: (seconds, committed, head, low).
    type Step = (i64, Option<i64>, i64, Option<i64>);

    fn run(capacity: usize, steps: &[Step]) -> KeyHistory {
        let mut h = History::new(capacity);
        for &(t, c, head, low) in steps {
            h.record(&sample(0, c, head, low), Millis(t * 1000));
        }
        h.get(&key(0)).cloned().unwrap()
    }

    #[test]
    fn record_table_restarts_the_ring_only_on_counter_resets() {
        // (case, steps, expected points, expected restart reason)
        let cases: Vec<(u32, Vec<Step>, usize, Option<RestartReason>)> = vec![
            // case 1: steady growth keeps every point.
            (
                1,
                vec![
                    (0, Some(0), 10, Some(0)),
                    (30, Some(5), 20, Some(0)),
                    (60, Some(10), 30, Some(0)),
                ],
                3,
                None,
            ),
            // case 2: topic recreated, head goes down: restart with the new point.
            (
                2,
                vec![
                    (0, Some(90), 100, Some(0)),
                    (30, Some(95), 110, Some(0)),
                    (60, Some(0), 3, Some(0)),
                ],
                1,
                Some(RestartReason::HeadDecreased),
            ),
            // case 3: stream purged, low jumps to the old head (and the
            // consumer with it): offsets keep their meaning, no restart. The
            // committed jump is analysis's skip, not the history's business.
            (
                3,
                vec![
                    (0, Some(50), 100, Some(10)),
                    (30, Some(100), 100, Some(100)),
                ],
                2,
                None,
            ),
            // case 3b: a work-queue stream whose consumer, 20 messages behind,
            // acked all that was stored at one poll by the next: everything
            // stored is deleted every poll, and every point is kept (this reset
            // the history at every poll before; issue 20, item 1).
            (
                9,
                vec![
                    (0, Some(81), 101, Some(81)),
                    (10, Some(181), 201, Some(181)),
                    (20, Some(281), 301, Some(281)),
                    (30, Some(381), 401, Some(381)),
                ],
                4,
                None,
            ),
            // case 4: empty idle topic (low == head) is not a purge.
            (
                4,
                vec![
                    (0, Some(100), 100, Some(100)),
                    (30, Some(100), 100, Some(100)),
                ],
                2,
                None,
            ),
            // case 5: the clock stepped back: restart.
            (
                5,
                vec![(60, Some(1), 10, None), (30, Some(2), 11, None)],
                1,
                Some(RestartReason::ClockWentBack),
            ),
            // case 6: consumer rewound (committed down, head up): kept; that is
            // Burrow's REWIND, analysis must see it.
            (
                6,
                vec![(0, Some(50), 100, None), (30, Some(0), 110, None)],
                2,
                None,
            ),
            // case 7: same timestamp twice: the later reading replaces the last.
            (
                7,
                vec![(0, Some(1), 10, None), (0, Some(2), 11, None)],
                1,
                None,
            ),
            // case 8: retention moves low forward normally: kept.
            (
                8,
                vec![(0, Some(50), 100, Some(10)), (30, Some(60), 110, Some(40))],
                2,
                None,
            ),
        ];
        for (case, steps, len, reason) in cases {
            let h = run(8, &steps);
            assert_eq!(h.points().len(), len, "case {case}");
            assert_eq!(h.last_restart().map(|r| r.reason), reason, "case {case}");
            let last = steps.last().unwrap();
            assert_eq!(h.last().unwrap().head, last.2, "case {case}");
        }
    }

    #[test]
    fn the_ring_never_grows_past_its_capacity_and_keeps_the_newest_points() {
        let steps: Vec<Step> = (0..10).map(|i| (i * 30, Some(i), i * 10, None)).collect();
        let h = run(4, &steps);
        assert_eq!(h.points().len(), 4);
        assert_eq!(h.points().front().unwrap().at, Millis(6 * 30_000));
        assert_eq!(h.points().back().unwrap().at, Millis(9 * 30_000));
    }

    #[test]
    fn the_encoded_ring_gives_back_exactly_what_was_pushed() {
        // Extremes and every combination of the optional fields, in a ring small
        // enough that most of them pass through pop_front's re-encoding.
        let odd = [0, 1, -1, 1 << 40, i64::MAX, i64::MIN, 12_345_678_901];
        let mut pushed: Vec<Point> = Vec::new();
        let mut ring = Ring::default();
        let mut last: Option<Point> = None;
        for i in 0..200_i64 {
            let v = |k: i64| odd[((i + k) % odd.len() as i64) as usize];
            let p = Point {
                at: Millis(1_700_000_000_000 + i * 30_000),
                committed: (i % 3 != 0).then(|| v(1)),
                head: v(2),
                low: (i % 5 != 0).then(|| v(3)),
                lag: if i % 7 == 0 {
                    u64::MAX
                } else {
                    v(4).unsigned_abs()
                },
            };
            if ring.len() == 5 {
                let (gone, front) = ring.pop_front().unwrap();
                assert_eq!(gone, pushed[pushed.len() - 5], "popped, step {i}");
                assert_eq!(front, Some(pushed[pushed.len() - 4]), "new front, step {i}");
            }
            ring.push_back(&p, last.as_ref());
            last = Some(p);
            pushed.push(p);
            let mut out = VecDeque::new();
            ring.decode_into(&mut out);
            let want: Vec<Point> = pushed[pushed.len().saturating_sub(5)..].to_vec();
            assert_eq!(out.into_iter().collect::<Vec<_>>(), want, "step {i}");
        }
    }

    #[test]
    fn a_typical_poll_costs_about_ten_bytes_in_the_ring() {
        // 30 s polls, 100 msg/s produced and consumed, retention moving low:
        // the shape of a busy partition. Offsets near 10^10 do not matter, only
        // their differences do (3 bytes for the time step, 2 per offset field).
        let base = 10_000_000_000_i64;
        let steps: Vec<Step> = (0..23)
            .map(|i| {
                let head = base + i * 3_000;
                (i * 30, Some(head - 40), head, Some(base / 2 + i * 3_000))
            })
            .collect();
        let h = run(23, &steps);
        assert_eq!(h.len(), 23);
        let per_point = h.ring.bytes.len() as f64 / 23.0;
        assert!(per_point <= 12.0, "{per_point} bytes per point");
        assert_eq!(h.points().back().map(|p| p.head), Some(base + 22 * 3_000));
    }

    #[test]
    fn the_last_head_rise_that_fell_off_the_ring_is_remembered() {
        // Head rises 0 -> 100 between t=0 and t=30, then stays idle; a ring of 3
        // drops both, but the rise is kept for time-lag interpolation.
        let mut steps: Vec<Step> = vec![(0, Some(0), 0, None), (30, Some(0), 100, None)];
        steps.extend((2..8).map(|i| (i * 30, Some(0), 100, None)));
        let h = run(3, &steps);
        assert_eq!(
            h.earlier_rise(),
            Some(Rise {
                from: (Millis(0), 0),
                to: (Millis(30_000), 100)
            })
        );
    }

    #[test]
    fn committed_since_is_when_the_committed_offset_last_moved() {
        let h = run(
            3,
            &[
                (0, Some(1), 10, None),
                (30, Some(2), 10, None),
                (60, Some(2), 10, None),
                (90, Some(2), 10, None),
                (120, Some(2), 10, None),
            ],
        );
        // Still known after the point of change fell off the ring of 3.
        assert_eq!(h.committed_since(), Millis(30_000));
    }

    #[test]
    fn expire_forgets_keys_not_seen_for_longer_than_the_ttl() {
        let mut h = History::new(4);
        h.record(&sample(0, Some(1), 2, None), Millis(0));
        h.record(&sample(1, Some(1), 2, None), Millis(50_000));
        h.record(&sample(2, Some(1), 2, None), Millis(60_000));
        // case 1: partition 0 last seen 100 s ago, ttl 60 s: gone.
        // case 2: partition 1 seen 50 s ago: kept. case 3: exactly ttl old: kept.
        let source = SourceId::new("k");
        assert_eq!(h.expire_source(&source, Millis(110_000), 60_000), 1);
        assert_eq!(h.len(), 2);
        assert!(h.get(&key(0)).is_none());
        assert!(h.get(&key(1)).is_some());
        // case 4: another source's keys are not this source's to expire.
        assert_eq!(
            h.expire_source(&SourceId::new("other"), Millis(1_000_000), 60_000),
            0
        );
        // case 5: much later everything goes.
        assert_eq!(h.expire_source(&source, Millis(1_000_000), 60_000), 2);
        assert!(h.is_empty());
    }

    #[test]
    fn a_key_is_jetstream_when_its_samples_carry_jetstream_parts() {
        let mut h = History::new(4);
        let mut s = sample(0, Some(1), 2, None);
        s.jetstream = Some(Box::default());
        assert!(h.record(&s, Millis(0)).0.is_jetstream());
        assert!(!h
            .record(&sample(1, Some(1), 2, None), Millis(0))
            .0
            .is_jetstream());
    }
}
