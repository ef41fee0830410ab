//! The YAML configuration, in three stages:
//! 1. text -> `${VAR}` interpolation on the parsed tree -> [`raw`] serde structs
//!    (unknown keys refused; every key has a named default);
//! 2. one validation pass ([`validate`]) that collects every problem of the file
//!    in one [`Problems`](problems::Problems), each with its dotted path and line;
//! 3. typed [`Settings`] that the rest of lagwatch uses: after validation no code
//!    handles an invalid combination again.
//!
//! A parse error (wrong type, unknown key) does not hide the rest of the file:
//! the offending key is reported, dropped, and parsing goes on, so value
//! problems elsewhere are reported with it.

mod duration;
pub mod filter;
mod interpolate;
mod locate;
mod problems;
mod raw;
pub mod secret;
mod settings;
mod validate;

use std::fmt;
use std::path::Path;

pub use duration::Seconds;
pub use filter::{NameFilter, Shard};
pub use settings::{
    EphemeralPolicy, Granularity, HttpSettings, IsolationLevel, JetstreamSettings, KafkaSettings,
    LogFormat, LogSettings, NatsAuth, NatsTls, OAuthBearerSettings, Settings, SourceKind,
    SourceSettings, Timing, DEFAULT_GONE_AFTER_POLLS, DEFAULT_HTTP_REQUEST_TIMEOUT, DEFAULT_LISTEN,
    DEFAULT_POLL_INTERVAL,
};
/// One thing wrong with a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, e.g. `sources[1].kafka.poll_interval`; empty for the whole file.
    pub path: String,
    /// 1-based line in the YAML file, where the parser knows it.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one config file. Never contains a secret: values that
/// came from environment variables are redacted from every message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid config {}: {n} problem{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {p}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// At most this many parse errors are reported (each costs one more pass of
/// the parser over the tree); past it, the file is badly broken anyway.
const MAX_PARSE_PROBLEMS: usize = 50;

/// Reads, interpolates, parses and validates a config file.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        problems: vec![Problem {
            path: String::new(),
            line: None,
            message: format!("cannot read file: {e}"),
        }],
    })?;
    from_yaml(&file, &text, &|name| std::env::var(name).ok())
}

/// Parses config text; `env` looks up variables (`${VAR}` and `HOSTNAME` for
/// the shard index; tests pass their own).
pub fn from_yaml(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let fail = |problems: Vec<Problem>| ConfigError {
        file: file.to_string(),
        problems,
    };
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        fail(vec![Problem {
            path: String::new(),
            line: e.location().map(|l| l.line()),
            message: format!("not valid YAML: {}", strip_location(&e.to_string())),
        }])
    })?;
    if value.is_null() {
        return Err(fail(vec![Problem {
            path: String::new(),
            line: None,
            message: "the file is empty; at least `sources:` is required".into(),
        }]));
    }
    if let Some(problem) = shape_problem(&value) {
        return Err(fail(vec![problem]));
    }
    let mut secrets = Vec::new();
    secret::literal_secrets(&value, &mut secrets);
    let mut problems = interpolate::interpolate(&mut value, env, &mut secrets);
    let settings = if problems.is_empty() {
        let (raw, parse_problems) = parse(value);
        let parsed: Vec<String> = parse_problems.iter().map(|p| p.path.clone()).collect();
        problems.extend(parse_problems);
        raw.and_then(|raw| {
            let mut checked = problems::Problems::default();
            let settings = validate::settings(&raw, env("HOSTNAME").as_deref(), &mut checked);
            problems.extend(
                checked
                    .into_vec()
                    .into_iter()
                    .filter(|p| validate::not_below(&parsed, &p.path)),
            );
            settings
        })
    } else {
        None
    };
    match settings {
        Some(s) if problems.is_empty() => Ok(s),
        _ => {
            let lines = locate::LineMap::build(text);
            for p in &mut problems {
                if p.line.is_none() {
                    p.line = lines.line_of(&p.path);
                }
                p.message = secret::redact(&p.message, secrets.iter().map(String::as_str));
                // What a type or value error about a secret key quotes is its
                // value (an unknown-field error quotes only key names).
                if p.message.starts_with("invalid ")
                    && p.path.rsplit('.').next().is_some_and(secret::is_secret_key)
                {
                    p.message = secret::mask_quoted(&p.message);
                }
            }
            Err(fail(problems))
        }
    }
}

/// A file that is not a mapping of named keys at its top (a list, a number, a
/// `? ` complex key) cannot be read key by key: say so in words, instead of
/// serde's "invalid type: unit value, expected field identifier".
fn shape_problem(value: &serde_yaml::Value) -> Option<Problem> {
    use serde_yaml::Value;
    let whole = |message: String| Problem {
        path: String::new(),
        line: None,
        message,
    };
    let Value::Mapping(m) = value else {
        let kind = match value {
            Value::Sequence(_) => "a list",
            Value::String(_) => "a single string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "not a mapping",
        };
        return Some(whole(format!(
            "the file must be a mapping of keys (`sources:`, `http:`, ...); it is {kind}"
        )));
    };
    m.keys().find(|k| !k.is_string()).map(|k| {
        let shown = serde_yaml::to_string(k).unwrap_or_default();
        whole(format!(
            "the file's top-level keys must be names like `sources` or `http`; found the key `{}`",
            shown.trim()
        ))
    })
}

/// Deserializes the raw config, reporting each parse error and dropping the key
/// that caused it, so that the next pass finds the next error. None when an
/// error cannot be dropped (a missing key, an item of a list, the whole file).
fn parse(mut value: serde_yaml::Value) -> (Option<raw::Config>, Vec<Problem>) {
    let mut problems = Vec::new();
    for _ in 0..MAX_PARSE_PROBLEMS {
        let e = match serde_path_to_error::deserialize::<_, raw::Config>(value.clone()) {
            Ok(c) => return (Some(c), problems),
            Err(e) => e,
        };
        let message = strip_location(&e.inner().to_string());
        let mut keys: Vec<String> = Vec::new();
        let mut droppable = true;
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Map { key } => keys.push(key.clone()),
                serde_path_to_error::Segment::Seq { index } => keys.push(format!("[{index}]")),
                _ => droppable = false,
            }
        }
        // An unknown key is reported at its own path (and line), and dropped.
        if let Some(field) = unknown_field(&message) {
            if keys.last().map(String::as_str) != Some(field) {
                keys.push(field.to_string());
            }
        }
        problems.push(Problem {
            path: dotted(&keys),
            line: None,
            message,
        });
        if !droppable || !drop_key(&mut value, &keys) {
            return (None, problems);
        }
    }
    (None, problems)
}

/// `unknown field `x`, expected ...` -> `x`.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(f, _)| f)
}

/// Path segments (`"sources"`, `"[0]"`, `"kafka"`) as a dotted path.
fn dotted(keys: &[String]) -> String {
    let mut out = String::new();
    for k in keys {
        if !k.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(k);
    }
    out
}

/// Removes the mapping entry at `keys` (its last segment must be a key, not a
/// list index). Whether it was there to remove.
fn drop_key(value: &mut serde_yaml::Value, keys: &[String]) -> bool {
    let Some((last, parents)) = keys.split_last() else {
        return false;
    };
    if last.starts_with('[') {
        return false;
    }
    let mut node = value;
    for k in parents {
        let next = match k.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(i) => i.parse::<usize>().ok().and_then(|i| node.get_mut(i)),
            None => node.get_mut(k.as_str()),
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    node.as_mapping_mut()
        .is_some_and(|m| m.remove(last.as_str()).is_some())
}

/// serde_yaml appends " at line L column C"; the problem carries the line itself.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A whole config made around one section, for the unit tests of the module
/// that section configures: `section_for_tests("recommend", "mode: keda")`.
#[cfg(test)]
pub(crate) fn section_for_tests(section: &str, yaml: &str) -> Result<Settings, ConfigError> {
    let indented: String = yaml.lines().map(|l| format!("  {l}\n")).collect();
    let text = format!(
        "sources:\n  - name: k\n    kafka:\n      bootstrap_servers: [\"b:1\"]\n{section}:\n{indented}"
    );
    from_yaml("test.yaml", &text, &|_| None)
}

#[cfg(test)]
mod tests;
