//! Allow/deny regex lists, compiled once per source.

use regex::RegexSet;

use crate::config::Filter;

/// A name passes when it matches some allow pattern (or the allow list is empty)
/// and no deny pattern. Patterns are unanchored, as in Burrow and kminion; write
/// `^name$` for an exact match.
#[derive(Clone, Debug)]
pub struct NameFilter {
    allow: Option<RegexSet>,
    deny: Option<RegexSet>,
}

impl NameFilter {
    /// Compiles a filter validate() has already checked; an invalid pattern
    /// (impossible after validation) yields a filter that refuses everything.
    pub fn new(f: &Filter) -> NameFilter {
        let set = |pats: &Vec<String>, empty_means: Option<RegexSet>| {
            if pats.is_empty() {
                empty_means
            } else {
                Some(RegexSet::new(pats).unwrap_or_else(|_| {
                    RegexSet::new(["$^"]).expect("a constant pattern compiles")
                }))
            }
        };
        NameFilter {
            allow: set(&f.allow, None),
            deny: set(&f.deny, None),
        }
    }

    pub fn allows(&self, name: &str) -> bool {
        self.allow.as_ref().is_none_or(|a| a.is_match(name))
            && !self.deny.as_ref().is_some_and(|d| d.is_match(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(allow: &[&str], deny: &[&str]) -> NameFilter {
        NameFilter::new(&Filter {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn an_empty_filter_allows_everything() {
        assert!(f(&[], &[]).allows("orders"));
    }

    #[test]
    fn deny_wins_over_allow() {
        let filter = f(&["^orders"], &["-dlq$"]);
        assert!(filter.allows("orders.created"));
        assert!(!filter.allows("orders-dlq"));
        assert!(!filter.allows("payments"));
    }
}
