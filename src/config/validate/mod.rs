//! The validation pass: a raw [`Config`] in, typed [`Settings`] out, or every
//! problem of the file pushed into one [`Problems`], each at its dotted path.
//! One function per section; each returns None when its section had problems
//! (so no typed value is ever built from an invalid one).

mod alerts;
mod analysis;
mod dead_letters;
mod recommend;
mod sources;

use std::net::SocketAddr;
use std::time::Duration;

use super::filter::Shard;
use super::problems::{At, Problems};
use super::raw::{self, Config};
use super::settings::{HttpSettings, LogSettings, Settings};
use super::Seconds;

/// Validates the whole file. `hostname` resolves `shard.index_from_hostname`.
pub(crate) fn settings(raw: &Config, hostname: Option<&str>, p: &mut Problems) -> Option<Settings> {
    let root = At::root();
    let before = p.len();
    let http = http(&raw.http, &root.key("http"), p);
    let log = log(&raw.log, &root.key("log"), p);
    check_interval(p, &root.key("poll_interval"), raw.poll_interval);
    check_timeout(p, &root.key("request_timeout"), raw.request_timeout);
    let shutdown_timeout = positive(p, &root.key("shutdown_timeout"), raw.shutdown_timeout);
    let shard = shard(&raw.shard, hostname, &root.key("shard"), p);
    let mut analysis = analysis::settings(&raw.analysis, &root.key("analysis"), p);
    let dead_letters = dead_letters::settings(&raw.dead_letters, &root.key("dead_letters"), p);
    if let (Some(a), Some(d)) = (analysis.as_mut(), dead_letters) {
        a.dead_letters = d;
    }
    let recommend = recommend::settings(&raw.recommend, &root.key("recommend"), p);
    let alerts = alerts::settings(&raw.alerts, &root.key("alerts"), p);
    let sources = sources::settings(raw, &root.key("sources"), p);
    if let (Some(a), Some(srcs)) = (&analysis, &sources) {
        rates_possible(raw, a, srcs, p);
    }
    // Notifications are flushed inside the shutdown: a flush allowed longer
    // than the whole shutdown would be cut short without anyone knowing.
    if !raw.alerts.rules.is_empty() && raw.alerts.defaults.flush_timeout >= raw.shutdown_timeout {
        p.push(
            &root.key("alerts").key("defaults").key("flush_timeout"),
            format!(
                "must be shorter than shutdown_timeout ({} >= {}): the flush runs inside the shutdown",
                raw.alerts.defaults.flush_timeout, raw.shutdown_timeout
            ),
        );
    }
    let state_path = match raw.state.path.as_deref() {
        Some("") => {
            p.push(
                &root.key("state").key("path"),
                "must not be empty; leave it out to keep no state",
            );
            None
        }
        other => other.map(std::path::PathBuf::from),
    };
    if p.len() > before {
        return None;
    }
    Some(Settings {
        http: http?,
        log: log?,
        shutdown_timeout: shutdown_timeout?,
        shard: shard?,
        kafka_lag_exporter_compat: raw.metrics.kafka_lag_exporter_compat,
        kafka_lag_exporter_member_labels: raw.metrics.kafka_lag_exporter_member_labels,
        analysis: analysis?,
        recommend: recommend?,
        alerts: alerts?,
        sources: sources?,
        state_path,
    })
}

/// A source whose polls are too far apart for `min_samples` of them to fit in
/// the window would never get a rate, a status past OK, or a recommendation:
/// refused, with the interval that would work.
fn rates_possible(
    raw: &Config,
    a: &crate::analysis::Settings,
    sources: &[crate::config::SourceSettings],
    p: &mut Problems,
) {
    let gaps = u32::try_from(a.min_samples.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .max(1);
    let most = a.window / gaps;
    for (i, (s, r)) in sources.iter().zip(&raw.sources).enumerate() {
        if s.timing.poll_interval <= most {
            continue;
        }
        let own = match (&r.kafka, &r.jetstream) {
            (Some(k), _) if k.poll_interval.is_some() => Some("kafka"),
            (_, Some(j)) if j.poll_interval.is_some() => Some("jetstream"),
            _ => None,
        };
        let at = match own {
            Some(kind) => At::root()
                .key("sources")
                .index(i)
                .key(kind)
                .key("poll_interval"),
            None => At::root().key("poll_interval"),
        };
        p.push(
            &at,
            format!(
                "{} is too long for analysis.window {} with analysis.min_samples {}: no rate, \
                 status or recommendation would ever be computed for source `{}`; poll at \
                 most every {}, or widen the window",
                humantime::format_duration(s.timing.poll_interval),
                humantime::format_duration(a.window),
                a.min_samples,
                s.id,
                humantime::format_duration(most)
            ),
        );
    }
}

fn http(raw: &raw::Http, at: &At, p: &mut Problems) -> Option<HttpSettings> {
    let listen = p.check(
        &at.key("listen"),
        raw.listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("`{}` is not an IP:port address ({e})", raw.listen)),
    );
    let token_ok = match raw
        .api_token
        .as_deref()
        .map(str::chars)
        .map(Iterator::count)
    {
        Some(0) => {
            p.push(
                &at.key("api_token"),
                "is empty; remove it to leave the API open, or set a token",
            );
            false
        }
        Some(n) if n < MIN_API_TOKEN_CHARS => {
            p.push(
                &at.key("api_token"),
                format!(
                    "is {n} characters long; use at least {MIN_API_TOKEN_CHARS} \
                     (for example `openssl rand -hex 16`)"
                ),
            );
            false
        }
        _ => true,
    };
    let token_ok = token_ok
        && match raw.api_token.as_deref() {
            Some(t) if t.chars().any(|c| c.is_control() || c == ' ') => {
                p.push(
                    &at.key("api_token"),
                    "contains a space or a control character, which an Authorization header cannot carry",
                );
                false
            }
            _ => true,
        };
    let max_connections = if (16..=65_536).contains(&raw.max_connections) {
        Some(raw.max_connections)
    } else {
        p.push(
            &at.key("max_connections"),
            format!("must be between 16 and 65536 (got {})", raw.max_connections),
        );
        None
    };
    let header_read_timeout = between(
        p,
        &at.key("header_read_timeout"),
        raw.header_read_timeout,
        Duration::from_secs(1),
        Duration::from_secs(60),
    );
    let request_timeout = between(
        p,
        &at.key("request_timeout"),
        raw.request_timeout,
        Duration::from_secs(1),
        Duration::from_secs(300),
    );
    if !token_ok {
        return None;
    }
    Some(HttpSettings {
        listen: listen?,
        api_token: raw.api_token.clone(),
        limits: crate::http::server::Limits {
            max_connections: max_connections?,
            header_read_timeout: header_read_timeout?,
            ..crate::http::server::Limits::default()
        },
        request_timeout: request_timeout?,
    })
}

fn log(raw: &raw::Log, at: &At, p: &mut Problems) -> Option<LogSettings> {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.level) {
        p.push(
            &at.key("level"),
            format!("not a valid log filter ({e}); try `info` or `lagwatch=debug`"),
        );
        return None;
    }
    Some(LogSettings {
        level: raw.level.clone(),
        format: raw.format,
    })
}

/// This process's shard, resolving `index_from_hostname` with `hostname`.
fn shard(raw: &raw::Shard, hostname: Option<&str>, at: &At, p: &mut Problems) -> Option<Shard> {
    if raw.count == 0 {
        p.push(&at.key("count"), "must be at least 1");
        return None;
    }
    if raw.index.is_some() && raw.index_from_hostname {
        p.push(
            &at.key("index"),
            "set `index` or `index_from_hostname`, not both",
        );
        return None;
    }
    let index = match (raw.index, raw.index_from_hostname) {
        (Some(i), _) => Ok(i.0),
        (None, true) => hostname
            .ok_or_else(|| "index_from_hostname is set but HOSTNAME is not".to_string())
            .and_then(|h| {
                h.rsplit('-')
                    .next()
                    .and_then(|o| o.parse().ok())
                    .ok_or_else(|| format!("host name `{h}` does not end in -ORDINAL"))
            }),
        (None, false) if raw.count == 1 => Ok(0),
        (None, false) => Err(format!(
            "count is {} but neither index nor index_from_hostname is set",
            raw.count
        )),
    };
    let index = p.check(at, index)?;
    if index >= raw.count {
        p.push(
            at,
            format!(
                "index {index} is out of range for count {} (0..{})",
                raw.count,
                raw.count - 1
            ),
        );
        return None;
    }
    Some(Shard {
        index,
        count: raw.count,
    })
}

/// Poll intervals: at least 1 s.
fn check_interval(p: &mut Problems, at: &At, v: Seconds) -> Option<Duration> {
    if v.get() < Duration::from_secs(1) || v.get() > MAX_POLL_INTERVAL {
        p.push(at, format!("must be between 1s and 1h (got {v})"));
        return None;
    }
    Some(v.get())
}

/// A poll interval longer than this leaves nothing to monitor with.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3600);
/// A broker request allowed longer than this is a hung poll, not a slow one.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Request timeouts: 100 ms to 5 m.
fn check_timeout(p: &mut Problems, at: &At, v: Seconds) -> Option<Duration> {
    if v.get() < Duration::from_millis(100) || v.get() > MAX_REQUEST_TIMEOUT {
        p.push(at, format!("must be between 100ms and 5m (got {v})"));
        return None;
    }
    Some(v.get())
}

/// The shortest API token accepted: a guessable token is no protection.
pub const MIN_API_TOKEN_CHARS: usize = 16;

/// A duration within `[low, high]`.
fn between(
    p: &mut Problems,
    at: &At,
    v: Seconds,
    low: Duration,
    high: Duration,
) -> Option<Duration> {
    if v.get() < low || v.get() > high {
        p.push(
            at,
            format!(
                "must be between {} and {} (got {v})",
                humantime::format_duration(low),
                humantime::format_duration(high)
            ),
        );
        return None;
    }
    Some(v.get())
}

/// Durations that must not be zero.
fn positive(p: &mut Problems, at: &At, v: Seconds) -> Option<Duration> {
    if v.get().is_zero() {
        p.push(at, "must be greater than 0s");
        return None;
    }
    Some(v.get())
}

/// What is wrong with a name that becomes a label value or an identifier
/// (sources, receivers, rules), or None when it is fine.
pub(crate) fn name_problem(name: &str) -> Option<String> {
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

/// Compiles a regex, or says in one line what is wrong with it (the parser's
/// last line names the problem).
fn regex(p: &mut Problems, at: &At, pattern: &str) -> Option<regex::Regex> {
    p.check(
        at,
        regex::Regex::new(pattern).map_err(|e| {
            let detail = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            format!("invalid regex `{pattern}`: {detail}")
        }),
    )
}

/// As [`regex`], for a per-group `pattern` that must not be empty.
fn group_pattern(p: &mut Problems, at: &At, pattern: &str) -> Option<regex::Regex> {
    if pattern.is_empty() {
        p.push(at, "must not be empty; use `.*` to match every group");
        return None;
    }
    regex(p, at, pattern)
}

/// Problems whose path is at or below one of `parsed` (already reported by the
/// parser, whose bad value was dropped) are not news: drop them.
pub(crate) fn not_below(parsed: &[String], path: &str) -> bool {
    !parsed.iter().any(|q| {
        path == q
            || path
                .strip_prefix(q.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}
