//! When to try again. The pure functions live in `herald-domain` (fuzzed there without the
//! server's dependencies); re-exported so the dispatcher's paths stay as they were.

pub use herald_domain::retry::{
    MAX_RETRIES, RetrySchedule, ScheduleError, parse_duration, parse_retry_after,
};
