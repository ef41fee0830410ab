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

/// Secret values shorter than this are scrubbed only where a message quotes
/// them whole (`` `ab` `` or `"ab"`): replacing every `a` or `on` in a sentence
/// would garble it without hiding anything.
pub const MIN_REDACTED_LEN: usize = 3;

/// Replaces every occurrence of each secret in `message` with `***`; secrets
/// shorter than [`MIN_REDACTED_LEN`] only where they are quoted whole.
pub fn redact<'a>(message: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = message.to_string();
    for s in secrets {
        if s.is_empty() {
            continue;
        }
        if s.len() >= MIN_REDACTED_LEN {
            out = out.replace(s, "***");
        } else {
            for (open, close) in [("`", "`"), ("\"", "\""), ("'", "'")] {
                out = out.replace(&format!("{open}{s}{close}"), &format!("{open}***{close}"));
            }
        }
    }
    out
}

/// Replaces everything a message quotes in backticks with `***`: for errors
/// about a secret key, whose value serde quotes (``invalid type: integer
/// `123456`, expected a string``).
pub fn mask_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('`') {
        let Some(len) = rest[start + 1..].find('`') else {
            break;
        };
        out.push_str(&rest[..=start]);
        out.push_str("***`");
        rest = &rest[start + 1 + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Every scalar written literally under a secret key of a YAML document (in
/// any mapping, at any depth), as text: `password: 123456` gives `123456`.
pub fn literal_secrets(value: &serde_yaml::Value, out: &mut Vec<String>) {
    use serde_yaml::Value;
    match value {
        Value::Mapping(m) => {
            for (k, v) in m {
                let secret_key = k.as_str().is_some_and(is_secret_key);
                if secret_key {
                    scalars(v, out);
                } else {
                    literal_secrets(v, out);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| literal_secrets(v, out)),
        Value::Tagged(t) => literal_secrets(&t.value, out),
        _ => {}
    }
}

/// Every scalar in `value`, as text.
fn scalars(value: &serde_yaml::Value, out: &mut Vec<String>) {
    use serde_yaml::Value;
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Null => {}
        Value::Sequence(items) => items.iter().for_each(|v| scalars(v, out)),
        Value::Mapping(m) => m.values().for_each(|v| scalars(v, out)),
        Value::Tagged(t) => scalars(&t.value, out),
    }
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
        assert_eq!(
            redact("invalid value `on` and \"ab\"", ["on", "ab"]),
            "invalid value `***` and \"***\""
        );
    }

    #[test]
    fn mask_quoted_hides_every_quoted_value() {
        assert_eq!(
            mask_quoted("invalid type: integer `123456`, expected a string"),
            "invalid type: integer `***`, expected a string"
        );
        assert_eq!(mask_quoted("`a` and `b` and `c"), "`***` and `***` and `c");
        assert_eq!(mask_quoted("nothing quoted"), "nothing quoted");
    }

    #[test]
    fn literal_secrets_are_found_at_any_depth_whatever_their_type() {
        let doc: serde_yaml::Value = serde_yaml::from_str(
            "a:\n  sasl.password: 123456\n  user: bob\nb:\n  - {token: x1, n: 5}\n  - headers: {Authorization: true}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut found = Vec::new();
        literal_secrets(&doc, &mut found);
        found.sort();
        assert_eq!(found, ["123456", "true", "x1"]);
    }
}
