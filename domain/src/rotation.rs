//! The rule for a signing-secret rotation's grace period: how long the previous secret keeps
//! signing beside the new one. The API takes seconds, Terraform a duration string; both end in
//! [`validate_grace_period_seconds`], so they cannot disagree about the limit.

use crate::validate::{Field, ValidationError};

/// The longest grace period a rotation may give the previous secret: 30 days, long enough for a
/// monthly change window, short enough that a leaked secret does not sign for long.
pub const MAX_GRACE_SECONDS: u32 = 30 * 24 * 3600;

fn fail<T>(message: String) -> Result<T, ValidationError> {
    Err(ValidationError {
        field: Field::GracePeriod,
        message,
    })
}

/// 0 (the previous secret stops at once) to [`MAX_GRACE_SECONDS`]; the API's seconds form, so the
/// message names it.
pub fn validate_grace_period_seconds(seconds: i64) -> Result<u32, ValidationError> {
    match u32::try_from(seconds) {
        Ok(s) if s <= MAX_GRACE_SECONDS => Ok(s),
        _ => fail(format!(
            "gracePeriodSeconds must be between 0 and {MAX_GRACE_SECONDS} (30 days), got {seconds}"
        )),
    }
}

/// A grace period written as a duration, Terraform style: whole hours, minutes and seconds in
/// that order, such as `24h`, `90m`, `1h30m` or `0s`, within [`validate_grace_period_seconds`].
///
/// A deliberately small subset of Go's `time.ParseDuration` (what Terraform users know): no
/// fractions, no sub-second units and no days, months or years, whose lengths are ambiguous.
pub fn parse_grace_period(text: &str) -> Result<u32, ValidationError> {
    let shape = || {
        fail(format!(
            "grace period must be a duration of whole hours, minutes and seconds such as \"24h\", \"90m\" or \"1h30m\", got {text:?}"
        ))
    };
    let mut total: i64 = 0;
    let mut rest = text;
    // Units must come in this order, each at most once.
    let mut units: &[(char, i64)] = &[('h', 3600), ('m', 60), ('s', 1)];
    if rest.is_empty() {
        return shape();
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        // Nine digits already exceed 30 days in any unit; the cap keeps the sum from overflowing.
        if digits == 0 || digits > 9 {
            return if digits > 9 {
                fail(format!(
                    "grace period must be at most 720h (30 days), got {text:?}"
                ))
            } else {
                shape()
            };
        }
        let amount: i64 = rest[..digits].parse().map_err(|_| shape().unwrap_err())?;
        let Some(unit) = rest[digits..].chars().next() else {
            return shape();
        };
        let Some(pos) = units.iter().position(|(u, _)| *u == unit) else {
            return shape();
        };
        total += amount * units[pos].1;
        units = &units[pos + 1..];
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total > i64::from(MAX_GRACE_SECONDS) {
        return fail(format!(
            "grace period must be at most 720h (30 days), got {text:?}"
        ));
    }
    validate_grace_period_seconds(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_terraform_users_write() {
        for (text, secs) in [
            ("24h", 86_400),
            ("90m", 5_400),
            ("1h30m", 5_400),
            ("1h0m30s", 3_630),
            ("0s", 0),
            ("720h", MAX_GRACE_SECONDS),
            ("3600s", 3_600),
        ] {
            assert_eq!(parse_grace_period(text), Ok(secs), "{text}");
        }
    }

    #[test]
    fn bad_durations_name_the_rule_and_the_value() {
        for bad in [
            "", "24", "1d", "h", "1.5h", "30m1h", "1h1h", " 1h", "-1h", "1h ",
        ] {
            let e = parse_grace_period(bad).unwrap_err();
            assert_eq!(e.field, Field::GracePeriod, "{bad}");
            assert!(
                e.message.contains("such as \"24h\""),
                "{bad}: {}",
                e.message
            );
            assert!(e.message.contains(&format!("{bad:?}")), "{}", e.message);
        }
        for long in ["721h", "43201m", "9999999999s"] {
            let e = parse_grace_period(long).unwrap_err();
            assert!(
                e.message.contains("at most 720h (30 days)"),
                "{long}: {}",
                e.message
            );
        }
    }

    #[test]
    fn seconds_from_the_api() {
        assert_eq!(validate_grace_period_seconds(0), Ok(0));
        assert_eq!(
            validate_grace_period_seconds(i64::from(MAX_GRACE_SECONDS)),
            Ok(MAX_GRACE_SECONDS)
        );
        for bad in [-1, i64::from(MAX_GRACE_SECONDS) + 1] {
            let e = validate_grace_period_seconds(bad).unwrap_err();
            assert_eq!(e.field.graphql_path(), "gracePeriodSeconds");
            assert!(e.message.contains(&format!("got {bad}")), "{}", e.message);
        }
    }
}
