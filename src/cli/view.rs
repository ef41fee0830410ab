//! What the terminal commands show, read from lagwatch's JSON API: of a
//! running daemon (`--from URL`), or of one started in this process for the
//! command (`--config FILE`), so both print exactly the API's numbers.

use std::time::Duration;

use serde::Deserialize;

/// A group as `/api/v1/groups` gives it (the fields the terminal shows).
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Group {
    pub source: String,
    pub system: String,
    pub group: String,
    pub stream: Option<String>,
    pub state: Option<String>,
    pub members: Option<u32>,
    pub partitions: usize,
    pub lag: Option<u64>,
    pub lag_seconds: Option<TimeLag>,
    pub produce_rate: Option<f64>,
    pub consume_rate: Option<f64>,
    pub lag_growth: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub status: Option<String>,
    pub stale: bool,
    pub stale_seconds: f64,
    pub recommendation: Option<Recommendation>,
    /// Why it is behind, in one sentence (null when it is not).
    pub diagnosis: Option<String>,
    pub incidents: Vec<serde_json::Value>,
    /// Filled by `--partitions` from `/api/v1/group`.
    #[serde(skip_deserializing, skip_serializing_if = "Vec::is_empty")]
    pub partition_rows: Vec<Partition>,
}

#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct TimeLag {
    pub seconds: Option<f64>,
    pub quality: String,
    pub at_least_seconds: f64,
    pub at_most_seconds: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Recommendation {
    pub current: Option<u32>,
    pub recommended: Option<u32>,
    pub reason: String,
    pub message: String,
}

/// A partition (or a JetStream consumer's single row) of `/api/v1/group`.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Partition {
    pub topic: String,
    pub partition: Option<i32>,
    pub committed: Option<i64>,
    pub latest: i64,
    pub lag: u64,
    pub lag_seconds: TimeLag,
    pub produce_rate: Option<f64>,
    pub consume_rate: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub status: String,
    pub stale: bool,
}

/// A source as `/api/v1/sources` gives it.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Source {
    pub name: String,
    pub system: String,
    pub up: bool,
    pub polled: bool,
    pub last_error: Option<SourceError>,
}

#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct SourceError {
    pub kind: String,
    pub message: String,
}

/// One reading of the API: every source, and the selected groups.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct View {
    pub at: String,
    pub sources: Vec<Source>,
    pub groups: Vec<Group>,
}

/// Which groups a command shows.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub source: Option<String>,
    pub group: Option<regex::Regex>,
}

impl Selection {
    fn wants(&self, g: &Group) -> bool {
        self.source.as_deref().is_none_or(|s| s == g.source)
            && self.group.as_ref().is_none_or(|r| r.is_match(&g.group))
    }
}

/// The API's answers are outside input: at most this much is read of one.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// A client of one lagwatch API.
#[derive(Clone, Debug)]
pub struct Api {
    base: reqwest::Url,
    token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    /// `base`: `http://host:9358`; `token`: the bearer token, if the API needs one.
    pub fn new(base: &str, token: Option<String>) -> Result<Api, String> {
        let base = reqwest::Url::parse(base)
            .map_err(|e| format!("`{base}` is not a URL ({e}); try http://host:9358"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("`{base}` is not an http(s) URL"));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("lagwatch-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Api {
            base,
            token,
            client,
        })
    }

    /// GET `path_and_query` as JSON.
    async fn get<T: serde::de::DeserializeOwned>(&self, path_and_query: &str) -> Result<T, String> {
        let url = self
            .base
            .join(path_and_query)
            .map_err(|e| format!("bad path {path_and_query}: {e}"))?;
        let mut req = self.client.get(url.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach lagwatch at {}: {e}", self.base))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!(
                    "{url}: answer larger than {MAX_ANSWER_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(format!(
                "{url}: 401, the API needs a token: set LAGWATCH_API_TOKEN (or --token-env NAME)"
            ));
        }
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into());
            return Err(format!("{url}: {status}: {error}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not the answer expected: {e}"))
    }

    /// Whether every source has been polled once (`/readyz`).
    pub async fn ready(&self) -> bool {
        let Ok(url) = self.base.join("/readyz") else {
            return false;
        };
        self.client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Sources and the selected groups, worst first; with `partitions`, each
    /// group's partition rows too.
    pub async fn view(&self, sel: &Selection, partitions: bool) -> Result<View, String> {
        #[derive(Deserialize)]
        struct Sources {
            sources: Vec<Source>,
        }
        #[derive(Deserialize)]
        struct Groups {
            at: String,
            groups: Vec<Group>,
        }
        #[derive(Deserialize)]
        struct One {
            partitions: Vec<Partition>,
        }
        let sources: Sources = self.get("/api/v1/sources").await?;
        if let Some(s) = &sel.source {
            if !sources.sources.iter().any(|x| &x.name == s) {
                let names: Vec<&str> = sources.sources.iter().map(|x| x.name.as_str()).collect();
                return Err(format!(
                    "no source named `{s}`; sources: {}",
                    names.join(", ")
                ));
            }
        }
        let all: Groups = self.get("/api/v1/groups").await?;
        let mut groups: Vec<Group> = all.groups.into_iter().filter(|g| sel.wants(g)).collect();
        if partitions {
            for g in &mut groups {
                let mut q = url_query(&[("source", &g.source), ("group", &g.group)]);
                if let Some(s) = &g.stream {
                    q.push_str(&url_query(&[("stream", s)]).replacen('?', "&", 1));
                }
                let one: One = self.get(&format!("/api/v1/group{q}")).await?;
                g.partition_rows = one.partitions;
            }
        }
        Ok(View {
            at: all.at,
            sources: sources
                .sources
                .into_iter()
                .filter(|s| sel.source.as_deref().is_none_or(|n| n == s.name))
                .collect(),
            groups,
        })
    }
}

/// `?k=v&...`, every value percent-encoded.
fn url_query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_encode_every_name() {
        assert_eq!(
            url_query(&[("source", "k"), ("group", "../a b&c=ü")]),
            "?source=k&group=%2E%2E%2Fa%20b%26c%3D%C3%BC"
        );
    }
}
