//! Secrets in the config: which keys hold one, and scrubbing known secret values
//! out of messages. One place for both, used by config errors, the Kafka client's
//! errors and every `Debug` that could print a credential.

/// Fragments of a (lowercased) key name that mark its value as a secret:
/// librdkafka properties (`sasl.password`, `ssl.key.pem`, `sasl.jaas.config`,
/// `sasl.oauthbearer.config`, `sasl.kerberos.keytab`) and HTTP header names.
pub const SECRET_KEY_FRAGMENTS: &[&str] = &[
    "password",
    "secret",
    "token",
    "jaas",
    "oauthbearer.config",
    ".pem",
    "keytab",
    "authorization",
];

/// Whether a key (librdkafka property, header name) holds a secret, whatever
/// its case.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_FRAGMENTS.iter().any(|f| key.contains(f))
}

/// Secret values shorter than this are not scrubbed from messages: replacing
/// every `a` or `on` in a sentence would garble it without hiding anything.
pub const MIN_REDACTED_LEN: usize = 3;

/// Replaces every occurrence of each secret in `message` with `***`.
pub fn redact<'a>(message: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = message.to_string();
    for s in secrets {
        if s.len() >= MIN_REDACTED_LEN {
            out = out.replace(s, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised_whatever_their_case() {
        for k in [
            "sasl.password",
            "SSL.KEY.PASSWORD",
            "sasl.jaas.config",
            "ssl.key.pem",
            "Authorization",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["sasl.username", "security.protocol", "ssl.ca.location"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn redact_scrubs_every_occurrence_but_not_tiny_values() {
        assert_eq!(
            redact("auth failed for pw hunter2 (hunter2)", ["hunter2"]),
            "auth failed for pw *** (***)"
        );
        assert_eq!(redact("a on", ["a", "on"]), "a on");
    }
}
