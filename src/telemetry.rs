//! Logging setup: human text by default, JSON lines for Kubernetes. `RUST_LOG`
//! overrides the configured level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Safe to call once; later calls are ignored.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.fmt_fields(escaping_fields()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// The text format's field formatter: every field, and the message, written
/// through [`Escaped`], so that a broker-supplied name or a broker's error text
/// in any field (`group = %name`, `error = %e`) cannot forge a log line.
pub fn escaping_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            write!(w, "{}", Escaped(&text))
        } else {
            write!(w, "{}={}", field.name(), Escaped(&text))
        }
    })
    .delimited(" ")
}

/// A name that came from a broker (group, consumer, topic, stream), safe in a
/// text log line: control characters (a newline forging a second line, an
/// escape sequence rewriting the terminal) are written escaped, as `\n` or
/// `\u{1b}`. JSON logs escape on their own; this is for the text format.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            if c.is_control() {
                for e in c.escape_default() {
                    f.write_char(e)?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_names_cannot_forge_a_log_line() {
        let forged = "g\n2026-12-02T00:00:00Z  INFO source is up\u{1b}[2J";
        let shown = Escaped(forged).to_string();
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(
            shown.contains("\\n2026") && shown.contains("\\u{1b}[2J"),
            "{shown}"
        );
        assert_eq!(Escaped("orders.créés/ü").to_string(), "orders.créés/ü");
    }

    /// The text log as the daemon writes it, with names in Display fields, in
    /// error texts and in the message.
    #[test]
    fn text_log_lines_escape_every_field() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                if let Ok(mut v) = self.0.lock() {
                    v.extend_from_slice(b);
                }
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .fmt_fields(escaping_fields())
            .finish();
        let forged = "g\nFAKE ERROR lagwatch: all good\r";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(group = %forged, stream = forged, error = %format!("no {forged}"), "cannot read {forged}");
        });
        let text = String::from_utf8(buf.0.lock().map(|v| v.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.trim_end().chars().any(char::is_control), "{text}");
        for field in [
            "group=g\\nFAKE",
            "stream=\"g\\nFAKE",
            "error=no g\\nFAKE",
            "cannot read g\\nFAKE",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
    }
}
