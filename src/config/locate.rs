//! Maps dotted config paths (`sources[1].kafka.poll_interval`) to the 1-based line
//! of the YAML text where that key or item starts, from the parser's event marks.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

#[derive(Debug, Default)]
pub(super) struct LineMap {
    lines: HashMap<String, usize>,
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
    /// A node whose path cannot be written (a complex key): its children are not mapped.
    Opaque,
}

#[derive(Default)]
struct Builder {
    frames: Vec<Frame>,
    lines: HashMap<String, usize>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Builder {
    /// Path of a value node starting now, and whether it is a mapping key.
    fn position(&self) -> Option<(String, bool)> {
        match self.frames.last() {
            None => Some((String::new(), false)),
            Some(Frame::Map { key: None, .. }) => Some((String::new(), true)),
            Some(Frame::Map { path, key: Some(k) }) => Some((join(path, k), false)),
            Some(Frame::Seq { path, next }) => Some((format!("{path}[{next}]"), false)),
            Some(Frame::Opaque) => None,
        }
    }

    /// A value node finished: advance the parent.
    fn done(&mut self) {
        match self.frames.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { next, .. }) => *next += 1,
            _ => {}
        }
    }

    fn record(&mut self, path: String, line: usize) {
        self.lines.entry(path).or_insert(line);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => match self.position() {
                Some((_, true)) => {
                    if let Some(Frame::Map { path, key }) = self.frames.last_mut() {
                        let p = join(path, &value);
                        *key = Some(value);
                        self.record(p, line);
                    }
                }
                Some((p, false)) => {
                    self.record(p, line);
                    self.done();
                }
                None => {}
            },
            Event::Alias(_) => {
                if let Some((p, false)) = self.position() {
                    self.record(p, line);
                    self.done();
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let frame = match self.position() {
                    Some((p, false)) => {
                        self.record(p.clone(), line);
                        if is_map {
                            Frame::Map { path: p, key: None }
                        } else {
                            Frame::Seq { path: p, next: 0 }
                        }
                    }
                    _ => Frame::Opaque,
                };
                self.frames.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                self.done();
            }
            _ => {}
        }
    }
}

impl LineMap {
    /// Best effort: a text the parser rejects yields an empty map.
    pub(super) fn build(text: &str) -> LineMap {
        let mut b = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut b, false).is_err() {
            return LineMap::default();
        }
        LineMap { lines: b.lines }
    }

    /// The line of `path`, or of its nearest ancestor the file mentions.
    pub(super) fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}
