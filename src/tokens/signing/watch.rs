//! Keys without restarts: a thread polls the keys folder and swaps in a new
//! ring when its listing changes, so the issuer, the JWKS, introspection,
//! admin authentication and `/readyz` all see added and removed keys.
//!
//! Polling, not inotify: a Kubernetes secret mount updates by swapping a
//! `..data` symbolic link, which file watchers on the folder miss (the files
//! they watch never change; the link they resolve through does). Listing a
//! handful of files every two seconds costs nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use super::files::{Listing, listing, load_dir, load_or_generate};
use super::ring::KeyState;
use super::{KeyRing, Schedule, SigningAlg, SigningError, Timing};
use crate::worker::Worker;

/// How often the folder is listed.
pub const POLL: Duration = Duration::from_secs(2);

/// The same problem is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The ring every reader loads; swapped whole when the folder changes.
pub type LiveRing = Arc<ArcSwap<KeyRing>>;

/// The keys folder as this replica follows it.
pub struct KeyWatch {
    dir: PathBuf,
    schedule: Schedule,
    live: LiveRing,
    listing: Listing,
    /// Each key's state at the last poll, to log what changed.
    states: Vec<(String, &'static str)>,
    warned: Option<(Instant, String)>,
}

impl KeyWatch {
    /// Loads the folder (generating a first key into an empty one) and builds
    /// the first ring.
    pub fn start(dir: &Path, alg: SigningAlg, timing: Timing) -> Result<Self, SigningError> {
        // Listed first: a file added while loading shows as a change at the
        // first poll (as does a key generated here, harmlessly).
        let listing = listing(dir)?;
        let keys = load_or_generate(dir, alg)?;
        let now = SystemTime::now();
        let mut schedule = Schedule::new(timing);
        let ring = schedule.ring(keys, now);
        let states = labels(&ring, now);
        Ok(Self {
            dir: dir.to_owned(),
            schedule,
            live: Arc::new(ArcSwap::from_pointee(ring)),
            listing,
            states,
            warned: None,
        })
    }

    /// The ring readers load.
    pub fn live(&self) -> LiveRing {
        self.live.clone()
    }

    /// Polls on a background thread until the returned worker is dropped.
    pub fn spawn(mut self) -> std::io::Result<Worker> {
        Worker::periodic("signing-keys", POLL, move |_| {
            self.poll(SystemTime::now());
        })
    }

    /// Reads the folder again if its listing changed, then logs keys whose
    /// state changed. A folder that cannot be read, or holds a bad or
    /// half-written file, or no key at all, keeps the current ring.
    pub fn poll(&mut self, now: SystemTime) {
        match self.reload_if_changed(now) {
            Ok(()) => self.warned = None,
            Err(why) => self.warn(why),
        }
        let states = labels(&self.live.load(), now);
        for (kid, state) in &states {
            match self.states.iter().find(|(k, _)| k == kid) {
                None => tracing::info!(%kid, state, "signing key picked up"),
                Some((_, was)) if was != state => {
                    tracing::info!(%kid, state, was, "signing key changed state");
                }
                Some(_) => {}
            }
        }
        for (kid, _) in &self.states {
            if !states.iter().any(|(k, _)| k == kid) {
                tracing::warn!(%kid, "signing key removed from the folder: out of the JWKS, its tokens are refused");
            }
        }
        self.states = states;
    }

    fn reload_if_changed(&mut self, now: SystemTime) -> Result<(), String> {
        let current = listing(&self.dir).map_err(|e| e.to_string())?;
        if current == self.listing {
            return Ok(());
        }
        let keys = load_dir(&self.dir).map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Err(format!(
                "keys folder {} holds no signing key; still using the keys loaded before",
                self.dir.display()
            ));
        }
        let ring = self.schedule.ring(keys, now);
        self.live.store(Arc::new(ring));
        self.listing = current;
        Ok(())
    }

    fn warn(&mut self, why: String) {
        let quiet = self
            .warned
            .as_ref()
            .is_some_and(|(at, last)| *last == why && at.elapsed() < WARN_EVERY);
        if !quiet {
            tracing::warn!(error = %why, "could not reload the signing keys; keeping the current ones");
            self.warned = Some((Instant::now(), why));
        }
    }
}

fn labels(ring: &KeyRing, now: SystemTime) -> Vec<(String, &'static str)> {
    ring.states(now)
        .map(|(k, s): (_, KeyState)| (k.kid.clone(), s.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::signing::generate_into;

    fn watch(dir: &Path) -> KeyWatch {
        let timing = Timing::new(Duration::from_secs(300), Duration::from_secs(60));
        KeyWatch::start(dir, SigningAlg::Es256, timing).unwrap()
    }

    fn kids(live: &LiveRing, now: SystemTime) -> Vec<String> {
        live.load().published(now).map(|k| k.kid.clone()).collect()
    }

    #[test]
    fn added_and_removed_files_are_picked_up_by_a_poll() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = watch(dir.path());
        let live = w.live();
        let now = SystemTime::now();
        let first = kids(&live, now);
        assert_eq!(first.len(), 1, "a first key was generated");
        let new = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        w.poll(now);
        assert_eq!(kids(&live, now), [new.kid.clone(), first[0].clone()]);
        // Still pending: the first key signs.
        assert_eq!(live.load().signer(now).unwrap().kid, first[0]);
        std::fs::remove_file(dir.path().join(format!("{}.pem", first[0]))).unwrap();
        w.poll(now);
        assert_eq!(kids(&live, now), std::slice::from_ref(&new.kid));
        assert_eq!(live.load().signer(now).unwrap().kid, new.kid);
    }

    #[test]
    fn a_folder_that_fails_to_load_keeps_the_current_ring() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = watch(dir.path());
        let live = w.live();
        let now = SystemTime::now();
        let before = kids(&live, now);
        let junk = dir.path().join("half-written.pem");
        std::fs::write(&junk, "-----BEGIN PRIVATE KEY-----\nAAA").unwrap();
        w.poll(now);
        assert_eq!(kids(&live, now), before);
        // Once the file is whole (here: gone), the folder loads again.
        std::fs::remove_file(&junk).unwrap();
        let new = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        w.poll(now);
        assert_eq!(kids(&live, now)[0], new.kid);
        // An emptied folder keeps the keys too: nothing would sign.
        for k in kids(&live, now) {
            std::fs::remove_file(dir.path().join(format!("{k}.pem"))).unwrap();
        }
        w.poll(now);
        assert_eq!(kids(&live, now).len(), 2);
    }
}
