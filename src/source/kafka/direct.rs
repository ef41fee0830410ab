//! Steps 3a and 5a: the committed offsets of every group (FindCoordinator v4,
//! OffsetFetch v8) and the latest and earliest offsets of every partition
//! (ListOffsets v6, one request per leader and 2,500 partitions) in a few
//! batched requests (see `wire.rs`) over connections of lagwatch's own, kept
//! between polls. Used on plaintext clusters whose brokers take those
//! versions; what it cannot answer (and everything, when it fails) is read by
//! librdkafka as before (steps 3 and 5).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::wire::{self, GroupOffsets, WireError};

/// An answer larger than this is refused (1,000 groups x 50 partitions is
/// about 2 MB).
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// Groups per request.
const CHUNK: usize = 250;
/// Partitions per ListOffsets request.
const PARTITION_CHUNK: usize = 2500;
/// Connections per broker, each with one request in flight: a broker serves
/// each connection in turn, so a batch split over a few is answered in
/// parallel (tansu: 1,000 groups in ~300 ms on one connection, ~150 ms on
/// four, on 2 cores).
const LANES: usize = 4;

/// A broker from the metadata: (node id, host, port).
pub(super) type Broker = (i32, String, i32);

/// One lane's answers, each with the index of its request.
type LaneAnswers = Result<Vec<(usize, Vec<u8>)>, DirectError>;

/// Why the batched path did not answer this poll.
#[derive(Debug)]
pub(super) enum DirectError {
    /// A broker does not take FindCoordinator v4 / OffsetFetch v8.
    Unsupported(String),
    /// I/O or a malformed answer: the connection is dropped.
    Failed(String),
}

impl std::fmt::Display for DirectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectError::Unsupported(s) | DirectError::Failed(s) => f.write_str(s),
        }
    }
}

impl From<WireError> for DirectError {
    fn from(e: WireError) -> Self {
        DirectError::Failed(e.0)
    }
}

impl From<std::io::Error> for DirectError {
    fn from(e: std::io::Error) -> Self {
        DirectError::Failed(e.to_string())
    }
}

struct Conn {
    stream: TcpStream,
    /// The highest version of each API the broker takes (asked once).
    versions: Option<Vec<(i16, i16)>>,
}

/// What the committed offsets need: OffsetFetch v8, FindCoordinator v4.
const FOR_OFFSETS: &[(i16, i16)] = &[(wire::OFFSET_FETCH, 8), (wire::FIND_COORDINATOR, 4)];
/// What latest and earliest offsets need: ListOffsets v6.
const FOR_LIST_OFFSETS: &[(i16, i16)] = &[(wire::LIST_OFFSETS, 6)];

/// The connections, [`LANES`] per broker node, and the requests sent.
#[derive(Default)]
pub(super) struct Direct {
    conns: HashMap<(i32, usize), Conn>,
    next_id: i32,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

/// What one batched fetch produced.
#[derive(Debug, Default)]
pub(super) struct Fetched {
    pub answered: Vec<GroupOffsets>,
    /// Groups to read the usual way (no coordinator, a group error).
    pub leftover: Vec<String>,
    /// Requests sent, by API name.
    pub requests: BTreeMap<&'static str, usize>,
}

impl Direct {
    /// The committed offsets of `groups`, each step within `timeout`.
    pub fn fetch(
        &mut self,
        brokers: &[Broker],
        groups: &[String],
        timeout: Duration,
    ) -> Result<Fetched, DirectError> {
        let mut out = Fetched::default();
        let Some(first) = brokers.iter().min_by_key(|b| b.0) else {
            return Err(DirectError::Failed("no broker in the metadata".into()));
        };
        let result = self.fetch_from(first, brokers, groups, timeout, &mut out);
        self.forget_on_failure(result).map(|()| out)
    }

    /// A connection in an unknown state (I/O failed mid-answer, an answer
    /// that did not parse) is not reused: every one is made again.
    fn forget_on_failure<T>(&mut self, result: Result<T, DirectError>) -> Result<T, DirectError> {
        if let Err(DirectError::Failed(_)) = &result {
            self.conns.clear();
        }
        result
    }

    fn fetch_from(
        &mut self,
        first: &Broker,
        brokers: &[Broker],
        groups: &[String],
        timeout: Duration,
        out: &mut Fetched,
    ) -> Result<(), DirectError> {
        // Which coordinator has which group.
        let mut by_node: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
        let mut hosts: HashMap<i32, (String, i32)> = brokers
            .iter()
            .map(|(id, h, p)| (*id, (h.clone(), *p)))
            .collect();
        let names: Vec<&str> = groups.iter().map(String::as_str).collect();
        let asked: std::collections::HashSet<&str> = names.iter().copied().collect();
        let requests = self.chunked(&names, wire::find_coordinators);
        let answers = self.exchange(first, &requests, timeout, FOR_OFFSETS)?;
        *out.requests.entry("FindCoordinator").or_default() += requests.len();
        for body in answers {
            for c in wire::read_coordinators(&body)? {
                if c.error_code != 0 || c.node_id < 0 {
                    out.leftover.push(c.group);
                    continue;
                }
                hosts.entry(c.node_id).or_insert((c.host, c.port));
                if let Some(g) = asked.get(c.group.as_str()) {
                    by_node.entry(c.node_id).or_default().push(g);
                }
            }
        }
        for (node, gs) in by_node {
            let Some((host, port)) = hosts.get(&node).cloned() else {
                out.leftover.extend(gs.iter().map(|g| (*g).to_string()));
                continue;
            };
            let broker = (node, host, port);
            let requests = self.chunked(&gs, wire::offset_fetch);
            let answers = self.exchange(&broker, &requests, timeout, FOR_OFFSETS)?;
            *out.requests.entry("OffsetFetch").or_default() += requests.len();
            for body in answers {
                for g in wire::read_offsets(&body)? {
                    if g.error_code == 0 {
                        out.answered.push(g);
                    } else {
                        out.leftover.push(g.group);
                    }
                }
            }
        }
        Ok(())
    }

    /// Latest (`timestamp` -1) or earliest (-2) offsets of `by_leader`'s
    /// partitions, each leader asked in chunks of [`PARTITION_CHUNK`] over
    /// its lanes; (answers, requests sent).
    pub fn list_offsets(
        &mut self,
        brokers: &[Broker],
        by_leader: &BTreeMap<i32, Vec<(&str, i32)>>,
        isolation: i8,
        timestamp: i64,
        timeout: Duration,
    ) -> Result<(Vec<wire::PartitionOffset>, usize), DirectError> {
        let result = self.list_offsets_from(brokers, by_leader, isolation, timestamp, timeout);
        self.forget_on_failure(result)
    }

    fn list_offsets_from(
        &mut self,
        brokers: &[Broker],
        by_leader: &BTreeMap<i32, Vec<(&str, i32)>>,
        isolation: i8,
        timestamp: i64,
        timeout: Duration,
    ) -> Result<(Vec<wire::PartitionOffset>, usize), DirectError> {
        let mut out = Vec::new();
        let mut sent = 0;
        for (leader, parts) in by_leader {
            let Some(broker) = brokers.iter().find(|b| b.0 == *leader) else {
                return Err(DirectError::Failed(format!(
                    "leader {leader} is not in the metadata"
                )));
            };
            let requests: Vec<Vec<u8>> = parts
                .chunks(PARTITION_CHUNK)
                .map(|chunk| {
                    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
                    for (t, p) in chunk {
                        match topics.last_mut() {
                            Some((last, ps)) if last == t => ps.push(*p),
                            _ => topics.push((t, vec![*p])),
                        }
                    }
                    let id = self.id();
                    wire::list_offsets(id, isolation, timestamp, &topics)
                })
                .collect();
            sent += requests.len();
            for body in self.exchange(broker, &requests, timeout, FOR_LIST_OFFSETS)? {
                out.extend(wire::read_list_offsets(&body)?);
            }
        }
        Ok((out, sent))
    }

    /// One request of `build` per [`CHUNK`] groups, each with its own id.
    fn chunked(&mut self, groups: &[&str], build: fn(i32, &[&str]) -> Vec<u8>) -> Vec<Vec<u8>> {
        groups.chunks(CHUNK).map(|c| build(self.id(), c)).collect()
    }

    fn id(&mut self) -> i32 {
        self.next_id = self.next_id.wrapping_add(1) & i32::MAX;
        self.next_id
    }

    /// Sends `requests` to `broker` over up to [`LANES`] connections in
    /// parallel, one request in flight on each (a request is answered
    /// before the next is written, so neither side's buffers can fill up),
    /// and returns the answers in the order of `requests`, each checked
    /// against its correlation id.
    fn exchange(
        &mut self,
        broker: &Broker,
        requests: &[Vec<u8>],
        timeout: Duration,
        need: &[(i16, i16)],
    ) -> Result<Vec<Vec<u8>>, DirectError> {
        let lanes = LANES.min(requests.len()).max(1);
        let mut conns = Vec::with_capacity(lanes);
        for lane in 0..lanes {
            self.ensure(broker, lane, timeout, need)?;
            match self.conns.remove(&(broker.0, lane)) {
                Some(c) => conns.push((lane, c)),
                None => return Err(DirectError::Failed("no connection".into())),
            }
        }
        let results: Vec<LaneAnswers> = std::thread::scope(|s| {
            let handles: Vec<_> = conns
                .iter_mut()
                .map(|(lane, conn)| {
                    let lane = *lane;
                    s.spawn(move || {
                        let mut answers = Vec::new();
                        for (i, r) in requests.iter().enumerate().skip(lane).step_by(lanes) {
                            answers.push((i, round_trip(&mut conn.stream, r, timeout)?));
                        }
                        Ok(answers)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(DirectError::Failed("a request thread panicked".into()))
                    })
                })
                .collect()
        });
        for (lane, conn) in conns {
            self.conns.insert((broker.0, lane), conn);
        }
        let mut answers: Vec<(usize, Vec<u8>)> = Vec::with_capacity(requests.len());
        for r in results {
            answers.extend(r?);
        }
        answers.sort_by_key(|(i, _)| *i);
        Ok(answers.into_iter().map(|(_, a)| a).collect())
    }

    /// Connection `lane` to `broker`, which takes the versions `need` lists.
    fn ensure(
        &mut self,
        broker: &Broker,
        lane: usize,
        timeout: Duration,
        need: &[(i16, i16)],
    ) -> Result<(), DirectError> {
        let key = (broker.0, lane);
        if let std::collections::hash_map::Entry::Vacant(slot) = self.conns.entry(key) {
            let (id, host, port) = broker;
            let port = u16::try_from(*port)
                .map_err(|_| DirectError::Failed(format!("broker {id}: bad port {port}")))?;
            let addr = (host.as_str(), port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| {
                    DirectError::Failed(format!("broker {id}: {host} does not resolve"))
                })?;
            let stream = TcpStream::connect_timeout(&addr, timeout)?;
            stream.set_nodelay(true)?;
            slot.insert(Conn {
                stream,
                versions: None,
            });
        }
        if self.conns.get(&key).is_some_and(|c| c.versions.is_none()) {
            let request = wire::api_versions(self.id());
            let Some(conn) = self.conns.get_mut(&key) else {
                return Err(DirectError::Failed("no connection".into()));
            };
            let body = round_trip(&mut conn.stream, &request, timeout)?;
            conn.versions = Some(wire::read_api_versions(&body)?);
        }
        let versions = self
            .conns
            .get(&key)
            .and_then(|c| c.versions.as_deref())
            .unwrap_or_default();
        let batched = need
            .iter()
            .all(|(api, v)| versions.iter().any(|(k, max)| k == api && max >= v));
        if batched {
            Ok(())
        } else {
            Err(DirectError::Unsupported(format!(
                "broker {} does not take the versions lagwatch batches with ({need:?} as (API key, version))",
                broker.0
            )))
        }
    }
}

/// Writes one request and reads its answer, checking the correlation id.
fn round_trip(
    stream: &mut TcpStream,
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, DirectError> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request)?;
    let body = read_frame(stream)?;
    let sent = request
        .get(8..12)
        .map_or(-1, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let got = wire::Reader::new(&body).i32()?;
    if got != sent {
        return Err(DirectError::Failed(format!(
            "answer {got} to request {sent}"
        )));
    }
    Ok(body)
}

/// One answer: a size, then that many bytes (at most [`MAX_ANSWER`]).
fn read_frame(stream: &mut TcpStream) -> Result<Vec<u8>, DirectError> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let n = usize::try_from(i32::from_be_bytes(size))
        .map_err(|_| DirectError::Failed("negative answer size".into()))?;
    if n > MAX_ANSWER {
        return Err(DirectError::Failed(format!(
            "answer of {n} bytes is larger than lagwatch reads ({MAX_ANSWER})"
        )));
    }
    let mut body = vec![0u8; n];
    stream.read_exact(&mut body)?;
    Ok(body)
}
