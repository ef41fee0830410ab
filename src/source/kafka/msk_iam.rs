//! AWS MSK IAM: SASL/OAUTHBEARER tokens signed with AWS Signature Version 4,
//! as Amazon's aws-msk-iam-sasl-signer libraries make them: a presigned
//! `kafka-cluster:Connect` URL, valid 15 minutes, base64url-encoded. The
//! credentials come from the standard chain (environment, IRSA web identity,
//! container credentials, EC2 instance metadata), fetched and refreshed
//! before they expire by a task of their own; librdkafka's token refresh hook
//! signs from the cached credentials without waiting on the network.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::oauth::Token;

/// How long a signed token is valid (the signers' default).
const TOKEN_SECONDS: i64 = 900;
/// Refresh credentials this long before they expire.
const REFRESH_BEFORE_MS: i64 = 5 * 60 * 1000;
/// Static credentials (environment) are read again this often.
const STATIC_REREAD: Duration = Duration::from_secs(3600);
/// Answers of credential endpoints larger than this are refused.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const SERVICE: &str = "kafka-cluster";
/// SHA-256 of the empty payload.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// AWS credentials; the secret never appears in Debug output.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Unix milliseconds; None for credentials that do not expire.
    pub expires_ms: Option<i64>,
    /// Where they came from, for logs and errors.
    pub from: &'static str,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_ms", &self.expires_ms)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, as
/// SigV4's canonical query string wants it.
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// SigV4's signing key for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k = hmac(&k, region);
    let k = hmac(&k, service);
    hmac(&k, "aws4_request")
}

/// `20261203T151152Z` for a Unix time in seconds.
fn amz_date(unix_secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// The presigned `kafka-cluster:Connect` URL for `region` at `unix_secs`.
pub fn presigned_url(c: &Credentials, region: &str, unix_secs: i64) -> String {
    let host = format!("kafka.{region}.amazonaws.com");
    let amz = amz_date(unix_secs);
    let date = &amz[..8];
    let scope = format!("{date}/{region}/{SERVICE}/aws4_request");
    let mut query = vec![
        ("Action", "kafka-cluster:Connect".to_string()),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", format!("{}/{scope}", c.access_key_id)),
        ("X-Amz-Date", amz.clone()),
        ("X-Amz-Expires", TOKEN_SECONDS.to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(t) = &c.session_token {
        query.push(("X-Amz-Security-Token", t.clone()));
    }
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_request =
        format!("GET\n/\n{canonical_query}\nhost:{host}\n\nhost\n{EMPTY_SHA256}");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(&c.secret_access_key, date, region, SERVICE);
    let signature = hex::encode(hmac(&key, &string_to_sign));
    format!("https://{host}/?{canonical_query}&X-Amz-Signature={signature}")
}

/// The OAUTHBEARER token: the presigned URL with the signer's User-Agent,
/// base64url without padding; it expires with the URL or the credentials,
/// whichever is first.
pub fn token(c: &Credentials, region: &str, now_ms: i64) -> Token {
    let url = presigned_url(c, region, now_ms / 1000);
    let url = format!(
        "{url}&User-Agent={}",
        uri_encode(concat!("lagwatch/", env!("CARGO_PKG_VERSION")))
    );
    let expires = (now_ms / 1000 + TOKEN_SECONDS) * 1000;
    Token {
        value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url),
        principal: c.access_key_id.clone(),
        expires_ms: c.expires_ms.map_or(expires, |e| e.min(expires)),
    }
}

/// When to fetch credentials again: five minutes before they expire (half
/// their remaining life when that is shorter, at least 5 s from now);
/// static ones once an hour.
pub fn refresh_in(now_ms: i64, expires_ms: Option<i64>) -> Duration {
    let Some(exp) = expires_ms else {
        return STATIC_REREAD;
    };
    let left = exp - now_ms;
    let wait = if left > 2 * REFRESH_BEFORE_MS {
        left - REFRESH_BEFORE_MS
    } else {
        left / 2
    };
    Duration::from_millis(u64::try_from(wait.max(5_000)).unwrap_or(5_000))
}

/// Where the chain looks: the process environment, or a test's.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The standard credentials chain, in the AWS SDKs' order.
pub struct Chain {
    env: Env,
    region: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Chain {
    pub fn new(env: Env, region: &str, timeout: Duration) -> Self {
        Chain {
            env,
            region: region.to_string(),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(2)))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    /// The first source that is configured answers; its failure is the chain's
    /// (as the SDKs do: a broken IRSA setup must not fall back to the node's
    /// instance role). Instance metadata is the last resort.
    pub async fn fetch(&self) -> Result<Credentials, String> {
        if let (Some(id), Some(secret)) = (
            self.var("AWS_ACCESS_KEY_ID"),
            self.var("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: self.var("AWS_SESSION_TOKEN"),
                expires_ms: None,
                from: "environment",
            });
        }
        if let (Some(file), Some(role)) = (
            self.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
            self.var("AWS_ROLE_ARN"),
        ) {
            return self
                .web_identity(&file, &role)
                .await
                .map_err(|e| format!("web identity (AWS_WEB_IDENTITY_TOKEN_FILE): {e}"));
        }
        if self.var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
            || self.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        {
            return self
                .container()
                .await
                .map_err(|e| format!("container credentials: {e}"));
        }
        if self
            .var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(
                "no AWS credentials: AWS_ACCESS_KEY_ID, AWS_WEB_IDENTITY_TOKEN_FILE and \
                 AWS_CONTAINER_CREDENTIALS_* are unset and instance metadata is disabled"
                    .into(),
            );
        }
        self.instance_metadata().await.map_err(|e| {
            format!(
                "no AWS credentials: AWS_ACCESS_KEY_ID, AWS_WEB_IDENTITY_TOKEN_FILE and \
                 AWS_CONTAINER_CREDENTIALS_* are unset, and instance metadata: {e}"
            )
        })
    }

    async fn web_identity(&self, file: &str, role: &str) -> Result<Credentials, String> {
        let identity = read_small(file)?;
        let endpoint = self
            .var("AWS_ENDPOINT_URL_STS")
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region));
        let session = self
            .var("AWS_ROLE_SESSION_NAME")
            .unwrap_or_else(|| "lagwatch".to_string());
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role),
            ("RoleSessionName", session.as_str()),
            ("WebIdentityToken", identity.trim()),
        ];
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", uri_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let answer = self
            .answer(
                self.http
                    .post(endpoint.trim_end_matches('/').to_string() + "/")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
            )
            .await?;
        let tag = |name: &str| -> Option<String> {
            let open = format!("<{name}>");
            let start = answer.find(&open)? + open.len();
            let end = answer[start..].find(&format!("</{name}>"))? + start;
            Some(answer[start..end].trim().to_string())
        };
        let expires_ms = tag("Expiration").map(|e| parse_time(&e)).transpose()?;
        Ok(Credentials {
            access_key_id: tag("AccessKeyId").ok_or("STS answered without AccessKeyId")?,
            secret_access_key: tag("SecretAccessKey")
                .ok_or("STS answered without SecretAccessKey")?,
            session_token: tag("SessionToken"),
            expires_ms,
            from: "web identity",
        })
    }

    async fn container(&self) -> Result<Credentials, String> {
        let url = match self.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            Some(u) => u,
            None => format!(
                "http://169.254.170.2{}",
                self.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                    .unwrap_or_default()
            ),
        };
        let mut request = self.http.get(&url);
        let auth = match self.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(f) => Some(read_small(&f)?.trim().to_string()),
            None => self.var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        };
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        json_credentials(&self.answer(request).await?, "container credentials")
    }

    async fn instance_metadata(&self) -> Result<Credentials, String> {
        let base = self
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| "http://169.254.169.254".to_string());
        let base = base.trim_end_matches('/');
        let session = self
            .answer(
                self.http
                    .put(format!("{base}/latest/api/token"))
                    .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
            )
            .await?;
        let list = format!("{base}/latest/meta-data/iam/security-credentials/");
        let roles = self
            .answer(
                self.http
                    .get(&list)
                    .header("x-aws-ec2-metadata-token", session.trim()),
            )
            .await?;
        let role = roles
            .lines()
            .next()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or("the instance has no IAM role")?;
        let answer = self
            .answer(
                self.http
                    .get(format!("{list}{}", uri_encode(role)))
                    .header("x-aws-ec2-metadata-token", session.trim()),
            )
            .await?;
        json_credentials(&answer, "instance metadata")
    }

    /// The body of a 2xx answer, bounded in size.
    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<String, String> {
        let mut response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body).to_string();
        if !status.is_success() {
            let first: String = text.chars().take(200).collect();
            return Err(format!("HTTP {status}: {first}"));
        }
        Ok(text)
    }
}

/// A token file: at most 64 KiB (a projected token is a few KiB).
fn read_small(path: &str) -> Result<String, String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(MAX_ANSWER_BYTES as u64 + 1)
                .read_to_string(&mut text)
        })
        .map_err(|e| format!("{path}: {e}"))?;
    if text.len() > MAX_ANSWER_BYTES {
        return Err(format!("{path} is larger than {MAX_ANSWER_BYTES} bytes"));
    }
    Ok(text)
}

fn parse_time(s: &str) -> Result<i64, String> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .map_err(|e| format!("expiration `{s}`: {e}"))?;
    Ok(t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
}

fn json_credentials(text: &str, from: &'static str) -> Result<Credentials, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON credentials: {e}"))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok(Credentials {
        access_key_id: s("AccessKeyId").ok_or("no AccessKeyId in the answer")?,
        secret_access_key: s("SecretAccessKey").ok_or("no SecretAccessKey in the answer")?,
        session_token: s("Token"),
        expires_ms: s("Expiration").map(|e| parse_time(&e)).transpose()?,
        from,
    })
}

/// The cached credentials of one source and the task that keeps them fresh.
#[derive(Debug)]
pub struct MskIam {
    region: String,
    state: RwLock<(Option<Credentials>, Option<String>)>,
    ready: tokio::sync::Notify,
}

impl MskIam {
    /// Starts the refresher on the current runtime; it stops when the last
    /// handle is dropped.
    pub fn start(chain: Chain) -> Arc<MskIam> {
        let me = Arc::new(MskIam {
            region: chain.region.clone(),
            state: RwLock::new((None, None)),
            ready: tokio::sync::Notify::new(),
        });
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(5);
            loop {
                let fetched = chain.fetch().await;
                let Some(me) = weak.upgrade() else { return };
                let wait = match fetched {
                    Ok(c) => {
                        tracing::debug!(credentials = ?c, "AWS credentials for MSK IAM");
                        let wait = refresh_in(now_ms(), c.expires_ms);
                        me.store(Ok(c));
                        backoff = Duration::from_secs(5);
                        wait
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot get AWS credentials for MSK IAM");
                        me.store(Err(e));
                        let wait = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        wait
                    }
                };
                me.ready.notify_waiters();
                drop(me);
                tokio::time::sleep(wait).await;
            }
        });
        me
    }

    fn store(&self, r: Result<Credentials, String>) {
        if let Ok(mut g) = self.state.write() {
            match r {
                Ok(c) => *g = (Some(c), None),
                Err(e) => g.1 = Some(e),
            }
        }
    }

    /// Waits up to `limit` for the first answer of the chain.
    pub async fn ready(&self, limit: Duration) {
        let answered = || {
            self.state
                .read()
                .is_ok_and(|g| g.0.is_some() || g.1.is_some())
        };
        if answered() {
            return;
        }
        let _ = tokio::time::timeout(limit, async {
            while !answered() {
                let notified = self.ready.notified();
                if answered() {
                    break;
                }
                notified.await;
            }
        })
        .await;
    }

    /// A token signed now from the cached credentials, or why there is none.
    pub fn token(&self, now_ms: i64) -> Result<Token, String> {
        let g = self
            .state
            .read()
            .map_err(|_| "the credentials cache is poisoned".to_string())?;
        let error = g.1.clone().unwrap_or_else(|| "not fetched yet".to_string());
        match &g.0 {
            Some(c) if c.expires_ms.is_none_or(|e| e > now_ms) => {
                Ok(token(c, &self.region, now_ms))
            }
            Some(c) => Err(format!(
                "the AWS credentials from {} expired and could not be refreshed: {error}",
                c.from
            )),
            None => Err(format!("no AWS credentials for MSK IAM: {error}")),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::routing::{get, post, put};

    use super::*;

    /// AWS's documented example key (secret, 2015-08-30, us-east-1, iam).
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2026-12-03T15:11:52Z, when the vectors below were signed.
    const AT: i64 = 1_796_310_712;

    fn creds(session: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.into(),
            session_token: session.map(str::to_string),
            expires_ms: None,
            from: "test",
        }
    }

    #[test]
    fn the_signing_key_is_awss_documented_example() {
        assert_eq!(
            hex::encode(signing_key(SECRET, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    /// The vectors are botocore's SigV4QueryAuth, which Amazon's Python MSK
    /// signer uses, for the same credentials, region and time.
    #[test]
    fn presigned_urls_equal_botocores_with_and_without_a_session_token() {
        let url = presigned_url(&creds(None), "eu-west-1", AT);
        assert_eq!(
            url,
            "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261203%2Feu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20261203T151152Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=2a981b1d85a495727d7e53998c28046c078a1a05ae2b1583cbaab3a6079cf841"
        );
        let url = presigned_url(
            &creds(Some("SESSIONTOKEN/with+special=chars")),
            "eu-west-1",
            AT,
        );
        assert!(url.contains("&X-Amz-Security-Token=SESSIONTOKEN%2Fwith%2Bspecial%3Dchars&"));
        assert!(url.ends_with(
            "X-Amz-Signature=1593166f8a2dac9c85035601e539c42a1f37c101d3f127172567506765370366"
        ));
    }

    #[test]
    fn the_token_is_the_url_base64url_and_expires_with_it_or_the_credentials() {
        let t = token(&creds(None), "eu-west-1", AT * 1000 + 250);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&t.value)
            .unwrap();
        let url = String::from_utf8(url).unwrap();
        assert!(url.starts_with(&presigned_url(&creds(None), "eu-west-1", AT)));
        assert!(url.ends_with(&format!(
            "&User-Agent=lagwatch%2F{}",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(!t.value.contains('='));
        assert_eq!(t.expires_ms, (AT + 900) * 1000);
        assert_eq!(t.principal, "AKIDEXAMPLE");
        let mut short = creds(None);
        short.expires_ms = Some(AT * 1000 + 60_000);
        assert_eq!(
            token(&short, "eu-west-1", AT * 1000).expires_ms,
            AT * 1000 + 60_000
        );
    }

    #[test]
    fn credentials_are_refreshed_five_minutes_before_they_expire() {
        let now = 1_000_000_000;
        let min = 60_000;
        assert_eq!(refresh_in(now, None), STATIC_REREAD);
        assert_eq!(
            refresh_in(now, Some(now + 60 * min)),
            Duration::from_secs(55 * 60)
        );
        // Less than ten minutes left: at half of what is left.
        assert_eq!(
            refresh_in(now, Some(now + 6 * min)),
            Duration::from_secs(3 * 60)
        );
        // Expired or about to: soon, but not in a busy loop.
        assert_eq!(refresh_in(now, Some(now + 2_000)), Duration::from_secs(5));
        assert_eq!(refresh_in(now, Some(now - 2_000)), Duration::from_secs(5));
    }

    fn env(vars: &[(&str, String)]) -> Env {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        Arc::new(move |k| map.get(k).cloned())
    }

    /// A real HTTP server on a free port; returns its base URL.
    async fn serve(router: axum::Router) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, router).await });
        url
    }

    fn chain(vars: &[(&str, String)]) -> Chain {
        Chain::new(env(vars), "eu-west-1", Duration::from_secs(2))
    }

    #[tokio::test]
    async fn the_chain_reads_env_then_web_identity_then_container_then_instance_metadata() {
        // Environment.
        let c = chain(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV".into()),
            ("AWS_SECRET_ACCESS_KEY", "s".into()),
        ])
        .fetch()
        .await
        .unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.from),
            ("AKIAENV", "environment")
        );

        // IRSA: the token file's content goes to STS; its XML answer is read.
        let seen = Arc::new(std::sync::Mutex::new(String::new()));
        let sts = {
            let seen = seen.clone();
            serve(axum::Router::new().route(
                "/",
                post(move |body: String| {
                    *seen.lock().unwrap() = body;
                    async {
                        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                         <AccessKeyId>ASIASTS</AccessKeyId><SecretAccessKey>stssecret</SecretAccessKey>\
                         <SessionToken>stssession</SessionToken><Expiration>2030-01-02T03:04:05Z</Expiration>\
                         </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
                    }
                }),
            ))
            .await
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "eyJ.projected.token\n").unwrap();
        let irsa = [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", file.display().to_string()),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/lagwatch".into(),
            ),
            ("AWS_ENDPOINT_URL_STS", sts),
        ];
        let c = chain(&irsa).fetch().await.unwrap();
        assert_eq!(c.access_key_id, "ASIASTS");
        assert_eq!(c.session_token.as_deref(), Some("stssession"));
        assert_eq!(c.expires_ms, Some(1_893_553_445_000));
        let body = seen.lock().unwrap().clone();
        assert!(body.contains("Action=AssumeRoleWithWebIdentity"), "{body}");
        assert!(
            body.contains("WebIdentityToken=eyJ.projected.token&")
                || body.ends_with("WebIdentityToken=eyJ.projected.token"),
            "{body}"
        );
        assert!(
            body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Flagwatch"),
            "{body}"
        );

        // A broken IRSA setup fails as such; it never falls back to the node.
        std::fs::remove_file(&file).unwrap();
        let e = chain(&irsa).fetch().await.unwrap_err();
        assert!(
            e.starts_with("web identity (AWS_WEB_IDENTITY_TOKEN_FILE):"),
            "{e}"
        );

        // Container credentials (ECS, EKS Pod Identity) with their token.
        let container = serve(axum::Router::new().route(
            "/creds",
            get(|h: axum::http::HeaderMap| async move {
                if h.get("authorization").map(|v| v.as_bytes()) != Some(b"podtoken") {
                    return (axum::http::StatusCode::UNAUTHORIZED, String::new());
                }
                (
                    axum::http::StatusCode::OK,
                    r#"{"AccessKeyId":"ASIAPOD","SecretAccessKey":"p","Token":"t","Expiration":"2030-01-02T03:04:05Z"}"#.to_string(),
                )
            }),
        ))
        .await;
        let c = chain(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{container}/creds"),
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "podtoken".into()),
        ])
        .fetch()
        .await
        .unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.from),
            ("ASIAPOD", "container credentials")
        );

        // IMDSv2: a session token, the role's name, its credentials.
        let imds = serve(
            axum::Router::new()
                .route("/latest/api/token", put(|| async { "imds-session" }))
                .route(
                    "/latest/meta-data/iam/security-credentials/",
                    get(|| async { "node-role\n" }),
                )
                .route(
                    "/latest/meta-data/iam/security-credentials/node-role",
                    get(|h: axum::http::HeaderMap| async move {
                        assert_eq!(h.get("x-aws-ec2-metadata-token").unwrap(), "imds-session");
                        r#"{"Code":"Success","AccessKeyId":"ASIANODE","SecretAccessKey":"n","Token":"t","Expiration":"2030-01-02T03:04:05Z"}"#
                    }),
                ),
        )
        .await;
        let c = chain(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds)])
            .fetch()
            .await
            .unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.from),
            ("ASIANODE", "instance metadata")
        );

        let e = chain(&[("AWS_EC2_METADATA_DISABLED", "true".into())])
            .fetch()
            .await
            .unwrap_err();
        assert!(e.contains("instance metadata is disabled"), "{e}");
    }

    #[tokio::test]
    async fn the_hook_signs_from_the_cache_and_says_why_when_it_cannot() {
        let sts = serve(axum::Router::new().route(
            "/",
            post(|| async {
                (
                    axum::http::StatusCode::FORBIDDEN,
                    "<Error>AccessDenied</Error>",
                )
            }),
        ))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "t").unwrap();
        let denied = MskIam::start(chain(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", file.display().to_string()),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/x".into()),
            ("AWS_ENDPOINT_URL_STS", sts),
        ]));
        denied.ready(Duration::from_secs(10)).await;
        let e = denied.token(now_ms()).unwrap_err();
        assert!(e.contains("HTTP 403") && e.contains("AccessDenied"), "{e}");

        let ok = MskIam::start(chain(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV".into()),
            ("AWS_SECRET_ACCESS_KEY", "s".into()),
        ]));
        ok.ready(Duration::from_secs(10)).await;
        let t = ok.token(AT * 1000).unwrap();
        assert_eq!(t.expires_ms, (AT + 900) * 1000);
        // Credentials past their expiry are not signed with.
        ok.store(Ok(Credentials {
            expires_ms: Some(AT * 1000),
            ..creds(None)
        }));
        let e = ok.token(AT * 1000 + 1).unwrap_err();
        assert!(e.contains("expired and could not be refreshed"), "{e}");
    }
}
