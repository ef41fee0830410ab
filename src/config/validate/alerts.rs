//! `alerts:`: defaults, receivers (exactly one kind each) and rules (a threshold
//! that fits the condition, known receivers), compiled into the receivers and
//! rules the notifier and the evaluator run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{name_problem, positive, regex};
use crate::alert::{
    AlertSettings, Condition, ConditionKind, Receiver, ReceiverKind, Rule, DASHBOARD_PLACEHOLDERS,
};
use crate::config::problems::{At, Problems};
use crate::config::raw::{self, ThresholdValue};
use crate::model::System;

pub(super) fn settings(a: &raw::Alerts, at: &At, p: &mut Problems) -> Option<AlertSettings> {
    let before = p.len();
    if let Some(t) = &a.dashboard_url {
        p.check(&at.key("dashboard_url"), check_template(t));
    }
    let d = &a.defaults;
    let dat = at.key("defaults");
    for (key, v) in [
        ("resolve_after", d.resolve_after),
        ("repeat_interval", d.repeat_interval),
        ("timeout", d.timeout),
        ("retry_backoff", d.retry_backoff),
        ("retry_backoff_max", d.retry_backoff_max),
        ("flush_timeout", d.flush_timeout),
    ] {
        positive(p, &dat.key(key), v);
    }
    if d.retry_backoff > d.retry_backoff_max {
        p.push(
            &dat.key("retry_backoff_max"),
            format!(
                "must be at least retry_backoff ({} > {})",
                d.retry_backoff, d.retry_backoff_max
            ),
        );
    }
    if d.queue_capacity == 0 {
        p.push(&dat.key("queue_capacity"), "must be at least 1");
    }
    if d.retry_max_attempts == 0 {
        p.push(&dat.key("retry_max_attempts"), "must be at least 1");
    }
    positive(p, &dat.key("retry_max_age"), d.retry_max_age);
    let mut names = HashSet::new();
    let mut receivers = Vec::with_capacity(a.receivers.len());
    for (i, r) in a.receivers.iter().enumerate() {
        let rat = at.key("receivers").index(i);
        name(p, &rat.key("name"), &r.name, "receiver");
        if !r.name.is_empty() && !names.insert(r.name.as_str()) {
            p.push(
                &rat.key("name"),
                format!("duplicate receiver name `{}`; names must be unique", r.name),
            );
        }
        if let Some(r) = receiver(r, d, &rat, p) {
            receivers.push(r);
        }
    }
    let mut rule_names = HashSet::new();
    let mut rules = Vec::with_capacity(a.rules.len());
    for (i, r) in a.rules.iter().enumerate() {
        let rat = at.key("rules").index(i);
        name(p, &rat.key("name"), &r.name, "rule");
        if !r.name.is_empty() && !rule_names.insert(r.name.as_str()) {
            p.push(
                &rat.key("name"),
                format!("duplicate rule name `{}`; names must be unique", r.name),
            );
        }
        if let Some(r) = rule(r, a, &rat, p) {
            rules.push(r);
        }
    }
    (p.len() == before).then(|| AlertSettings {
        dashboard_url: a.dashboard_url.clone(),
        receivers,
        rules,
        retry_backoff: d.retry_backoff.get(),
        retry_backoff_max: d.retry_backoff_max.get(),
        flush_timeout: d.flush_timeout.get(),
        retry_max_attempts: d.retry_max_attempts,
        retry_max_age: d.retry_max_age.get(),
    })
}

fn name(p: &mut Problems, at: &At, name: &str, what: &str) {
    match name_problem(name) {
        Some(m) if name.is_empty() => p.push(at, m),
        Some(m) => p.push(at, format!("{what} name {m}")),
        None => {}
    }
}

fn receiver(
    r: &raw::Receiver,
    d: &raw::AlertDefaults,
    at: &At,
    p: &mut Problems,
) -> Option<Receiver> {
    let before = p.len();
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
        p.push(
            at,
            format!(
                "needs exactly one of `webhook`, `slack`, `alertmanager`, `pagerduty`, `log` (found {set})"
            ),
        );
    }
    if r.queue_capacity == Some(0) {
        p.push(&at.key("queue_capacity"), "must be at least 1");
    }
    let timeout = match r.timeout {
        Some(t) => positive(p, &at.key("timeout"), t),
        None => Some(d.timeout.get()),
    };
    let mut kinds = receiver_kinds(r, at, p);
    let ca_certs = ca_file(p, &at.key("tls").key("ca_file"), r.tls.ca_file.as_deref());
    if p.len() > before || kinds.len() != 1 {
        return None;
    }
    let (kind, url, headers) = kinds.pop()?;
    let headers = headers?;
    warn_cleartext_credentials(&r.name, &kind, url.as_ref(), &headers);
    Some(Receiver {
        name: Arc::from(r.name.as_str()),
        kind,
        url,
        headers,
        queue_capacity: r.queue_capacity.unwrap_or(d.queue_capacity),
        timeout: timeout?,
        ca_certs: ca_certs?,
    })
}

/// A receiver's extra CA certificates: every certificate of a PEM file.
fn ca_file(p: &mut Problems, at: &At, path: Option<&str>) -> Option<Vec<reqwest::Certificate>> {
    let Some(path) = path else {
        return Some(Vec::new());
    };
    let pem = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            p.push(at, format!("cannot read `{path}`: {e}"));
            return None;
        }
    };
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Some(certs),
        Ok(_) => {
            p.push(at, format!("`{path}` holds no PEM certificate"));
            None
        }
        Err(e) => {
            p.push(at, format!("`{path}` is not a PEM certificate bundle: {e}"));
            None
        }
    }
}

/// Credentials sent over plain http can be read by anyone on the path: say so
/// at start (a warning, not an error: a sidecar on localhost is legitimate).
fn warn_cleartext_credentials(
    name: &str,
    kind: &ReceiverKind,
    url: Option<&reqwest::Url>,
    headers: &HeaderMap,
) {
    let Some(url) = url.filter(|u| u.scheme() == "http") else {
        return;
    };
    let signed = matches!(
        kind,
        ReceiverKind::Webhook {
            hmac_secret: Some(_)
        }
    );
    let credentials = !headers.is_empty()
        || url.password().is_some()
        || matches!(
            kind,
            ReceiverKind::PagerDuty { .. } | ReceiverKind::Slack { .. }
        );
    if credentials {
        tracing::warn!(
            receiver = name,
            host = url.host_str().unwrap_or(""),
            "receiver sends credentials over plain http; use https (with tls.ca_file for a private CA)"
        );
    } else if signed {
        tracing::info!(
            receiver = name,
            "receiver uses plain http: its requests are signed but readable on the way"
        );
    }
}

/// A receiver's kind, its URL and its headers, one per kind key set.
type Kinded = (ReceiverKind, Option<reqwest::Url>, Option<HeaderMap>);

/// The shortest webhook signing secret accepted.
pub const MIN_HMAC_SECRET_BYTES: usize = 16;

fn receiver_kinds(r: &raw::Receiver, at: &At, p: &mut Problems) -> Vec<Kinded> {
    let mut kinds: Vec<Kinded> = Vec::new();
    if let Some(w) = &r.webhook {
        let at = at.key("webhook");
        let url = url(p, &at.key("url"), &w.url);
        let headers = headers(p, &at.key("headers"), &w.headers);
        match w.hmac_secret.as_deref().map(str::len) {
            Some(0) => p.push(
                &at.key("hmac_secret"),
                "must not be empty; remove the key to send unsigned requests",
            ),
            Some(n) if n < MIN_HMAC_SECRET_BYTES => p.push(
                &at.key("hmac_secret"),
                format!(
                    "is {n} bytes long; use at least {MIN_HMAC_SECRET_BYTES} (for example \
                     `openssl rand -hex 32`): a short secret can be guessed from one signed request"
                ),
            ),
            _ => {}
        }
        kinds.push((
            ReceiverKind::Webhook {
                hmac_secret: w.hmac_secret.as_ref().map(|s| Arc::from(s.as_bytes())),
            },
            url,
            headers,
        ));
    }
    if let Some(s) = &r.slack {
        let url = url(p, &at.key("slack").key("url"), &s.url);
        kinds.push((
            ReceiverKind::Slack { blocks: s.blocks },
            url,
            Some(HeaderMap::new()),
        ));
    }
    if let Some(a) = &r.alertmanager {
        let at = at.key("alertmanager");
        let base = url(p, &at.key("url"), &a.url);
        let headers = headers(p, &at.key("headers"), &a.headers);
        if let Some(g) = &a.generator_url {
            url(p, &at.key("generator_url"), g);
        }
        // Prometheus posts to `{url}/api/v2/alerts`; so does lagwatch.
        let endpoint = base.and_then(|_| {
            reqwest::Url::parse(&format!("{}/api/v2/alerts", a.url.trim_end_matches('/'))).ok()
        });
        kinds.push((
            ReceiverKind::Alertmanager {
                generator_url: a.generator_url.clone(),
            },
            endpoint,
            headers,
        ));
    }
    if let Some(pd) = &r.pagerduty {
        let at = at.key("pagerduty");
        if pd.routing_key.trim().is_empty() {
            p.push(&at.key("routing_key"), "must not be empty");
        }
        let url = url(p, &at.key("url"), &pd.url);
        kinds.push((
            ReceiverKind::PagerDuty {
                routing_key: pd.routing_key.clone(),
            },
            url,
            Some(HeaderMap::new()),
        ));
    }
    if r.log.is_some() {
        kinds.push((ReceiverKind::Log, None, Some(HeaderMap::new())));
    }
    kinds
}

fn rule(r: &raw::Rule, a: &raw::Alerts, at: &At, p: &mut Problems) -> Option<Rule> {
    let before = p.len();
    let mut pattern = |key: &str, pat: &Option<String>| -> Option<regex::Regex> {
        pat.as_deref().and_then(|pat| regex(p, &at.key(key), pat))
    };
    let source = pattern("source", &r.source);
    let group = pattern("group", &r.group);
    let topic = pattern("topic", &r.topic);
    let Some(kind) = r.condition else {
        p.push(
            &at.key("condition"),
            "is required: one of lag_messages, lag_seconds, growth, eta, status, \
             lost_messages, loss_within, replicas_short, dead_letters",
        );
        return None;
    };
    let condition = threshold(p, &at.key("threshold"), kind, r.threshold.as_ref());
    let overrides = overrides(r, kind, at, p);
    let d = &a.defaults;
    let for_ = r.for_.unwrap_or(d.for_).get();
    // `for: 0s` stays allowed: it means "fire on the first observation", as in
    // Prometheus rules.
    let resolve_after = match r.resolve_after {
        Some(v) => positive(p, &at.key("resolve_after"), v),
        None => Some(d.resolve_after.get()),
    };
    let repeat_interval = match r.repeat_interval {
        Some(v) => positive(p, &at.key("repeat_interval"), v),
        None => Some(d.repeat_interval.get()),
    };
    rule_receivers(r, a, at, p);
    if p.len() > before {
        return None;
    }
    Some(Rule {
        name: Arc::from(r.name.as_str()),
        severity: r.severity,
        source,
        system: r.system.map(|s| match s {
            raw::SystemName::Kafka => System::Kafka,
            raw::SystemName::Jetstream => System::Jetstream,
        }),
        group,
        topic,
        condition: condition?,
        overrides,
        for_,
        resolve_after: resolve_after?,
        repeat_interval: repeat_interval?,
        receivers: r.receivers.iter().map(|s| Arc::from(s.as_str())).collect(),
    })
}

/// Per-group thresholds of a rule.
fn overrides(
    r: &raw::Rule,
    kind: ConditionKind,
    at: &At,
    p: &mut Problems,
) -> Vec<(regex::Regex, Condition)> {
    let mut overrides = Vec::with_capacity(r.overrides.len());
    for (j, o) in r.overrides.iter().enumerate() {
        let oat = at.key("overrides").index(j);
        let re = regex(p, &oat.key("group"), &o.group);
        let c = match &o.threshold {
            Some(t) => threshold(p, &oat.key("threshold"), kind, Some(t)),
            None => {
                p.push(
                    &oat.key("threshold"),
                    format!("is required: {}", kind.expects()),
                );
                None
            }
        };
        if let (Some(re), Some(c)) = (re, c) {
            overrides.push((re, c));
        }
    }
    overrides
}

/// At least one receiver, each known and listed once.
fn rule_receivers(r: &raw::Rule, a: &raw::Alerts, at: &At, p: &mut Problems) {
    if r.receivers.is_empty() {
        p.push(
            &at.key("receivers"),
            "at least one receiver name is required",
        );
    }
    let mut seen = HashSet::new();
    for (j, name) in r.receivers.iter().enumerate() {
        if !a.receivers.iter().any(|x| &x.name == name) {
            p.push(
                &at.key("receivers").index(j),
                format!("unknown receiver `{name}`"),
            );
        } else if !seen.insert(name.as_str()) {
            p.push(
                &at.key("receivers").index(j),
                format!("receiver `{name}` is listed twice"),
            );
        }
    }
}

/// The condition with its threshold, when the threshold fits the kind.
fn threshold(
    p: &mut Problems,
    at: &At,
    kind: ConditionKind,
    t: Option<&ThresholdValue>,
) -> Option<Condition> {
    use ConditionKind as C;
    use ThresholdValue as T;
    let number = |n: f64| {
        (n.is_finite() && n >= 0.0)
            .then_some(n)
            .ok_or_else(|| format!("must be a finite number ≥ 0 (got {n})"))
    };
    let duration = |d: &crate::config::Seconds| {
        (!d.get().is_zero())
            .then(|| d.get().as_secs_f64())
            .ok_or_else(|| "must be greater than 0s".to_string())
    };
    let condition = match (kind, t) {
        (C::LagMessages, Some(T::Number(n))) => number(*n).map(Condition::LagMessagesAbove),
        (C::Growth, Some(T::Number(n))) => number(*n).map(Condition::GrowthAbove),
        (C::LostMessages, Some(T::Number(n))) => number(*n).map(Condition::LostMessagesAbove),
        (C::LostMessages, None) => Ok(Condition::LostMessagesAbove(0.0)),
        (C::DeadLetters, Some(T::Number(n))) => number(*n).map(Condition::DeadLettersAbove),
        (C::DeadLetters, None) => Ok(Condition::DeadLettersAbove(0.0)),
        (C::LagSeconds, Some(T::Duration(d))) => duration(d).map(Condition::LagSecondsAbove),
        (C::Eta, Some(T::Duration(d))) => duration(d).map(Condition::EtaAbove),
        (C::LossWithin, Some(T::Duration(d))) => duration(d).map(Condition::LossWithin),
        (C::Status, Some(T::Statuses(s))) if s.is_empty() => {
            Err("list at least one status, like `[STALL, STOP]`".to_string())
        }
        (C::Status, Some(T::Statuses(s))) => Ok(Condition::StatusIn(s.clone())),
        (C::ReplicasShort, None) => Ok(Condition::ReplicasShort),
        (_, None) => Err(format!(
            "condition `{}` needs a threshold: {}",
            kind.as_str(),
            kind.expects()
        )),
        (_, Some(_)) => Err(format!(
            "condition `{}` takes {}",
            kind.as_str(),
            kind.expects()
        )),
    };
    p.check(at, condition)
}

fn url(p: &mut Problems, at: &At, url: &str) -> Option<reqwest::Url> {
    let checked = match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        // The URL may carry a token: name the problem, not the value.
        Ok(_) => Err("must be an http:// or https:// URL with a host".to_string()),
        Err(e) => Err(format!("not a valid URL ({e})")),
    };
    p.check(at, checked)
}

fn headers(p: &mut Problems, at: &At, headers: &BTreeMap<String, String>) -> Option<HeaderMap> {
    let before = p.len();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes());
        if n.is_err() {
            p.push(
                &at.key(name),
                format!("`{name}` is not a valid header name"),
            );
        }
        let v = HeaderValue::from_str(value);
        if v.is_err() {
            // Never echo the value: it usually comes from a secret.
            p.push(
                &at.key(name),
                "the value is not a valid header value (control characters or non-ASCII)",
            );
        }
        if let (Ok(n), Ok(mut v)) = (n, v) {
            v.set_sensitive(true);
            map.insert(n, v);
        }
    }
    (p.len() == before).then_some(map)
}

/// Checks `{name}` placeholders are known and braces balance.
fn check_template(t: &str) -> Result<(), String> {
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
