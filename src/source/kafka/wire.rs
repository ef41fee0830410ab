//! The few Kafka requests lagwatch speaks itself, byte for byte: ApiVersions
//! v0 (what a broker supports), FindCoordinator v4 (the coordinators of many
//! groups in one request, KIP-699) and OffsetFetch v8 (the committed offsets
//! of many groups in one request, KIP-709). librdkafka sends one FindCoordinator
//! and one OffsetFetch per group; these two replace ~2,000 requests a poll on
//! a cluster of 1,000 groups by a handful.
//!
//! Pure: bytes in, values out. Every length read from the broker is checked
//! against what is left of the answer, so a malformed or hostile answer is an
//! error, never a panic or an allocation it did not pay for.

use std::fmt;

/// API keys.
pub const API_VERSIONS: i16 = 18;
pub const FIND_COORDINATOR: i16 = 10;
pub const OFFSET_FETCH: i16 = 9;
pub const LIST_OFFSETS: i16 = 2;

/// An answer lagwatch cannot read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(what: &str) -> Result<T, WireError> {
    Err(WireError(what.to_string()))
}

// ------------------------------------------------------------------ writing

/// A request being written: its size prefix is filled in by [`Writer::finish`].
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A request header: v1 (`flexible` false: api key, version, correlation
    /// id, client id) or v2 (plus empty tagged fields).
    pub fn request(api_key: i16, version: i16, correlation_id: i32, flexible: bool) -> Writer {
        let mut w = Writer {
            buf: vec![0, 0, 0, 0],
        };
        w.i16(api_key);
        w.i16(version);
        w.i32(correlation_id);
        // client_id is a (non-compact) nullable string in every header version.
        let id = b"lagwatch";
        w.i16(id.len() as i16);
        w.buf.extend_from_slice(id);
        if flexible {
            w.uvarint(0);
        }
        w
    }

    pub fn i8(&mut self, v: i8) {
        self.buf.push(v.to_be_bytes()[0]);
    }
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn uvarint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }
    pub fn compact_string(&mut self, s: &str) {
        self.uvarint(s.len() as u64 + 1);
        self.buf.extend_from_slice(s.as_bytes());
    }
    /// A compact array's length (`None`: null).
    pub fn compact_len(&mut self, n: Option<usize>) {
        self.uvarint(n.map_or(0, |n| n as u64 + 1));
    }

    /// The framed request (size prefix included).
    pub fn finish(mut self) -> Vec<u8> {
        let n = (self.buf.len() - 4) as u32;
        self.buf[..4].copy_from_slice(&n.to_be_bytes());
        self.buf
    }
}

/// ApiVersions v0: an empty body.
pub fn api_versions(correlation_id: i32) -> Vec<u8> {
    Writer::request(API_VERSIONS, 0, correlation_id, false).finish()
}

/// FindCoordinator v4 for groups (key type 0).
pub fn find_coordinators(correlation_id: i32, groups: &[&str]) -> Vec<u8> {
    let mut w = Writer::request(FIND_COORDINATOR, 4, correlation_id, true);
    w.i8(0);
    w.compact_len(Some(groups.len()));
    for g in groups {
        w.compact_string(g);
    }
    w.uvarint(0);
    w.finish()
}

/// OffsetFetch v8: every committed partition (null topics) of each group.
pub fn offset_fetch(correlation_id: i32, groups: &[&str]) -> Vec<u8> {
    let mut w = Writer::request(OFFSET_FETCH, 8, correlation_id, true);
    w.compact_len(Some(groups.len()));
    for g in groups {
        w.compact_string(g);
        w.compact_len(None);
        w.uvarint(0);
    }
    // require_stable: false (what librdkafka's ListConsumerGroupOffsets sends
    // by default); tagged fields.
    w.i8(0);
    w.uvarint(0);
    w.finish()
}

/// ListOffsets v6 (`timestamp` -1: latest, -2: earliest) of `topics`'
/// partitions, at `isolation` (0 read_uncommitted, 1 read_committed).
pub fn list_offsets(
    correlation_id: i32,
    isolation: i8,
    timestamp: i64,
    topics: &[(&str, Vec<i32>)],
) -> Vec<u8> {
    let mut w = Writer::request(LIST_OFFSETS, 6, correlation_id, true);
    w.i32(-1);
    w.i8(isolation);
    w.compact_len(Some(topics.len()));
    for (name, partitions) in topics {
        w.compact_string(name);
        w.compact_len(Some(partitions.len()));
        for p in partitions {
            w.i32(*p);
            w.i32(-1);
            w.buf.extend_from_slice(&timestamp.to_be_bytes());
            w.uvarint(0);
        }
        w.uvarint(0);
    }
    w.uvarint(0);
    w.finish()
}

// ------------------------------------------------------------------ reading

/// An answer being read (without its size prefix).
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return err("answer ends early");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    pub fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    pub fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn i64(&mut self) -> Result<i64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    pub fn uvarint(&mut self) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        err("varint longer than 10 bytes")
    }
    /// A compact array's or string's length: None for null; bounded by what
    /// is left (each element takes at least `min_each` bytes).
    fn compact_len(&mut self, min_each: usize) -> Result<Option<usize>, WireError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let n = usize::try_from(n - 1).map_err(|_| WireError("length too large".into()))?;
        if n.saturating_mul(min_each.max(1)) > self.buf.len() {
            return err("length longer than the answer");
        }
        Ok(Some(n))
    }
    pub fn compact_array(&mut self, min_each: usize) -> Result<usize, WireError> {
        Ok(self.compact_len(min_each)?.unwrap_or(0))
    }
    pub fn compact_string(&mut self) -> Result<Option<String>, WireError> {
        match self.compact_len(1)? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n)?;
                Ok(Some(String::from_utf8_lossy(b).into_owned()))
            }
        }
    }
    /// Tagged fields: skipped (none are read).
    pub fn tagged(&mut self) -> Result<(), WireError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size =
                usize::try_from(self.uvarint()?).map_err(|_| WireError("tag too large".into()))?;
            self.take(size)?;
        }
        Ok(())
    }
    /// A response header: v0 (correlation id) or v1 (plus tagged fields).
    pub fn header(&mut self, flexible: bool) -> Result<i32, WireError> {
        let id = self.i32()?;
        if flexible {
            self.tagged()?;
        }
        Ok(id)
    }
}

/// From ApiVersions v0: the highest version the broker takes of each API.
pub fn read_api_versions(body: &[u8]) -> Result<Vec<(i16, i16)>, WireError> {
    let mut r = Reader::new(body);
    r.header(false)?;
    let code = r.i16()?;
    if code != 0 {
        return Err(WireError(format!("ApiVersions error code {code}")));
    }
    let n = r.i32()?;
    let n = usize::try_from(n).map_err(|_| WireError("negative array".into()))?;
    if n.saturating_mul(6) > r.buf.len() {
        return err("ApiVersions array longer than the answer");
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.i16()?;
        let _min = r.i16()?;
        let max = r.i16()?;
        out.push((key, max));
    }
    Ok(out)
}

/// One group's coordinator from FindCoordinator v4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coordinator {
    pub group: String,
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub error_code: i16,
}

pub fn read_coordinators(body: &[u8]) -> Result<Vec<Coordinator>, WireError> {
    let mut r = Reader::new(body);
    r.header(true)?;
    let _throttle = r.i32()?;
    let n = r.compact_array(14)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let group = r.compact_string()?.unwrap_or_default();
        let node_id = r.i32()?;
        let host = r.compact_string()?.unwrap_or_default();
        let port = r.i32()?;
        let error_code = r.i16()?;
        let _message = r.compact_string()?;
        r.tagged()?;
        out.push(Coordinator {
            group,
            node_id,
            host,
            port,
            error_code,
        });
    }
    r.tagged()?;
    Ok(out)
}

/// One partition's committed offset from OffsetFetch v8 (-1: no commit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub error_code: i16,
}

/// One group's answer from OffsetFetch v8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupOffsets {
    pub group: String,
    pub error_code: i16,
    pub partitions: Vec<Committed>,
}

pub fn read_offsets(body: &[u8]) -> Result<Vec<GroupOffsets>, WireError> {
    let mut r = Reader::new(body);
    r.header(true)?;
    let _throttle = r.i32()?;
    let groups = r.compact_array(5)?;
    let mut out = Vec::with_capacity(groups);
    for _ in 0..groups {
        let group = r.compact_string()?.unwrap_or_default();
        let topics = r.compact_array(3)?;
        let mut partitions = Vec::new();
        for _ in 0..topics {
            let topic = r.compact_string()?.unwrap_or_default();
            let n = r.compact_array(20)?;
            for _ in 0..n {
                let partition = r.i32()?;
                let offset = r.i64()?;
                let _epoch = r.i32()?;
                let _metadata = r.compact_string()?;
                let error_code = r.i16()?;
                r.tagged()?;
                partitions.push(Committed {
                    topic: topic.clone(),
                    partition,
                    offset,
                    error_code,
                });
            }
            r.tagged()?;
        }
        let error_code = r.i16()?;
        r.tagged()?;
        out.push(GroupOffsets {
            group,
            error_code,
            partitions,
        });
    }
    r.tagged()?;
    Ok(out)
}

/// One partition's offset from ListOffsets v6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub offset: i64,
}

pub fn read_list_offsets(body: &[u8]) -> Result<Vec<PartitionOffset>, WireError> {
    let mut r = Reader::new(body);
    r.header(true)?;
    let _throttle = r.i32()?;
    let topics = r.compact_array(3)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic = r.compact_string()?.unwrap_or_default();
        let n = r.compact_array(27)?;
        out.reserve(n);
        for _ in 0..n {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let _timestamp = r.i64()?;
            let offset = r.i64()?;
            let _epoch = r.i32()?;
            r.tagged()?;
            out.push(PartitionOffset {
                topic: topic.clone(),
                partition,
                error_code,
                offset,
            });
        }
        r.tagged()?;
    }
    r.tagged()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flexible response: header v1, then `body`.
    fn answer(correlation_id: i32, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer { buf: Vec::new() };
        w.i32(correlation_id);
        w.uvarint(0);
        body(&mut w);
        w.buf
    }

    #[test]
    fn requests_are_framed_with_their_header() {
        let r = offset_fetch(7, &["billing"]);
        let size = u32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
        assert_eq!(size, r.len() - 4);
        // api key 9, version 8, correlation id 7, client id "lagwatch", no tags
        assert_eq!(&r[4..8], &[0, 9, 0, 8]);
        assert_eq!(&r[8..12], &7i32.to_be_bytes());
        assert_eq!(&r[12..14], &[0, 8]);
        assert_eq!(&r[14..22], b"lagwatch");
        assert_eq!(r[22], 0);
        // one group: "billing", null topics, no tags; require_stable 0, no tags
        assert_eq!(
            &r[23..],
            &[2, 8, b'b', b'i', b'l', b'l', b'i', b'n', b'g', 0, 0, 0, 0]
        );
    }

    #[test]
    fn an_offset_fetch_answer_is_read_group_by_group() {
        let body = answer(7, |w| {
            w.i32(0);
            w.compact_len(Some(2));
            w.compact_string("billing");
            w.compact_len(Some(1));
            w.compact_string("orders");
            w.compact_len(Some(2));
            for (p, o) in [(0, 42i64), (1, -1)] {
                w.i32(p);
                w.buf.extend_from_slice(&o.to_be_bytes());
                w.i32(-1);
                w.compact_len(None);
                w.i16(0);
                w.uvarint(0);
            }
            w.uvarint(0);
            w.i16(0);
            w.uvarint(0);
            w.compact_string("gone");
            w.compact_len(Some(0));
            w.i16(16);
            w.uvarint(0);
            w.uvarint(0);
        });
        let got = read_offsets(&body).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].group, "billing");
        assert_eq!(
            got[0].partitions,
            vec![
                Committed {
                    topic: "orders".into(),
                    partition: 0,
                    offset: 42,
                    error_code: 0
                },
                Committed {
                    topic: "orders".into(),
                    partition: 1,
                    offset: -1,
                    error_code: 0
                },
            ]
        );
        assert_eq!((got[1].group.as_str(), got[1].error_code), ("gone", 16));
        // Every truncation of it is an error, never a panic.
        for cut in 0..body.len() {
            assert!(read_offsets(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn coordinators_and_api_versions_are_read() {
        let body = answer(3, |w| {
            w.i32(0);
            w.compact_len(Some(1));
            w.compact_string("billing");
            w.i32(1);
            w.compact_string("broker-1");
            w.i32(9092);
            w.i16(0);
            w.compact_len(None);
            w.uvarint(0);
            w.uvarint(0);
        });
        let got = read_coordinators(&body).unwrap();
        assert_eq!(
            got,
            vec![Coordinator {
                group: "billing".into(),
                node_id: 1,
                host: "broker-1".into(),
                port: 9092,
                error_code: 0
            }]
        );
        let mut w = Writer { buf: Vec::new() };
        w.i32(1);
        w.i16(0);
        w.i32(2);
        for (k, max) in [(9i16, 8i16), (10, 4)] {
            w.i16(k);
            w.i16(0);
            w.i16(max);
        }
        assert_eq!(read_api_versions(&w.buf).unwrap(), vec![(9, 8), (10, 4)]);
    }

    #[test]
    fn a_list_offsets_answer_is_read_partition_by_partition() {
        let body = answer(5, |w| {
            w.i32(0);
            w.compact_len(Some(1));
            w.compact_string("orders");
            w.compact_len(Some(2));
            for (p, code, o) in [(0, 0i16, 120i64), (1, 6, -1)] {
                w.i32(p);
                w.i16(code);
                w.buf.extend_from_slice(&(-1i64).to_be_bytes());
                w.buf.extend_from_slice(&o.to_be_bytes());
                w.i32(0);
                w.uvarint(0);
            }
            w.uvarint(0);
            w.uvarint(0);
        });
        let got = read_list_offsets(&body).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].partition, got[0].offset, got[0].error_code),
            (0, 120, 0)
        );
        assert_eq!((got[1].partition, got[1].error_code), (1, 6));
        for cut in 0..body.len() {
            assert!(read_list_offsets(&body[..cut]).is_err(), "cut at {cut}");
        }
        // The request: replica -1, isolation, one topic, two partitions.
        let r = list_offsets(9, 1, -2, &[("orders", vec![0, 1])]);
        assert_eq!(&r[4..8], &[0, 2, 0, 6]);
        assert_eq!(&r[23..28], &[0xff, 0xff, 0xff, 0xff, 1]);
    }

    proptest::proptest! {
        /// Hostile answers: any bytes are read or refused, never a panic.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = read_offsets(&bytes);
            let _ = read_coordinators(&bytes);
            let _ = read_api_versions(&bytes);
            let _ = read_list_offsets(&bytes);
        }
    }
}
