//! The `alerts:` section of the config file: rules, receivers and their defaults,
//! as serde structs that reject unknown keys, plus `validate()` reporting every
//! problem at once with its dotted path.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::config::{Problem, Seconds};
use crate::model::{Status, System};

/// Everything about threshold notifications. Mounted as `alerts:` in the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Link put into every notification; placeholders `{source}`, `{system}`,
    /// `{group}`, `{stream}`, `{topic}`, `{rule}`, `{incident}` are replaced by
    /// their URL-encoded values.
    #[serde(default)]
    pub dashboard_url: Option<String>,
    #[serde(default)]
    pub defaults: AlertDefaults,
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// Values every rule and receiver gets unless it sets its own.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertDefaults {
    /// How long a condition must hold before it fires.
    #[serde(rename = "for", default = "default_for")]
    pub for_: Seconds,
    /// How long a condition must be false before its incident resolves.
    #[serde(default = "default_resolve_after")]
    pub resolve_after: Seconds,
    /// How often an open incident is notified again.
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: Seconds,
    /// Notifications waiting per receiver before the oldest are dropped.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Time one HTTP request to a receiver may take.
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// First wait before retrying a failed delivery; doubles up to `retry_backoff_max`.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: Seconds,
    #[serde(default = "default_retry_backoff_max")]
    pub retry_backoff_max: Seconds,
    /// On shutdown, time queued notifications get to be delivered.
    #[serde(default = "default_flush_timeout")]
    pub flush_timeout: Seconds,
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

/// PagerDuty's four severities; also the `severity` label for Alertmanager.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule looks at. Each needs a particular kind of `threshold`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    /// lag_messages > threshold (a number of messages).
    LagMessages,
    /// lag_seconds > threshold (a duration).
    LagSeconds,
    /// growth_per_second > threshold (messages per second).
    Growth,
    /// eta_seconds > threshold (a duration); never catching up counts as above.
    Eta,
    /// status is one of threshold (a list such as `[STALL, STOP]`).
    Status,
    /// lost_messages > threshold (a number; default 0).
    LostMessages,
    /// seconds_until_loss < threshold (a duration).
    LossWithin,
    /// recommended_replicas > current_replicas (no threshold).
    ReplicasShort,
}

impl ConditionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionKind::LagMessages => "lag_messages",
            ConditionKind::LagSeconds => "lag_seconds",
            ConditionKind::Growth => "growth",
            ConditionKind::Eta => "eta",
            ConditionKind::Status => "status",
            ConditionKind::LostMessages => "lost_messages",
            ConditionKind::LossWithin => "loss_within",
            ConditionKind::ReplicasShort => "replicas_short",
        }
    }

    /// What `threshold` must look like, for error messages.
    pub(crate) fn expects(self) -> &'static str {
        match self {
            ConditionKind::LagMessages => "a number of messages, like `10000`",
            ConditionKind::Growth => "messages per second, like `50`",
            ConditionKind::LostMessages => "a number of messages, like `0`",
            ConditionKind::LagSeconds | ConditionKind::Eta | ConditionKind::LossWithin => {
                "a duration, like `5m`"
            }
            ConditionKind::Status => "a list of statuses, like `[STALL, STOP]`",
            ConditionKind::ReplicasShort => "no threshold",
        }
    }
}

/// A threshold as written: a number, a duration (`5m`) or a list of statuses.
#[derive(Clone, Debug, PartialEq)]
pub enum ThresholdValue {
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

/// One rule: which consumers it watches, the condition, and who hears about it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique; the `alertname` in Alertmanager and the rule in every payload.
    pub name: String,
    /// Regexes (unanchored, as the source filters) on the source name, the group
    /// (Kafka group / JetStream consumer) and any topic (Kafka) or stream (JetStream).
    pub source: Option<String>,
    pub system: Option<SystemName>,
    pub group: Option<String>,
    pub topic: Option<String>,
    pub condition: ConditionKind,
    pub threshold: Option<ThresholdValue>,
    /// Per-group thresholds; the first whose `group` regex matches wins.
    #[serde(default)]
    pub overrides: Vec<OverrideConfig>,
    #[serde(rename = "for")]
    pub for_: Option<Seconds>,
    pub resolve_after: Option<Seconds>,
    pub repeat_interval: Option<Seconds>,
    #[serde(default)]
    pub severity: Severity,
    /// Receiver names; at least one.
    pub receivers: Vec<String>,
}

/// `System` as written in YAML (`kafka`, `jetstream`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SystemName {
    Kafka,
    Jetstream,
}

impl From<SystemName> for System {
    fn from(s: SystemName) -> System {
        match s {
            SystemName::Kafka => System::Kafka,
            SystemName::Jetstream => System::Jetstream,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    /// Regex on the group name.
    pub group: String,
    pub threshold: ThresholdValue,
}

/// One place notifications go. Exactly one of the kind keys is set.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    pub webhook: Option<WebhookConfig>,
    pub slack: Option<SlackConfig>,
    pub alertmanager: Option<AlertmanagerConfig>,
    pub pagerduty: Option<PagerDutyConfig>,
    pub log: Option<LogReceiverConfig>,
    /// Overrides `defaults.queue_capacity`.
    pub queue_capacity: Option<usize>,
    /// Overrides `defaults.timeout`.
    pub timeout: Option<Seconds>,
}

/// A receiver's kind with its settings, once validated.
#[derive(Clone, Copy, Debug)]
pub enum ReceiverKind<'a> {
    Webhook(&'a WebhookConfig),
    Slack(&'a SlackConfig),
    Alertmanager(&'a AlertmanagerConfig),
    PagerDuty(&'a PagerDutyConfig),
    Log,
}

impl ReceiverConfig {
    /// The one kind set; None when zero or several are (validate() reports it).
    pub fn kind(&self) -> Option<ReceiverKind<'_>> {
        let mut kinds = Vec::new();
        if let Some(w) = &self.webhook {
            kinds.push(ReceiverKind::Webhook(w));
        }
        if let Some(s) = &self.slack {
            kinds.push(ReceiverKind::Slack(s));
        }
        if let Some(a) = &self.alertmanager {
            kinds.push(ReceiverKind::Alertmanager(a));
        }
        if let Some(p) = &self.pagerduty {
            kinds.push(ReceiverKind::PagerDuty(p));
        }
        if self.log.is_some() {
            kinds.push(ReceiverKind::Log);
        }
        match kinds.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

impl fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The kind configs redact their own secrets.
        f.debug_struct("ReceiverConfig")
            .field("name", &self.name)
            .field("kind", &self.kind())
            .field("queue_capacity", &self.queue_capacity)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A generic JSON webhook receiving the versioned lagwatch event.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Extra request headers (e.g. `Authorization: "Bearer ${TOKEN}"`). Values are
    /// secrets: never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Shared secret for the `X-Lagwatch-Signature` HMAC-SHA256 header.
    pub hmac_secret: Option<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redact_url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("hmac_secret", &self.hmac_secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A Slack (or Mattermost, Rocket.Chat) incoming webhook.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL; it is a secret (its path is the credential).
    pub url: String,
    /// Send Block Kit `blocks` besides the plain `text` (default true).
    #[serde(default = "default_true")]
    pub blocks: bool,
}

fn default_true() -> bool {
    true
}

impl fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackConfig")
            .field("url", &"***")
            .field("blocks", &self.blocks)
            .finish()
    }
}

/// An Alertmanager; lagwatch posts to `{url}/api/v2/alerts` as Prometheus does.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://alertmanager:9093`.
    pub url: String,
    /// Extra request headers (e.g. basic auth). Values are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `generatorURL` when no `dashboard_url` is configured.
    pub generator_url: Option<String>,
}

impl fmt::Debug for AlertmanagerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertmanagerConfig")
            .field("url", &redact_url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("generator_url", &self.generator_url)
            .finish()
    }
}

/// PagerDuty Events API v2.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The integration's routing key (a secret).
    pub routing_key: String,
    /// Events API endpoint.
    #[serde(default = "default_pagerduty_url")]
    pub url: String,
}

/// PagerDuty's documented Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
fn default_pagerduty_url() -> String {
    PAGERDUTY_URL.to_string()
}

impl fmt::Debug for PagerDutyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyConfig")
            .field("routing_key", &"***")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// Prints each notification as one log line (no settings).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogReceiverConfig {}

/// Scheme, host and port only: paths and queries of webhook URLs often hold tokens.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/…", u.scheme()),
            (Some(h), None) => format!("{}://{h}/…", u.scheme()),
            _ => "***".into(),
        },
        Err(_) => "***".into(),
    }
}

/// Placeholders `dashboard_url` may use.
pub const DASHBOARD_PLACEHOLDERS: &[&str] = &[
    "source", "system", "group", "stream", "topic", "rule", "incident",
];

impl AlertConfig {
    /// Every semantic problem, each with its dotted path under `path_prefix`
    /// (e.g. `alerts`). Unknown keys and wrong types are reported by the parser.
    pub fn validate(&self, path_prefix: &str) -> Vec<Problem> {
        let p = |rest: &str| {
            if path_prefix.is_empty() {
                rest.to_string()
            } else {
                format!("{path_prefix}.{rest}")
            }
        };
        let mut out = Vec::new();
        let mut push = |path: String, message: String| {
            out.push(Problem {
                path,
                line: None,
                message,
            })
        };

        if let Some(t) = &self.dashboard_url {
            if let Err(e) = check_template(t) {
                push(p("dashboard_url"), e);
            }
        }

        let d = &self.defaults;
        for (key, v) in [
            ("resolve_after", d.resolve_after),
            ("repeat_interval", d.repeat_interval),
            ("timeout", d.timeout),
            ("retry_backoff", d.retry_backoff),
            ("retry_backoff_max", d.retry_backoff_max),
            ("flush_timeout", d.flush_timeout),
        ] {
            check_nonzero(&mut push, p(&format!("defaults.{key}")), v);
        }
        if d.retry_backoff > d.retry_backoff_max {
            push(
                p("defaults.retry_backoff_max"),
                format!(
                    "must be at least retry_backoff ({} > {})",
                    d.retry_backoff, d.retry_backoff_max
                ),
            );
        }
        if d.queue_capacity == 0 {
            push(p("defaults.queue_capacity"), "must be at least 1".into());
        }

        let mut receiver_names = HashSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let at = p(&format!("receivers[{i}]"));
            check_name(&mut push, format!("{at}.name"), &r.name, "receiver");
            if !r.name.is_empty() && !receiver_names.insert(r.name.as_str()) {
                push(
                    format!("{at}.name"),
                    format!("duplicate receiver name `{}`; names must be unique", r.name),
                );
            }
            let set = [
                r.webhook.is_some(),
                r.slack.is_some(),
                r.alertmanager.is_some(),
                r.pagerduty.is_some(),
                r.log.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if set != 1 {
                push(
                    at.clone(),
                    format!(
                        "needs exactly one of `webhook`, `slack`, `alertmanager`, `pagerduty`, `log` (found {set})"
                    ),
                );
            }
            if r.queue_capacity == Some(0) {
                push(format!("{at}.queue_capacity"), "must be at least 1".into());
            }
            if let Some(t) = r.timeout {
                check_nonzero(&mut push, format!("{at}.timeout"), t);
            }
            if let Some(w) = &r.webhook {
                check_url(&mut push, format!("{at}.webhook.url"), &w.url);
                check_headers(&mut push, &format!("{at}.webhook.headers"), &w.headers);
                if w.hmac_secret.as_deref() == Some("") {
                    push(
                        format!("{at}.webhook.hmac_secret"),
                        "must not be empty; remove the key to send unsigned requests".into(),
                    );
                }
            }
            if let Some(s) = &r.slack {
                check_url(&mut push, format!("{at}.slack.url"), &s.url);
            }
            if let Some(a) = &r.alertmanager {
                check_url(&mut push, format!("{at}.alertmanager.url"), &a.url);
                check_headers(&mut push, &format!("{at}.alertmanager.headers"), &a.headers);
                if let Some(g) = &a.generator_url {
                    check_url(&mut push, format!("{at}.alertmanager.generator_url"), g);
                }
            }
            if let Some(pd) = &r.pagerduty {
                if pd.routing_key.trim().is_empty() {
                    push(
                        format!("{at}.pagerduty.routing_key"),
                        "must not be empty".into(),
                    );
                }
                check_url(&mut push, format!("{at}.pagerduty.url"), &pd.url);
            }
        }

        let mut rule_names = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = p(&format!("rules[{i}]"));
            check_name(&mut push, format!("{at}.name"), &rule.name, "rule");
            if !rule.name.is_empty() && !rule_names.insert(rule.name.as_str()) {
                push(
                    format!("{at}.name"),
                    format!("duplicate rule name `{}`; names must be unique", rule.name),
                );
            }
            for (key, pat) in [
                ("source", &rule.source),
                ("group", &rule.group),
                ("topic", &rule.topic),
            ] {
                if let Some(pat) = pat {
                    check_regex(&mut push, format!("{at}.{key}"), pat);
                }
            }
            match &rule.threshold {
                None if rule.condition == ConditionKind::ReplicasShort
                    || rule.condition == ConditionKind::LostMessages => {}
                None => push(
                    format!("{at}.threshold"),
                    format!(
                        "condition `{}` needs a threshold: {}",
                        rule.condition.as_str(),
                        rule.condition.expects()
                    ),
                ),
                Some(t) => check_threshold(&mut push, format!("{at}.threshold"), rule.condition, t),
            }
            for (j, o) in rule.overrides.iter().enumerate() {
                let oat = format!("{at}.overrides[{j}]");
                check_regex(&mut push, format!("{oat}.group"), &o.group);
                check_threshold(
                    &mut push,
                    format!("{oat}.threshold"),
                    rule.condition,
                    &o.threshold,
                );
            }
            if let Some(v) = rule.resolve_after {
                check_nonzero(&mut push, format!("{at}.resolve_after"), v);
            }
            if let Some(v) = rule.repeat_interval {
                check_nonzero(&mut push, format!("{at}.repeat_interval"), v);
            }
            // `for: 0s` stays allowed: it means "fire on the first observation",
            // as in Prometheus rules.
            if rule.receivers.is_empty() {
                push(
                    format!("{at}.receivers"),
                    "at least one receiver name is required".into(),
                );
            }
            let mut seen = HashSet::new();
            for (j, name) in rule.receivers.iter().enumerate() {
                if !self.receivers.iter().any(|r| &r.name == name) {
                    push(
                        format!("{at}.receivers[{j}]"),
                        format!("unknown receiver `{name}`"),
                    );
                } else if !seen.insert(name.as_str()) {
                    push(
                        format!("{at}.receivers[{j}]"),
                        format!("receiver `{name}` is listed twice"),
                    );
                }
            }
        }
        out
    }
}

fn check_nonzero(push: &mut impl FnMut(String, String), path: String, v: Seconds) {
    if v.get().is_zero() {
        push(path, "must be greater than 0s".into());
    }
}

fn check_name(push: &mut impl FnMut(String, String), path: String, name: &str, what: &str) {
    match crate::config::name_problem(name) {
        Some(m) if name.is_empty() => push(path, m),
        Some(m) => push(path, format!("{what} name {m}")),
        None => {}
    }
}

fn check_regex(push: &mut impl FnMut(String, String), path: String, pat: &str) {
    if let Some(message) = crate::config::regex_problem(pat) {
        push(path, message);
    }
}

fn check_url(push: &mut impl FnMut(String, String), path: String, url: &str) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        // The URL may carry a token: name the problem, not the value.
        Ok(_) => push(
            path,
            "must be an http:// or https:// URL with a host".into(),
        ),
        Err(e) => push(path, format!("not a valid URL ({e})")),
    }
}

fn check_headers(
    push: &mut impl FnMut(String, String),
    at: &str,
    headers: &BTreeMap<String, String>,
) {
    for (name, value) in headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            push(
                format!("{at}.{name}"),
                format!("`{name}` is not a valid header name"),
            );
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            // Never echo the value: it usually comes from a secret.
            push(
                format!("{at}.{name}"),
                "the value is not a valid header value (control characters or non-ASCII)".into(),
            );
        }
    }
}

fn check_threshold(
    push: &mut impl FnMut(String, String),
    path: String,
    kind: ConditionKind,
    t: &ThresholdValue,
) {
    use ConditionKind as C;
    let problem = match (kind, t) {
        (C::LagMessages | C::Growth | C::LostMessages, ThresholdValue::Number(n)) => {
            (!n.is_finite() || *n < 0.0).then(|| format!("must be a finite number ≥ 0 (got {n})"))
        }
        (C::LagSeconds | C::Eta | C::LossWithin, ThresholdValue::Duration(d)) => d
            .get()
            .is_zero()
            .then(|| "must be greater than 0s".to_string()),
        (C::Status, ThresholdValue::Statuses(s)) => s
            .is_empty()
            .then(|| "list at least one status, like `[STALL, STOP]`".to_string()),
        _ => Some(format!(
            "condition `{}` takes {}",
            kind.as_str(),
            kind.expects()
        )),
    };
    if let Some(message) = problem {
        push(path, message);
    }
}

/// Checks `{name}` placeholders are known and braces balance.
pub(crate) fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a `}` without its `{`".into());
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "has a `{` without its `}`".to_string())?;
        let name = &after[..close];
        if !DASHBOARD_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{name}}}`; use {}",
                DASHBOARD_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("`{{{p}}}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    match reqwest::Url::parse(&t.replace(['{', '}'], "")) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err("must be an http:// or https:// URL template".into()),
    }
}
