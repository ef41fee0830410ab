//! The librdkafka client context of one cluster: routes librdkafka's logs and
//! global errors into `tracing` (connection noise at debug, never the config),
//! remembers the last connectivity problem to classify a failed poll, and keeps
//! the last statistics JSON for benchmarks.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::oauth::TokenSource;
use crate::model::{ErrorKind, SourceId};

/// A global error older than this no longer explains a failing poll.
const RECENT: Duration = Duration::from_secs(60);

/// librdkafka log facilities that describe connections coming and going. When a
/// broker is down librdkafka repeats them on every reconnect attempt (backoff up
/// to `reconnect.backoff.max.ms`, librdkafka default 10 s); the poll result
/// already reports the cluster down, so they are debug noise.
const CONNECTION_FACILITIES: &[&str] = &[
    "FAIL",
    "BROKERFAIL",
    "CONNECT",
    "DISCONNECT",
    "REQTMOUT",
    "ERROR",
    "STATE",
    "ADDRESS",
    "RECV",
    "SEND",
];

#[derive(Debug)]
pub struct LagwatchContext {
    source: SourceId,
    last_problem: Mutex<Option<(ErrorKind, Instant, String)>>,
    stats: Mutex<Option<String>>,
    /// SASL/OAUTHBEARER tokens lagwatch provides (`kafka.oauthbearer`).
    tokens: Option<TokenSource>,
    /// The last failure to log in (no token, a refused SASL login), with what
    /// was said; cleared by a token handed over. Unlike TLS errors, which also
    /// count as auth, it explains a dropped connection.
    login_problem: Mutex<Option<(Instant, String)>>,
}

impl LagwatchContext {
    pub fn new(source: SourceId, tokens: Option<TokenSource>) -> Self {
        LagwatchContext {
            source,
            last_problem: Mutex::new(None),
            stats: Mutex::new(None),
            tokens,
            login_problem: Mutex::new(None),
        }
    }

    /// A recent failure to log in (no token, SASL refused), if any.
    pub fn recent_login_problem(&self) -> Option<String> {
        let guard = self.login_problem.lock().ok()?;
        guard
            .as_ref()
            .and_then(|(at, d)| (at.elapsed() < RECENT).then(|| d.clone()))
    }

    fn note_login(&self, detail: Option<&str>) {
        if let Ok(mut g) = self.login_problem.lock() {
            *g = detail.map(|d| (Instant::now(), d.to_string()));
        }
    }

    /// The kind of the last connectivity or authentication problem librdkafka
    /// reported, if recent.
    pub fn recent_problem(&self) -> Option<ErrorKind> {
        self.recent_problem_detail().map(|(k, _)| k)
    }

    /// The last problem's kind and what librdkafka or the token source said,
    /// if recent.
    pub fn recent_problem_detail(&self) -> Option<(ErrorKind, String)> {
        let guard = self.last_problem.lock().ok()?;
        guard
            .as_ref()
            .and_then(|(k, at, d)| (at.elapsed() < RECENT).then(|| (*k, d.clone())))
    }

    /// Forgets the last problem (after a successful poll).
    pub fn clear_problem(&self) {
        if let Ok(mut g) = self.last_problem.lock() {
            *g = None;
        }
    }

    /// The last statistics JSON librdkafka emitted (`statistics.interval.ms`).
    pub fn last_stats(&self) -> Option<String> {
        self.stats.lock().ok()?.clone()
    }

    fn note(&self, kind: ErrorKind, detail: &str) {
        if let Ok(mut g) = self.last_problem.lock() {
            *g = Some((kind, Instant::now(), detail.to_string()));
        }
    }
}

/// The failure kind a librdkafka error code stands for, when it is about
/// reaching or being allowed into the cluster rather than one request.
pub fn connectivity_kind(code: RDKafkaErrorCode) -> Option<ErrorKind> {
    use RDKafkaErrorCode as C;
    match code {
        C::BrokerTransportFailure | C::AllBrokersDown | C::Resolve | C::BrokerDestroy => {
            Some(ErrorKind::Connect)
        }
        C::Authentication
        | C::SaslAuthenticationFailed
        | C::SSL
        | C::UnsupportedSASLMechanism
        | C::ClusterAuthorizationFailed
        | C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed => Some(ErrorKind::Auth),
        _ => None,
    }
}

impl ClientContext for LagwatchContext {
    /// librdkafka asks for a token only when `sasl.mechanism` is OAUTHBEARER
    /// and it does not fetch tokens itself (OIDC; the unsecured JWT's first one).
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let source = self.source.as_str();
        let Some(tokens) = &self.tokens else {
            // librdkafka's unsecured JWT (tests) asks here for its refreshes;
            // nothing to hand over, and not a login failure of the cluster.
            return Err(
                "no token source configured: set sasl.oauthbearer.method: oidc with its \
                 client properties, or kafka.oauthbearer (token_file or aws_msk_iam)"
                    .into(),
            );
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        match tokens.token(now_ms) {
            Ok(t) => {
                self.note_login(None);
                tracing::debug!(source, principal = %t.principal, expires_ms = t.expires_ms, "OAUTHBEARER token read");
                Ok(OAuthToken {
                    token: t.value,
                    principal_name: t.principal,
                    lifetime_ms: t.expires_ms,
                })
            }
            Err(e) => {
                self.note(ErrorKind::Auth, &e);
                self.note_login(Some(&e));
                tracing::warn!(source, error = %e, "no OAUTHBEARER token");
                Err(e.into())
            }
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let source = self.source.as_str();
        let noisy = CONNECTION_FACILITIES.contains(&fac);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning
                if !noisy =>
            {
                tracing::warn!(target: "librdkafka", source, facility = fac, "{message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::trace!(target: "librdkafka", source, facility = fac, "{message}")
            }
            _ => tracing::debug!(target: "librdkafka", source, facility = fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let source = self.source.as_str();
        let kind = error.rdkafka_error_code().and_then(connectivity_kind);
        match kind {
            Some(ErrorKind::Connect) => {
                self.note(ErrorKind::Connect, reason);
                tracing::debug!(target: "librdkafka", source, error = %error, "{reason}");
            }
            Some(k) => {
                self.note(k, reason);
                if matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::Authentication
                            | RDKafkaErrorCode::SaslAuthenticationFailed
                    )
                ) {
                    self.note_login(Some(reason));
                }
                tracing::warn!(target: "librdkafka", source, error = %error, "{reason}");
            }
            None => tracing::debug!(target: "librdkafka", source, error = %error, "{reason}"),
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        if let Ok(mut g) = self.stats.lock() {
            *g = Some(String::from_utf8_lossy(statistics).into_owned());
        }
    }
}

impl ConsumerContext for LagwatchContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_mean_connect_and_sasl_errors_mean_auth() {
        assert_eq!(
            connectivity_kind(RDKafkaErrorCode::AllBrokersDown),
            Some(ErrorKind::Connect)
        );
        assert_eq!(
            connectivity_kind(RDKafkaErrorCode::SaslAuthenticationFailed),
            Some(ErrorKind::Auth)
        );
        assert_eq!(connectivity_kind(RDKafkaErrorCode::OperationTimedOut), None);
    }

    #[test]
    fn a_global_transport_error_is_remembered_as_a_connect_problem() {
        let ctx = LagwatchContext::new(SourceId::new("c"), None);
        assert_eq!(ctx.recent_problem(), None);
        ctx.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(ctx.recent_problem(), Some(ErrorKind::Connect));
        ctx.clear_problem();
        assert_eq!(ctx.recent_problem(), None);
    }
}
