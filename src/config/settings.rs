//! Typed settings: what the rest of lagwatch runs on, built only by the
//! validation pass. Every combination here is valid by construction: a source
//! is Kafka or JetStream, filters are compiled, the listen address is parsed,
//! the shard is resolved, secrets are redacted from `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::filter::{NameFilter, Shard};
use crate::model::{SourceId, System};

/// Everything one lagwatch process is configured to do.
#[derive(Clone, Debug)]
pub struct Settings {
    pub http: HttpSettings,
    pub log: LogSettings,
    /// Time allowed for a graceful shutdown before the process exits anyway.
    pub shutdown_timeout: Duration,
    /// This process's share of the consumer groups.
    pub shard: Shard,
    /// Also export kafka-lag-exporter's metric names and labels.
    pub kafka_lag_exporter_compat: bool,
    /// In those, the member owning each partition (`member_host`,
    /// `consumer_id`, `client_id`), as kafka-lag-exporter writes them.
    pub kafka_lag_exporter_member_labels: bool,
    pub analysis: crate::analysis::Settings,
    pub recommend: crate::recommend::Resolver,
    pub alerts: crate::alert::AlertSettings,
    /// The state file (open incidents, undelivered notifications, dead
    /// letters); None: nothing survives a restart.
    pub state_path: Option<std::path::PathBuf>,
    /// At least one, names unique.
    pub sources: Vec<SourceSettings>,
}

impl Settings {
    /// The shortest poll interval of any source: it sizes the history rings.
    pub fn min_poll_interval(&self) -> Duration {
        self.sources
            .iter()
            .map(|s| s.timing.poll_interval)
            .min()
            .unwrap_or(Duration::from_secs(30))
    }
}

/// Default HTTP address: every interface, so a Kubernetes Service can reach it.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9358";

#[derive(Clone)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Bearer token the JSON API requires; None: the API is open.
    pub api_token: Option<String>,
    pub limits: crate::http::server::Limits,
    /// Longest time one request may take to answer.
    pub request_timeout: Duration,
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("listen", &self.listen)
            .field("api_token", &self.api_token.as_ref().map(|_| "***"))
            .field("limits", &self.limits)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct LogSettings {
    /// A tracing filter, already checked to parse.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The finest level of Kafka series exported. JetStream consumers have no
/// partitions: they are always exported per consumer.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Group, topic and partition series.
    Partition,
    /// Group and topic series: one per (group, topic) instead of per partition.
    #[default]
    Topic,
    /// Group series only.
    Group,
}

/// Poll interval and request timeout of one source, defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub poll_interval: Duration,
    pub request_timeout: Duration,
    /// A group or partition missing from this long of clean polls (no partial
    /// error that could have hidden it) is gone; until then its last values are
    /// kept, marked stale.
    pub gone_after: Duration,
}

/// kafka-lag-exporter polls every 30 s; Burrow every 30-60 s. Lag moves slower.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Default longest time one HTTP request may take to answer.
pub const DEFAULT_HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `gone_after` when not set: this many poll intervals.
pub const DEFAULT_GONE_AFTER_POLLS: u32 = 3;

/// One monitored cluster or connection.
#[derive(Clone, Debug)]
pub struct SourceSettings {
    pub id: SourceId,
    pub timing: Timing,
    pub granularity: Granularity,
    /// At most this many per-consumer series on /metrics (None: no cap).
    pub max_series: Option<usize>,
    /// Static labels added to every series of this source, sorted by name.
    pub labels: Vec<(String, String)>,
    pub kind: SourceKind,
}

impl SourceSettings {
    pub fn system(&self) -> System {
        match self.kind {
            SourceKind::Kafka(_) => System::Kafka,
            SourceKind::Jetstream(_) => System::Jetstream,
        }
    }
}

/// What a source talks to.
#[derive(Clone, Debug)]
pub enum SourceKind {
    Kafka(KafkaSettings),
    Jetstream(JetstreamSettings),
}

impl SourceKind {
    pub fn kafka(&self) -> Option<&KafkaSettings> {
        match self {
            SourceKind::Kafka(k) => Some(k),
            SourceKind::Jetstream(_) => None,
        }
    }
    pub fn jetstream(&self) -> Option<&JetstreamSettings> {
        match self {
            SourceKind::Jetstream(j) => Some(j),
            SourceKind::Kafka(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IsolationLevel {
    /// Java tooling's default; what kafka-lag-exporter and KEDA report.
    #[default]
    ReadUncommitted,
    ReadCommitted,
}

impl IsolationLevel {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }
}

#[derive(Clone)]
pub struct KafkaSettings {
    /// host:port list, as librdkafka's `bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    pub isolation_level: IsolationLevel,
    /// Explicit group ids, de-duplicated and sorted; when set, ListGroups is not used.
    pub groups: Vec<String>,
    pub group_filter: NameFilter,
    pub topic_filter: NameFilter,
    /// librdkafka client properties passed through (security.protocol, sasl.*, ssl.*).
    pub properties: BTreeMap<String, String>,
    /// SASL/OAUTHBEARER tokens read from a file (None: librdkafka's own, OIDC
    /// or the unsecured JWT, or no OAUTHBEARER at all).
    pub oauthbearer: Option<OAuthBearerSettings>,
    /// Committed offsets in batched OffsetFetch v8 requests of lagwatch's own
    /// where the cluster is plaintext and takes them (`source::kafka::direct`).
    pub batch_offset_fetch: bool,
}

/// SASL/OAUTHBEARER tokens lagwatch hands to librdkafka itself.
#[derive(Clone, Debug, PartialEq)]
pub enum OAuthBearerSettings {
    /// Read again at every refresh (a projected service-account token, a
    /// sidecar's output): a JWT's `exp` and `sub` give lifetime and principal;
    /// `principal` names a token that is not a JWT with `sub`.
    TokenFile {
        path: std::path::PathBuf,
        principal: Option<String>,
    },
    /// AWS MSK IAM: tokens signed with SigV4 from the standard credentials
    /// chain, for the cluster's region.
    AwsMskIam { region: String },
}

impl KafkaSettings {
    /// Whether lagwatch may speak to the brokers itself: plaintext, with no
    /// SASL (TLS and SASL stay librdkafka's).
    pub fn plaintext(&self) -> bool {
        self.properties
            .get("security.protocol")
            .is_none_or(|p| p.eq_ignore_ascii_case("plaintext"))
    }

    /// The values of secret properties, for scrubbing them from error messages.
    pub fn secret_values(&self) -> Vec<&str> {
        self.properties
            .iter()
            .filter(|(k, _)| super::secret::is_secret_key(k))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let shown = if super::secret::is_secret_key(k) {
                    "***"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("isolation_level", &self.isolation_level)
            .field("groups", &self.groups)
            .field("group_filter", &self.group_filter)
            .field("topic_filter", &self.topic_filter)
            .field("properties", &props)
            .field("oauthbearer", &self.oauthbearer)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EphemeralPolicy {
    /// Fold every ephemeral consumer of a stream into one `_ephemeral` series.
    #[default]
    Aggregate,
    Drop,
    /// Report each by name (watch label cardinality).
    Keep,
}

#[derive(Clone, Debug)]
pub struct JetstreamSettings {
    /// nats:// URLs.
    pub servers: Vec<String>,
    /// The JetStream API subject prefix (`$JS.API`, `$JS.<domain>.API`, or as configured).
    pub api_prefix: String,
    pub auth: NatsAuth,
    pub tls: Option<NatsTls>,
    pub stream_filter: NameFilter,
    pub consumer_filter: NameFilter,
    pub ephemeral: EphemeralPolicy,
}

/// How lagwatch authenticates to NATS. Values are secrets: never logged.
#[derive(Clone, Default)]
pub enum NatsAuth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    NkeySeed(String),
    CredentialsFile(PathBuf),
}

impl NatsAuth {
    /// The secret values, for scrubbing them from error messages.
    pub fn secret_values(&self) -> Vec<&str> {
        match self {
            NatsAuth::None | NatsAuth::CredentialsFile(_) => Vec::new(),
            NatsAuth::UserPassword { password, .. } => vec![password],
            NatsAuth::Token(t) | NatsAuth::NkeySeed(t) => vec![t],
        }
    }
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"***")
                .finish(),
            NatsAuth::Token(_) => f.write_str("Token(***)"),
            NatsAuth::NkeySeed(_) => f.write_str("NkeySeed(***)"),
            NatsAuth::CredentialsFile(p) => f.debug_tuple("CredentialsFile").field(p).finish(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NatsTls {
    pub ca_file: Option<PathBuf>,
    /// Client certificate and its key, always together.
    pub client: Option<(PathBuf, PathBuf)>,
}
