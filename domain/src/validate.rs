//! The rules a destination must satisfy wherever it is written: the GraphQL API, the Terraform
//! provider's `validate`, and anything that comes later.

use std::fmt;

use crate::AlertType;

pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
pub const MAX_LOG_TYPES: usize = 100;
pub const MAX_LOG_TYPE_CHARS: usize = 128;
/// The largest `autoDisableAfterFailures`; the smallest is 1.
pub const MAX_AUTO_DISABLE_AFTER_FAILURES: i64 = 10_000;
/// Bounds of a destination's rate limit, in requests per minute: from one a minute (a strict
/// ticketing receiver) to 10,000 a second, past which a limit no longer protects anything.
pub const MIN_RATE_LIMIT_PER_MINUTE: i64 = 1;
pub const MAX_RATE_LIMIT_PER_MINUTE: i64 = 600_000;

/// Header names Herald sets itself; a destination may not set them. Every `webhook-*` name is
/// reserved too (see [`is_reserved_header`]).
pub const RESERVED_HEADERS: &[&str] = &[
    "Host",
    "Content-Length",
    "Content-Type",
    "Transfer-Encoding",
    "Connection",
];

/// Which part of a destination broke a rule. Front ends render it in their own path syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    DisplayName,
    Url,
    Severities,
    AlertTypes,
    /// The name of the custom header at this position in the list the user gave.
    HeaderName(usize),
    /// The value of the custom header at this position.
    HeaderValue(usize),
    /// The list of custom headers as a whole (too many).
    CustomHeaders,
    /// The log type at this position in the list the user gave.
    LogType(usize),
    /// The list of log types as a whole (too many).
    LogTypes,
    /// How long a rotated-out signing secret keeps signing.
    GracePeriod,
    AutoDisableAfterFailures,
    /// The requests per minute a destination accepts.
    RateLimitPerMinute,
}

impl Field {
    /// The GraphQL input path: `customHeaders[1].name`.
    pub fn graphql_path(&self) -> String {
        match self {
            Field::DisplayName => "displayName".into(),
            Field::Url => "url".into(),
            Field::Severities => "severities".into(),
            Field::AlertTypes => "alertTypes".into(),
            Field::HeaderName(i) => format!("customHeaders[{i}].name"),
            Field::HeaderValue(i) => format!("customHeaders[{i}].value"),
            Field::CustomHeaders => "customHeaders".into(),
            Field::LogType(i) => format!("logTypes[{i}]"),
            Field::LogTypes => "logTypes".into(),
            Field::GracePeriod => "gracePeriodSeconds".into(),
            Field::AutoDisableAfterFailures => "autoDisableAfterFailures".into(),
            Field::RateLimitPerMinute => "rateLimitPerMinute".into(),
        }
    }
}

/// A broken rule: where, and a message that names the rule and what is wrong with the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub field: Field,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field.graphql_path(), self.message)
    }
}

fn fail<T>(field: Field, message: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError {
        field,
        message: message.into(),
    })
}

/// 1 to 100 characters, not blank. Uniqueness is the store's job: it needs the other rows.
pub fn validate_display_name(name: &str) -> Result<(), ValidationError> {
    let chars = name.chars().count();
    if chars == 0 || name.trim().is_empty() {
        return fail(Field::DisplayName, "displayName must not be empty or blank");
    }
    if chars > MAX_DISPLAY_NAME_CHARS {
        return fail(
            Field::DisplayName,
            format!("displayName must be at most {MAX_DISPLAY_NAME_CHARS} characters, got {chars}"),
        );
    }
    if name.chars().any(char::is_control) {
        return fail(
            Field::DisplayName,
            "displayName must not contain control characters",
        );
    }
    Ok(())
}

/// An absolute `http` or `https` URL with a host and no user-info, at most 2,048 characters.
pub fn validate_url(raw: &str) -> Result<(), ValidationError> {
    if raw.len() > MAX_URL_LEN {
        return fail(
            Field::Url,
            format!(
                "url must be at most {MAX_URL_LEN} characters, got {}",
                raw.len()
            ),
        );
    }
    let parsed = match url::Url::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            return fail(
                Field::Url,
                format!("url must be an absolute http or https URL: {raw:?} does not parse ({e})"),
            );
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return fail(
            Field::Url,
            format!(
                "url must use the http or https scheme, got {:?}",
                parsed.scheme()
            ),
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return fail(Field::Url, "url must name a host");
    }
    // The URL standard lets a host name hold characters (` ; * …) that HTTP clients refuse, so a
    // destination at such a host could never be sent to. IP addresses come out of `host()` parsed.
    if let Some(url::Host::Domain(host)) = parsed.host()
        && let Some(bad) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return fail(
            Field::Url,
            format!(
                "url host must be a DNS name (letters, digits, '-', '.', '_') or an IP address: {host:?} contains {bad:?}"
            ),
        );
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return fail(
            Field::Url,
            "url must not contain user-info (user:password@); send credentials in a custom header",
        );
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

pub fn is_reserved_header(name: &str) -> bool {
    RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
        || name
            .get(..8)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("webhook-"))
}

/// An RFC 9110 token that Herald does not reserve for itself.
pub fn validate_header_name(index: usize, name: &str) -> Result<(), ValidationError> {
    let field = Field::HeaderName(index);
    if name.is_empty() {
        return fail(field, "header name must not be empty");
    }
    if let Some(bad) = name.chars().find(|c| !is_tchar(*c)) {
        return fail(
            field,
            format!("header name must be an RFC 9110 token: {name:?} contains {bad:?}"),
        );
    }
    if is_reserved_header(name) {
        return fail(
            field,
            format!(
                "header name {name:?} is reserved: Herald sets Host, Content-Length, Content-Type, Transfer-Encoding, Connection and webhook-* itself"
            ),
        );
    }
    Ok(())
}

/// At most 4 KiB, and nothing that would split or end the header line (CR, LF, NUL or any other
/// control character but tab).
pub fn validate_header_value(index: usize, value: &str) -> Result<(), ValidationError> {
    let field = Field::HeaderValue(index);
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return fail(
            field,
            format!(
                "header value must be at most {MAX_HEADER_VALUE_BYTES} bytes, got {}",
                value.len()
            ),
        );
    }
    if let Some(bad) = value.chars().find(|c| c.is_control() && *c != '\t') {
        // The value may be a secret: name the offending character, never echo the value.
        return fail(
            field,
            format!(
                "header value must not contain CR, LF, NUL or other control characters: found {bad:?}"
            ),
        );
    }
    Ok(())
}

/// A custom header as a user gave it.
pub trait HeaderInput {
    fn name(&self) -> &str;
    fn value(&self) -> &str;
}

impl<N: AsRef<str>, V: AsRef<str>> HeaderInput for (N, V) {
    fn name(&self) -> &str {
        self.0.as_ref()
    }
    fn value(&self) -> &str {
        self.1.as_ref()
    }
}

/// Every header rule, including the ones across headers (count, case-insensitive uniqueness).
pub fn validate_custom_headers<H: HeaderInput>(headers: &[H]) -> Result<(), ValidationError> {
    if headers.len() > MAX_HEADERS {
        return fail(
            Field::CustomHeaders,
            format!(
                "at most {MAX_HEADERS} custom headers are allowed, got {}",
                headers.len()
            ),
        );
    }
    for (i, h) in headers.iter().enumerate() {
        validate_header_name(i, h.name())?;
        validate_header_value(i, h.value())?;
        if let Some(first) = headers[..i]
            .iter()
            .position(|earlier| earlier.name().eq_ignore_ascii_case(h.name()))
        {
            return fail(
                Field::HeaderName(i),
                format!(
                    "header names must be unique (case-insensitive): {:?} repeats customHeaders[{first}]",
                    h.name()
                ),
            );
        }
    }
    Ok(())
}

/// A destination must accept at least one alert type; an empty list would silently receive nothing.
pub fn validate_alert_types(types: &[AlertType]) -> Result<(), ValidationError> {
    if types.is_empty() {
        return fail(
            Field::AlertTypes,
            "alertTypes must not be empty: omit it to receive every alert type",
        );
    }
    Ok(())
}

/// One log type name as Panther spells them (`AWS.CloudTrail`, `Okta.SystemLog`): 1 to 128
/// ASCII letters, digits, `.` and `_`. The narrow alphabet keeps names comparable byte for byte
/// (routing matches them exactly) and safe to show anywhere.
pub fn validate_log_type(index: usize, name: &str) -> Result<(), ValidationError> {
    let field = Field::LogType(index);
    if name.is_empty() {
        return fail(field, "log type must not be empty");
    }
    let chars = name.chars().count();
    if chars > MAX_LOG_TYPE_CHARS {
        return fail(
            field,
            format!("log type must be at most {MAX_LOG_TYPE_CHARS} characters, got {chars}"),
        );
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_'))
    {
        return fail(
            field,
            format!(
                "log type must hold only letters, digits, '.' and '_' (like AWS.CloudTrail): {name:?} contains {bad:?}"
            ),
        );
    }
    Ok(())
}

/// A list of log types, on a destination or an alert: at most 100, each valid, no repeats
/// (names are compared exactly, as routing compares them). An empty list is valid: on a
/// destination it means every log type, on an alert that it names none.
pub fn validate_log_types<S: AsRef<str>>(names: &[S]) -> Result<(), ValidationError> {
    if names.len() > MAX_LOG_TYPES {
        return fail(
            Field::LogTypes,
            format!(
                "at most {MAX_LOG_TYPES} log types are allowed, got {}",
                names.len()
            ),
        );
    }
    for (i, name) in names.iter().enumerate() {
        let name = name.as_ref();
        validate_log_type(i, name)?;
        if let Some(first) = names[..i].iter().position(|n| n.as_ref() == name) {
            return fail(
                Field::LogType(i),
                format!("log types must be unique: {name:?} repeats logTypes[{first}]"),
            );
        }
    }
    Ok(())
}

/// How many consecutive failed deliveries disable a destination: 1 to 10,000. A wider type than
/// the API's `Int` so that a front end can pass what the user wrote and get this error for it.
pub fn validate_auto_disable_after_failures(n: i64) -> Result<(), ValidationError> {
    if !(1..=MAX_AUTO_DISABLE_AFTER_FAILURES).contains(&n) {
        return fail(
            Field::AutoDisableAfterFailures,
            format!(
                "autoDisableAfterFailures must be between 1 and {MAX_AUTO_DISABLE_AFTER_FAILURES} \
                 (omit it to never auto-disable), got {n}"
            ),
        );
    }
    Ok(())
}

/// A destination's rate limit in requests per minute, when it has one: 1 to 600,000. Taken as
/// `i64` so that every front end (GraphQL's 32-bit Int, Terraform's arbitrary number) can pass
/// what the user wrote and get the same message.
pub fn validate_rate_limit_per_minute(limit: i64) -> Result<(), ValidationError> {
    if !(MIN_RATE_LIMIT_PER_MINUTE..=MAX_RATE_LIMIT_PER_MINUTE).contains(&limit) {
        return fail(
            Field::RateLimitPerMinute,
            format!(
                "rate limit must be from {MIN_RATE_LIMIT_PER_MINUTE} to {MAX_RATE_LIMIT_PER_MINUTE} requests per minute (omit it for no limit), got {limit}"
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert!(validate_display_name("SOC pager").is_ok());
        assert!(validate_display_name(&"é".repeat(100)).is_ok());
        assert_eq!(
            validate_display_name("   ").unwrap_err().field,
            Field::DisplayName
        );
        assert!(
            validate_display_name(&"x".repeat(101))
                .unwrap_err()
                .message
                .contains("at most 100 characters, got 101")
        );
    }

    #[test]
    fn urls() {
        assert!(validate_url("https://hooks.example.com/herald?x=1").is_ok());
        assert!(validate_url("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "hooks.example.com/path",
            "/relative",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://user@example.com/",
        ] {
            assert_eq!(validate_url(bad).unwrap_err().field, Field::Url, "{bad}");
        }
        // Found by the destination_validation fuzz target: the URL standard accepted this host,
        // the HTTP client cannot send to it.
        for bad in ["http://a`b/", "http://a;b.example/", "http://exa*mple.com/"] {
            let err = validate_url(bad).unwrap_err();
            assert!(err.message.contains("DNS name"), "{bad}: {}", err.message);
        }
        assert!(
            validate_url("http://b\u{fc}cher.example/").is_ok(),
            "IDNA hosts pass"
        );
        assert!(validate_url("http://[::1]:8080/x").is_ok());
        assert!(validate_url("http://my_host.internal/x").is_ok());
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(validate_url(&long).unwrap_err().message.contains("2048"));
    }

    #[test]
    fn header_names_and_values() {
        assert!(validate_header_name(0, "X-Api-Key").is_ok());
        assert!(validate_header_name(0, "Authorization").is_ok());
        for bad in ["", "X Api", "X:Key", "Héader"] {
            assert!(validate_header_name(0, bad).is_err(), "{bad:?}");
        }
        for reserved in [
            "host",
            "CONTENT-TYPE",
            "Content-Length",
            "transfer-encoding",
            "Connection",
            "webhook-id",
            "Webhook-Signature",
            "webhook-anything",
        ] {
            let err = validate_header_name(3, reserved).unwrap_err();
            assert_eq!(err.field, Field::HeaderName(3));
            assert!(err.message.contains("reserved"), "{reserved}");
        }
        assert!(validate_header_name(0, "Webhooks").is_ok());
        assert!(validate_header_value(0, "Bearer abc\tdef").is_ok());
        for bad in ["a\rb", "a\nb", "a\0b"] {
            let err = validate_header_value(2, bad).unwrap_err();
            assert_eq!(err.field, Field::HeaderValue(2));
            assert!(!err.message.contains(bad), "the value must not be echoed");
        }
        assert!(validate_header_value(0, &"v".repeat(4096)).is_ok());
        assert!(validate_header_value(0, &"v".repeat(4097)).is_err());
    }

    #[test]
    fn header_lists() {
        let dup = [("X-One", "1"), ("x-one", "2")];
        let err = validate_custom_headers(&dup).unwrap_err();
        assert_eq!(err.field, Field::HeaderName(1));
        assert_eq!(err.field.graphql_path(), "customHeaders[1].name");
        let many: Vec<(String, String)> = (0..21).map(|i| (format!("X-{i}"), "v".into())).collect();
        assert_eq!(
            validate_custom_headers(&many).unwrap_err().field,
            Field::CustomHeaders
        );
        assert!(validate_custom_headers(&many[..20]).is_ok());
    }

    #[test]
    fn auto_disable_after_failures() {
        assert!(validate_auto_disable_after_failures(1).is_ok());
        assert!(validate_auto_disable_after_failures(10_000).is_ok());
        for bad in [0, -1, 10_001, i64::MAX] {
            let err = validate_auto_disable_after_failures(bad).unwrap_err();
            assert_eq!(err.field, Field::AutoDisableAfterFailures);
            assert!(
                err.message.contains("between 1 and 10000"),
                "{}",
                err.message
            );
            assert!(err.message.contains(&bad.to_string()));
        }
    }

    #[test]
    fn log_types() {
        assert!(validate_log_types::<&str>(&[]).is_ok());
        assert!(
            validate_log_types(&["AWS.CloudTrail", "Okta.SystemLog", "Custom.my_app_2"]).is_ok()
        );
        assert!(validate_log_type(0, &"a".repeat(128)).is_ok());
        let err = validate_log_type(0, &"a".repeat(129)).unwrap_err();
        assert!(
            err.message.contains("at most 128 characters, got 129"),
            "{err}"
        );
        for bad in [
            "",
            "AWS CloudTrail",
            "AWS-CloudTrail",
            "Ökta.Log",
            "a/b",
            "x\n",
        ] {
            let err = validate_log_types(&["AWS.S3", "Okta.SystemLog", bad]).unwrap_err();
            assert_eq!(err.field, Field::LogType(2), "{bad:?}");
            assert_eq!(err.to_string().split(':').next(), Some("logTypes[2]"));
        }
        let err = validate_log_types(&["AWS.S3", "Okta.SystemLog", "AWS.S3"]).unwrap_err();
        assert_eq!(err.field.graphql_path(), "logTypes[2]");
        assert!(err.message.contains("repeats logTypes[0]"), "{err}");
        // Exact comparison: names differing in case are different log types.
        assert!(validate_log_types(&["AWS.S3", "aws.s3"]).is_ok());
        let many: Vec<String> = (0..101).map(|i| format!("Custom.T{i}")).collect();
        assert_eq!(
            validate_log_types(&many).unwrap_err().field,
            Field::LogTypes
        );
        assert!(validate_log_types(&many[..100]).is_ok());
    }

    #[test]
    fn rate_limits() {
        for ok in [1, 60, 600_000] {
            assert!(validate_rate_limit_per_minute(ok).is_ok(), "{ok}");
        }
        for bad in [0, -1, 600_001, i64::MAX] {
            let err = validate_rate_limit_per_minute(bad).unwrap_err();
            assert_eq!(err.field, Field::RateLimitPerMinute);
            assert!(err.message.contains("1 to 600000"), "{}", err.message);
            assert!(err.to_string().starts_with("rateLimitPerMinute: "));
        }
    }
}
