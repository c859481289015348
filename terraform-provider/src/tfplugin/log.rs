//! Logging in the JSON-lines form go-plugin reads from a plugin's stderr, so that messages show up
//! under Terraform's `TF_LOG` / `TF_LOG_PROVIDER` with their level. Never pass secrets here.

use std::io::Write;

use time::OffsetDateTime;

/// go-plugin parses `@timestamp` with exactly six fractional digits and logs lines it cannot
/// parse as opaque text, so RFC 3339 with nanoseconds will not do.
fn timestamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

pub fn emit(level: &str, message: &str) {
    let line = serde_json::json!({
        "@level": level,
        "@message": message,
        "@timestamp": timestamp(OffsetDateTime::now_utc()),
    });
    // A closed stderr leaves nobody to tell; dropping the line is all that is left to do.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

pub fn debug(message: &str) {
    emit("debug", message);
}

pub fn info(message: &str) {
    emit("info", message);
}

pub fn warn(message: &str) {
    emit("warn", message);
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_microseconds_and_zulu() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(super::timestamp(t), "2023-11-14T22:13:20.123456Z");
    }
}
