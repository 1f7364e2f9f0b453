//! What `signing-key list` and `signing-key revoke` do. The CLI is another
//! process than the servers, so it reads the folder as a replica starting now
//! would, except that each file's mtime is when it was published (running
//! replicas see a new file within seconds).

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::files::{REVOKED_SUFFIX, load_revoked};
use super::{KeyState, PICKUP, Schedule, SigningError, SigningKey, Timing, load_dir};

/// One row of `signing-key list`.
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: &'static str,
    /// The file's modification time.
    pub created_at: DateTime<Utc>,
    /// `pending`, `active`, `retiring`, `retired` or `revoked`.
    pub state: &'static str,
    /// `retiring`: when it leaves the JWKS; `pending`: when it starts to
    /// sign; otherwise null.
    pub until: Option<DateTime<Utc>>,
}

impl KeyInfo {
    fn new(key: &SigningKey, state: &'static str, until: Option<SystemTime>) -> Self {
        Self {
            kid: key.kid.clone(),
            alg: key.alg.as_str(),
            created_at: key.created.into(),
            state,
            until: until.map(Into::into),
        }
    }

    fn of(key: &SigningKey, state: KeyState) -> Self {
        let until = match state {
            KeyState::Pending { activates } => Some(activates),
            KeyState::Retiring { until } => Some(until),
            KeyState::Active | KeyState::Retired => None,
        };
        Self::new(key, state.as_str(), until)
    }
}

/// Every key in the folder, revoked ones included, newest first.
pub fn describe(dir: &Path, timing: Timing, now: SystemTime) -> Result<Vec<KeyInfo>, SigningError> {
    let ring = Schedule::new(timing)
        .with_pickup(Duration::ZERO)
        .ring(load_dir(dir)?, now);
    let mut rows: Vec<(SystemTime, KeyInfo)> = ring
        .states(now)
        .map(|(k, s)| (k.created, KeyInfo::of(k, s)))
        .collect();
    for key in load_revoked(dir)? {
        rows.push((key.created, KeyInfo::new(&key, "revoked", None)));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// Revokes `kid`: its file becomes `{name}.revoked`, which every replica
/// sees as the key leaving the folder. Revoking the key that signs makes the
/// newest remaining key sign at once, here and on replicas started later
/// (its file's time is moved back past the delay). The last key is refused.
pub fn revoke(
    dir: &Path,
    kid: &str,
    timing: Timing,
    now: SystemTime,
) -> Result<KeyInfo, SigningError> {
    let keys = load_dir(dir)?;
    let Some(target) = keys.iter().find(|k| k.kid == kid) else {
        let why = if load_revoked(dir)?.iter().any(|k| k.kid == kid) {
            format!("signing key {kid} is already revoked")
        } else {
            format!("no signing key {kid} in {}", dir.display())
        };
        return Err(SigningError::Refused(why));
    };
    let Some(successor) = keys.iter().find(|k| k.kid != kid) else {
        return Err(SigningError::Refused(format!(
            "refusing to revoke {kid}: it is the last signing key; generate another first"
        )));
    };
    let (successor, successor_created) = (successor.path.clone(), successor.created);
    let (path, info) = (target.path.clone(), KeyInfo::new(target, "revoked", None));
    let was_signer = Schedule::new(timing)
        .with_pickup(Duration::ZERO)
        .ring(keys, now)
        .signer(now)
        .is_some_and(|k| k.kid == kid);
    let io = |path: &Path, e: std::io::Error| SigningError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    if was_signer {
        let past_delay = now
            .checked_sub(timing.delay + PICKUP)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        std::fs::File::open(&successor)
            .and_then(|f| f.set_modified(successor_created.min(past_delay)))
            .map_err(|e| io(&successor, e))?;
    }
    let mut revoked = path.clone().into_os_string();
    revoked.push(".");
    revoked.push(REVOKED_SUFFIX);
    std::fs::rename(&path, &revoked).map_err(|e| io(&path, e))?;
    tracing::info!(%kid, signer = was_signer, "signing key revoked");
    Ok(info)
}
