//! The config file as written: serde structs that reject unknown keys and give
//! every key its named default. Nothing here is checked beyond its type; the
//! validation pass (`validate.rs`) turns a raw [`Config`] into typed
//! [`super::Settings`], or into every problem it has. No other module reads
//! these structs.
//!
//! Keys that must be present are still `#[serde(default)]` here, so that a
//! missing one is reported by validation together with every other problem
//! instead of stopping the parser at the first.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use super::settings::{EphemeralPolicy, Granularity, IsolationLevel, LogFormat};
use super::Seconds;
use crate::alert::{ConditionKind, Severity};
use crate::model::Status;
use crate::recommend::{KedaOptions, Mode, OffsetResetPolicy};

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub log: Log,
    /// Default poll interval for sources that do not set their own.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: Seconds,
    /// Default time one broker request may take.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Seconds,
    /// A group or partition missing from this long of clean polls of its
    /// source is gone; until then it is kept, stale. Default: 3 poll intervals.
    pub gone_after: Option<Seconds>,
    /// Time allowed for a graceful shutdown before the process exits anyway.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Seconds,
    #[serde(default)]
    pub shard: Shard,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default)]
    pub analysis: Analysis,
    #[serde(default)]
    pub dead_letters: DeadLetters,
    #[serde(default)]
    pub recommend: Recommend,
    #[serde(default)]
    pub alerts: Alerts,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub sources: Vec<Source>,
}

fn default_poll_interval() -> Seconds {
    Seconds::from_duration(crate::config::DEFAULT_POLL_INTERVAL)
}
fn default_request_timeout() -> Seconds {
    Seconds::from_secs(10)
}
fn default_shutdown_timeout() -> Seconds {
    // Kubernetes' default terminationGracePeriodSeconds is 30 s; stay well inside.
    Seconds::from_secs(20)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Http {
    #[serde(default = "default_listen")]
    pub listen: String,
    pub api_token: Option<String>,
    /// Open connections at most; at the cap the one waiting longest without
    /// a complete request is closed to make room.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client must send its whole request head within this; idle
    /// keep-alive connections close after it too.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: Seconds,
    /// Longest time one request may take to answer (408 after).
    #[serde(default = "default_http_request_timeout")]
    pub request_timeout: Seconds,
}

fn default_max_connections() -> usize {
    crate::http::server::Limits::default().max_connections
}

fn default_header_read_timeout() -> Seconds {
    Seconds::from_duration(crate::http::server::Limits::default().header_read_timeout)
}

fn default_http_request_timeout() -> Seconds {
    Seconds::from_duration(crate::config::DEFAULT_HTTP_REQUEST_TIMEOUT)
}

impl Default for Http {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api_token: None,
            max_connections: default_max_connections(),
            header_read_timeout: default_header_read_timeout(),
            request_timeout: default_http_request_timeout(),
        }
    }
}

fn default_listen() -> String {
    super::DEFAULT_LISTEN.to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Log {
    /// A tracing filter (`info`, `lagwatch=debug,rdkafka=warn`). RUST_LOG wins.
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::default(),
        }
    }
}

fn default_log_level() -> String {
    "info".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Shard {
    #[serde(default = "default_shard_count")]
    pub count: u32,
    /// A number, or a string of digits (so it can come from `${SHARD_INDEX}`).
    pub index: Option<ShardIndex>,
    #[serde(default)]
    pub index_from_hostname: bool,
}

impl Default for Shard {
    fn default() -> Self {
        Self {
            count: default_shard_count(),
            index: None,
            index_from_hostname: false,
        }
    }
}

fn default_shard_count() -> u32 {
    1
}

/// A shard index written as a number or as digits in a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShardIndex(pub u32);

impl<'de> Deserialize<'de> for ShardIndex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ShardIndex(n)),
            Raw::S(s) => s.trim().parse().map(ShardIndex).map_err(|_| {
                serde::de::Error::custom(format!("`{s}` is not a shard index (0, 1, 2, ...)"))
            }),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Metrics {
    #[serde(default)]
    pub granularity: Granularity,
    pub max_series_per_source: Option<usize>,
    #[serde(default)]
    pub kafka_lag_exporter_compat: bool,
    #[serde(default)]
    pub kafka_lag_exporter_member_labels: bool,
}

/// One monitored cluster or connection. Exactly one of `kafka` / `jetstream`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Source {
    #[serde(default)]
    pub name: String,
    pub granularity: Option<Granularity>,
    pub max_series: Option<usize>,
    /// Static labels on every series of the source (`env: prod`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub kafka: Option<Kafka>,
    pub jetstream: Option<Jetstream>,
}

/// Allow/deny regex lists. Empty allow list means "everything".
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filter {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kafka {
    #[serde(default)]
    pub bootstrap_servers: Vec<String>,
    pub poll_interval: Option<Seconds>,
    pub request_timeout: Option<Seconds>,
    pub gone_after: Option<Seconds>,
    #[serde(default)]
    pub isolation_level: IsolationLevel,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub group_filter: Filter,
    #[serde(default)]
    pub topic_filter: Filter,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    pub oauthbearer: Option<OAuthBearer>,
    /// Read committed offsets in batched requests of lagwatch's own
    /// (OffsetFetch v8) on plaintext clusters that take them. Default true.
    pub batch_offset_fetch: Option<bool>,
}

/// Where SASL/OAUTHBEARER tokens come from when librdkafka does not fetch them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OAuthBearer {
    pub token_file: Option<String>,
    pub principal: Option<String>,
    pub aws_msk_iam: Option<AwsMskIam>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AwsMskIam {
    #[serde(default)]
    pub region: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Jetstream {
    #[serde(default)]
    pub servers: Vec<String>,
    pub poll_interval: Option<Seconds>,
    pub request_timeout: Option<Seconds>,
    pub gone_after: Option<Seconds>,
    pub domain: Option<String>,
    pub api_prefix: Option<String>,
    #[serde(default)]
    pub auth: NatsAuth,
    pub tls: Option<NatsTls>,
    #[serde(default)]
    pub stream_filter: Filter,
    #[serde(default)]
    pub consumer_filter: Filter,
    #[serde(default)]
    pub ephemeral: EphemeralPolicy,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NatsAuth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub nkey_seed: Option<String>,
    pub credentials_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NatsTls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

// ---------------------------------------------------------------------------
// dead_letters:
// ---------------------------------------------------------------------------

/// Dead-letter topics and JetStream advisories; defaults in
/// `analysis::dead_letters::DeadLetterSettings::default`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLetters {
    pub enabled: Option<bool>,
    pub window: Option<Seconds>,
    #[serde(default)]
    pub kafka: DeadLettersKafka,
    #[serde(default)]
    pub jetstream: DeadLettersJetstream,
    pub max_tracked: Option<usize>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLettersKafka {
    /// Replace the default suffixes (None: the defaults).
    pub suffixes: Option<Vec<String>>,
    pub prefixes: Option<Vec<String>>,
    #[serde(default)]
    pub topics: Vec<DeadLetterLink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLetterLink {
    #[serde(default)]
    pub dead_letter_topic: String,
    #[serde(default)]
    pub topic: String,
    pub group: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLettersJetstream {
    pub advisories: Option<bool>,
}

// ---------------------------------------------------------------------------
// analysis:
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Analysis {
    #[serde(default = "default_window")]
    pub window: Seconds,
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    #[serde(default = "default_min_span")]
    pub min_span: Seconds,
    #[serde(default = "default_max_samples_per_key")]
    pub max_samples_per_key: usize,
    #[serde(default = "default_expire_after")]
    pub expire_after: Seconds,
    #[serde(default)]
    pub thresholds: Thresholds,
    #[serde(default)]
    pub groups: Vec<GroupThresholds>,
    #[serde(default)]
    pub exact_time_lag: ExactTimeLag,
    #[serde(default)]
    pub diagnosis: Diagnosis,
}

/// Thresholds of "why a group is behind"; defaults in
/// `analysis::diagnosis::DiagnosisSettings::default`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Diagnosis {
    pub spike_factor: Option<f64>,
    pub slowdown_factor: Option<f64>,
    pub hot_share: Option<f64>,
    pub rebalance_changes: Option<usize>,
    pub baseline_window: Option<Seconds>,
    pub baseline_min: Option<Seconds>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExactTimeLag {
    #[serde(default = "default_exact_enabled")]
    pub enabled: bool,
    #[serde(default = "default_exact_max_per_poll")]
    pub max_per_poll: usize,
    #[serde(default = "default_exact_max_error")]
    pub max_error: Seconds,
}

impl Default for ExactTimeLag {
    fn default() -> Self {
        Self {
            enabled: default_exact_enabled(),
            max_per_poll: default_exact_max_per_poll(),
            max_error: default_exact_max_error(),
        }
    }
}

fn default_exact_enabled() -> bool {
    analysis_defaults::DEFAULT_EXACT_ENABLED
}
fn default_exact_max_per_poll() -> usize {
    analysis_defaults::DEFAULT_EXACT_MAX_PER_POLL
}
fn default_exact_max_error() -> Seconds {
    Seconds::from_duration(analysis_defaults::DEFAULT_EXACT_MAX_ERROR)
}

impl Default for Analysis {
    fn default() -> Self {
        Self {
            window: default_window(),
            min_samples: default_min_samples(),
            min_span: default_min_span(),
            max_samples_per_key: default_max_samples_per_key(),
            expire_after: default_expire_after(),
            thresholds: Thresholds::default(),
            groups: Vec::new(),
            exact_time_lag: ExactTimeLag::default(),
            diagnosis: Diagnosis::default(),
        }
    }
}

use crate::analysis::settings as analysis_defaults;

fn default_window() -> Seconds {
    Seconds::from_duration(analysis_defaults::DEFAULT_WINDOW)
}
fn default_min_samples() -> usize {
    analysis_defaults::DEFAULT_MIN_SAMPLES
}
fn default_min_span() -> Seconds {
    Seconds::from_duration(analysis_defaults::DEFAULT_MIN_SPAN)
}
fn default_max_samples_per_key() -> usize {
    analysis_defaults::DEFAULT_MAX_SAMPLES_PER_KEY
}
fn default_expire_after() -> Seconds {
    Seconds::from_duration(analysis_defaults::DEFAULT_EXPIRE_AFTER)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Thresholds {
    #[serde(default = "default_allowed_lag")]
    pub allowed_lag: u64,
    #[serde(default)]
    pub error_lag: Option<u64>,
    #[serde(default)]
    pub error_time_lag: Option<Seconds>,
    #[serde(default = "default_stop_after")]
    pub stop_after: Seconds,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            allowed_lag: default_allowed_lag(),
            error_lag: None,
            error_time_lag: None,
            stop_after: default_stop_after(),
        }
    }
}

fn default_allowed_lag() -> u64 {
    analysis_defaults::DEFAULT_ALLOWED_LAG
}
fn default_stop_after() -> Seconds {
    Seconds::from_duration(analysis_defaults::DEFAULT_STOP_AFTER)
}

/// One per-group override; unset keys inherit from `thresholds`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupThresholds {
    #[serde(default)]
    pub pattern: String,
    pub allowed_lag: Option<u64>,
    pub error_lag: Option<u64>,
    pub error_time_lag: Option<Seconds>,
    pub stop_after: Option<Seconds>,
}

// ---------------------------------------------------------------------------
// recommend:
// ---------------------------------------------------------------------------

use crate::recommend::settings as recommend_defaults;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Recommend {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "default_min_replicas")]
    pub min_replicas: u32,
    pub max_replicas: Option<u32>,
    #[serde(default = "default_target_drain_time")]
    pub target_drain_time: Seconds,
    #[serde(default = "default_headroom")]
    pub headroom: f64,
    #[serde(default = "default_scale_in_after")]
    pub scale_in_after: Seconds,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    #[serde(default = "default_scale_in_max_time_lag")]
    pub scale_in_max_time_lag: Seconds,
    #[serde(default = "default_learn_after")]
    pub learn_after: Seconds,
    #[serde(default = "default_min_backlog")]
    pub min_backlog: Seconds,
    pub capacity_per_replica: Option<f64>,
    pub replicas: Option<u32>,
    #[serde(default)]
    pub keda: KedaOptions,
    #[serde(default)]
    pub groups: Vec<GroupRecommend>,
}

impl Default for Recommend {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            min_replicas: default_min_replicas(),
            max_replicas: None,
            target_drain_time: default_target_drain_time(),
            headroom: default_headroom(),
            scale_in_after: default_scale_in_after(),
            tolerance: default_tolerance(),
            scale_in_max_time_lag: default_scale_in_max_time_lag(),
            learn_after: default_learn_after(),
            min_backlog: default_min_backlog(),
            capacity_per_replica: None,
            replicas: None,
            keda: KedaOptions::default(),
            groups: Vec::new(),
        }
    }
}

fn default_min_replicas() -> u32 {
    recommend_defaults::DEFAULT_MIN_REPLICAS
}
fn default_target_drain_time() -> Seconds {
    Seconds::from_duration(recommend_defaults::DEFAULT_TARGET_DRAIN_TIME)
}
fn default_headroom() -> f64 {
    recommend_defaults::DEFAULT_HEADROOM
}
fn default_scale_in_after() -> Seconds {
    Seconds::from_duration(recommend_defaults::DEFAULT_SCALE_IN_AFTER)
}
fn default_tolerance() -> f64 {
    recommend_defaults::DEFAULT_TOLERANCE
}
fn default_scale_in_max_time_lag() -> Seconds {
    Seconds::from_duration(recommend_defaults::DEFAULT_SCALE_IN_MAX_TIME_LAG)
}
fn default_learn_after() -> Seconds {
    Seconds::from_duration(recommend_defaults::DEFAULT_LEARN_AFTER)
}
fn default_min_backlog() -> Seconds {
    Seconds::from_duration(recommend_defaults::DEFAULT_MIN_BACKLOG)
}

/// One per-group override; unset keys inherit from the section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupRecommend {
    #[serde(default)]
    pub pattern: String,
    pub mode: Option<Mode>,
    pub min_replicas: Option<u32>,
    pub max_replicas: Option<u32>,
    pub target_drain_time: Option<Seconds>,
    pub headroom: Option<f64>,
    pub scale_in_after: Option<Seconds>,
    pub tolerance: Option<f64>,
    pub scale_in_max_time_lag: Option<Seconds>,
    pub learn_after: Option<Seconds>,
    pub min_backlog: Option<Seconds>,
    pub capacity_per_replica: Option<f64>,
    pub replicas: Option<u32>,
    #[serde(default)]
    pub keda: KedaOverride,
}

/// KEDA options of one group override; unset keys inherit.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KedaOverride {
    pub lag_threshold: Option<i64>,
    pub activation_lag_threshold: Option<i64>,
    pub offset_reset_policy: Option<OffsetResetPolicy>,
    pub allow_idle_consumers: Option<bool>,
    pub limit_to_partitions_with_lag: Option<bool>,
    pub ensure_even_distribution_of_partitions: Option<bool>,
    pub scale_to_zero_on_invalid_offset: Option<bool>,
    pub exclude_persistent_lag: Option<bool>,
    pub min_replica_count: Option<u32>,
    pub max_replica_count: Option<u32>,
    pub hpa_tolerance: Option<f64>,
}

// ---------------------------------------------------------------------------
// alerts:
// ---------------------------------------------------------------------------

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Alerts {
    pub dashboard_url: Option<String>,
    #[serde(default)]
    pub defaults: AlertDefaults,
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertDefaults {
    #[serde(rename = "for", default = "default_for")]
    pub for_: Seconds,
    #[serde(default = "default_resolve_after")]
    pub resolve_after: Seconds,
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: Seconds,
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: Seconds,
    #[serde(default = "default_retry_backoff_max")]
    pub retry_backoff_max: Seconds,
    #[serde(default = "default_flush_timeout")]
    pub flush_timeout: Seconds,
    #[serde(default = "default_retry_max_attempts")]
    pub retry_max_attempts: u32,
    #[serde(default = "default_retry_max_age")]
    pub retry_max_age: Seconds,
}

impl Default for AlertDefaults {
    fn default() -> Self {
        Self {
            for_: default_for(),
            resolve_after: default_resolve_after(),
            repeat_interval: default_repeat_interval(),
            queue_capacity: default_queue_capacity(),
            timeout: default_timeout(),
            retry_backoff: default_retry_backoff(),
            retry_backoff_max: default_retry_backoff_max(),
            flush_timeout: default_flush_timeout(),
            retry_max_attempts: default_retry_max_attempts(),
            retry_max_age: default_retry_max_age(),
        }
    }
}

fn default_for() -> Seconds {
    // Two polls at the default 30 s interval: one spike does not page anyone.
    Seconds::from_secs(60)
}
fn default_resolve_after() -> Seconds {
    // Alertmanager's resolve_timeout default.
    Seconds::from_secs(5 * 60)
}
fn default_repeat_interval() -> Seconds {
    // Alertmanager's repeat_interval default.
    Seconds::from_secs(4 * 60 * 60)
}
fn default_queue_capacity() -> usize {
    1000
}
fn default_timeout() -> Seconds {
    Seconds::from_secs(10)
}
fn default_retry_backoff() -> Seconds {
    Seconds::from_secs(1)
}
fn default_retry_backoff_max() -> Seconds {
    Seconds::from_secs(60)
}
fn default_flush_timeout() -> Seconds {
    // Inside lagwatch's default shutdown_timeout (20 s).
    Seconds::from_secs(10)
}
fn default_retry_max_attempts() -> u32 {
    crate::alert::DEFAULT_RETRY_MAX_ATTEMPTS
}
fn default_retry_max_age() -> Seconds {
    Seconds::from_duration(crate::alert::DEFAULT_RETRY_MAX_AGE)
}

/// `state:`: where lagwatch keeps what must survive a restart.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct State {
    pub path: Option<String>,
}

/// One place notifications go. Exactly one of the kind keys is set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Receiver {
    #[serde(default)]
    pub name: String,
    pub webhook: Option<Webhook>,
    pub slack: Option<Slack>,
    pub alertmanager: Option<Alertmanager>,
    pub pagerduty: Option<PagerDuty>,
    pub log: Option<LogReceiver>,
    pub queue_capacity: Option<usize>,
    pub timeout: Option<Seconds>,
    #[serde(default)]
    pub tls: ReceiverTls,
}

/// TLS of an HTTPS receiver.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiverTls {
    /// PEM file of the CA certificates to trust besides the system's (a
    /// private CA of an internal receiver).
    pub ca_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Webhook {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub hmac_secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Slack {
    #[serde(default)]
    pub url: String,
    #[serde(default = "default_true")]
    pub blocks: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Alertmanager {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub generator_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PagerDuty {
    #[serde(default)]
    pub routing_key: String,
    #[serde(default = "default_pagerduty_url")]
    pub url: String,
}

fn default_pagerduty_url() -> String {
    crate::alert::PAGERDUTY_URL.to_string()
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogReceiver {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    #[serde(default)]
    pub name: String,
    pub source: Option<String>,
    pub system: Option<SystemName>,
    pub group: Option<String>,
    pub topic: Option<String>,
    pub condition: Option<ConditionKind>,
    pub threshold: Option<ThresholdValue>,
    #[serde(default)]
    pub overrides: Vec<Override>,
    #[serde(rename = "for")]
    pub for_: Option<Seconds>,
    pub resolve_after: Option<Seconds>,
    pub repeat_interval: Option<Seconds>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub receivers: Vec<String>,
}

/// `System` as written in YAML (`kafka`, `jetstream`).
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SystemName {
    Kafka,
    Jetstream,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Override {
    #[serde(default)]
    pub group: String,
    pub threshold: Option<ThresholdValue>,
}

/// A threshold as written: a number, a duration (`5m`) or a list of statuses.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ThresholdValue {
    Number(f64),
    Duration(Seconds),
    Statuses(Vec<Status>),
}

impl<'de> Deserialize<'de> for ThresholdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ThresholdValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, a duration like `5m`, or a list of statuses")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ThresholdValue, E> {
                Ok(ThresholdValue::Number(v as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ThresholdValue, E> {
                Ok(ThresholdValue::Number(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ThresholdValue, E> {
                Ok(ThresholdValue::Number(v))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ThresholdValue, E> {
                let t = s.trim();
                if t.starts_with('-') {
                    return Err(E::custom(format!("`{s}`: a duration cannot be negative")));
                }
                humantime::parse_duration(t)
                    .map(|d| ThresholdValue::Duration(Seconds::from_duration(d)))
                    .map_err(|e| {
                        E::custom(format!(
                            "`{s}` is neither a number nor a duration ({e}); write `10000` or `5m`"
                        ))
                    })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ThresholdValue, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    let status = Status::ALL
                        .into_iter()
                        .find(|s| s.as_str().eq_ignore_ascii_case(name.trim()))
                        .ok_or_else(|| {
                            serde::de::Error::custom(format!(
                                "unknown status `{name}`; one of OK, WARN, REWIND, STALL, STOP, ERR"
                            ))
                        })?;
                    out.push(status);
                }
                Ok(ThresholdValue::Statuses(out))
            }
        }
        d.deserialize_any(V)
    }
}
