//! When each key publishes, signs and retires on this replica (SPEC §9.3).
//!
//! A key found while running is published at once and signs after the
//! publication delay, counted from when this replica first saw it. A key
//! found at start-up has been published by every replica since its file's
//! mtime plus [`PICKUP`] at the latest, so a restart does not delay it again.
//! The newest key past its delay signs; the key it replaced stays published
//! one token lifetime plus a minute after it stopped. When nothing may sign
//! (a first start, or the signer's file was removed) the newest key signs at
//! once.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::SigningKey;
use super::ring::{KeyRing, Timeline};

/// How long a running replica may take to see a file added to the folder:
/// it polls every [`super::POLL`], well within this.
pub const PICKUP: Duration = Duration::from_secs(10);

/// The clock leeway added to a token lifetime before its key retires.
const RETIRE_LEEWAY: Duration = Duration::from_secs(60);

/// The two durations that drive the timelines.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// From publication to the first signature.
    pub delay: Duration,
    /// From the last signature to leaving the JWKS.
    pub retire_after: Duration,
}

impl Timing {
    /// `delay` before signing; retirement one `token_ttl` plus a minute after.
    pub fn new(delay: Duration, token_ttl: Duration) -> Self {
        Self {
            delay,
            retire_after: token_ttl + RETIRE_LEEWAY,
        }
    }
}

/// This replica's memory of the keys it has published.
pub struct Schedule {
    timing: Timing,
    /// By kid, for every key of the last ring.
    seen: HashMap<String, Timeline>,
    /// The last ring's kids, newest first.
    order: Vec<String>,
    /// At start-up, a key counts as published since its file's mtime plus
    /// this.
    pickup: Duration,
}

impl Schedule {
    /// A replica that has published nothing yet.
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            seen: HashMap::new(),
            order: Vec::new(),
            pickup: PICKUP,
        }
    }

    /// Counts keys found at start-up as published since their file's mtime
    /// plus `pickup` instead of [`PICKUP`].
    pub fn with_pickup(mut self, pickup: Duration) -> Self {
        self.pickup = pickup;
        self
    }

    /// The timings in use.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Builds the ring for `keys` (newest first) found in the folder at `now`.
    pub fn ring(&mut self, keys: Vec<SigningKey>, now: SystemTime) -> KeyRing {
        let retire_after = self.timing.retire_after;
        let previous_signer = self.signer_at(now);
        // What already happened stays as it was, whatever the folder does now.
        for timeline in self.seen.values_mut() {
            timeline.stops = timeline.stops.filter(|s| *s <= now);
        }
        let first_start = self.order.is_empty();
        let delay = self.timing.delay;
        let mut timelines: Vec<Timeline> = keys
            .iter()
            .map(|k| match self.seen.get(&k.kid) {
                Some(t) => *t,
                None => {
                    let published = if first_start {
                        now.min(k.created + self.pickup)
                    } else {
                        now
                    };
                    Timeline {
                        published,
                        activates: published + delay,
                        stops: None,
                    }
                }
            })
            .collect();
        set_stops(&mut timelines);
        let signer_lost = previous_signer.is_some_and(|kid| !keys.iter().any(|k| k.kid == kid));
        let nobody_signs = !timelines.iter().any(|t| signs(t, now));
        if (signer_lost || nobody_signs)
            && let Some(newest) = timelines.first_mut()
        {
            newest.activates = newest.activates.min(now);
            newest.stops = None;
            set_stops(&mut timelines);
        }
        self.order = keys.iter().map(|k| k.kid.clone()).collect();
        self.seen = keys
            .iter()
            .zip(&timelines)
            .map(|(k, t)| (k.kid.clone(), *t))
            .collect();
        KeyRing::from_parts(keys.into_iter().zip(timelines).collect(), retire_after)
    }

    /// The kid that signed at `now` in the last ring.
    fn signer_at(&self, now: SystemTime) -> Option<String> {
        self.order
            .iter()
            .find(|kid| self.seen.get(*kid).is_some_and(|t| signs(t, now)))
            .cloned()
    }
}

fn signs(t: &Timeline, now: SystemTime) -> bool {
    t.activates <= now && t.stops.is_none_or(|s| s > now)
}

/// A key stops signing when a newer key activates; a stop already recorded
/// is history and stays.
fn set_stops(timelines: &mut [Timeline]) {
    let mut newer_activates: Option<SystemTime> = None;
    for t in timelines.iter_mut() {
        if t.stops.is_none() {
            t.stops = newer_activates;
        }
        newer_activates = Some(newer_activates.map_or(t.activates, |n| n.min(t.activates)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tokens::signing::{KeyState, SigningAlg, generate_into};

    const TTL: Duration = Duration::from_secs(3600);
    const DELAY: Duration = Duration::from_secs(300);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Fresh keys whose files were written at `created` (newest first).
    fn keys(created: &[SystemTime]) -> (tempfile::TempDir, Vec<SigningKey>) {
        let dir = tempfile::tempdir().unwrap();
        let keys = created
            .iter()
            .map(|c| {
                let mut k = generate_into(dir.path(), SigningAlg::Es256).unwrap();
                k.created = *c;
                k
            })
            .collect();
        (dir, keys)
    }

    /// Parses the same files again (a reload), keeping the given order.
    fn again(dir: &tempfile::TempDir, like: &[&SigningKey]) -> Vec<SigningKey> {
        let mut loaded = crate::tokens::signing::load_dir(dir.path()).unwrap();
        like.iter()
            .map(|k| {
                let i = loaded.iter().position(|l| l.kid == k.kid).unwrap();
                let mut l = loaded.remove(i);
                l.created = k.created;
                l
            })
            .collect()
    }

    fn kid(ring: &KeyRing, now: SystemTime) -> String {
        ring.signer(now).unwrap().kid.clone()
    }

    #[test]
    fn a_new_key_is_published_at_once_and_signs_after_the_delay() {
        let t0 = SystemTime::now();
        let mut schedule = Schedule::new(Timing::new(DELAY, TTL));
        let (dir, old) = keys(&[t0 - secs(7200)]);
        let old_kid = old[0].kid.clone();
        let ring = schedule.ring(old, t0);
        assert_eq!(kid(&ring, t0), old_kid);
        // A new file, seen by this replica 100 s later.
        let t1 = t0 + secs(100);
        let mut new = generate_into(dir.path(), SigningAlg::Es256).unwrap();
        new.created = t1 - secs(1);
        let new_kid = new.kid.clone();
        let old = again(&dir, &[ring.all().next().unwrap().0]);
        let ring = schedule.ring(vec![new, old.into_iter().next().unwrap()], t1);
        assert!(ring.find(&new_kid, t1).is_some(), "published at once");
        assert_eq!(
            ring.states(t1).next().unwrap().1,
            KeyState::Pending {
                activates: t1 + DELAY
            }
        );
        assert_eq!(kid(&ring, t1 + DELAY - secs(1)), old_kid);
        assert_eq!(kid(&ring, t1 + DELAY), new_kid);
        // The replaced key stays published one lifetime + 60 s after it stopped.
        let stopped = t1 + DELAY;
        let until = stopped + TTL + secs(60);
        assert_eq!(
            ring.states(stopped).nth(1).unwrap().1,
            KeyState::Retiring { until }
        );
        assert!(ring.find(&old_kid, until - secs(1)).is_some());
        assert!(ring.find(&old_kid, until).is_none());
        assert_eq!(ring.states(until).nth(1).unwrap().1, KeyState::Retired);
        assert_eq!(ring.jwks(until)["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn at_start_up_a_key_counts_as_published_since_its_mtime_plus_pickup() {
        let now = SystemTime::now();
        let hours = |h: u64| secs(h * 3600);
        // c was written a minute ago: every replica published it 50 s ago at
        // the latest, so it signs in 250 s, not in 300. b has signed for
        // hours; a retired long ago.
        let (_dir, ks) = keys(&[now - secs(60), now - hours(4), now - hours(5)]);
        let (c, b, a) = (ks[0].kid.clone(), ks[1].kid.clone(), ks[2].kid.clone());
        let ring = Schedule::new(Timing::new(DELAY, TTL)).ring(ks, now);
        assert_eq!(kid(&ring, now), b);
        assert_eq!(kid(&ring, now + secs(250)), c);
        assert!(ring.find(&c, now).is_some());
        assert!(ring.find(&a, now).is_none());
        let states: Vec<_> = ring.states(now).map(|(_, s)| s.as_str()).collect();
        assert_eq!(states, ["pending", "active", "retired"]);
    }

    #[test]
    fn when_no_key_is_past_its_delay_the_newest_signs() {
        let now = SystemTime::now();
        let (_dir, ks) = keys(&[now, now - secs(5)]);
        let newest = ks[0].kid.clone();
        let ring = Schedule::new(Timing::new(DELAY, TTL)).ring(ks, now);
        assert_eq!(kid(&ring, now), newest);
    }

    #[test]
    fn removing_the_signer_makes_the_newest_remaining_key_sign_at_once() {
        let now = SystemTime::now();
        let hours = |h: u64| secs(h * 3600);
        // c pending, b active, a retiring (b took over 30 min ago).
        let (dir, ks) = keys(&[now, now - secs(1800) - DELAY, now - hours(2)]);
        let (c, b, a) = (ks[0].kid.clone(), ks[1].kid.clone(), ks[2].kid.clone());
        let mut schedule = Schedule::new(Timing::new(DELAY, TTL));
        let ring = schedule.ring(ks, now);
        assert_eq!(kid(&ring, now), b);
        assert!(ring.find(&a, now).is_some());
        let t = now + secs(10);
        let (kc, ka) = (ring.all().next().unwrap().0, ring.all().nth(2).unwrap().0);
        let ring = schedule.ring(again(&dir, &[kc, ka]), t);
        assert_eq!(kid(&ring, t), c, "no delay: it is an emergency");
        assert!(ring.find(&b, t).is_none());
        // a keeps the retirement it had.
        let retiring = ring.states(t).nth(1).unwrap().1;
        assert!(
            matches!(retiring, KeyState::Retiring { until } if until < now + hours(1)),
            "{retiring:?}"
        );
        // The older key signs again when it is all that is left.
        let ka = ring.all().nth(1).unwrap().0;
        let t = t + secs(10);
        let ring = schedule.ring(again(&dir, &[ka]), t);
        assert_eq!(kid(&ring, t), a);
    }

    #[test]
    fn the_jwks_is_serialised_once_per_published_set() {
        let now = SystemTime::now();
        let (_dir, ks) = keys(&[now]);
        let ring = Schedule::new(Timing::new(DELAY, TTL)).ring(ks, now);
        let first = ring.jwks_json(now);
        assert!(Arc::ptr_eq(&first, &ring.jwks_json(now)));
        assert_eq!(first.json, ring.jwks(now).to_string());
    }
}
