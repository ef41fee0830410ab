//! Step 3a: the committed offsets of every group in a few batched requests
//! (FindCoordinator v4, OffsetFetch v8; see `wire.rs`) over connections of
//! lagwatch's own, kept between polls. Used on plaintext clusters whose
//! brokers take those versions; the groups it cannot answer (and every group,
//! when it fails) are read by librdkafka as before (step 3).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::wire::{self, GroupOffsets, WireError};

/// An answer larger than this is refused (1,000 groups x 50 partitions is
/// about 2 MB).
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// Groups per request.
const CHUNK: usize = 500;

/// A broker from the metadata: (node id, host, port).
pub(super) type Broker = (i32, String, i32);

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
    /// Whether this broker takes the batched versions (asked once).
    batched: Option<bool>,
}

/// The connections, one per broker node, and the requests sent.
#[derive(Default)]
pub(super) struct Direct {
    conns: HashMap<i32, Conn>,
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
        if let Err(DirectError::Failed(_)) = &result {
            // A connection in an unknown state is not reused.
            self.conns.clear();
        }
        result.map(|()| out)
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
        let requests: Vec<Vec<u8>> = names
            .chunks(CHUNK)
            .map(|c| {
                let id = self.id();
                wire::find_coordinators(id, c)
            })
            .collect();
        let answers = self.exchange(first, &requests, timeout)?;
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
            let requests: Vec<Vec<u8>> = gs
                .chunks(CHUNK)
                .map(|c| {
                    let id = self.id();
                    wire::offset_fetch(id, c)
                })
                .collect();
            let answers = self.exchange(&broker, &requests, timeout)?;
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

    fn id(&mut self) -> i32 {
        self.next_id = self.next_id.wrapping_add(1) & i32::MAX;
        self.next_id
    }

    /// Sends `requests` to `broker` back to back and reads their answers in
    /// order (Kafka answers a connection's requests in order), checking each
    /// correlation id.
    fn exchange(
        &mut self,
        broker: &Broker,
        requests: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DirectError> {
        self.ensure(broker, timeout)?;
        let Some(conn) = self.conns.get_mut(&broker.0) else {
            return Err(DirectError::Failed("no connection".into()));
        };
        conn.stream.set_read_timeout(Some(timeout))?;
        conn.stream.set_write_timeout(Some(timeout))?;
        for r in requests {
            conn.stream.write_all(r)?;
        }
        let mut answers = Vec::with_capacity(requests.len());
        for r in requests {
            let body = read_frame(&mut conn.stream)?;
            let sent = i32::from_be_bytes([r[8], r[9], r[10], r[11]]);
            let got = wire::Reader::new(&body).i32()?;
            if got != sent {
                return Err(DirectError::Failed(format!(
                    "answer {got} to request {sent}"
                )));
            }
            answers.push(body);
        }
        Ok(answers)
    }

    /// A connection to `broker` that takes the batched versions.
    fn ensure(&mut self, broker: &Broker, timeout: Duration) -> Result<(), DirectError> {
        if !self.conns.contains_key(&broker.0) {
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
            self.conns.insert(
                *id,
                Conn {
                    stream,
                    batched: None,
                },
            );
        }
        let known = self.conns.get(&broker.0).and_then(|c| c.batched);
        let batched = match known {
            Some(b) => b,
            None => {
                let id = self.id();
                let Some(conn) = self.conns.get_mut(&broker.0) else {
                    return Err(DirectError::Failed("no connection".into()));
                };
                conn.stream.set_read_timeout(Some(timeout))?;
                conn.stream.set_write_timeout(Some(timeout))?;
                conn.stream.write_all(&wire::api_versions(id))?;
                let body = read_frame(&mut conn.stream)?;
                let versions = wire::read_api_versions(&body)?;
                let max = |key| versions.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
                let ok = max(wire::OFFSET_FETCH).is_some_and(|v| v >= 8)
                    && max(wire::FIND_COORDINATOR).is_some_and(|v| v >= 4);
                conn.batched = Some(ok);
                ok
            }
        };
        if batched {
            Ok(())
        } else {
            Err(DirectError::Unsupported(format!(
                "broker {} does not take OffsetFetch v8 and FindCoordinator v4",
                broker.0
            )))
        }
    }
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
