//! When to try again: the retry schedule, jitter and `Retry-After`, as pure functions.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Attempts after the first; the eleventh attempt is the last.
pub const MAX_RETRIES: usize = 10;

/// One delay per retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    /// Spread each delay by up to this fraction either way, so a receiver that comes back is not
    /// hit by every queued delivery in the same second.
    jitter: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error(
        "HERALD_RETRY_SCHEDULE must list exactly {MAX_RETRIES} delays (one per retry), got {0}"
    )]
    Count(usize),
    #[error("HERALD_RETRY_SCHEDULE: {0:?} is not a delay such as 50ms, 5s, 2m or 1h")]
    Delay(String),
}

/// Parses `50ms`, `5s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    // An hour count too large for u64 seconds is not a delay, not a panic.
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

impl RetrySchedule {
    /// Ten retries over about nine and a half hours (Svix-like growth), with 20 % jitter.
    pub fn default_schedule() -> Self {
        let secs = [5, 30, 120, 300, 600, 1800, 3600, 3600, 7200, 18000];
        RetrySchedule {
            delays: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
            jitter: 0.2,
        }
    }

    /// `5s,30s,2m,…` with ten entries, used exactly (no jitter: an operator who spells out the
    /// schedule gets that schedule).
    pub fn parse(spec: &str) -> Result<Self, ScheduleError> {
        let delays = spec
            .split(',')
            .map(|p| parse_duration(p).ok_or_else(|| ScheduleError::Delay(p.trim().to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.len() != MAX_RETRIES {
            return Err(ScheduleError::Count(delays.len()));
        }
        Ok(RetrySchedule {
            delays,
            jitter: 0.0,
        })
    }

    /// The delay before retry number `retry` (1-based), or `None` when retries are used up.
    /// `unit` is a uniform random number in [0, 1) that drives the jitter.
    pub fn delay(&self, retry: usize, unit: f64) -> Option<Duration> {
        let base = *self.delays.get(retry.checked_sub(1)?)?;
        if self.jitter == 0.0 {
            // Exactly as configured: through f64, a large delay would lose its low digits.
            return Some(base);
        }
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        // try_from: a delay near Duration::MAX times a factor above 1 does not fit (mul_f64 panics).
        Some(
            Duration::try_from_secs_f64(base.as_secs_f64() * factor.max(0.0))
                .unwrap_or(Duration::MAX),
        )
    }
}

/// `Retry-After` as seconds or an HTTP date, capped.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>, cap: Duration) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_ten_step_schedule() {
        let s = RetrySchedule::parse("50ms,50ms,50ms,50ms,50ms,1s,2s,3m,1h,2h").unwrap();
        assert_eq!(s.delay(1, 0.9), Some(Duration::from_millis(50)));
        assert_eq!(s.delay(10, 0.0), Some(Duration::from_secs(7200)));
        assert_eq!(s.delay(11, 0.0), None);
        assert_eq!(s.delay(0, 0.0), None);
        assert_eq!(RetrySchedule::parse("1s,2s"), Err(ScheduleError::Count(2)));
        assert_eq!(
            RetrySchedule::parse("1s,2x,1s,1s,1s,1s,1s,1s,1s,1s"),
            Err(ScheduleError::Delay("2x".into()))
        );
    }

    #[test]
    fn default_jitter_stays_within_twenty_percent() {
        let s = RetrySchedule::default_schedule();
        assert_eq!(s.delay(1, 0.0), Some(Duration::from_secs(4)));
        assert_eq!(s.delay(1, 1.0), Some(Duration::from_secs(6)));
        let total: Duration = (1..=10).map(|r| s.delay(r, 0.5).unwrap()).sum();
        assert!(total > Duration::from_secs(9 * 3600), "{total:?}");
    }

    #[test]
    fn retry_after_seconds_and_dates_are_capped() {
        let now: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let cap = Duration::from_secs(600);
        assert_eq!(
            parse_retry_after("3", now, cap),
            Some(Duration::from_secs(3))
        );
        assert_eq!(parse_retry_after("86400", now, cap), Some(cap));
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 2024 00:01:00 GMT", now, cap),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now, cap), None);
    }

    /// Found by the retry_after fuzz target: `n * 3600` overflowed (a panic in debug builds, a
    /// wrong delay in release) for a schedule entry such as "5124095576030432h".
    #[test]
    fn delays_too_large_for_a_duration_are_refused_not_overflowed() {
        assert_eq!(parse_duration("5124095576030432h"), None);
        assert_eq!(parse_duration("307445734561825861m"), None);
        assert_eq!(
            parse_duration("5124095576030431h"),
            Some(Duration::from_secs(5_124_095_576_030_431 * 3600))
        );
        assert_eq!(parse_duration("18446744073709551616s"), None);
    }

    /// Found by the retry_after fuzz target: an operator's schedule went through f64
    /// (`mul_f64(1.0)`), so a large delay came back rounded, and the largest ones panicked.
    #[test]
    fn an_operators_schedule_is_used_exactly_however_large() {
        let spec = ["53333333333333333s"; 10].join(",");
        let s = RetrySchedule::parse(&spec).unwrap();
        assert_eq!(
            s.delay(1, 0.3),
            Some(Duration::from_secs(53_333_333_333_333_333))
        );
        let max = vec![format!("{}s", u64::MAX); 10].join(",");
        let s = RetrySchedule::parse(&max).unwrap();
        assert_eq!(s.delay(10, 0.9), Some(Duration::from_secs(u64::MAX)));
        let jittered = RetrySchedule {
            delays: vec![Duration::MAX; MAX_RETRIES],
            jitter: 0.2,
        };
        assert_eq!(jittered.delay(1, 0.99), Some(Duration::MAX));
    }
}
