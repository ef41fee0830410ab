//! Durations written the way people write them (`30s`, `5m`, `1h30m`, `250ms`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration parsed from a humantime string; bare numbers are refused so that
/// `poll_interval: 30` cannot mean seconds to one reader and milliseconds to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(Duration);

/// No duration setting means anything beyond a year; past it, arithmetic on
/// clocks (`Instant + Duration`, milliseconds in an i64) would overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

impl Seconds {
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
    pub const fn from_duration(d: Duration) -> Self {
        Self(d)
    }
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, like `30s`, `5m` or `250ms`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Seconds, E> {
                let t = s.trim();
                if let Some(rest) = t.strip_prefix('-') {
                    let _ = rest;
                    return Err(E::custom(format!("`{s}`: a duration cannot be negative")));
                }
                let d = humantime::parse_duration(t).map_err(|e| {
                    E::custom(format!(
                        "`{s}` is not a duration ({e}); write it like `30s`, `5m` or `250ms`"
                    ))
                })?;
                if d > MAX_DURATION {
                    return Err(E::custom(format!(
                        "`{s}` is longer than any lagwatch setting can use (at most {})",
                        humantime::format_duration(MAX_DURATION)
                    )));
                }
                Ok(Seconds(d))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit; write it like `{}s`",
                    v.max(0)
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit; write it like `{v}s`"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Seconds, E> {
                Err(E::custom(format!("`{v}` has no unit; write it like `30s`")))
            }
        }
        d.deserialize_any(V)
    }
}
