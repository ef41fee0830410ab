//! The YAML configuration: serde structs that reject unknown keys, named defaults,
//! `${VAR}` interpolation, and `validate()` that reports every problem at once with
//! its dotted path and, where known, its line in the file.

mod duration;
mod interpolate;
mod locate;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

pub use duration::Seconds;

/// One thing wrong with a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, e.g. `sources[1].kafka.poll_interval`; empty for the whole file.
    pub path: String,
    /// 1-based line in the YAML file, where the parser knows it.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one config file. Never contains a secret: values that
/// came from environment variables are redacted from every message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid config {}: {n} problem{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {p}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// Default poll interval for sources that do not set their own.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: Seconds,
    /// Default time one broker request may take.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Seconds,
    /// Time allowed for a graceful shutdown before the process exits anyway.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Seconds,
    /// Splitting the groups of every source across several lagwatch processes.
    #[serde(default)]
    pub shard: ShardConfig,
    /// What /metrics exports (docs/metrics.md).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Windows, history bounds and status thresholds (docs/analysis.md).
    #[serde(default)]
    pub analysis: crate::analysis::Settings,
    /// Scale-out recommendations (docs/scaling.md).
    #[serde(default)]
    pub recommend: crate::recommend::Settings,
    /// Threshold notifications: rules and receivers (docs/notifications.md).
    #[serde(default)]
    pub alerts: crate::alert::AlertConfig,
    pub sources: Vec<SourceConfig>,
}

/// This process's share of the consumer groups: of `count` shards, it watches the
/// groups that hash to `index`. Default: one shard that watches everything.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    #[serde(default = "default_shard_count")]
    pub count: u32,
    /// Explicit index (0-based), as a number or a string of digits (so it can come
    /// from `${SHARD_INDEX}`).
    pub index: Option<ShardIndex>,
    /// Take the index from the ordinal at the end of the host name, as a
    /// StatefulSet names its pods (`lagwatch-2` -> 2). Exclusive with `index`.
    #[serde(default)]
    pub index_from_hostname: bool,
}

impl Default for ShardConfig {
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
pub struct ShardIndex(pub u32);

impl<'de> Deserialize<'de> for ShardIndex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
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

impl ShardConfig {
    /// The index of this process, resolving `index_from_hostname` with `hostname`.
    pub fn resolve(&self, hostname: Option<&str>) -> Result<u32, String> {
        let index = match (self.index, self.index_from_hostname) {
            (Some(i), _) => i.0,
            (None, true) => {
                let h = hostname.ok_or("index_from_hostname is set but HOSTNAME is not")?;
                h.rsplit('-')
                    .next()
                    .and_then(|o| o.parse().ok())
                    .ok_or_else(|| format!("host name `{h}` does not end in -ORDINAL"))?
            }
            (None, false) if self.count == 1 => 0,
            (None, false) => {
                return Err(format!(
                    "count is {} but neither index nor index_from_hostname is set",
                    self.count
                ))
            }
        };
        if index >= self.count {
            return Err(format!(
                "index {index} is out of range for count {} (0..{})",
                self.count,
                self.count - 1
            ));
        }
        Ok(index)
    }
}

fn default_poll_interval() -> Seconds {
    // kafka-lag-exporter polls every 30 s; Burrow every 30-60 s. Lag moves slower.
    Seconds::from_secs(30)
}
fn default_request_timeout() -> Seconds {
    Seconds::from_secs(10)
}
fn default_shutdown_timeout() -> Seconds {
    // Kubernetes' default terminationGracePeriodSeconds is 30 s; stay well inside.
    Seconds::from_secs(20)
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the metrics/health/API server binds.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer token the JSON API requires (write `${LAGWATCH_API_TOKEN}`).
    /// /metrics, /healthz and /readyz stay open. Default: none (API open).
    pub api_token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api_token: None,
        }
    }
}

/// Default HTTP address: every interface, so a Kubernetes Service can reach it.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9358";
fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("api_token", &self.api_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl HttpConfig {
    /// The parsed listen address; validate() has already proven it parses.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("`{}` is not an IP:port address ({e})", self.listen))
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter (`info`, `lagwatch=debug,rdkafka=warn`). RUST_LOG wins when set.
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
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

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Default granularity of every source. Default: topic
    #[serde(default)]
    pub granularity: Granularity,
    /// Default cap on per-consumer series per source. Default: none
    pub max_series_per_source: Option<usize>,
    /// Also export kafka-lag-exporter's metric names and labels. Default: false
    #[serde(default)]
    pub kafka_lag_exporter_compat: bool,
}

/// One monitored cluster or connection. Exactly one of `kafka` / `jetstream`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name; becomes the `source` label.
    pub name: String,
    /// Overrides `metrics.granularity` for this source.
    pub granularity: Option<Granularity>,
    /// Overrides `metrics.max_series_per_source` for this source.
    pub max_series: Option<usize>,
    pub kafka: Option<KafkaConfig>,
    pub jetstream: Option<JetstreamConfig>,
}

/// Allow/deny regex lists. Empty allow list means "everything".
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
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

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// host:port list, as librdkafka's `bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    pub poll_interval: Option<Seconds>,
    pub request_timeout: Option<Seconds>,
    #[serde(default)]
    pub isolation_level: IsolationLevel,
    /// Explicit group ids; when set, ListGroups is not used.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub group_filter: Filter,
    #[serde(default)]
    pub topic_filter: Filter,
    /// librdkafka client properties passed through (security.protocol, sasl.*, ssl.*).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// librdkafka property-name fragments whose values are secrets: never printed,
/// and scrubbed from every error message.
pub const SECRET_PROPERTY_FRAGMENTS: &[&str] = &[
    "password",
    "secret",
    "token",
    "jaas",
    "oauthbearer.config",
    ".pem",
    "keytab",
];

/// Whether a librdkafka property holds a secret.
pub fn is_secret_property(key: &str) -> bool {
    SECRET_PROPERTY_FRAGMENTS.iter().any(|f| key.contains(f))
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if is_secret_property(k) {
                        "***"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("poll_interval", &self.poll_interval)
            .field("request_timeout", &self.request_timeout)
            .field("isolation_level", &self.isolation_level)
            .field("groups", &self.groups)
            .field("group_filter", &self.group_filter)
            .field("topic_filter", &self.topic_filter)
            .field("properties", &props)
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetstreamConfig {
    /// nats:// URLs.
    pub servers: Vec<String>,
    pub poll_interval: Option<Seconds>,
    pub request_timeout: Option<Seconds>,
    /// JetStream domain (leaf nodes); exclusive with api_prefix.
    pub domain: Option<String>,
    pub api_prefix: Option<String>,
    #[serde(default)]
    pub auth: NatsAuth,
    pub tls: Option<NatsTls>,
    #[serde(default)]
    pub stream_filter: Filter,
    #[serde(default)]
    pub consumer_filter: Filter,
    /// What to do with ephemeral consumers (random names).
    #[serde(default)]
    pub ephemeral: EphemeralPolicy,
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

/// Credentials for NATS. At most one method. Values are secrets: never logged.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub nkey_seed: Option<String>,
    pub credentials_file: Option<String>,
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |o: &Option<String>| o.as_ref().map(|_| "***");
        f.debug_struct("NatsAuth")
            .field("user", &self.user)
            .field("password", &hide(&self.password))
            .field("token", &hide(&self.token))
            .field("nkey_seed", &hide(&self.nkey_seed))
            .field("credentials_file", &self.credentials_file)
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsTls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

/// A source with its defaults applied, ready for a source task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub poll_interval: std::time::Duration,
    pub request_timeout: std::time::Duration,
}

impl Config {
    /// Reads, interpolates, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            problems: vec![Problem {
                path: String::new(),
                line: None,
                message: format!("cannot read file: {e}"),
            }],
        })?;
        Self::from_yaml(&file, &text, &|name| std::env::var(name).ok())
    }

    /// Parses config text; `env` looks up variables (tests pass their own).
    pub fn from_yaml(
        file: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let fail = |problems: Vec<Problem>| ConfigError {
            file: file.to_string(),
            problems,
        };
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            fail(vec![Problem {
                path: String::new(),
                line: e.location().map(|l| l.line()),
                message: format!("not valid YAML: {}", strip_location(&e.to_string())),
            }])
        })?;
        if value.is_null() {
            return Err(fail(vec![Problem {
                path: String::new(),
                line: None,
                message: "the file is empty; at least `sources:` is required".into(),
            }]));
        }
        let lines = locate::LineMap::build(text);
        let mut secrets = Vec::new();
        let mut problems = interpolate::interpolate(&mut value, env, &mut secrets);
        let config = if problems.is_empty() {
            match serde_path_to_error::deserialize::<_, Config>(value) {
                Ok(c) => Some(c),
                Err(e) => {
                    let path = e.path().to_string();
                    let path = if path == "." { String::new() } else { path };
                    problems.push(Problem {
                        path,
                        line: None,
                        message: strip_location(&e.inner().to_string()),
                    });
                    None
                }
            }
        } else {
            None
        };
        if let Some(c) = &config {
            problems.extend(c.validate());
        }
        if problems.is_empty() {
            if let Some(c) = config {
                return Ok(c);
            }
        }
        for p in &mut problems {
            if p.line.is_none() {
                p.line = lines.line_of(&p.path);
            }
            for s in &secrets {
                p.message = p.message.replace(s.as_str(), "***");
            }
        }
        Err(fail(problems))
    }

    /// Every semantic problem, each with its dotted path.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut push = |path: String, message: String| {
            out.push(Problem {
                path,
                line: None,
                message,
            })
        };
        if let Err(e) = self.http.listen_addr() {
            push("http.listen".into(), e);
        }
        if self.http.api_token.as_deref() == Some("") {
            push(
                "http.api_token".into(),
                "is empty; remove it to leave the API open, or set a token".into(),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            push(
                "log.level".into(),
                format!("not a valid log filter ({e}); try `info` or `lagwatch=debug`"),
            );
        }
        check_interval(&mut push, "poll_interval".into(), self.poll_interval);
        check_timeout(&mut push, "request_timeout".into(), self.request_timeout);
        if self.shutdown_timeout.get().is_zero() {
            push("shutdown_timeout".into(), "must be greater than 0s".into());
        }
        if self.shard.count == 0 {
            push("shard.count".into(), "must be at least 1".into());
        } else if self.shard.index.is_some() && self.shard.index_from_hostname {
            push(
                "shard.index".into(),
                "set `index` or `index_from_hostname`, not both".into(),
            );
        } else if let Err(e) = self
            .shard
            .resolve(std::env::var("HOSTNAME").ok().as_deref())
        {
            push("shard".into(), e);
        }
        for (path, message) in self.analysis.validate("analysis") {
            push(path, message);
        }
        for (path, message) in self.recommend.validate("recommend") {
            push(path, message);
        }
        for p in self.alerts.validate("alerts") {
            push(p.path, p.message);
        }
        if self.sources.is_empty() {
            push(
                "sources".into(),
                "at least one source (kafka or jetstream) is required".into(),
            );
        }
        let mut seen = HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}]");
            if let Some(message) = name_problem(&s.name) {
                push(format!("{at}.name"), message);
            } else if !seen.insert(s.name.as_str()) {
                push(
                    format!("{at}.name"),
                    format!("duplicate source name `{}`; names must be unique", s.name),
                );
            }
            match (&s.kafka, &s.jetstream) {
                (None, None) => push(
                    at.clone(),
                    "needs exactly one of `kafka` or `jetstream`".into(),
                ),
                (Some(_), Some(_)) => push(
                    at.clone(),
                    "has both `kafka` and `jetstream`; use one source entry each".into(),
                ),
                _ => {}
            }
            if let Some(k) = &s.kafka {
                let at = format!("{at}.kafka");
                if k.bootstrap_servers.is_empty() {
                    push(
                        format!("{at}.bootstrap_servers"),
                        "at least one host:port is required".into(),
                    );
                }
                for (j, b) in k.bootstrap_servers.iter().enumerate() {
                    if !b.contains(':') || b.trim() != b || b.is_empty() {
                        push(
                            format!("{at}.bootstrap_servers[{j}]"),
                            format!("`{b}` is not host:port"),
                        );
                    }
                }
                if let Some(p) = k.poll_interval {
                    check_interval(&mut push, format!("{at}.poll_interval"), p);
                }
                if let Some(t) = k.request_timeout {
                    check_timeout(&mut push, format!("{at}.request_timeout"), t);
                }
                for (j, g) in k.groups.iter().enumerate() {
                    if g.is_empty() {
                        push(format!("{at}.groups[{j}]"), "must not be empty".into());
                    }
                }
                check_filter(&mut push, &format!("{at}.group_filter"), &k.group_filter);
                check_filter(&mut push, &format!("{at}.topic_filter"), &k.topic_filter);
                for key in k.properties.keys() {
                    if RESERVED_KAFKA_PROPERTIES.contains(&key.as_str()) {
                        push(
                            format!("{at}.properties.{key}"),
                            format!(
                                "`{key}` is set by lagwatch itself; use the dedicated key instead"
                            ),
                        );
                    }
                }
            }
            if let Some(j) = &s.jetstream {
                let at = format!("{at}.jetstream");
                if j.servers.is_empty() {
                    push(
                        format!("{at}.servers"),
                        "at least one nats:// URL is required".into(),
                    );
                }
                for (n, url) in j.servers.iter().enumerate() {
                    if url.is_empty() || url.contains(char::is_whitespace) {
                        push(
                            format!("{at}.servers[{n}]"),
                            format!("`{url}` is not a server URL"),
                        );
                    }
                }
                if let Some(p) = j.poll_interval {
                    check_interval(&mut push, format!("{at}.poll_interval"), p);
                }
                if let Some(t) = j.request_timeout {
                    check_timeout(&mut push, format!("{at}.request_timeout"), t);
                }
                if j.domain.is_some() && j.api_prefix.is_some() {
                    push(
                        format!("{at}.domain"),
                        "`domain` and `api_prefix` are exclusive; set one".into(),
                    );
                }
                let a = &j.auth;
                let methods = [
                    a.user.is_some() || a.password.is_some(),
                    a.token.is_some(),
                    a.nkey_seed.is_some(),
                    a.credentials_file.is_some(),
                ];
                if methods.iter().filter(|m| **m).count() > 1 {
                    push(
                        format!("{at}.auth"),
                        "set only one of user/password, token, nkey_seed, credentials_file".into(),
                    );
                }
                if a.user.is_some() != a.password.is_some() {
                    push(
                        format!("{at}.auth"),
                        "`user` and `password` go together".into(),
                    );
                }
                if let Some(tls) = &j.tls {
                    if tls.cert_file.is_some() != tls.key_file.is_some() {
                        push(
                            format!("{at}.tls"),
                            "`cert_file` and `key_file` go together".into(),
                        );
                    }
                }
                check_filter(&mut push, &format!("{at}.stream_filter"), &j.stream_filter);
                check_filter(
                    &mut push,
                    &format!("{at}.consumer_filter"),
                    &j.consumer_filter,
                );
            }
        }
        out
    }

    /// What each source exports on /metrics.
    pub fn metrics_plan(&self) -> crate::metrics::Plan {
        crate::metrics::Plan {
            sources: self
                .sources
                .iter()
                .map(|s| {
                    (
                        crate::model::SourceId::new(&s.name),
                        crate::metrics::SourcePlan {
                            granularity: s.granularity.unwrap_or(self.metrics.granularity),
                            max_series: s.max_series.or(self.metrics.max_series_per_source),
                        },
                    )
                })
                .collect(),
            kafka_lag_exporter: self.metrics.kafka_lag_exporter_compat,
        }
    }

    /// The shortest poll interval of any source: it sizes the history rings.
    pub fn min_poll_interval(&self) -> std::time::Duration {
        self.sources
            .iter()
            .map(|s| self.timing(s).poll_interval)
            .min()
            .unwrap_or(self.poll_interval.get())
    }

    /// Poll interval and request timeout of source `i`, defaults applied.
    pub fn timing(&self, source: &SourceConfig) -> Timing {
        let (p, t) = match (&source.kafka, &source.jetstream) {
            (Some(k), _) => (k.poll_interval, k.request_timeout),
            (_, Some(j)) => (j.poll_interval, j.request_timeout),
            _ => (None, None),
        };
        Timing {
            poll_interval: p.unwrap_or(self.poll_interval).get(),
            request_timeout: t.unwrap_or(self.request_timeout).get(),
        }
    }
}

/// librdkafka properties lagwatch sets itself; overriding them breaks monitoring.
const RESERVED_KAFKA_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "isolation.level",
];

fn check_interval(push: &mut impl FnMut(String, String), path: String, v: Seconds) {
    if v.get() < std::time::Duration::from_secs(1) {
        push(path, format!("must be at least 1s (got {v})"));
    }
}

fn check_timeout(push: &mut impl FnMut(String, String), path: String, v: Seconds) {
    if v.get() < std::time::Duration::from_millis(100) {
        push(path, format!("must be at least 100ms (got {v})"));
    }
}

fn check_filter(push: &mut impl FnMut(String, String), at: &str, f: &Filter) {
    for (list, pats) in [("allow", &f.allow), ("deny", &f.deny)] {
        for (i, p) in pats.iter().enumerate() {
            if let Some(message) = regex_problem(p) {
                push(format!("{at}.{list}[{i}]"), message);
            }
        }
    }
}

/// Settings that differ per group: the first entry whose pattern matches the
/// group name (Kafka group id, JetStream consumer) wins, else the default. Used
/// by the analysis thresholds and the recommendation settings alike.
#[derive(Clone, Debug)]
pub struct PerGroup<T> {
    default: T,
    groups: Vec<(regex::Regex, T)>,
}

impl<T> PerGroup<T> {
    /// Compiles the patterns. One that does not compile is skipped: validate()
    /// has reported it (with [`group_pattern_problem`]) before this runs.
    pub fn new(default: T, groups: impl IntoIterator<Item = (String, T)>) -> Self {
        let groups = groups
            .into_iter()
            .filter_map(|(pattern, t)| Some((regex::Regex::new(&pattern).ok()?, t)))
            .collect();
        PerGroup { default, groups }
    }

    /// The value for groups no pattern matches.
    pub fn default_value(&self) -> &T {
        &self.default
    }

    pub fn for_group(&self, group: &crate::model::GroupKey) -> &T {
        self.groups
            .iter()
            .find(|(re, _)| re.is_match(&group.group))
            .map_or(&self.default, |(_, t)| t)
    }
}

/// What is wrong with a name that becomes a label value or an identifier
/// (sources, receivers, rules), or None when it is fine.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some(format!(
            "`{name}` may contain only letters, digits, `-`, `_` and `.`"
        ))
    } else {
        None
    }
}

/// What is wrong with a regex, in one line (the parser's last line names the
/// problem), or None when it compiles. Every section of the config uses it.
pub fn regex_problem(pattern: &str) -> Option<String> {
    regex::Regex::new(pattern).err().map(|e| {
        let detail = e
            .to_string()
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string();
        format!("invalid regex `{pattern}`: {detail}")
    })
}

/// As [`regex_problem`], for a per-group `pattern` that must not be empty.
pub fn group_pattern_problem(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        Some("must not be empty; use `.*` to match every group".into())
    } else {
        regex_problem(pattern)
    }
}

/// serde_yaml appends " at line L column C"; the problem carries the line itself.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests;
