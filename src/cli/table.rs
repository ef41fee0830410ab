//! Tables for the terminal: a row per group (lagwatch's columns), and with
//! `--partitions` the per-partition layout of `kafka-consumer-groups
//! --describe` (GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG) with
//! lagwatch's columns after it. Names are escaped: a group named with terminal
//! escape sequences cannot rewrite the screen.

use super::view::{Group, Partition, TimeLag, View};
use crate::telemetry::Escaped;

/// How a table is written.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// ANSI colours for statuses (a terminal, without NO_COLOR).
    pub color: bool,
}

/// The group table, with a line per source that is down, and the partition
/// rows of each group when they were read.
pub fn render(view: &View, style: Style) -> String {
    let mut out = String::new();
    for s in &view.sources {
        if !s.polled {
            out.push_str(&format!("source {}: not polled yet\n", Escaped(&s.name)));
        } else if !s.up {
            out.push_str(&format!(
                "source {} is DOWN: {}; its groups show their last known values\n",
                Escaped(&s.name),
                Escaped(s.last_error.as_ref().map_or("", |e| e.message.as_str()))
            ));
        }
    }
    let header = [
        "SOURCE", "GROUP", "STATUS", "LAG", "BEHIND", "GROWTH/S", "ETA", "MEMBERS", "ADVICE",
    ];
    let rows: Vec<Vec<String>> = view.groups.iter().map(group_row).collect();
    out.push_str(&columns(&header, &rows, &[3, 4, 5, 6, 7], style, 2));
    for g in &view.groups {
        if let Some(why) = &g.diagnosis {
            out.push_str(&format!(
                "why {}: {}\n",
                super::check::name(g),
                Escaped(why)
            ));
        }
    }
    let with_partitions: Vec<&Group> = view
        .groups
        .iter()
        .filter(|g| !g.partition_rows.is_empty())
        .collect();
    if !with_partitions.is_empty() {
        out.push('\n');
        let header = [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "BEHIND",
            "STATUS",
            "IN/S",
            "OUT/S",
        ];
        let rows: Vec<Vec<String>> = with_partitions
            .iter()
            .flat_map(|g| g.partition_rows.iter().map(|p| partition_row(g, p)))
            .collect();
        out.push_str(&columns(&header, &rows, &[2, 3, 4, 5, 6, 8, 9], style, 7));
    }
    out
}

fn group_row(g: &Group) -> Vec<String> {
    let group = match &g.stream {
        Some(s) => format!("{}/{}", Escaped(s), Escaped(&g.group)),
        None => Escaped(&g.group).to_string(),
    };
    let status = match (&g.status, g.stale) {
        (_, true) => format!("STALE {}", duration(Some(g.stale_seconds))),
        (Some(s), false) => s.clone(),
        (None, false) => "–".into(),
    };
    vec![
        Escaped(&g.source).to_string(),
        group,
        status,
        g.lag.map_or("–".into(), |l| l.to_string()),
        behind(g.lag_seconds.as_ref()),
        g.lag_growth.map_or("–".into(), |r| format!("{r:+.1}")),
        duration(g.eta_seconds),
        g.members.map_or("?".into(), |m| m.to_string()),
        advice(g),
    ]
}

fn partition_row(g: &Group, p: &Partition) -> Vec<String> {
    vec![
        Escaped(&g.group).to_string(),
        Escaped(&p.topic).to_string(),
        p.partition.map_or("–".into(), |n| n.to_string()),
        p.committed.map_or("-".into(), |c| c.to_string()),
        p.latest.to_string(),
        p.lag.to_string(),
        behind(Some(&p.lag_seconds)),
        if p.stale {
            format!("{} (stale)", p.status)
        } else {
            p.status.clone()
        },
        rate(p.produce_rate),
        rate(p.consume_rate),
    ]
}

/// The scale-out advice in a few words: `4 → 8 replicas (lag drain)`, or
/// why there is none (`not enough data`); the API has the full sentence.
fn advice(g: &Group) -> String {
    match &g.recommendation {
        Some(r) => match (r.current, r.recommended) {
            (Some(c), Some(n)) if c != n => {
                format!("{c} → {n} replicas ({})", r.reason.replace('_', " "))
            }
            _ => r.reason.replace('_', " "),
        },
        None => "–".into(),
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{r:.1}"))
}

/// A time lag with its quality: `12s` (exact), `~12s` (estimated), `≥ 5m`
/// (only a lower bound is known), `?` (nothing known).
pub fn behind(t: Option<&TimeLag>) -> String {
    let Some(t) = t else {
        return "?".into();
    };
    match t.seconds {
        Some(s) if t.quality == "exact" => duration(Some(s)),
        Some(s) => format!("~{}", duration(Some(s))),
        None if t.at_least_seconds > 0.0 => format!("≥ {}", duration(Some(t.at_least_seconds))),
        None => "?".into(),
    }
}

/// `42s`, `3m05s`, `2h10m`, `3d4h`; `–` for none.
pub fn duration(s: Option<f64>) -> String {
    let Some(s) = s.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "–".into();
    };
    let s = s.round() as u64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// Left-aligned text columns, right-aligned numeric ones (`numeric` indexes),
/// the status column (`status`) coloured when asked.
fn columns(
    header: &[&str],
    rows: &[Vec<String>],
    numeric: &[usize],
    style: Style,
    status: usize,
) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(width(c));
        }
    }
    let line = |cells: Vec<&str>, color: bool| {
        let mut l = String::new();
        let last = cells.len() - 1;
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - width(c));
            let shown = if color && i == status {
                paint(c)
            } else {
                (*c).to_string()
            };
            if numeric.contains(&i) {
                l.push_str(&pad);
                l.push_str(&shown);
            } else {
                l.push_str(&shown);
                if i < last {
                    l.push_str(&pad);
                }
            }
            if i < last {
                l.push_str("  ");
            }
        }
        l.push('\n');
        l
    };
    let mut out = line(header.to_vec(), false);
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect(), style.color));
    }
    out
}

/// A status in its colour: green OK, yellow WARN/STALL/REWIND, red STOP/ERR.
fn paint(status: &str) -> String {
    let code = match status.split_whitespace().next().unwrap_or("") {
        "OK" => "32",
        "WARN" | "STALL" | "REWIND" | "STALE" => "33",
        "STOP" | "ERR" => "31",
        _ => return status.to_string(),
    };
    format!("\u{1b}[{code}m{status}\u{1b}[0m")
}

/// Whether a group row is worse than another, for `top`'s default order:
/// status first, then time behind, then messages behind.
pub fn severity_key(g: &Group) -> (u8, u64, u64) {
    let status = match g.status.as_deref() {
        Some("ERR") => 6,
        Some("STOP") => 5,
        Some("STALL") => 4,
        Some("REWIND") => 3,
        Some("WARN") => 2,
        Some("OK") => 1,
        _ => 0,
    };
    let behind = g
        .lag_seconds
        .as_ref()
        .map_or(0.0, |t| t.seconds.unwrap_or(t.at_least_seconds));
    (status, behind as u64, g.lag.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_lag_says_its_quality() {
        let t = |seconds, quality: &str, at_least| TimeLag {
            seconds,
            quality: quality.into(),
            at_least_seconds: at_least,
            at_most_seconds: None,
        };
        assert_eq!(behind(Some(&t(Some(12.0), "exact", 12.0))), "12s");
        assert_eq!(
            behind(Some(&t(Some(185.0), "interpolated", 185.0))),
            "~3m05s"
        );
        assert_eq!(behind(Some(&t(None, "unknown", 7200.0))), "≥ 2h00m");
        assert_eq!(behind(Some(&t(None, "unknown", 0.0))), "?");
        assert_eq!(behind(None), "?");
    }

    #[test]
    fn columns_align_and_names_are_escaped() {
        let g = Group {
            source: "k".into(),
            group: "evil\u{1b}[2J".into(),
            status: Some("STOP".into()),
            lag: Some(1200),
            ..Group::default()
        };
        let view = View {
            groups: vec![g],
            ..View::default()
        };
        let text = render(&view, Style { color: false });
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("evil\\u{1b}[2J"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("SOURCE  GROUP"), "{text}");
        let colored = render(&view, Style { color: true });
        assert!(colored.contains("\u{1b}[31mSTOP\u{1b}[0m"), "{colored}");
    }
}
