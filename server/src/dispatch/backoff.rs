//! Doubling pauses between tries of something that fails while the database (or the connection to
//! it) is away: the claim loop, the recorder, the hand-back, the replicas' listener.

use std::time::Duration;

/// Pauses from `first`, doubled after each failure, up to `max`; `reset` after a success.
pub(super) struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// `first` is kept within 50 ms and `max`: never a busy loop, never past the cap.
    pub(super) fn new(first: Duration, max: Duration) -> Self {
        let first = first.clamp(Duration::from_millis(50), max);
        Backoff {
            first,
            next: first,
            max,
        }
    }

    /// The pause before the next try.
    pub(super) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub(super) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_starts_over_after_a_reset() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let waits: Vec<Duration> = (0..5).map(|_| b.next()).collect();
        assert_eq!(waits, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.next(), ms(100));
        assert_eq!(Backoff::new(ms(1), ms(500)).next(), ms(50));
    }
}
