//! Kafka source: consumer-group lag of one cluster through librdkafka, with one
//! client per cluster and a fixed number of batched admin calls per poll.
//!
//! One poll (`poll.rs`), in order, each step a file named by its request, each
//! bounded by the request timeout and the poll's deadline, all on a blocking
//! thread:
//! 1. `metadata.rs`: all topics and partition counts, one request.
//! 2. `list_groups.rs`: ListConsumerGroups (unless `groups` is configured), one
//!    request per broker.
//! 3. `offset_fetch.rs`: committed offsets of every group, all in flight together.
//! 4. `describe.rs`: state, members and assignments of every group not listed as
//!    Empty; failures are counted, never fatal, and back off.
//! 5. `list_offsets.rs`: latest and earliest offsets of every measured partition.
//! 6. `topic_configs.rs`: the retention of newly measured topics, and of all
//!    every few minutes.
//! 7. `timestamps.rs`: the broker's timestamp of the oldest unconsumed message
//!    of the partitions the engine asked about (exact time lag).
//!
//! `lag.rs` assembles the readings into samples (pure); `admin.rs` is the FFI to
//! librdkafka's admin API; `trace.rs` records where a poll spent its time.

#[allow(
    unsafe_code,
    reason = "the FFI to librdkafka's admin API, which rdkafka does not wrap"
)]
mod admin;
mod assignment;
mod context;
mod dead_letters;
mod describe;
mod direct;
mod lag;
mod list_groups;
mod list_offsets;
mod metadata;
mod msk_iam;
mod oauth;
mod offset_fetch;
mod poll;
mod timestamps;
mod topic_configs;
mod trace;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::bindings::rd_kafka_IsolationLevel_t;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use self::context::LagwatchContext;
use self::poll::Plan;
use super::Poller;
use crate::config::{secret, IsolationLevel, KafkaSettings, OAuthBearerSettings, Shard, Timing};
use tokio::sync::watch;

use crate::model::{ErrorKind, ExactRequests, PollData, PollFailure, RetentionLimits, SourceId};

pub use self::context::LagwatchContext as KafkaContext;
pub use self::trace::PollTrace;

type Client = BaseConsumer<LagwatchContext>;

/// After this many consecutive DescribeGroups failures, describe only every
/// `2^n` polls (capped): a broker that drops the connection on DescribeGroups
/// (tansu with sqlite storage) must not cost a timeout every poll.
const DESCRIBE_BACKOFF_CAP: u32 = 5;

/// Polls one Kafka cluster.
pub struct KafkaPoller {
    id: SourceId,
    config: KafkaSettings,
    timing: Timing,
    client: Option<Arc<Client>>,
    describe: Backoff,
    /// The batched classic describe (4a) backs off on its own, like
    /// DescribeGroups as a whole.
    batch_describe: Backoff,
    last_trace: Option<PollTrace>,
    shard: Shard,
    /// The retention of every topic described (None: the broker did not say).
    retention: HashMap<Arc<str>, Option<RetentionLimits>>,
    polls_since_configs: u32,
    /// The engine's requests for exact time lags.
    exact: Option<watch::Receiver<ExactRequests>>,
    /// The consumer that reads single records, made on the first request.
    fetcher: Option<Arc<timestamps::Fetcher>>,
    timestamps: Arc<Mutex<timestamps::Cache>>,
    /// Held by the blocking part of a poll while it runs.
    running: Arc<tokio::sync::Mutex<()>>,
    /// AWS MSK IAM's credential cache and refresher, started on the first poll.
    msk_iam: Option<Arc<msk_iam::MskIam>>,
    dead_letters: Arc<crate::analysis::dead_letters::DeadLetterSettings>,
    /// Batched committed offsets (step 3a): its connections, whether the
    /// brokers take it, and its backoff after failures.
    direct: Arc<Mutex<direct::Direct>>,
    direct_unsupported: bool,
    direct_backoff: Backoff,
    /// Group and topic names shared with the previous polls.
    names: crate::source::names::Names,
}

impl std::fmt::Debug for KafkaPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the config: its properties may hold credentials.
        f.debug_struct("KafkaPoller")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A step that runs every `2^failures` polls (capped at
/// `2^DESCRIBE_BACKOFF_CAP`) after consecutive failures.
#[derive(Clone, Copy, Debug, Default)]
struct Backoff {
    failures: u32,
    /// Polls since it last ran.
    since: u32,
}

impl Backoff {
    fn due(self) -> bool {
        self.failures == 0 || self.since + 1 >= 1u32 << self.failures.min(DESCRIBE_BACKOFF_CAP)
    }

    /// Counts one poll: `Some(failed)` when the step ran, None when it did not.
    fn record(&mut self, ran: Option<bool>) {
        match ran {
            Some(failed) => {
                self.since = 0;
                self.failures = if failed {
                    self.failures.saturating_add(1)
                } else {
                    0
                };
            }
            None => self.since += 1,
        }
    }
}

impl KafkaPoller {
    pub fn new(id: SourceId, config: KafkaSettings, timing: Timing) -> Self {
        Self {
            id,
            config,
            timing,
            client: None,
            describe: Backoff::default(),
            batch_describe: Backoff::default(),
            last_trace: None,
            shard: Shard::ALL,
            retention: HashMap::new(),
            polls_since_configs: 0,
            exact: None,
            fetcher: None,
            timestamps: Arc::default(),
            running: Arc::default(),
            msk_iam: None,
            dead_letters: Arc::default(),
            direct: Arc::default(),
            direct_unsupported: false,
            direct_backoff: Backoff::default(),
            names: crate::source::names::Names::default(),
        }
    }

    /// Read the timestamps of the oldest unconsumed messages the engine asks for.
    pub fn with_exact_requests(mut self, rx: watch::Receiver<ExactRequests>) -> Self {
        self.exact = Some(rx);
        self
    }

    /// The record reader, made when first needed; None when it cannot be
    /// (logged: the time lag then stays interpolated).
    fn fetcher(&mut self) -> Option<Arc<timestamps::Fetcher>> {
        if let Some(f) = &self.fetcher {
            return Some(f.clone());
        }
        let mut cc = ClientConfig::new();
        for (k, v) in &self.config.properties {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", self.config.bootstrap_servers.join(","))
            .set("client.id", format!("lagwatch-{}-timestamps", self.id))
            // librdkafka's assign() needs a group id, but this consumer never
            // joins the group (no subscribe) and never commits, so the broker
            // never creates it and no group list shows it.
            .set("group.id", "lagwatch-timestamps")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // An offset retention deleted meanwhile: the oldest one still there.
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100")
            // One batch per partition is plenty for one record.
            .set("max.partition.fetch.bytes", "65536")
            .set("queued.max.messages.kbytes", "1024")
            .set(
                "isolation.level",
                self.config.isolation_level.as_librdkafka(),
            );
        let made: Result<timestamps::Fetcher, _> =
            cc.create_with_context(LagwatchContext::new(self.id.clone(), self.tokens()));
        match made {
            Ok(f) => {
                let f = Arc::new(f);
                self.serve_token_refreshes(&f);
                self.fetcher = Some(f.clone());
                Some(f)
            }
            Err(e) => {
                let message = secret::redact(&e.to_string(), self.config.secret_values());
                tracing::warn!(source = %self.id, error = %message, "cannot create the consumer that reads record timestamps; time lag stays interpolated");
                None
            }
        }
    }

    /// Watch the dead-letter topics these settings recognise.
    pub fn with_dead_letters(
        mut self,
        d: Arc<crate::analysis::dead_letters::DeadLetterSettings>,
    ) -> Self {
        self.dead_letters = d;
        self
    }

    /// Watch only the groups that belong to `shard`.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// The trace of the last poll that got past client creation.
    pub fn last_trace(&self) -> Option<&PollTrace> {
        self.last_trace.as_ref()
    }

    /// Serves librdkafka's queued events (logs, errors, statistics) and returns
    /// the last statistics JSON, if `statistics.interval.ms` is set (benchmarks
    /// count requests per API with it).
    pub fn librdkafka_stats(&self) -> Option<String> {
        let client = self.client.as_ref()?;
        drain(client);
        client.context().last_stats()
    }

    fn redact(&self, mut f: PollFailure) -> PollFailure {
        f.message = secret::redact(&f.message, self.config.secret_values());
        f
    }

    /// The token source of this cluster's clients, if lagwatch provides one.
    fn tokens(&self) -> Option<oauth::TokenSource> {
        let s = self.config.oauthbearer.as_ref()?;
        oauth::TokenSource::new(s, self.msk_iam.as_ref())
    }

    /// With AWS MSK IAM: starts fetching credentials (once) and waits up to a
    /// request timeout for the first answer, so the first token is signed
    /// rather than refused.
    async fn start_msk_iam(&mut self) {
        let Some(OAuthBearerSettings::AwsMskIam { region }) = &self.config.oauthbearer else {
            return;
        };
        let timeout = self.timing.request_timeout;
        let iam = self.msk_iam.get_or_insert_with(|| {
            let env: msk_iam::Env = Arc::new(|k| std::env::var(k).ok());
            msk_iam::MskIam::start(msk_iam::Chain::new(env, region, timeout))
        });
        iam.clone().ready(timeout).await;
    }

    fn client(&mut self) -> Result<Arc<Client>, PollFailure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut cc = ClientConfig::new();
        // librdkafka's default reconnect backoff grows to 10 s
        // (reconnect.backoff.max.ms); a returning broker should be seen within
        // one poll, so cap it at the poll interval unless the user chose.
        let backoff = self.timing.poll_interval.min(Duration::from_secs(10));
        cc.set(
            "reconnect.backoff.max.ms",
            backoff.as_millis().max(100).to_string(),
        );
        cc.set("client.id", format!("lagwatch-{}", self.id));
        for (k, v) in &self.config.properties {
            cc.set(k, v);
        }
        // No group.id: this client never joins or commits for any group; admin
        // calls work on any handle. Without a group its main queue is polled
        // directly (see `drain`).
        cc.set("bootstrap.servers", self.config.bootstrap_servers.join(","))
            .set("enable.auto.commit", "false")
            .set(
                "isolation.level",
                self.config.isolation_level.as_librdkafka(),
            );
        let c: Client = cc
            .create_with_context(LagwatchContext::new(self.id.clone(), self.tokens()))
            .map_err(|e| {
                self.redact(PollFailure {
                    kind: ErrorKind::Other,
                    message: format!("cannot create the Kafka client: {e}"),
                })
            })?;
        let c = Arc::new(c);
        self.serve_token_refreshes(&c);
        self.client = Some(c.clone());
        Ok(c)
    }

    /// librdkafka asks for a new OAUTHBEARER token (at 80 % of its lifetime,
    /// or 10 s after a failure) through the client's event queue, which polls
    /// serve; with a poll interval longer than that, tokens would expire
    /// between polls. While lagwatch provides the tokens, the queue is also
    /// served every 5 s, never during a poll (which serves it itself).
    fn serve_token_refreshes(&self, client: &Arc<Client>) {
        if self.config.oauthbearer.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(client);
        let running = self.running.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let Some(client) = weak.upgrade() else { return };
                let Ok(guard) = running.clone().try_lock_owned() else {
                    continue;
                };
                let _ = tokio::task::spawn_blocking(move || {
                    let _guard = guard;
                    drain(&client);
                })
                .await;
            }
        });
    }

    fn plan(&self) -> Plan {
        let describe = self.describe.due();
        Plan {
            source: self.id.clone(),
            groups: self.config.groups.clone(),
            group_filter: self.config.group_filter.clone(),
            topic_filter: self.config.topic_filter.clone(),
            isolation: match self.config.isolation_level {
                IsolationLevel::ReadUncommitted => {
                    rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_UNCOMMITTED
                }
                IsolationLevel::ReadCommitted => {
                    rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_COMMITTED
                }
            },
            request_timeout: self.timing.request_timeout,
            deadline: Instant::now() + super::poll_deadline(self.timing),
            describe,
            batch_describe: describe && self.batch_describe.due(),
            shard: self.shard,
            configs_known: Arc::new(self.retention.keys().cloned().collect()),
            configs_refresh: self.polls_since_configs >= topic_configs::CONFIG_REFRESH_POLLS,
            exact: self
                .exact
                .as_ref()
                .map(|rx| rx.borrow().clone())
                .unwrap_or_default(),
            fetcher: None,
            timestamps: self.timestamps.clone(),
            dead_letters: self.dead_letters.clone(),
            direct: (self.config.batch_offset_fetch
                && self.config.plaintext()
                && self.config.groups.is_empty()
                && !self.direct_unsupported
                && self.direct_backoff.due())
            .then(|| self.direct.clone()),
        }
    }

    /// Merges the topic configs a poll read, and gives every measured topic
    /// whose retention is known its limits.
    fn retention_of(
        &mut self,
        plan_refreshed: bool,
        configs: HashMap<Arc<str>, Option<RetentionLimits>>,
        data: &mut PollData,
    ) {
        if plan_refreshed {
            self.polls_since_configs = 0;
        } else {
            self.polls_since_configs += 1;
        }
        self.retention.extend(configs);
        let mut topics: Vec<&Arc<str>> = data.samples.iter().map(|s| &s.key.topic).collect();
        topics.sort_unstable();
        topics.dedup();
        data.retention = topics
            .into_iter()
            .filter_map(|t| Some((t.clone(), self.retention.get(t)?.clone()?)))
            .collect();
    }
}

impl Poller for KafkaPoller {
    async fn poll(&mut self) -> Result<PollData, PollFailure> {
        self.start_msk_iam().await;
        let client = self.client()?;
        let mut plan = self.plan();
        if !plan.exact.is_empty() {
            plan.fetcher = self.fetcher();
        }
        let describe = plan.describe;
        let refresh = plan.configs_refresh;
        let direct = plan.direct.is_some();
        // One blocking poll at a time on this client: if an abandoned poll is
        // still finishing (it cannot outlive its deadline by more than a
        // second, see `Admin::until`), the next one waits for it.
        let running = self.running.clone().lock_owned().await;
        let outcome = tokio::task::spawn_blocking(move || {
            let _running = running;
            poll::run(&client, &plan)
        })
        .await
        .map_err(|e| PollFailure {
            kind: ErrorKind::Other,
            message: format!("the Kafka poll task failed: {e}"),
        })?;
        match outcome {
            Ok(o) => {
                self.describe.record(describe.then_some(o.describe_failed));
                self.batch_describe.record(o.batch_describe_failed);
                self.record_direct(direct, o.direct);
                o.trace.log(&self.id);
                self.last_trace = Some(o.trace);
                let mut data = o.data;
                self.names.intern(&mut data);
                self.retention_of(refresh, o.configs, &mut data);
                Ok(data)
            }
            Err(f) => Err(self.redact(f)),
        }
    }
}

impl KafkaPoller {
    /// How the batched committed offsets went: a cluster that does not take
    /// them is not asked again; a failure backs off.
    fn record_direct(&mut self, tried: bool, outcome: Option<Result<(), direct::DirectError>>) {
        match outcome {
            Some(Err(direct::DirectError::Unsupported(why))) => {
                tracing::info!(source = %self.id, reason = %why, "committed offsets are read group by group (librdkafka)");
                self.direct_unsupported = true;
            }
            Some(Err(direct::DirectError::Failed(why))) => {
                tracing::debug!(source = %self.id, error = %why, "batched committed offsets failed; read group by group this poll");
                self.direct_backoff.record(Some(true));
            }
            Some(Ok(())) => self.direct_backoff.record(Some(false)),
            None if !tried => self.direct_backoff.record(None),
            None => {}
        }
    }
}

/// Serves queued librdkafka events (logs, global errors, statistics) so they
/// reach the context and do not pile up. Bounded: a flood cannot stall a poll.
fn drain(client: &Client) {
    for _ in 0..10_000 {
        if admin::main_queue_len(client.client()) == 0 {
            break;
        }
        // rdkafka returns None after serving a log or statistics event too,
        // so the queue length, not the result, says when to stop.
        let _ = client.poll(Duration::ZERO);
    }
}
