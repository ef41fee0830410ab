//! JetStream source: streams and consumers of one NATS connection, read through
//! the JetStream API (`$JS.API.STREAM.LIST`, `$JS.API.CONSUMER.LIST.<stream>`),
//! never the HTTP monitoring port (which has no auth).
//!
//! Leader-correctness: consumer state is only ever taken from JetStream API
//! answers. In a cluster, a consumer's info is produced by that consumer's
//! leader (the meta leader gathers CONSUMER.LIST entries from each consumer
//! leader and names the ones that did not answer in `missing`); a follower's
//! copy (stale `num_pending`, as `/jsz` on an arbitrary server shows) is never
//! read. Entries without a leader, and names listed as missing, are reported as
//! offline/missing consumers, never as zero lag.
//!
//! Decoding is deliberately tolerant: every field has a default and unknown
//! fields are ignored, and each list entry is decoded on its own, so one entry
//! the server shapes differently is counted and skipped while the rest of the
//! poll goes on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;

use super::{exact, Poller};
use crate::config::{EphemeralPolicy, JetstreamSettings, NatsAuth, Shard, Timing};
use crate::model::{
    ErrorKind, ExactRequests, GroupInfo, GroupKey, JetstreamParts, Millis, PollData, PollFailure,
    Sample, SourceId, StreamState,
};

/// Entries of one paged list (streams, or one stream's consumers) read at most.
const MAX_LIST_ITEMS: usize = 100_000;

/// The consumer name ephemeral consumers of a stream are folded into.
pub const EPHEMERAL_NAME: &str = "_ephemeral";

/// CONSUMER.LIST requests in flight at once per poll.
const CONCURRENT_LISTS: usize = 16;

pub struct JetstreamPoller {
    id: SourceId,
    config: JetstreamSettings,
    timing: Timing,
    shard: Shard,
    /// The engine's requests for exact time lags.
    exact: Option<watch::Receiver<ExactRequests>>,
    /// Timestamps of stream messages read: (stream, sequence) -> written.
    written: HashMap<(Arc<str>, i64), Millis>,
    /// Whether reading them is allowed now (see `source::exact`).
    written_backoff: exact::Backoff,
    client: Option<async_nats::Client>,
    /// Dead letters: the advisory subscription and what it counted.
    advisories: super::advisories::Advisories,
    dead_letters: Arc<crate::analysis::dead_letters::DeadLetterSettings>,
}

impl std::fmt::Debug for JetstreamPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds credentials: never print it.
        f.debug_struct("JetstreamPoller")
            .field("id", &self.id)
            .field("prefix", &self.config.api_prefix)
            .finish_non_exhaustive()
    }
}

impl JetstreamPoller {
    pub fn new(id: SourceId, config: JetstreamSettings, timing: Timing) -> Self {
        Self {
            id,
            config,
            timing,
            shard: Shard::ALL,
            exact: None,
            written: HashMap::new(),
            written_backoff: exact::Backoff::default(),
            client: None,
            advisories: super::advisories::Advisories::default(),
            dead_letters: Arc::default(),
        }
    }

    /// Count dead letters as these settings say (advisories on or off).
    pub fn with_dead_letters(
        mut self,
        d: Arc<crate::analysis::dead_letters::DeadLetterSettings>,
    ) -> Self {
        self.dead_letters = d;
        self
    }

    /// Watch only the consumers (and streams) that belong to `shard`.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Read the timestamps of the oldest unconsumed messages the engine asks for.
    pub fn with_exact_requests(mut self, rx: watch::Receiver<ExactRequests>) -> Self {
        self.exact = Some(rx);
        self
    }

    fn owns_consumer(&self, stream: &str, consumer: &str) -> bool {
        self.shard
            .owns(self.id.as_str(), &format!("{stream}/{consumer}"))
    }

    /// Connects once; afterwards async-nats reconnects on its own, forever.
    /// A failed first connect is retried at the next poll (so a wrong password is
    /// reported at every poll, not hidden in a background retry loop).
    async fn connect(&mut self) -> Result<async_nats::Client, PollFailure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut opts = async_nats::ConnectOptions::new();
        match &self.config.auth {
            NatsAuth::None => {}
            NatsAuth::UserPassword { user, password } => {
                opts = opts.user_and_password(user.clone(), password.clone());
            }
            NatsAuth::Token(t) => opts = opts.token(t.clone()),
            NatsAuth::NkeySeed(seed) => opts = opts.nkey(seed.clone()),
            NatsAuth::CredentialsFile(path) => {
                opts = opts.credentials_file(path).await.map_err(|e| PollFailure {
                    kind: ErrorKind::Auth,
                    message: format!("cannot read credentials file {}: {e}", path.display()),
                })?;
            }
        }
        if let Some(tls) = &self.config.tls {
            opts = opts.require_tls(true);
            if let Some(ca) = &tls.ca_file {
                opts = opts.add_root_certificates(ca.clone());
            }
            if let Some((cert, key)) = &tls.client {
                opts = opts.add_client_certificate(cert.clone(), key.clone());
            }
        }
        let id = self.id.clone();
        let counts = self.advisories.counts();
        let client = opts
            .name(format!("lagwatch-{}", self.id))
            .connection_timeout(self.timing.request_timeout)
            .request_timeout(Some(self.timing.request_timeout))
            .max_reconnects(None)
            .event_callback(move |event| {
                let id = id.clone();
                match &event {
                    async_nats::Event::Disconnected => {
                        super::advisories::Advisories::disconnected(&counts);
                    }
                    async_nats::Event::ServerError(async_nats::ServerError::Other(m)) => {
                        super::advisories::Advisories::server_error(&counts, m);
                    }
                    async_nats::Event::SlowConsumer(_) => {
                        super::advisories::Advisories::slow(&counts);
                    }
                    _ => {}
                }
                async move { tracing::debug!(source = %id, %event, "NATS connection event") }
            })
            .connect(self.config.servers.join(","))
            .await
            .map_err(|e| {
                let text = e.to_string();
                let kind = if text.contains("authoriz") || text.contains("authentic") {
                    ErrorKind::Auth
                } else {
                    ErrorKind::Connect
                };
                PollFailure {
                    kind,
                    message: format!("cannot connect to NATS: {text}"),
                }
            })?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// One JetStream API request; the answer's `error` object becomes a failure.
    async fn request(
        &self,
        client: &async_nats::Client,
        subject: String,
        body: String,
        kind: ErrorKind,
    ) -> Result<Value, PollFailure> {
        let msg = client
            .request(subject.clone(), body.into())
            .await
            .map_err(|e| {
                use async_nats::RequestErrorKind as K;
                let kind = match e.kind() {
                    K::TimedOut => ErrorKind::Timeout,
                    K::NoResponders => ErrorKind::Connect,
                    _ => kind,
                };
                let hint = if matches!(e.kind(), K::NoResponders) {
                    " (is JetStream enabled for this account, and the domain/api_prefix right?)"
                } else {
                    ""
                };
                PollFailure {
                    kind,
                    message: format!("{subject}: {e}{hint}"),
                }
            })?;
        let value: Value = serde_json::from_slice(&msg.payload).map_err(|e| PollFailure {
            kind: ErrorKind::Decode,
            message: format!("{subject}: answer is not JSON: {e}"),
        })?;
        if let Some(err) = value.get("error") {
            let code = err.get("code").and_then(Value::as_u64).unwrap_or(0);
            let description = err
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            let kind = if code == 401 || code == 403 {
                ErrorKind::Auth
            } else {
                kind
            };
            return Err(PollFailure {
                kind,
                message: format!("{subject}: {description} (code {code})"),
            });
        }
        Ok(value)
    }

    /// Every page of a list API: (entries, names reported missing).
    async fn list_all(
        &self,
        client: &async_nats::Client,
        subject: &str,
        field: &str,
        kind: ErrorKind,
    ) -> Result<(Vec<Value>, Vec<String>), PollFailure> {
        let mut items = Vec::new();
        let mut missing = Vec::new();
        loop {
            let page = self
                .request(
                    client,
                    subject.to_string(),
                    format!("{{\"offset\":{}}}", items.len()),
                    kind,
                )
                .await?;
            let mut page: ListPage = serde_json::from_value(page).map_err(|e| PollFailure {
                kind: ErrorKind::Decode,
                message: format!("{subject}: unexpected list answer: {e}"),
            })?;
            let got = page.items(field);
            missing.extend(page.missing.into_iter().take(MAX_LIST_ITEMS));
            let n = got.len();
            items.extend(got);
            // Stop on an empty page too: a server that miscounts `total` must not
            // keep us looping; and at a bound no real account reaches.
            if n == 0 || items.len() as u64 >= page.total {
                break;
            }
            if items.len() >= MAX_LIST_ITEMS {
                tracing::warn!(source = %self.id, subject, items = items.len(), total = page.total, "list longer than lagwatch reads; the rest is left out");
                items.truncate(MAX_LIST_ITEMS);
                break;
            }
        }
        Ok((items, missing))
    }
}

impl Poller for JetstreamPoller {
    async fn poll(&mut self) -> Result<PollData, PollFailure> {
        let client = self.connect().await?;
        if client.connection_state() != async_nats::connection::State::Connected {
            return Err(PollFailure {
                kind: ErrorKind::Connect,
                message: "not connected to NATS (reconnecting in the background)".into(),
            });
        }
        let mut data = PollData::default();
        let read_started = Millis::now();
        let stream_subject = format!("{}.STREAM.LIST", self.config.api_prefix);
        let (streams, missing_streams) = self
            .list_all(&client, &stream_subject, "streams", ErrorKind::StreamInfo)
            .await?;
        if !missing_streams.is_empty() {
            tracing::warn!(source = %self.id, streams = ?missing_streams, "streams listed as missing (offline in the cluster)");
            data.partial_errors
                .push((ErrorKind::StreamInfo, missing_streams.len() as u64));
        }
        let mut decoded = Vec::new();
        for raw in streams {
            match serde_json::from_value::<StreamInfo>(raw) {
                Ok(s) if self.config.stream_filter.allows(&s.config.name) => decoded.push(s),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(source = %self.id, error = %e, "stream info skipped: cannot decode");
                    data.partial_errors.push((ErrorKind::Decode, 1));
                }
            }
        }
        let this = &*self;
        let client = &client;
        let decoded = &decoded;
        let lists: Vec<_> = stream::iter(0..decoded.len())
            .map(|i| async move {
                let subject = format!(
                    "{}.CONSUMER.LIST.{}",
                    this.config.api_prefix, decoded[i].config.name
                );
                (
                    i,
                    this.list_all(client, &subject, "consumers", ErrorKind::ConsumerInfo)
                        .await,
                )
            })
            .buffer_unordered(CONCURRENT_LISTS)
            .collect()
            .await;
        // The readings are stamped in the middle of the lists that made them
        // (stream state, then consumer state), not when the poll started.
        data.read_at = Some(Millis((read_started.0 + Millis::now().0) / 2));
        for (i, listed) in lists {
            let stream = &decoded[i];
            let name: Arc<str> = Arc::from(stream.config.name.as_str());
            if self.shard.owns(self.id.as_str(), &name) {
                let state = stream.state_of(name.clone());
                data.retention
                    .push((name.clone(), state.retention_limits()));
                data.streams.push(state);
            }
            let (consumers, missing) = match listed {
                Ok(l) => l,
                Err(f) => {
                    // A stream deleted between the two lists, or one whose leader is
                    // away: count it, keep the rest of the poll.
                    tracing::debug!(source = %self.id, stream = %name, error = %f.message, "consumer list failed");
                    data.partial_errors.push((f.kind, 1));
                    continue;
                }
            };
            self.fold_consumers(&mut data, stream, &name, consumers, missing);
        }
        self.read_timestamps(client, &mut data.samples, &mut data.partial_errors)
            .await;
        self.count_dead_letters(client, &mut data).await;
        Ok(data)
    }
}

impl JetstreamPoller {
    /// Subscribes to the advisories (again, if the subscription ended), and
    /// puts the counts of the consumers this poll read (a zero for each with
    /// none yet) and the subscription's state into `data`.
    async fn count_dead_letters(&mut self, client: &async_nats::Client, data: &mut PollData) {
        let d = self.dead_letters.clone();
        if !(d.enabled && d.advisories) {
            return;
        }
        let keep: super::advisories::Keep = {
            let (streams, consumers) = (
                self.config.stream_filter.clone(),
                self.config.consumer_filter.clone(),
            );
            let (shard, id) = (self.shard, self.id.clone());
            Arc::new(move |stream: &str, consumer: &str| {
                streams.allows(stream)
                    && consumers.allows(consumer)
                    && shard.owns(id.as_str(), &format!("{stream}/{consumer}"))
            })
        };
        self.advisories
            .ensure(client, &self.id, d.max_tracked, keep)
            .await;
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        // Quiet for twice the window: nothing of it is "recent" any more.
        let forget = i64::try_from(d.window.as_millis().saturating_mul(2)).unwrap_or(i64::MAX);
        // Every consumer read (not the ephemeral aggregate: advisories name
        // the real consumer).
        let consumers: Vec<(Arc<str>, Arc<str>)> = data
            .samples
            .iter()
            .filter(|s| &*s.key.group.group != EPHEMERAL_NAME)
            .filter_map(|s| Some((s.key.group.scope.clone()?, s.key.group.group.clone())))
            .collect();
        let (readings, state) = self
            .advisories
            .readings(connected, &consumers, forget, &self.id);
        data.dead_letters = readings;
        data.advisories = Some(state);
    }
}

/// Timestamps kept at most (each poll also forgets those no longer the oldest
/// unconsumed message of a lagging consumer); when full it starts again.
const WRITTEN_MAX: usize = 100_000;

impl JetstreamPoller {
    /// For the consumers the engine asked about, reads the time the oldest
    /// unconsumed message was stored (STREAM.MSG.GET; for a consumer with one
    /// filter subject, the first message of that subject at or after its
    /// position), once per (stream, sequence); marks every sample whose oldest
    /// unconsumed message's time is known.
    async fn read_timestamps(
        &mut self,
        client: &async_nats::Client,
        samples: &mut [Sample],
        partial_errors: &mut Vec<(ErrorKind, u64)>,
    ) {
        let wanted = self.timestamps_wanted(samples);
        if !wanted.is_empty() {
            if let Err(f) = self.read_times(client, wanted).await {
                partial_errors.push((ErrorKind::ReadTimestamps, 1));
                // A refusal and a timeout repeat (a NATS permission violation
                // shows as a timeout); other failures are one-offs.
                if matches!(f.kind, ErrorKind::Auth | ErrorKind::Timeout) {
                    self.written_backoff.failed(
                        &self.id,
                        Instant::now(),
                        &f.message,
                        &format!(
                            "Allow lagwatch's NATS user to publish to {}.STREAM.MSG.GET.>",
                            self.config.api_prefix
                        ),
                    );
                }
            }
        }
        if self.written.is_empty() {
            return;
        }
        let mut live = std::collections::HashSet::new();
        for s in samples.iter_mut().filter(|s| s.lag > 0) {
            let Some(seq) = oldest(s) else { continue };
            let at = (s.key.topic.clone(), seq);
            if let Some(w) = self.written.get(&at) {
                s.oldest_written = Some((seq, *w));
                live.insert(at);
            }
        }
        self.written.retain(|at, _| live.contains(at));
    }

    /// (stream, sequence, filter subject) to read: the lagging consumers the
    /// engine asked about, in its order, not known yet, at most its budget;
    /// none while reads are backed off.
    fn timestamps_wanted(&self, samples: &[Sample]) -> Vec<(Arc<str>, i64, Option<String>)> {
        let asked: ExactRequests = self
            .exact
            .as_ref()
            .map(|rx| rx.borrow().clone())
            .unwrap_or_default();
        if asked.is_empty() || !self.written_backoff.allows(Instant::now()) {
            return Vec::new();
        }
        let lagging: HashMap<&crate::model::ConsumerKey, &Sample> = samples
            .iter()
            .filter(|s| s.lag > 0)
            .map(|s| (&s.key, s))
            .collect();
        asked
            .keys
            .iter()
            .filter_map(|k| lagging.get(k).copied())
            .filter_map(|s| {
                let seq = oldest(s)?;
                let filter = s.jetstream.as_ref()?.filter_subject.clone();
                let filtered = s.jetstream.as_ref()?.filtered;
                // Several filter subjects: no single "next" message to ask for.
                (!filtered || filter.is_some()).then(|| (s.key.topic.clone(), seq, filter))
            })
            .filter(|(stream, seq, _)| !self.written.contains_key(&(stream.clone(), *seq)))
            .take(asked.budget)
            .collect()
    }

    /// Reads the times of `wanted` into the cache, within
    /// [`exact::READ_TIMEOUT`]; the last failure, if any.
    async fn read_times(
        &mut self,
        client: &async_nats::Client,
        wanted: Vec<(Arc<str>, i64, Option<String>)>,
    ) -> Result<(), PollFailure> {
        let this = &*self;
        let asked_for = wanted.len();
        let reads = stream::iter(wanted)
            .map(|(stream, seq, filter)| async move {
                let written = this
                    .message_time(client, &stream, seq, filter.as_deref())
                    .await;
                ((stream, seq), written)
            })
            .buffer_unordered(CONCURRENT_LISTS)
            .collect::<Vec<_>>();
        let read = tokio::time::timeout(exact::READ_TIMEOUT, reads)
            .await
            .map_err(|_| PollFailure {
                kind: ErrorKind::Timeout,
                message: format!(
                    "{asked_for} STREAM.MSG.GET took over {} s",
                    exact::READ_TIMEOUT.as_secs()
                ),
            })?;
        if self.written.len() + read.len() > WRITTEN_MAX {
            self.written.clear();
        }
        let mut failure = Ok(());
        for (at, written) in read {
            match written {
                Ok(Some(w)) => {
                    self.written.insert(at, w);
                }
                Ok(None) => {}
                Err(f) => failure = Err(f),
            }
        }
        failure
    }

    /// The time message `seq` of `stream` (or, with `subject`, the first message
    /// of that subject from `seq` on) was stored; None when there is no such
    /// message (deleted meanwhile) or its answer has no time.
    async fn message_time(
        &self,
        client: &async_nats::Client,
        stream: &str,
        seq: i64,
        subject: Option<&str>,
    ) -> Result<Option<Millis>, PollFailure> {
        let body = match subject {
            Some(s) => serde_json::json!({ "seq": seq, "next_by_subj": s }),
            None => serde_json::json!({ "seq": seq }),
        };
        let subject_name = format!("{}.STREAM.MSG.GET.{stream}", self.config.api_prefix);
        let answer = match self
            .request(
                client,
                subject_name,
                body.to_string(),
                ErrorKind::ReadTimestamps,
            )
            .await
        {
            Ok(a) => a,
            // "no message found": gone since the consumer info was read.
            Err(f) if f.message.ends_with("(code 404)") => return Ok(None),
            Err(f) => {
                tracing::debug!(source = %self.id, stream, seq, error = %f.message, "cannot read a message's time");
                return Err(f);
            }
        };
        let time = answer
            .get("message")
            .and_then(|m| m.get("time"))
            .and_then(Value::as_str);
        Ok(time
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .map(Millis::from_system))
    }
}

/// The oldest unconsumed stream sequence that still exists.
fn oldest(s: &Sample) -> Option<i64> {
    let c = s.committed?;
    Some(s.low.map_or(c, |l| c.max(l)))
}

impl JetstreamPoller {
    fn fold_consumers(
        &self,
        data: &mut PollData,
        stream: &StreamInfo,
        name: &Arc<str>,
        consumers: Vec<Value>,
        missing: Vec<String>,
    ) {
        let key = |consumer: &str| GroupKey {
            source: self.id.clone(),
            scope: Some(name.clone()),
            group: Arc::from(consumer),
        };
        for m in missing {
            if self.config.consumer_filter.allows(&m) && self.owns_consumer(name, &m) {
                data.partial_errors.push((ErrorKind::ConsumerInfo, 1));
                data.groups
                    .push(GroupInfo::new(key(&m), Some("missing".into()), None));
            }
        }
        let mut ephemeral: Option<(Sample, u32)> = None;
        for raw in consumers {
            let c: ConsumerInfo = match serde_json::from_value(raw) {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(source = %self.id, stream = %name, error = %e, "consumer info skipped: cannot decode");
                    data.partial_errors.push((ErrorKind::Decode, 1));
                    continue;
                }
            };
            let is_ephemeral = c.config.durable_name.as_deref().unwrap_or("").is_empty();
            if !is_ephemeral && !self.config.consumer_filter.allows(&c.name) {
                continue;
            }
            let owner = if is_ephemeral && self.config.ephemeral == EphemeralPolicy::Aggregate {
                EPHEMERAL_NAME
            } else {
                c.name.as_str()
            };
            if !self.owns_consumer(name, owner) {
                continue;
            }
            let offline = c
                .cluster
                .as_ref()
                .is_some_and(|cl| cl.leader.as_deref().unwrap_or("").is_empty());
            if offline {
                data.partial_errors.push((ErrorKind::ConsumerInfo, 1));
                data.groups
                    .push(GroupInfo::new(key(&c.name), Some("offline".into()), None));
                continue;
            }
            let sample = c.sample(key(&c.name), stream);
            if is_ephemeral {
                match self.config.ephemeral {
                    EphemeralPolicy::Drop => continue,
                    EphemeralPolicy::Aggregate => {
                        ephemeral = Some(match ephemeral.take() {
                            None => {
                                let mut s = sample;
                                s.key.group.group = Arc::from(EPHEMERAL_NAME);
                                (s, 1)
                            }
                            Some((acc, n)) => (merge(acc, &sample), n + 1),
                        });
                        continue;
                    }
                    EphemeralPolicy::Keep => {}
                }
            }
            data.groups.push(GroupInfo::new(
                sample.key.group.clone(),
                Some("active".into()),
                c.members(),
            ));
            data.samples.push(sample);
        }
        if let Some((s, n)) = ephemeral {
            data.groups.push(GroupInfo::new(
                s.key.group.clone(),
                Some("active".into()),
                Some(n),
            ));
            data.samples.push(s);
        }
    }
}

/// Folds one ephemeral consumer into the stream's aggregate: lags and counts add
/// up; the consumed position is the oldest (the furthest behind).
fn merge(mut acc: Sample, s: &Sample) -> Sample {
    acc.lag = acc.lag.saturating_add(s.lag);
    acc.committed = match (acc.committed, s.committed) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let (Some(a), Some(b)) = (acc.jetstream.as_mut(), s.jetstream.as_ref()) {
        // Counts from the server: saturate rather than wrap (or panic).
        a.num_pending = a.num_pending.saturating_add(b.num_pending);
        a.num_ack_pending = a.num_ack_pending.saturating_add(b.num_ack_pending);
        a.num_redelivered = a.num_redelivered.saturating_add(b.num_redelivered);
        a.num_waiting = a.num_waiting.saturating_add(b.num_waiting);
        a.delivered_stream_seq = a.delivered_stream_seq.min(b.delivered_stream_seq);
        // Ephemeral consumers come and go: their sums jump, so the aggregate
        // has no redelivery count.
        a.deliveries = None;
        a.redelivery_marker = None;
        a.ack_floor_stream_seq = a.ack_floor_stream_seq.min(b.ack_floor_stream_seq);
        a.push_bound |= b.push_bound;
    }
    acc
}

// ---- tolerant wire shapes: every field defaulted, unknown fields ignored ----

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListPage {
    total: u64,
    streams: Option<Vec<Value>>,
    consumers: Option<Vec<Value>>,
    missing: Vec<String>,
}

impl ListPage {
    fn items(&mut self, field: &str) -> Vec<Value> {
        let v = if field == "streams" {
            self.streams.take()
        } else {
            self.consumers.take()
        };
        v.unwrap_or_default()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StreamInfo {
    config: StreamConfig,
    state: StreamStateWire,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StreamConfig {
    name: String,
    subjects: Vec<String>,
    retention: String,
    max_msgs: i64,
    max_bytes: i64,
    /// Nanoseconds.
    max_age: i64,
    discard: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StreamStateWire {
    messages: u64,
    bytes: u64,
    first_seq: u64,
    last_seq: u64,
    consumer_count: u64,
}

impl StreamInfo {
    fn state_of(&self, name: Arc<str>) -> StreamState {
        StreamState {
            name,
            messages: self.state.messages,
            bytes: self.state.bytes,
            first_seq: self.state.first_seq,
            last_seq: self.state.last_seq,
            consumer_count: self.state.consumer_count,
            retention: self.config.retention.clone(),
            max_msgs: self.config.max_msgs,
            max_bytes: self.config.max_bytes,
            max_age_seconds: self.config.max_age.max(0) as f64 / 1e9,
            discard: self.config.discard.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsumerInfo {
    name: String,
    config: ConsumerConfig,
    delivered: SeqPair,
    ack_floor: SeqPair,
    num_ack_pending: u64,
    num_redelivered: u64,
    num_waiting: u64,
    num_pending: u64,
    cluster: Option<ClusterInfo>,
    push_bound: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsumerConfig {
    durable_name: Option<String>,
    deliver_subject: Option<String>,
    deliver_group: Option<String>,
    max_ack_pending: i64,
    filter_subject: Option<String>,
    filter_subjects: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SeqPair {
    stream_seq: u64,
    consumer_seq: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClusterInfo {
    leader: Option<String>,
}

impl ConsumerInfo {
    fn is_push(&self) -> bool {
        self.config
            .deliver_subject
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    }

    /// Known consumers: 1/0 for a push consumer without deliver group (bound or
    /// not); unknown for pull consumers and queue-group push consumers.
    fn members(&self) -> Option<u32> {
        let grouped = self
            .config
            .deliver_group
            .as_deref()
            .is_some_and(|g| !g.is_empty());
        (self.is_push() && !grouped).then_some(u32::from(self.push_bound))
    }

    /// The consumer's filter subject, when it has exactly one.
    fn single_filter(&self) -> Option<String> {
        let mut all = self
            .config
            .filter_subject
            .iter()
            .chain(&self.config.filter_subjects)
            .filter(|f| !f.is_empty());
        match (all.next(), all.next()) {
            (Some(one), None) => Some(one.clone()),
            _ => None,
        }
    }

    /// The consumer sees only some of the stream's subjects: its filters are
    /// set and are not simply the stream's own subjects.
    fn is_filtered(&self, stream: &StreamInfo) -> bool {
        let mut filters: Vec<&str> = self
            .config
            .filter_subject
            .iter()
            .chain(&self.config.filter_subjects)
            .map(String::as_str)
            .filter(|f| !f.is_empty())
            .collect();
        if filters.is_empty() {
            return false;
        }
        let mut subjects: Vec<&str> = stream.config.subjects.iter().map(String::as_str).collect();
        filters.sort_unstable();
        filters.dedup();
        subjects.sort_unstable();
        subjects.dedup();
        filters != subjects
    }

    /// Maps the consumer onto Kafka's shape: `head` is the next stream sequence
    /// to be written, `committed` the next one not yet acknowledged (ack floor + 1),
    /// `low` the first sequence still stored. Lag is what KEDA's JetStream scaler
    /// uses: undelivered plus delivered-but-unacknowledged.
    fn sample(&self, key: GroupKey, stream: &StreamInfo) -> Sample {
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let head = to_i64(stream.state.last_seq).saturating_add(1);
        // An empty stream stores nothing, so its first stored sequence is the
        // next one written. nats-server says first_seq 0 for a stream that never
        // held a message: taken as is, low 0 < head 1 reads as one stored
        // message, and the first publish (low 1 >= the previous head 1) as a
        // purge that restarts the history (time lag unknown for a window).
        let low = if stream.state.messages == 0 {
            head
        } else {
            to_i64(stream.state.first_seq)
        };
        Sample {
            key: crate::model::ConsumerKey {
                group: key,
                topic: Arc::from(stream.config.name.as_str()),
                partition: None,
            },
            committed: Some(to_i64(self.ack_floor.stream_seq).saturating_add(1)),
            head,
            low: Some(low),
            lag: self.num_pending.saturating_add(self.num_ack_pending),
            jetstream: Some(Box::new(JetstreamParts {
                num_pending: self.num_pending,
                num_ack_pending: self.num_ack_pending,
                num_redelivered: self.num_redelivered,
                num_waiting: self.num_waiting,
                delivered_stream_seq: self.delivered.stream_seq,
                ack_floor_stream_seq: self.ack_floor.stream_seq,
                max_ack_pending: self.config.max_ack_pending,
                push: self.is_push(),
                deliver_group: self.config.deliver_group.clone().filter(|g| !g.is_empty()),
                push_bound: self.push_bound,
                filtered: self.is_filtered(stream),
                filter_subject: self.single_filter(),
                deliveries: Some(self.delivered.consumer_seq),
                redelivery_marker: (!self.is_filtered(stream)).then(|| {
                    to_i64(self.delivered.consumer_seq) - to_i64(self.delivered.stream_seq)
                }),
            })),
            oldest_written: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_with_extra_and_missing_fields_still_decodes() {
        let raw = serde_json::json!({
            "name": "c1",
            "config": {"durable_name": "c1", "max_ack_pending": 100, "brand_new_field": [1, 2]},
            "num_pending": 7,
            "num_ack_pending": 3,
            "some_future_field": {"x": 1}
        });
        let c: ConsumerInfo = serde_json::from_value(raw).unwrap();
        assert_eq!(c.num_pending, 7);
        assert_eq!(c.num_ack_pending, 3);
        assert_eq!(c.delivered.stream_seq, 0);
        assert!(!c.is_push());
    }

    #[test]
    fn an_empty_stream_stores_nothing_so_low_is_head() {
        let consumer: ConsumerInfo =
            serde_json::from_value(serde_json::json!({"name": "c"})).unwrap();
        let key = GroupKey {
            source: SourceId::new("s"),
            scope: Some(Arc::from("st")),
            group: Arc::from("c"),
        };
        let stream = |messages: u64, first_seq: u64, last_seq: u64| StreamInfo {
            state: StreamStateWire {
                messages,
                first_seq,
                last_seq,
                ..StreamStateWire::default()
            },
            ..StreamInfo::default()
        };
        // (case, messages, first_seq, last_seq, head, low)
        let cases = [
            // case 1: never held a message: the server says first_seq 0.
            (1, 0, 0, 0, 1, 1),
            // case 2: purged after 9 messages: first_seq is already last + 1.
            (2, 0, 10, 9, 10, 10),
            // case 3: holds 3..=9.
            (3, 7, 3, 9, 10, 3),
        ];
        for (case, messages, first, last, head, low) in cases {
            let s = consumer.sample(key.clone(), &stream(messages, first, last));
            assert_eq!((s.head, s.low), (head, Some(low)), "case {case}");
        }
    }

    #[test]
    fn ephemeral_consumers_merge_into_the_furthest_behind_position() {
        let mk = |lag: u64, floor: i64| Sample {
            key: crate::model::ConsumerKey {
                group: GroupKey {
                    source: SourceId::new("s"),
                    scope: Some(Arc::from("st")),
                    group: Arc::from("x"),
                },
                topic: Arc::from("st"),
                partition: None,
            },
            committed: Some(floor),
            head: 100,
            low: Some(1),
            lag,
            jetstream: Some(Box::new(JetstreamParts {
                num_pending: lag,
                ..JetstreamParts::default()
            })),
            oldest_written: None,
        };
        let m = merge(mk(5, 90), &mk(7, 40));
        assert_eq!(m.lag, 12);
        assert_eq!(m.committed, Some(40));
        assert_eq!(m.jetstream.unwrap().num_pending, 12);
    }

    /// Any JSON value of bounded depth, for the decoders' property tests.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        // The field names the decoders know, and others.
                        Just("name".to_string()),
                        Just("config".to_string()),
                        Just("state".to_string()),
                        Just("delivered".to_string()),
                        Just("ack_floor".to_string()),
                        Just("num_pending".to_string()),
                        Just("num_ack_pending".to_string()),
                        Just("max_ack_pending".to_string()),
                        Just("deliver_subject".to_string()),
                        Just("deliver_group".to_string()),
                        Just("filter_subjects".to_string()),
                        Just("stream_seq".to_string()),
                        Just("streams".to_string()),
                        Just("consumers".to_string()),
                        Just("total".to_string()),
                        Just("max_age".to_string()),
                        "[a-z_]{1,10}",
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever a server (or something posing as one) answers: the
        /// decoders return a value or an error, and what they decode can be
        /// used without a panic.
        #[test]
        fn any_json_decodes_or_fails_cleanly(raw in any_json()) {
            if let Ok(c) = serde_json::from_value::<ConsumerInfo>(raw.clone()) {
                let _ = (c.is_push(), c.members(), c.single_filter());
                if let Ok(s) = serde_json::from_value::<StreamInfo>(raw.clone()) {
                    let _ = c.is_filtered(&s);
                    let _ = s.state_of(Arc::from("s"));
                }
            }
            if let Ok(mut page) = serde_json::from_value::<ListPage>(raw) {
                let _ = page.items("streams");
                let _ = page.items("consumers");
            }
        }

        /// A well-typed consumer info with unknown fields anywhere decodes,
        /// and keeps the numbers it was given.
        #[test]
        fn unknown_fields_are_tolerated(
            pending in proptest::prelude::any::<u64>(),
            ack_pending in proptest::prelude::any::<u64>(),
            extra in proptest::collection::btree_map("x_[a-z]{1,8}", any_json(), 0..5),
        ) {
            let mut raw = serde_json::json!({
                "name": "c", "num_pending": pending, "num_ack_pending": ack_pending,
                "config": {"durable_name": "c"}, "delivered": {"stream_seq": 3},
            });
            for (k, v) in &extra {
                raw["config"][k] = v.clone();
                raw[k] = v.clone();
            }
            let c: ConsumerInfo = serde_json::from_value(raw).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(c.num_pending, pending);
            proptest::prop_assert_eq!(c.num_ack_pending, ack_pending);
        }
    }
}
