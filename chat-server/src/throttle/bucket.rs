//! A token bucket: `count` events per `per`, refilled continuously, so a client may spend a
//! burst at once and then one event every `per / count`.

use std::time::Duration;

use tokio::time::Instant;

/// A rate: at most `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many events, which is also the largest burst; 0 means no limit.
    pub count: u32,
    /// Over how long.
    pub per: Duration,
}

impl Rate {
    /// `count` events a minute.
    #[must_use]
    pub const fn per_minute(count: u32) -> Self {
        Self {
            count,
            per: Duration::from_secs(60),
        }
    }

    /// How long one token takes to come back.
    fn refill(self) -> Duration {
        self.per / self.count.max(1)
    }
}

/// The state of one bucket: the tokens left as of `at`. A fresh bucket is full.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Bucket {
    /// `None` until first used: full.
    state: Option<(f64, Instant)>,
}

impl Bucket {
    fn tokens(&self, rate: Rate, now: Instant) -> f64 {
        let capacity = f64::from(rate.count);
        match self.state {
            None => capacity,
            Some((tokens, at)) => {
                let refilled = now.saturating_duration_since(at).as_secs_f64()
                    / rate.refill().as_secs_f64().max(f64::MIN_POSITIVE);
                (tokens + refilled).min(capacity)
            }
        }
    }

    /// `Ok` when a token is left (always, for a rate of 0, which means no limit), else how
    /// long until one is.
    pub(crate) fn check(&self, rate: Rate, now: Instant) -> Result<(), Duration> {
        if rate.count == 0 {
            return Ok(());
        }
        let tokens = self.tokens(rate, now);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(rate.refill().mul_f64(1.0 - tokens))
        }
    }

    /// Spends a token if one is left; `Err` with how long until one is, otherwise.
    pub(crate) fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.check(rate, now)?;
        self.state = Some((self.tokens(rate, now) - 1.0, now));
        Ok(())
    }

    /// Spends a token even when none is left (for an event that already happened), so the
    /// debt delays the next ones.
    pub(crate) fn spend(&mut self, rate: Rate, now: Instant) {
        let tokens = (self.tokens(rate, now) - 1.0).max(0.0);
        self.state = Some((tokens, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_refill() {
        let rate = Rate {
            count: 3,
            per: Duration::from_secs(3),
        };
        let start = Instant::now();
        let mut bucket = Bucket::default();
        for _ in 0..3 {
            assert!(bucket.take(rate, start).is_ok());
        }
        assert_eq!(bucket.take(rate, start), Err(Duration::from_secs(1)));
        let later = start + Duration::from_millis(999);
        assert!(bucket.take(rate, later).is_err());
        let later = start + Duration::from_secs(1);
        assert!(bucket.take(rate, later).is_ok());
        assert!(bucket.check(rate, later).is_err());
    }

    #[test]
    fn a_rate_of_zero_is_no_limit() {
        let mut bucket = Bucket::default();
        for _ in 0..1000 {
            assert!(bucket.take(Rate::per_minute(0), Instant::now()).is_ok());
        }
    }
}
