//! The state file (`state.path`): what must survive a restart so that no
//! incident is left open at a receiver and no notification is lost: the open
//! incidents (with their ids), the notifications not yet delivered, and the
//! dead letters (notifications given up on, kept for inspection).
//!
//! The engine and the notifier report changes here; one writer task writes the
//! whole document atomically (write a temporary file, fsync, rename, fsync the
//! directory), at most every [`DEBOUNCE`] and once more at shutdown. A missing
//! file is a fresh start; an unreadable, oversized or corrupt one is moved
//! aside (`<path>.corrupt`) with a warning, never a crash.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::alert::{Incident, Notification};
use crate::model::Millis;

/// The document's format version; a newer one is refused (moved aside).
pub const VERSION: u32 = 1;
/// A state file larger than this is not lagwatch's (or is corrupt).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Dead letters kept, newest last.
pub const MAX_DEAD_LETTERS: usize = 200;
/// Changes are written at most this often.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// An open incident and who hears about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub incident: Incident,
    pub receivers: Vec<String>,
}

/// A notification waiting for one receiver, with its delivery so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub receiver: String,
    pub notification: Notification,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the first attempt was made (None: not tried yet).
    pub first_attempt: Option<Millis>,
}

/// A notification given up on: retries exhausted, or refused by the receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub receiver: String,
    pub notification: Notification,
    /// The last failure's reason label (`http_5xx`, `timeout`, `http_4xx`, ...).
    pub reason: String,
    pub detail: String,
    pub attempts: u32,
    pub first_attempt: Option<Millis>,
    pub given_up_at: Millis,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub version: u32,
    pub written_at: Millis,
    pub incidents: Vec<OpenIncident>,
    pub pending: Vec<Pending>,
    pub dead_letters: Vec<DeadLetter>,
}

/// See the module docs. Without a path it only keeps the dead letters in
/// memory (for the API).
#[derive(Debug)]
pub struct StateStore {
    path: Option<PathBuf>,
    doc: Mutex<Document>,
    /// Something changed that must be written.
    dirty: Notify,
}

impl StateStore {
    /// Reads `path` (if any) and returns the store and what was in the file.
    pub fn open(path: Option<PathBuf>) -> (Arc<StateStore>, Document) {
        let loaded = path.as_deref().map(load).unwrap_or_default();
        let store = StateStore {
            path,
            doc: Mutex::new(Document {
                version: VERSION,
                dead_letters: loaded.dead_letters.clone(),
                ..Document::default()
            }),
            dirty: Notify::new(),
        };
        (Arc::new(store), loaded)
    }

    pub fn persistent(&self) -> bool {
        self.path.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Document> {
        self.doc.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open incidents now. Written when the set of incidents or their
    /// lifecycle changed (their latest observation rides along).
    pub fn set_incidents(&self, incidents: Vec<OpenIncident>) {
        let changed = {
            let mut d = self.lock();
            let before: Vec<_> = d.incidents.iter().map(lifecycle).collect();
            let after: Vec<_> = incidents.iter().map(lifecycle).collect();
            d.incidents = incidents;
            before != after
        };
        if changed {
            self.dirty.notify_one();
        }
    }

    /// The notifications now waiting for `receiver`.
    pub fn set_pending(&self, receiver: &str, pending: Vec<Pending>) {
        {
            let mut d = self.lock();
            d.pending.retain(|p| p.receiver != receiver);
            d.pending.extend(pending);
        }
        self.dirty.notify_one();
    }

    pub fn add_dead_letter(&self, letter: DeadLetter) {
        {
            let mut d = self.lock();
            d.dead_letters.push(letter);
            let over = d.dead_letters.len().saturating_sub(MAX_DEAD_LETTERS);
            d.dead_letters.drain(..over);
        }
        self.dirty.notify_one();
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead_letters.clone()
    }

    /// Writes the document now (no-op without a path).
    pub fn write_now(&self) {
        let Some(path) = &self.path else { return };
        let doc = {
            let mut d = self.lock();
            d.version = VERSION;
            d.written_at = Millis::now();
            d.clone()
        };
        if let Err(e) = write_atomically(path, &doc) {
            tracing::error!(path = %path.display(), error = %e, "cannot write the state file; open incidents and undelivered notifications would not survive a restart");
        }
    }

    /// Writes on every change (debounced) until `stop`, then once more.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        if self.path.is_none() {
            return;
        }
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = self.dirty.notified() => {}
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = tokio::time::sleep(DEBOUNCE) => {}
            }
            let this = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || this.write_now()).await {
                tracing::error!(error = %e, "the state writer failed");
            }
        }
    }
}

/// What decides whether an incident changed enough to write the file.
fn lifecycle(i: &OpenIncident) -> (uuid::Uuid, Millis, Option<Millis>, Option<Millis>) {
    let inc = &i.incident;
    (
        inc.id,
        inc.last_notified,
        inc.clearing_since,
        inc.resolved_at,
    )
}

/// The document in `path`: empty when there is none; moved aside with a
/// warning when it cannot be used.
fn load(path: &Path) -> Document {
    match read(path) {
        Ok(Some(doc)) => {
            tracing::info!(
                path = %path.display(),
                incidents = doc.incidents.len(),
                pending = doc.pending.len(),
                dead_letters = doc.dead_letters.len(),
                "state file read: resuming open incidents and undelivered notifications"
            );
            doc
        }
        Ok(None) => Document::default(),
        Err(why) => {
            let aside = path.with_extension("corrupt");
            let moved = std::fs::rename(path, &aside).map_or_else(
                |e| format!("could not move it aside: {e}"),
                |()| format!("moved to {}", aside.display()),
            );
            tracing::warn!(
                path = %path.display(),
                error = %why,
                "the state file cannot be used ({moved}); starting fresh: incidents open before the restart will open again with new ids if their condition still holds"
            );
            Document::default()
        }
    }
}

fn read(path: &Path) -> Result<Option<Document>, String> {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!("larger than {} MiB", MAX_BYTES / 1024 / 1024));
    }
    let doc: Document =
        serde_json::from_slice(&bytes).map_err(|e| format!("not a lagwatch state file: {e}"))?;
    if doc.version > VERSION {
        return Err(format!(
            "written by a newer lagwatch (format {}; this one reads {VERSION})",
            doc.version
        ));
    }
    Ok(Some(doc))
}

/// Temporary file, fsync, rename over `path`, fsync the directory: a crash at
/// any point leaves either the old document or the new one, never half.
fn write_atomically(path: &Path, doc: &Document) -> std::io::Result<()> {
    use std::io::Write as _;
    let bytes = serde_json::to_vec(doc).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_a_fresh_start_and_a_written_one_reads_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.json");
        let (store, loaded) = StateStore::open(Some(path.clone()));
        assert_eq!(loaded, Document::default());
        store.write_now();
        let (_, again) = StateStore::open(Some(path));
        assert_eq!(again.version, VERSION);
        assert!(again.incidents.is_empty());
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_moved_aside_and_never_a_crash() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (name, content) in [
            ("garbage.json", b"{not json".to_vec()),
            ("newer.json", br#"{"version": 99, "written_at": 0, "incidents": [], "pending": [], "dead_letters": []}"#.to_vec()),
            ("huge.json", vec![b' '; (MAX_BYTES + 10) as usize]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
            let (_, loaded) = StateStore::open(Some(path.clone()));
            assert_eq!(loaded, Document::default(), "{name}");
            assert!(!path.exists(), "{name} left in place");
            assert!(path.with_extension("corrupt").exists(), "{name} not kept aside");
        }
    }

    #[test]
    fn dead_letters_are_bounded_keeping_the_newest() {
        let (store, _) = StateStore::open(None);
        assert!(!store.persistent());
        let n = crate::alert::tests_support::notification();
        for i in 0..(MAX_DEAD_LETTERS + 5) {
            store.add_dead_letter(DeadLetter {
                receiver: "r".into(),
                notification: n.clone(),
                reason: "http_5xx".into(),
                detail: format!("{i}"),
                attempts: 1,
                first_attempt: None,
                given_up_at: Millis(0),
            });
        }
        let d = store.dead_letters();
        assert_eq!(d.len(), MAX_DEAD_LETTERS);
        assert_eq!(d.last().map(|l| l.detail.as_str()), Some("204"));
    }
}
