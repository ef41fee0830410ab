//! SASL/OAUTHBEARER tokens lagwatch hands to librdkafka itself
//! (`kafka.oauthbearer`), through rdkafka's token refresh hook. librdkafka asks
//! again at 80 % of each token's lifetime; a failure is reported to it, which
//! retries, and shows as an `auth` poll error naming the cause.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;

use super::msk_iam::MskIam;
use crate::config::OAuthBearerSettings;

/// A token larger than this is not a token.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// The longest lifetime handed to librdkafka; the file is read again then.
const MAX_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// How long a token without `exp` (not a JWT) is used before the file is read
/// again.
const OPAQUE_LIFETIME_MS: i64 = 5 * 60 * 1000;

/// A token, who it names, and until when (Unix milliseconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub value: String,
    pub principal: String,
    pub expires_ms: i64,
}

/// Where the tokens come from.
#[derive(Clone, Debug)]
pub struct TokenFile {
    path: PathBuf,
    principal: Option<String>,
}

/// Every token source lagwatch has: a file, or AWS MSK IAM signing.
#[derive(Clone, Debug)]
pub enum TokenSource {
    File(TokenFile),
    MskIam(Arc<MskIam>),
}

impl TokenSource {
    /// The source `s` configures; MSK IAM's credential cache is `iam`.
    pub fn new(s: &OAuthBearerSettings, iam: Option<&Arc<MskIam>>) -> Option<Self> {
        match s {
            OAuthBearerSettings::TokenFile { path, principal } => {
                Some(TokenSource::File(TokenFile {
                    path: path.clone(),
                    principal: principal.clone(),
                }))
            }
            OAuthBearerSettings::AwsMskIam { .. } => iam.cloned().map(TokenSource::MskIam),
        }
    }

    /// A token valid at `now_ms`, or why there is none.
    pub fn token(&self, now_ms: i64) -> Result<Token, String> {
        match self {
            TokenSource::File(f) => f.token(now_ms),
            TokenSource::MskIam(m) => m.token(now_ms),
        }
    }
}

impl TokenFile {
    /// The file's token as of `now_ms`: its JWT `exp` and `sub` when it is a
    /// JWT; an expired JWT is refused, so a stale file is an error, not a
    /// failed login later.
    pub fn token(&self, now_ms: i64) -> Result<Token, String> {
        let shown = self.path.display();
        let file =
            std::fs::File::open(&self.path).map_err(|e| format!("token file {shown}: {e}"))?;
        let mut text = String::new();
        file.take(MAX_TOKEN_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("token file {shown}: {e}"))?;
        if text.len() as u64 > MAX_TOKEN_BYTES {
            return Err(format!(
                "token file {shown} is larger than {MAX_TOKEN_BYTES} bytes"
            ));
        }
        let value = text.trim().to_string();
        if value.is_empty() {
            return Err(format!("token file {shown} is empty"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "token file {shown} holds more than one token (whitespace inside)"
            ));
        }
        let claims = jwt_claims(&value);
        let sub = claims
            .as_ref()
            .and_then(|c| c.get("sub"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let exp = claims
            .as_ref()
            .and_then(|c| c.get("exp"))
            .and_then(serde_json::Value::as_f64);
        let expires_ms = match exp {
            Some(exp) => {
                // At most a day ahead: librdkafka multiplies the lifetime again
                // and would overflow on a far-future `exp`.
                let ms = ((exp * 1000.0) as i64).min(now_ms.saturating_add(MAX_LIFETIME_MS));
                if ms <= now_ms {
                    return Err(format!(
                        "the token in {shown} expired {}s ago (exp {exp}); is whatever writes it running?",
                        (now_ms - ms) / 1000
                    ));
                }
                ms
            }
            None => now_ms + OPAQUE_LIFETIME_MS,
        };
        let principal = sub
            .or_else(|| self.principal.clone())
            .unwrap_or_else(|| "lagwatch".to_string());
        Ok(Token {
            value,
            principal,
            expires_ms,
        })
    }
}

/// The claims of a JWT (`header.payload.signature`, base64url); None for
/// anything else. The signature is the broker's to check, not lagwatch's.
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{}",
            e.encode(br#"{"alg":"RS256"}"#),
            e.encode(claims),
            e.encode(b"sig")
        )
    }

    fn source(dir: &tempfile::TempDir, principal: Option<&str>) -> TokenSource {
        let s = OAuthBearerSettings::TokenFile {
            path: dir.path().join("token"),
            principal: principal.map(str::to_string),
        };
        TokenSource::new(&s, None).unwrap()
    }

    #[test]
    fn a_jwt_gives_its_lifetime_and_principal_and_a_rewritten_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let t = source(&dir, Some("ignored-for-a-jwt"));
        std::fs::write(
            dir.path().join("token"),
            jwt(r#"{"sub":"svc-lag","exp":1000}"#) + "\n",
        )
        .unwrap();
        // The clock is the caller's: at 900 s the token is good until 1000 s.
        let got = t.token(900_000).unwrap();
        assert_eq!(got.principal, "svc-lag");
        assert_eq!(got.expires_ms, 1_000_000);
        assert!(!got.value.ends_with('\n'));
        // Past exp, and not rewritten: an error that says so.
        let err = t.token(1_030_000).unwrap_err();
        assert!(err.contains("expired 30s ago"), "{err}");
        // The writer (a sidecar, the kubelet) rotated it: the next refresh
        // reads the new one.
        std::fs::write(
            dir.path().join("token"),
            jwt(r#"{"sub":"svc-lag","exp":4600}"#),
        )
        .unwrap();
        assert_eq!(t.token(1_030_000).unwrap().expires_ms, 4_600_000);
    }

    #[test]
    fn an_opaque_token_is_reread_every_five_minutes_under_the_configured_principal() {
        let dir = tempfile::tempdir().unwrap();
        let t = source(&dir, Some("lagwatch-prod"));
        std::fs::write(dir.path().join("token"), "opaque-abc123").unwrap();
        let got = t.token(10_000).unwrap();
        assert_eq!(got.value, "opaque-abc123");
        assert_eq!(got.principal, "lagwatch-prod");
        assert_eq!(got.expires_ms, 10_000 + OPAQUE_LIFETIME_MS);
    }

    #[test]
    fn missing_empty_huge_or_several_tokens_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = source(&dir, None);
        let name = dir.path().join("token").display().to_string();
        let err = t.token(0).unwrap_err();
        assert!(err.starts_with(&format!("token file {name}:")), "{err}");
        std::fs::write(dir.path().join("token"), "  \n").unwrap();
        assert!(t.token(0).unwrap_err().ends_with("is empty"));
        std::fs::write(dir.path().join("token"), "a b").unwrap();
        assert!(t.token(0).unwrap_err().contains("more than one token"));
        std::fs::write(dir.path().join("token"), "x".repeat(70_000)).unwrap();
        assert!(t.token(0).unwrap_err().contains("larger than 65536 bytes"));
    }
}
