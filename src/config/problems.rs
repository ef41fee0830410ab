//! The one collector of config problems: every check of every section pushes
//! into a [`Problems`] at a dotted path ([`At`]), so the file's problems are all
//! reported at once.

use std::fmt;

use super::Problem;

/// A dotted path into the config file: `sources[1].kafka.poll_interval`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct At(String);

impl At {
    /// The whole file.
    pub fn root() -> At {
        At(String::new())
    }
    /// A key below this path.
    pub fn key(&self, key: &str) -> At {
        if self.0.is_empty() {
            At(key.to_string())
        } else {
            At(format!("{}.{key}", self.0))
        }
    }
    /// An item of the list at this path.
    pub fn index(&self, i: usize) -> At {
        At(format!("{}[{i}]", self.0))
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every problem found so far, in the order found.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub fn push(&mut self, at: &At, message: impl Into<String>) {
        self.0.push(Problem {
            path: at.0.clone(),
            line: None,
            message: message.into(),
        });
    }

    /// Records `result`'s error at `at`; the value when there was none.
    pub fn check<T>(&mut self, at: &At, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(m) => {
                self.push(at, m);
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}
