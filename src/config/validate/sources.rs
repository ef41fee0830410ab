//! `sources:`: names, exactly one kind each, servers, timings, filters, auth.

use std::collections::HashSet;
use std::path::PathBuf;

use super::{check_interval, check_timeout, name_problem, regex};
use crate::config::filter::NameFilter;
use crate::config::problems::{At, Problems};
use crate::config::raw::{self, Config};
use crate::config::settings::{
    JetstreamSettings, KafkaSettings, NatsAuth, NatsTls, OAuthBearerSettings, SourceKind,
    SourceSettings, Timing, DEFAULT_GONE_AFTER_POLLS,
};
use crate::model::SourceId;

/// librdkafka properties lagwatch sets itself; overriding them breaks monitoring.
const RESERVED_KAFKA_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "isolation.level",
];

pub(super) fn settings(raw: &Config, at: &At, p: &mut Problems) -> Option<Vec<SourceSettings>> {
    if raw.sources.is_empty() {
        p.push(at, "at least one source (kafka or jetstream) is required");
        return None;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.sources.len());
    let mut ok = true;
    for (i, s) in raw.sources.iter().enumerate() {
        let at = at.index(i);
        if let Some(message) = name_problem(&s.name) {
            p.push(&at.key("name"), message);
            ok = false;
        } else if !seen.insert(s.name.as_str()) {
            p.push(
                &at.key("name"),
                format!("duplicate source name `{}`; names must be unique", s.name),
            );
            ok = false;
        }
        if !static_labels_ok(&s.labels, &at.key("labels"), p) {
            ok = false;
        }
        match source(raw, s, &at, p) {
            Some(source) => out.push(source),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn source(top: &Config, s: &raw::Source, at: &At, p: &mut Problems) -> Option<SourceSettings> {
    let both = s.kafka.is_some() && s.jetstream.is_some();
    match (&s.kafka, &s.jetstream) {
        (None, None) => p.push(at, "needs exactly one of `kafka` or `jetstream`"),
        (Some(_), Some(_)) => p.push(
            at,
            "has both `kafka` and `jetstream`; use one source entry each",
        ),
        _ => {}
    }
    // Each kind present is checked, even both of them: every problem at once.
    let mut found = None;
    if let Some(k) = &s.kafka {
        let at = at.key("kafka");
        let timing = timing(
            top,
            [k.poll_interval, k.request_timeout, k.gone_after],
            &at,
            p,
        );
        found = Some((timing, kafka(k, &at, p).map(SourceKind::Kafka)));
    }
    if let Some(j) = &s.jetstream {
        let at = at.key("jetstream");
        let timing = timing(
            top,
            [j.poll_interval, j.request_timeout, j.gone_after],
            &at,
            p,
        );
        found = Some((timing, jetstream(j, &at, p).map(SourceKind::Jetstream)));
    }
    let (timing, kind) = found?;
    if both {
        return None;
    }
    Some(SourceSettings {
        id: SourceId::new(&s.name),
        timing: timing?,
        granularity: s.granularity.unwrap_or(top.metrics.granularity),
        max_series: s.max_series.or(top.metrics.max_series_per_source),
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        kind: kind?,
    })
}

/// Labels lagwatch writes itself, or that Prometheus sets at scrape time: a
/// static label of the same name would clash with them.
const RESERVED_LABELS: &[&str] = &[
    "source",
    "system",
    "group",
    "topic",
    "partition",
    "status",
    "cause",
    "quality",
    "reason",
    "state",
    "kind",
    "retention",
    "version",
    "commit",
    "rustc",
    "cluster_name",
    "is_simple_consumer",
    "member_host",
    "consumer_id",
    "client_id",
    "le",
    "quantile",
    "job",
    "instance",
];

/// At most this many static labels per source, each value at most this long.
const MAX_STATIC_LABELS: usize = 16;
const MAX_STATIC_LABEL_VALUE: usize = 256;

/// `sources[].labels`: valid Prometheus label names that clash with nothing,
/// non-empty bounded values, a bounded count. False when any is wrong.
fn static_labels_ok(
    labels: &std::collections::BTreeMap<String, String>,
    at: &At,
    p: &mut Problems,
) -> bool {
    let mut ok = true;
    if labels.len() > MAX_STATIC_LABELS {
        p.push(
            at,
            format!(
                "{} labels; at most {MAX_STATIC_LABELS} per source",
                labels.len()
            ),
        );
        ok = false;
    }
    for (k, v) in labels {
        let at = at.key(k);
        let valid = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let problem = if !valid {
            Some(format!(
                "`{k}` is not a Prometheus label name (letters, digits and `_`, not starting with a digit)"
            ))
        } else if k.starts_with("__") {
            Some(format!(
                "`{k}`: names starting with `__` are reserved by Prometheus"
            ))
        } else if RESERVED_LABELS.contains(&k.as_str()) {
            Some(format!(
                "`{k}` is a label lagwatch or Prometheus sets itself; choose another name (e.g. `{k}_name`)"
            ))
        } else if v.is_empty() {
            Some("must not be empty (an empty label is no label to Prometheus)".to_string())
        } else if v.len() > MAX_STATIC_LABEL_VALUE {
            Some(format!(
                "{} bytes; at most {MAX_STATIC_LABEL_VALUE}",
                v.len()
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            p.push(&at, message);
            ok = false;
        }
    }
    ok
}

/// The source's own poll interval, request timeout and gone-after, else the
/// file's defaults.
fn timing(
    top: &Config,
    [poll, timeout, gone]: [Option<crate::config::Seconds>; 3],
    at: &At,
    p: &mut Problems,
) -> Option<Timing> {
    let poll_interval = match poll {
        Some(v) => check_interval(p, &at.key("poll_interval"), v),
        None => Some(top.poll_interval.get()),
    };
    let request_timeout = match timeout {
        Some(v) => check_timeout(p, &at.key("request_timeout"), v),
        None => Some(top.request_timeout.get()),
    };
    let poll_interval = poll_interval?;
    let gone_after = match gone.or(top.gone_after) {
        Some(v) if v.get() < poll_interval => {
            let key = if gone.is_some() {
                at.key("gone_after")
            } else {
                At::root().key("gone_after")
            };
            p.push(
                &key,
                format!(
                    "must be at least the poll interval {} (got {v}): a group is gone only after a clean poll missed it",
                    humantime::format_duration(poll_interval)
                ),
            );
            None
        }
        Some(v) => Some(v.get()),
        None => Some(poll_interval * DEFAULT_GONE_AFTER_POLLS),
    };
    Some(Timing {
        poll_interval,
        request_timeout: request_timeout?,
        gone_after: gone_after?,
    })
}

fn kafka(k: &raw::Kafka, at: &At, p: &mut Problems) -> Option<KafkaSettings> {
    let before = p.len();
    if k.bootstrap_servers.is_empty() {
        p.push(
            &at.key("bootstrap_servers"),
            "at least one host:port is required",
        );
    }
    for (j, b) in k.bootstrap_servers.iter().enumerate() {
        if !b.contains(':') || b.trim() != b || b.is_empty() {
            p.push(
                &at.key("bootstrap_servers").index(j),
                format!("`{b}` is not host:port"),
            );
        }
    }
    for (j, g) in k.groups.iter().enumerate() {
        if g.is_empty() {
            p.push(&at.key("groups").index(j), "must not be empty");
        }
    }
    let group_filter = filter(&k.group_filter, &at.key("group_filter"), p);
    let topic_filter = filter(&k.topic_filter, &at.key("topic_filter"), p);
    for key in k.properties.keys() {
        if RESERVED_KAFKA_PROPERTIES.contains(&key.as_str()) {
            p.push(
                &at.key("properties").key(key),
                format!("`{key}` is set by lagwatch itself; use the dedicated key instead"),
            );
        }
    }
    let oauthbearer = k
        .oauthbearer
        .as_ref()
        .and_then(|o| oauthbearer(o, &k.properties, &at.key("oauthbearer"), p));
    if p.len() > before {
        return None;
    }
    // The same group listed twice would be polled and exported twice.
    let mut groups = k.groups.clone();
    groups.sort();
    groups.dedup();
    Some(KafkaSettings {
        bootstrap_servers: k.bootstrap_servers.clone(),
        isolation_level: k.isolation_level,
        groups,
        group_filter: group_filter?,
        topic_filter: topic_filter?,
        properties: k.properties.clone(),
        oauthbearer,
        batch_offset_fetch: k.batch_offset_fetch.unwrap_or(true),
    })
}

/// `kafka.oauthbearer`: a token file or AWS MSK IAM, for a client whose SASL
/// mechanism is OAUTHBEARER and whose tokens librdkafka does not fetch itself.
fn oauthbearer(
    o: &raw::OAuthBearer,
    properties: &std::collections::BTreeMap<String, String>,
    at: &At,
    p: &mut Problems,
) -> Option<OAuthBearerSettings> {
    let source = match (o.token_file.as_deref(), &o.aws_msk_iam) {
        (Some(_), Some(_)) => {
            p.push(at, "set one of `token_file` or `aws_msk_iam`, not both");
            return None;
        }
        (None, None) => {
            p.push(at, "set `token_file` or `aws_msk_iam`");
            return None;
        }
        (Some(""), None) => {
            p.push(&at.key("token_file"), "must not be empty");
            return None;
        }
        (Some(file), None) => OAuthBearerSettings::TokenFile {
            path: file.into(),
            principal: o.principal.clone(),
        },
        (None, Some(iam)) => {
            let region = iam.region.trim();
            let valid = !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                p.push(
                    &at.key("aws_msk_iam").key("region"),
                    format!("`{region}` is not an AWS region (e.g. eu-west-1)"),
                );
                return None;
            }
            OAuthBearerSettings::AwsMskIam {
                region: region.to_string(),
            }
        }
    };
    // librdkafka takes the singular and the plural (its canonical) name.
    let mechanism = properties
        .get("sasl.mechanism")
        .or_else(|| properties.get("sasl.mechanisms"))
        .map(String::as_str);
    if !mechanism.is_some_and(|m| m.eq_ignore_ascii_case("OAUTHBEARER")) {
        p.push(
            at,
            "needs `properties.sasl.mechanism: OAUTHBEARER` (and `security.protocol: SASL_SSL`)",
        );
        return None;
    }
    let librdkafkas_own = properties
        .get("sasl.oauthbearer.method")
        .is_some_and(|m| m.eq_ignore_ascii_case("oidc"))
        || properties
            .get("enable.sasl.oauthbearer.unsecure.jwt")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if librdkafkas_own {
        p.push(
            at,
            "librdkafka fetches the tokens itself (sasl.oauthbearer.method: oidc, or the unsecured JWT): remove one of the two",
        );
        return None;
    }
    Some(source)
}

fn jetstream(j: &raw::Jetstream, at: &At, p: &mut Problems) -> Option<JetstreamSettings> {
    let before = p.len();
    if j.servers.is_empty() {
        p.push(&at.key("servers"), "at least one nats:// URL is required");
    }
    for (n, url) in j.servers.iter().enumerate() {
        if url.is_empty() || url.contains(char::is_whitespace) {
            p.push(
                &at.key("servers").index(n),
                format!("`{url}` is not a server URL"),
            );
        }
    }
    if j.domain.is_some() && j.api_prefix.is_some() {
        p.push(
            &at.key("domain"),
            "`domain` and `api_prefix` are exclusive; set one",
        );
    }
    let auth = nats_auth(&j.auth, &at.key("auth"), p);
    let tls = j.tls.as_ref().map(|t| nats_tls(t, &at.key("tls"), p));
    let stream_filter = filter(&j.stream_filter, &at.key("stream_filter"), p);
    let consumer_filter = filter(&j.consumer_filter, &at.key("consumer_filter"), p);
    if p.len() > before {
        return None;
    }
    // `$JS.API`, `$JS.<domain>.API`, or the configured prefix (trailing dot trimmed).
    let api_prefix = match (&j.domain, &j.api_prefix) {
        (Some(d), _) => format!("$JS.{d}.API"),
        (None, Some(p)) => p.trim_end_matches('.').to_string(),
        (None, None) => "$JS.API".to_string(),
    };
    Some(JetstreamSettings {
        servers: j.servers.clone(),
        api_prefix,
        auth: auth?,
        tls: tls.flatten(),
        stream_filter: stream_filter?,
        consumer_filter: consumer_filter?,
        ephemeral: j.ephemeral,
    })
}

fn nats_auth(a: &raw::NatsAuth, at: &At, p: &mut Problems) -> Option<NatsAuth> {
    let methods = [
        a.user.is_some() || a.password.is_some(),
        a.token.is_some(),
        a.nkey_seed.is_some(),
        a.credentials_file.is_some(),
    ];
    let mut ok = true;
    if methods.iter().filter(|m| **m).count() > 1 {
        p.push(
            at,
            "set only one of user/password, token, nkey_seed, credentials_file",
        );
        ok = false;
    }
    if a.user.is_some() != a.password.is_some() {
        p.push(at, "`user` and `password` go together");
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(
        match (
            &a.user,
            &a.password,
            &a.token,
            &a.nkey_seed,
            &a.credentials_file,
        ) {
            (Some(user), Some(password), ..) => NatsAuth::UserPassword {
                user: user.clone(),
                password: password.clone(),
            },
            (_, _, Some(t), ..) => NatsAuth::Token(t.clone()),
            (_, _, _, Some(seed), _) => NatsAuth::NkeySeed(seed.clone()),
            (.., Some(file)) => NatsAuth::CredentialsFile(PathBuf::from(file)),
            _ => NatsAuth::None,
        },
    )
}

fn nats_tls(t: &raw::NatsTls, at: &At, p: &mut Problems) -> Option<NatsTls> {
    let client = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) => None,
        _ => {
            p.push(at, "`cert_file` and `key_file` go together");
            return None;
        }
    };
    Some(NatsTls {
        ca_file: t.ca_file.as_ref().map(PathBuf::from),
        client,
    })
}

/// Checks every pattern of an allow/deny filter, then compiles it.
fn filter(f: &raw::Filter, at: &At, p: &mut Problems) -> Option<NameFilter> {
    let before = p.len();
    for (list, pats) in [("allow", &f.allow), ("deny", &f.deny)] {
        for (i, pattern) in pats.iter().enumerate() {
            regex(p, &at.key(list).index(i), pattern);
        }
    }
    if p.len() > before {
        return None;
    }
    p.check(at, NameFilter::compile(&f.allow, &f.deny))
}
