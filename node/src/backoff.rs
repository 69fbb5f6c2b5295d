//! The kubelet's restart back-off (CrashLoopBackOff), per container: the first restart is
//! immediate; after that each restart waits, counted from the last exit, a delay that starts
//! at 10 s and doubles up to 5 min. A container that stays up long enough (the entry is idle
//! for twice the cap, 10 min) starts again from the initial delay.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Back-off delays for containers keyed by `K` (pod uid and container name).
#[derive(Debug, Clone)]
pub struct RestartBackoff<K> {
    initial: Duration,
    cap: Duration,
    entries: HashMap<K, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    last_update: Instant,
}

impl<K: std::hash::Hash + Eq + Clone> RestartBackoff<K> {
    /// The kubelet's back-off: 10 s doubling to 5 min.
    pub fn kubelet() -> Self {
        Self::new(Duration::from_secs(10), Duration::from_secs(300))
    }

    /// A back-off starting at `initial` and doubling up to `cap` (tests use short ones).
    pub fn new(initial: Duration, cap: Duration) -> Self {
        RestartBackoff {
            initial,
            cap: cap.max(initial),
            entries: HashMap::new(),
        }
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.last_update) > self.cap * 2
    }

    /// How long `key`, which exited at `exited`, must still wait at `now` before it may be
    /// started again; `None` when it may start now.
    pub fn remaining(&self, key: &K, exited: Instant, now: Instant) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if self.expired(entry, now) {
            return None;
        }
        let until = exited + entry.delay;
        (now < until).then(|| until - now)
    }

    /// The delay `key` is in (for the `back-off 10s restarting failed container` message).
    pub fn delay(&self, key: &K) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }

    /// Records a restart of `key` at `now`: the next one waits longer.
    pub fn restarted(&mut self, key: &K, now: Instant) {
        let delay = match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => (e.delay * 2).min(self.cap),
            _ => self.initial,
        };
        self.entries.insert(
            key.clone(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    /// Forgets `key` (its pod is gone).
    pub fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_the_delay_doubles_to_the_cap() {
        let mut b = RestartBackoff::kubelet();
        let t0 = Instant::now();
        let k = "c";
        assert_eq!(b.remaining(&k, t0, t0), None);
        b.restarted(&k, t0);
        let exit1 = t0 + Duration::from_secs(1);
        assert_eq!(b.remaining(&k, exit1, exit1), Some(Duration::from_secs(10)));
        let later = exit1 + Duration::from_secs(10);
        assert_eq!(b.remaining(&k, exit1, later), None);
        b.restarted(&k, later);
        assert_eq!(b.delay(&k), Some(Duration::from_secs(20)));
        let mut now = later;
        for _ in 0..10 {
            now += Duration::from_secs(1);
            b.restarted(&k, now);
        }
        assert_eq!(b.delay(&k), Some(Duration::from_secs(300)));
    }

    #[test]
    fn ten_quiet_minutes_reset_the_delay() {
        let mut b = RestartBackoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let t0 = Instant::now();
        b.restarted(&1, t0);
        b.restarted(&1, t0);
        assert_eq!(b.delay(&1), Some(Duration::from_millis(200)));
        let quiet = t0 + Duration::from_secs(3);
        assert_eq!(b.remaining(&1, quiet, quiet), None);
        b.restarted(&1, quiet);
        assert_eq!(b.delay(&1), Some(Duration::from_millis(100)));
        b.forget(&1);
        assert_eq!(b.delay(&1), None);
    }
}
