//! The token bucket behind a destination's rate limit, as pure arithmetic; `deliveries::claim_due`
//! and `alerts::insert_test` read and write its state in the destination's row.
//!
//! The bucket holds at most one second's worth of requests (at least one), and refills at the
//! limit's rate. So a destination limited to 60 a minute gets one request at once and then one a
//! second, and one limited to 600 a minute a burst of 10 and then 10 a second: in any window of
//! `t` seconds it receives at most `capacity + rate * t` requests.

use chrono::{DateTime, Utc};

/// A destination's limit, in requests per minute (validated: 1 to 600,000).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    per_minute: i32,
}

impl Bucket {
    pub fn new(per_minute: i32) -> Self {
        Bucket {
            per_minute: per_minute.max(1),
        }
    }

    /// Tokens gained per second.
    pub fn rate(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// The most tokens the bucket holds: one second's worth, and never less than one request.
    pub fn capacity(&self) -> f64 {
        self.rate().max(1.0)
    }

    /// Tokens available at `at`, from what was left at `refilled_at`. A bucket never drawn from
    /// (both null) is full. A `refilled_at` in the future (another replica's clock ahead of this
    /// one) refills nothing rather than taking tokens away.
    pub fn available(
        &self,
        tokens: Option<f64>,
        refilled_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> f64 {
        match (tokens, refilled_at) {
            (Some(left), Some(then)) => {
                let elapsed =
                    (at - then).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
                (left + elapsed * self.rate()).min(self.capacity())
            }
            _ => self.capacity(),
        }
    }

    /// Whole requests that may go now with `available` tokens.
    pub fn budget(available: f64) -> usize {
        if available >= 1.0 {
            available.floor() as usize
        } else {
            0
        }
    }

    /// When the bucket next holds a whole token, given `available` at `at`.
    pub fn next_token_at(&self, available: f64, at: DateTime<Utc>) -> DateTime<Utc> {
        if available >= 1.0 {
            return at;
        }
        let seconds = (1.0 - available) / self.rate();
        // Rounded up to the microsecond the databases keep, so a wake-up is never early.
        at + chrono::Duration::microseconds((seconds * 1e6).ceil() as i64)
    }

    /// Tokens left after a request that may not wait (the synchronous test alert): it always
    /// goes, and counts. The debt is bounded by one bucket, so a burst of test alerts holds
    /// queued deliveries back by at most two seconds' worth of the limit (two requests' time at
    /// the lowest rates).
    pub fn after_unconditional(&self, available: f64) -> f64 {
        (available - 1.0).max(-self.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: f64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
            + chrono::Duration::microseconds((seconds * 1e6) as i64)
    }

    #[test]
    fn capacity_is_one_seconds_worth_and_at_least_one() {
        assert_eq!(Bucket::new(60).capacity(), 1.0);
        assert_eq!(Bucket::new(600).capacity(), 10.0);
        assert_eq!(Bucket::new(1).capacity(), 1.0);
        assert_eq!(Bucket::new(600_000).capacity(), 10_000.0);
    }

    #[test]
    fn an_untouched_bucket_is_full_and_refills_at_the_rate() {
        let b = Bucket::new(600);
        assert_eq!(b.available(None, None, t(0.0)), 10.0);
        assert_eq!(Bucket::budget(b.available(None, None, t(0.0))), 10);
        // Emptied at 0: a token every 100 ms, never more than the capacity.
        assert!((b.available(Some(0.0), Some(t(0.0)), t(0.25)) - 2.5).abs() < 1e-9);
        assert_eq!(
            Bucket::budget(b.available(Some(0.0), Some(t(0.0)), t(0.25))),
            2
        );
        assert_eq!(b.available(Some(0.0), Some(t(0.0)), t(100.0)), 10.0);
    }

    #[test]
    fn a_clock_behind_refills_nothing() {
        let b = Bucket::new(60);
        assert_eq!(b.available(Some(0.5), Some(t(10.0)), t(9.0)), 0.5);
    }

    #[test]
    fn next_token_time() {
        let b = Bucket::new(60);
        assert_eq!(b.next_token_at(0.25, t(0.0)), t(0.75));
        assert_eq!(b.next_token_at(1.0, t(3.0)), t(3.0));
        let slow = Bucket::new(1);
        assert_eq!(slow.next_token_at(0.0, t(0.0)), t(60.0));
    }

    #[test]
    fn the_sequence_never_beats_the_limit() {
        // Draw whenever a token is there, for 30 s at 60/min: 1 at once, then 1 a second.
        let b = Bucket::new(60);
        let (mut tokens, mut at) = (None, None);
        let mut sent = Vec::new();
        let mut now = 0.0;
        while now < 30.0 {
            let avail = b.available(tokens, at, t(now));
            let n = Bucket::budget(avail);
            if n > 0 {
                sent.extend(std::iter::repeat_n(now, n));
                tokens = Some(avail - n as f64);
                at = Some(t(now));
            }
            now += 0.01;
        }
        for (i, a) in sent.iter().enumerate() {
            for (j, b2) in sent.iter().enumerate().skip(i) {
                assert!((j - i + 1) as f64 <= 1.0 + (b2 - a) + 0.02, "{i}..{j}");
            }
        }
        assert!((29..=31).contains(&sent.len()), "{}", sent.len());
    }

    #[test]
    fn unconditional_requests_count_with_bounded_debt() {
        let b = Bucket::new(60);
        assert_eq!(b.after_unconditional(1.0), 0.0);
        assert_eq!(b.after_unconditional(0.0), -1.0);
        assert_eq!(b.after_unconditional(-1.0), -1.0);
    }
}
