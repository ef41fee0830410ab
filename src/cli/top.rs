//! `lagwatch top`: the describe table refreshed in place, worst first, with
//! keys to sort (`s`), filter (`/`), refresh (`r`) and quit (`q`). When the
//! output is not a terminal it prints a plain block per refresh instead
//! (`--count N` stops after N).

use std::io::{IsTerminal as _, Write as _};

use tokio::sync::mpsc;

use super::table::{self, severity_key, Style};
use super::view::{Selection, View};
use super::{color_wanted, Backend, Target};

/// The orders `s` cycles through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sort {
    Worst,
    Lag,
    Name,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Worst => Sort::Lag,
            Sort::Lag => Sort::Name,
            Sort::Name => Sort::Worst,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Sort::Worst => "worst first",
            Sort::Lag => "most messages behind",
            Sort::Name => "name",
        }
    }
}

/// Orders and filters the groups of `view` for display.
fn arrange(view: &mut View, sort: Sort, filter: &str) {
    let needle = filter.to_lowercase();
    view.groups.retain(|g| {
        needle.is_empty()
            || g.group.to_lowercase().contains(&needle)
            || g.source.to_lowercase().contains(&needle)
    });
    match sort {
        Sort::Worst => view
            .groups
            .sort_by_key(|g| std::cmp::Reverse(severity_key(g))),
        Sort::Lag => view
            .groups
            .sort_by_key(|g| std::cmp::Reverse(g.lag.unwrap_or(0))),
        Sort::Name => view
            .groups
            .sort_by(|a, b| (&a.source, &a.group).cmp(&(&b.source, &b.group))),
    }
}

/// Runs `top`; returns the exit code.
pub async fn top(target: Target, selection: Selection, count: Option<u64>) -> u8 {
    let backend = match Backend::connect(&target, true).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("lagwatch: {e}");
            return 1;
        }
    };
    let code = if std::io::stdout().is_terminal() && count.is_none() {
        interactive(&backend, &target, &selection).await
    } else {
        plain(&backend, &target, &selection, count).await
    };
    backend.stop().await;
    code
}

/// Not a terminal: a block per refresh, worst first, no colour codes.
async fn plain(
    backend: &Backend,
    target: &Target,
    selection: &Selection,
    count: Option<u64>,
) -> u8 {
    let mut n = 0u64;
    loop {
        match backend.api.view(selection, false).await {
            Ok(mut v) => {
                arrange(&mut v, Sort::Worst, "");
                println!(
                    "--- lagwatch top, data at {}, {} groups, worst first",
                    v.at,
                    v.groups.len()
                );
                print!(
                    "{}",
                    table::render(
                        &v,
                        Style {
                            color: color_wanted()
                        }
                    )
                );
            }
            Err(e) => println!("--- lagwatch top: {e}"),
        }
        let _ = std::io::stdout().flush();
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return 0;
        }
        tokio::select! {
            () = tokio::time::sleep(target.interval) => {}
            () = crate::shutdown_signal() => return 0,
        }
    }
}

/// Restores the terminal however `interactive` ends.
struct Screen;

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        crossterm::terminal::enable_raw_mode()?;
        crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::EnterAlternateScreen,
            crossterm::cursor::Hide
        )?;
        Ok(Screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::cursor::Show,
            crossterm::terminal::LeaveAlternateScreen
        );
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

enum Key {
    Quit,
    Char(char),
    Backspace,
    Enter,
    Escape,
}

/// Key presses, read on a thread of their own.
fn keys() -> mpsc::Receiver<Key> {
    use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            let Event::Key(k) = ev else { continue };
            if k.kind == KeyEventKind::Release {
                continue;
            }
            let key = match k.code {
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Quit,
                KeyCode::Char(c) => Key::Char(c),
                KeyCode::Backspace => Key::Backspace,
                KeyCode::Enter => Key::Enter,
                KeyCode::Esc => Key::Escape,
                _ => continue,
            };
            if tx.blocking_send(key).is_err() {
                return;
            }
        }
    });
    rx
}

async fn interactive(backend: &Backend, target: &Target, selection: &Selection) -> u8 {
    let screen = match Screen::enter() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lagwatch: cannot use the terminal ({e}); printing plain blocks");
            return plain(backend, target, selection, None).await;
        }
    };
    let mut keys = keys();
    let mut sort = Sort::Worst;
    let mut filter = String::new();
    let mut typing: Option<String> = None;
    let mut last: Option<Result<View, String>> = None;
    let mut refresh = true;
    loop {
        if refresh {
            last = Some(backend.api.view(selection, false).await);
            refresh = false;
        }
        draw(last.as_ref(), sort, &filter, typing.as_deref());
        let key = tokio::select! {
            k = keys.recv() => k,
            () = tokio::time::sleep(target.interval) => { refresh = true; continue; }
        };
        let Some(key) = key else { break };
        match (&mut typing, key) {
            (Some(t), Key::Char(c)) => t.push(c),
            (Some(t), Key::Backspace) => {
                t.pop();
            }
            (Some(_), Key::Enter) => filter = typing.take().unwrap_or_default(),
            (Some(_), Key::Escape) => typing = None,
            (Some(_), _) => {}
            (None, Key::Quit | Key::Char('q') | Key::Escape) => break,
            (None, Key::Char('s')) => sort = sort.next(),
            (None, Key::Char('r')) => refresh = true,
            (None, Key::Char('/')) => typing = Some(String::new()),
            (None, _) => {}
        }
    }
    drop(screen);
    0
}

/// Redraws the whole screen (raw mode: lines end in CR LF).
fn draw(view: Option<&Result<View, String>>, sort: Sort, filter: &str, typing: Option<&str>) {
    let mut text = String::from("\u{1b}[H\u{1b}[2J");
    let head = format!(
        "lagwatch top — sort: {} (s) — filter: {} (/) — r refresh — q quit",
        sort.as_str(),
        if filter.is_empty() { "none" } else { filter }
    );
    text.push_str(&head);
    text.push('\n');
    if let Some(t) = typing {
        text.push_str(&format!("filter> {t}\n"));
    }
    match view {
        Some(Ok(v)) => {
            let mut v = v.clone();
            arrange(&mut v, sort, filter);
            text.push_str(&format!("data at {}, {} groups\n", v.at, v.groups.len()));
            text.push_str(&table::render(
                &v,
                Style {
                    color: color_wanted(),
                },
            ));
        }
        Some(Err(e)) => text.push_str(&format!("cannot read: {e}\n")),
        None => text.push_str("loading…\n"),
    }
    let mut out = std::io::stdout();
    let _ = out.write_all(text.replace('\n', "\r\n").as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::super::view::Group;
    use super::*;

    fn g(name: &str, status: &str, lag: u64) -> Group {
        Group {
            source: "k".into(),
            group: name.into(),
            status: Some(status.into()),
            lag: Some(lag),
            ..Group::default()
        }
    }

    #[test]
    fn worst_first_then_by_lag_then_by_name_with_a_filter() {
        let mut v = View {
            groups: vec![
                g("a-ok", "OK", 900),
                g("b-stop", "STOP", 5),
                g("c-warn", "WARN", 50),
            ],
            ..View::default()
        };
        arrange(&mut v, Sort::Worst, "");
        let names: Vec<&str> = v.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["b-stop", "c-warn", "a-ok"]);
        arrange(&mut v, Sort::Lag, "");
        assert_eq!(v.groups[0].group, "a-ok");
        arrange(&mut v, Sort::Name, "WARN");
        let names: Vec<&str> = v.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["c-warn"]);
    }
}
