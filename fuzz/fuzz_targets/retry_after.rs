//! Retry timing (`herald_domain::retry`): a `Retry-After` answer never makes Herald wait longer
//! than the cap, seconds are taken as given, and no header, schedule or jitter makes it panic.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use chrono::DateTime;
use herald_domain::retry::{MAX_RETRIES, RetrySchedule, parse_duration, parse_retry_after};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    retry_after: String,
    now_secs: i64,
    cap_secs: u32,
    schedule: String,
    retry: u8,
    unit: f64,
}

fuzz_target!(|i: Input| {
    if let Some(now) = DateTime::from_timestamp(i.now_secs, 0) {
        let cap = Duration::from_secs(u64::from(i.cap_secs));
        let wait = parse_retry_after(&i.retry_after, now, cap);
        if let Some(w) = wait {
            assert!(w <= cap, "{w:?} is over the cap {cap:?}");
        }
        if let Ok(secs) = i.retry_after.trim().parse::<u64>() {
            assert_eq!(wait, Some(Duration::from_secs(secs).min(cap)));
        }
    }

    // The jitter's random number is in [0, 1); anything else is clamped the way a caller would.
    let unit = if i.unit.is_finite() {
        i.unit.rem_euclid(1.0)
    } else {
        0.5
    };
    let retry = usize::from(i.retry);
    let default = RetrySchedule::default_schedule();
    if let Some(d) = default.delay(retry, unit) {
        assert!((1..=MAX_RETRIES).contains(&retry));
        assert!(d <= Duration::from_secs(18_000 * 6 / 5), "{d:?}");
    }

    let _ = parse_duration(&i.schedule);
    if let Ok(s) = RetrySchedule::parse(&i.schedule) {
        // An operator's schedule is used exactly: no jitter.
        let parts: Vec<&str> = i.schedule.split(',').collect();
        assert_eq!(parts.len(), MAX_RETRIES);
        for (n, part) in parts.iter().enumerate() {
            assert_eq!(s.delay(n + 1, unit), parse_duration(part));
        }
        assert_eq!(s.delay(0, unit), None);
        assert_eq!(s.delay(MAX_RETRIES + 1, unit), None);
    }
});
