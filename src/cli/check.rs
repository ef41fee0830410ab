//! The check mode for scripts, cron and pipelines (Nagios/Icinga conventions):
//! one line, and an exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Pure: a
//! [`View`] in, a [`Verdict`] out; the table tests below are the spec.
//!
//! Never a false OK: a group that could not be read (its source down, its data
//! stale, no analysis yet) is UNKNOWN, and a time lag that is only bounded or
//! extrapolated is judged by its lower bound (certainly at least that old), as
//! the shipped alert rules judge it.

use super::view::{Group, TimeLag, View};

/// Nagios plugin states, in exit-code order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Level {
    pub fn exit_code(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
            Level::Unknown => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }

    /// Which of two states the whole check takes: CRITICAL, then UNKNOWN (a
    /// group that cannot be judged is worse than one that is merely slow),
    /// then WARNING.
    fn rank(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Unknown => 2,
            Level::Critical => 3,
        }
    }
}

/// Thresholds of the check.
#[derive(Clone, Debug, Default)]
pub struct Thresholds {
    /// CRITICAL above this time lag (seconds).
    pub max_lag_seconds: Option<f64>,
    /// WARNING above this time lag (seconds).
    pub warn_lag_seconds: Option<f64>,
    /// CRITICAL above this many messages behind.
    pub max_lag: Option<u64>,
    /// Statuses that are CRITICAL (upper case, e.g. STOP, ERR); any other
    /// status but OK is a WARNING.
    pub fail_on: Vec<String>,
}

/// The outcome: the state and its one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub level: Level,
    pub line: String,
}

/// At most this many problems are named in the line.
const NAMED: usize = 5;

/// Judges every group of `view` (and its sources).
pub fn check(view: &View, t: &Thresholds) -> Verdict {
    let mut problems: Vec<(Level, String)> = Vec::new();
    for s in &view.sources {
        if !s.polled {
            problems.push((Level::Unknown, format!("source {} not polled yet", s.name)));
        } else if !s.up {
            let why = s.last_error.as_ref().map_or("", |e| e.message.as_str());
            problems.push((Level::Unknown, format!("source {} down: {why}", s.name)));
        }
    }
    if view.groups.is_empty() {
        problems.push((Level::Unknown, "no group matches".into()));
    }
    for g in &view.groups {
        let (level, why) = judge(g, t);
        if level != Level::Ok {
            problems.push((level, format!("{} {why}", name(g))));
        }
    }
    let level = problems
        .iter()
        .map(|p| p.0)
        .max_by_key(|l| l.rank())
        .unwrap_or(Level::Ok);
    // The worst first.
    problems.sort_by_key(|p| std::cmp::Reverse(p.0.rank()));
    let n = view.groups.len();
    let count = |l: Level| problems.iter().filter(|p| p.0 == l).count();
    let mut line = format!(
        "LAGWATCH {} - {n} group{}: {} critical, {} warning, {} unknown",
        level.as_str(),
        if n == 1 { "" } else { "s" },
        count(Level::Critical),
        count(Level::Warning),
        count(Level::Unknown),
    );
    for (_, why) in problems.iter().take(NAMED) {
        line.push_str("; ");
        line.push_str(why);
    }
    if problems.len() > NAMED {
        line.push_str(&format!("; and {} more", problems.len() - NAMED));
    }
    Verdict { level, line }
}

/// One group's state and the reason in words. Thresholds on lag and time lag
/// (its lower bound when unknown) judge even a group whose status is not
/// known yet; a group that cannot be judged otherwise is UNKNOWN, never OK.
fn judge(g: &Group, t: &Thresholds) -> (Level, String) {
    if g.stale {
        return (
            Level::Unknown,
            format!(
                "stale for {:.0}s (last known lag {})",
                g.stale_seconds,
                lag(g)
            ),
        );
    }
    // Certainly at least this far behind.
    let behind = g.lag_seconds.as_ref().map(judged_seconds);
    let over = |limit: Option<f64>| match (behind, limit) {
        (Some(b), Some(m)) => b > m,
        _ => false,
    };
    let status = g.status.as_deref();
    if let Some(s) = status.filter(|s| t.fail_on.iter().any(|f| f.eq_ignore_ascii_case(s))) {
        return (Level::Critical, format!("{s}, lag {}", lag(g)));
    }
    if over(t.max_lag_seconds) {
        return (
            Level::Critical,
            format!("{} behind > {}s", behind_text(g), fmt(t.max_lag_seconds)),
        );
    }
    if let (Some(l), Some(m)) = (g.lag, t.max_lag) {
        if l > m {
            return (Level::Critical, format!("lag {l} > {m}"));
        }
    }
    let Some(status) = status else {
        return (
            Level::Unknown,
            format!("status not known yet, lag {}", lag(g)),
        );
    };
    if status != "OK" {
        return (Level::Warning, format!("{status}, lag {}", lag(g)));
    }
    if over(t.warn_lag_seconds) {
        return (
            Level::Warning,
            format!("{} behind > {}s", behind_text(g), fmt(t.warn_lag_seconds)),
        );
    }
    (Level::Ok, String::new())
}

fn fmt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.0}"))
}

fn lag(g: &Group) -> String {
    g.lag.map_or("unknown".into(), |l| l.to_string())
}

/// The time lag a threshold judges, as the shipped alert rules do: the
/// estimate where it is exact or interpolated (off by at most a poll
/// interval), else the certain lower bound, so an extrapolation never decides
/// on its own.
fn judged_seconds(l: &TimeLag) -> f64 {
    match l.seconds {
        Some(s) if trusted(l) => s,
        _ => l.at_least_seconds,
    }
}

fn trusted(l: &TimeLag) -> bool {
    matches!(l.quality.as_str(), "exact" | "interpolated")
}

fn behind_text(g: &Group) -> String {
    match &g.lag_seconds {
        Some(l) => match l.seconds {
            Some(s) if trusted(l) => format!("{s:.0}s"),
            _ => format!("at least {:.0}s", l.at_least_seconds),
        },
        None => "unknown".into(),
    }
}

/// `source/group` or `source/stream/consumer`.
pub fn name(g: &Group) -> String {
    let n = match &g.stream {
        Some(s) => format!("{}/{s}/{}", g.source, g.group),
        None => format!("{}/{}", g.source, g.group),
    };
    crate::telemetry::Escaped(&n).to_string()
}

/// Every selected group has consumed everything (lag 0, read at the last
/// poll, its source up): what `--wait-until-caught-up` waits for.
pub fn caught_up(view: &View) -> bool {
    !view.groups.is_empty()
        && view.sources.iter().all(|s| s.up)
        && view.groups.iter().all(|g| !g.stale && g.lag == Some(0))
}

#[cfg(test)]
mod tests {
    use super::super::view::{Source, SourceError};
    use super::*;

    fn group(
        name: &str,
        status: Option<&str>,
        lag: u64,
        behind: Option<f64>,
        at_least: f64,
    ) -> Group {
        Group {
            source: "k".into(),
            group: name.into(),
            status: status.map(str::to_string),
            lag: Some(lag),
            lag_seconds: Some(TimeLag {
                seconds: behind,
                quality: "exact".into(),
                at_least_seconds: at_least,
                at_most_seconds: None,
            }),
            ..Group::default()
        }
    }

    fn up() -> Source {
        Source {
            name: "k".into(),
            system: "kafka".into(),
            up: true,
            polled: true,
            last_error: None,
        }
    }

    fn view(groups: Vec<Group>) -> View {
        View {
            at: String::new(),
            sources: vec![up()],
            groups,
        }
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            max_lag_seconds: Some(300.0),
            warn_lag_seconds: Some(60.0),
            max_lag: None,
            fail_on: vec!["STOP".into(), "ERR".into()],
        }
    }

    /// Numbered cases: (groups, expected level, a fragment of the line).
    #[test]
    fn check_table() {
        let stale = Group {
            stale: true,
            stale_seconds: 95.0,
            ..group("s", Some("OK"), 0, Some(0.0), 0.0)
        };
        let cases: Vec<(u32, Vec<Group>, Level, &str)> = vec![
            (
                1,
                vec![group("a", Some("OK"), 0, Some(0.0), 0.0)],
                Level::Ok,
                "LAGWATCH OK - 1 group",
            ),
            (
                2,
                vec![group("a", Some("OK"), 10, Some(90.0), 90.0)],
                Level::Warning,
                "k/a 90s behind > 60s",
            ),
            (
                3,
                vec![group("a", Some("OK"), 10, Some(400.0), 400.0)],
                Level::Critical,
                "k/a 400s behind > 300s",
            ),
            (
                4,
                vec![group("a", Some("STOP"), 10, Some(5.0), 5.0)],
                Level::Critical,
                "k/a STOP, lag 10",
            ),
            (
                5,
                vec![group("a", Some("STALL"), 10, Some(5.0), 5.0)],
                Level::Warning,
                "k/a STALL, lag 10",
            ),
            // An extrapolated 900 s with a certain 100 s: judged by the 100 s,
            // as the alert rules do (an extrapolation never decides alone).
            (
                13,
                vec![Group {
                    lag_seconds: Some(TimeLag {
                        seconds: Some(900.0),
                        quality: "extrapolated".into(),
                        at_least_seconds: 100.0,
                        at_most_seconds: None,
                    }),
                    ..group("a", Some("OK"), 10, None, 0.0)
                }],
                Level::Warning,
                "at least 100s behind > 60s",
            ),
            // Unknown time lag judged by its lower bound.
            (
                6,
                vec![group("a", Some("OK"), 10, None, 600.0)],
                Level::Critical,
                "at least 600s behind > 300s",
            ),
            (
                7,
                vec![group("a", None, 10, None, 0.0)],
                Level::Unknown,
                "status not known yet, lag 10",
            ),
            // A threshold decides even without a status.
            (
                12,
                vec![group("a", None, 10, None, 900.0)],
                Level::Critical,
                "at least 900s behind > 300s",
            ),
            (8, vec![stale.clone()], Level::Unknown, "stale for 95s"),
            (9, vec![], Level::Unknown, "no group matches"),
            // Critical wins over unknown, unknown over warning.
            (
                10,
                vec![stale.clone(), group("b", Some("ERR"), 1, None, 0.0)],
                Level::Critical,
                "1 critical, 0 warning, 1 unknown",
            ),
            (
                11,
                vec![stale, group("b", Some("WARN"), 1, Some(1.0), 1.0)],
                Level::Unknown,
                "0 critical, 1 warning, 1 unknown",
            ),
        ];
        for (n, groups, level, fragment) in cases {
            let v = check(&view(groups), &thresholds());
            assert_eq!(v.level, level, "case {n}: {}", v.line);
            assert!(v.line.contains(fragment), "case {n}: {}", v.line);
        }
    }

    #[test]
    fn a_source_down_is_unknown_never_ok() {
        let mut v = view(vec![group("a", Some("OK"), 0, Some(0.0), 0.0)]);
        v.sources[0].up = false;
        v.sources[0].last_error = Some(SourceError {
            kind: "connect".into(),
            message: "broker down".into(),
        });
        let verdict = check(&v, &thresholds());
        assert_eq!(verdict.level, Level::Unknown);
        assert!(
            verdict.line.contains("source k down: broker down"),
            "{}",
            verdict.line
        );
        assert!(!caught_up(&v));
    }

    #[test]
    fn caught_up_needs_every_group_fresh_at_zero() {
        assert!(caught_up(&view(vec![group(
            "a",
            Some("OK"),
            0,
            Some(0.0),
            0.0
        )])));
        assert!(!caught_up(&view(vec![
            group("a", Some("OK"), 0, Some(0.0), 0.0),
            group("b", Some("OK"), 1, Some(0.0), 0.0)
        ])));
        assert!(!caught_up(&view(vec![])));
    }

    #[test]
    fn names_cannot_carry_terminal_escapes() {
        let g = group("a\u{1b}[2Jb\n", Some("OK"), 0, None, 0.0);
        assert_eq!(name(&g), "k/a\\u{1b}[2Jb\\n");
    }
}
