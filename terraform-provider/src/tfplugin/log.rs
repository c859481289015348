//! Logging in the JSON-lines form go-plugin reads from a plugin's stderr, so that messages show up
//! under Terraform's `TF_LOG` / `TF_LOG_PROVIDER` with their level. Never pass secrets here.

use std::io::Write;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn emit(level: &str, message: &str) {
    let timestamp = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let line = serde_json::json!({
        "@level": level,
        "@message": message,
        "@timestamp": timestamp,
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
