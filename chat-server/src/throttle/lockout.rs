//! The lock on one username after failed logins in a row.

use std::time::Duration;

use tokio::time::Instant;

/// How many failures in a row lock a username.
pub(crate) const FAILURES_BEFORE_LOCK: u32 = 5;

/// The failures of one username since its last successful login.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Lockout {
    failures: u32,
    locked_until: Option<Instant>,
    /// The length of the last lock; the next one is twice as long.
    last_lock: Option<Duration>,
}

impl Lockout {
    /// `Ok` when the username may try, else how long its lock still lasts.
    pub(crate) fn check(&self, now: Instant) -> Result<(), Duration> {
        match self.locked_until {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failure; from the fifth in a row, each one locks the username, the first
    /// time for `first`, then for twice the previous lock, never more than `max`.
    pub(crate) fn fail(&mut self, now: Instant, first: Duration, max: Duration) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= FAILURES_BEFORE_LOCK {
            let lock = self.last_lock.map_or(first, |last| last.saturating_mul(2));
            let lock = lock.min(max);
            self.last_lock = Some(lock);
            self.locked_until = Some(now + lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_then_doubles_up_to_the_cap() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let mut now = Instant::now();
        let mut lockout = Lockout::default();
        for _ in 0..4 {
            lockout.fail(now, first, max);
            assert!(lockout.check(now).is_ok());
        }
        let mut expected = first;
        for _ in 0..10 {
            lockout.fail(now, first, max);
            assert_eq!(lockout.check(now), Err(expected));
            now += expected;
            assert!(lockout.check(now).is_ok());
            expected = (expected * 2).min(max);
        }
        assert_eq!(expected, max);
    }
}
