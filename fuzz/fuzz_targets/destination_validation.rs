//! Destination validation (`herald_domain::validate_*`): whatever it accepts can be used as it is
//! (the URL parses as an http(s) URL with a host and an `http::Uri`; header names and values are
//! valid `http` headers), and whatever it refuses is refused with the right field, without echoing
//! a header value (it may be a secret).
#![no_main]

use arbitrary::Arbitrary;
use herald_domain::{
    AlertType, Field, MAX_AUTO_DISABLE_AFTER_FAILURES, MAX_DISPLAY_NAME_CHARS,
    MAX_HEADER_VALUE_BYTES, MAX_HEADERS, MAX_LOG_TYPE_CHARS, MAX_LOG_TYPES,
    MAX_RATE_LIMIT_PER_MINUTE, MAX_URL_LEN, MIN_RATE_LIMIT_PER_MINUTE, WireEnum,
    is_reserved_header, validate_alert_types, validate_auto_disable_after_failures,
    validate_custom_headers, validate_display_name, validate_header_name, validate_header_value,
    validate_log_types, validate_rate_limit_per_minute, validate_url,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Destination {
    display_name: String,
    url: String,
    headers: Vec<(String, String)>,
    alert_types: Vec<u8>,
    log_types: Vec<String>,
    rate_limit_per_minute: i64,
    auto_disable_after_failures: i64,
}

fuzz_target!(|d: Destination| {
    match validate_display_name(&d.display_name) {
        Ok(()) => {
            let n = d.display_name.chars().count();
            assert!((1..=MAX_DISPLAY_NAME_CHARS).contains(&n));
            assert!(!d.display_name.trim().is_empty());
            assert!(!d.display_name.chars().any(char::is_control));
        }
        Err(e) => {
            assert_eq!(e.field, Field::DisplayName);
            assert!(e.message.starts_with("displayName"), "{e}");
        }
    }

    match validate_url(&d.url) {
        Ok(()) => {
            assert!(d.url.len() <= MAX_URL_LEN);
            let u = url::Url::parse(&d.url).expect("an accepted url parses");
            assert!(matches!(u.scheme(), "http" | "https"));
            assert!(u.host_str().is_some_and(|h| !h.is_empty()));
            assert!(u.username().is_empty() && u.password().is_none());
            // The HTTP client sends to the URL as an http::Uri: an accepted URL must convert.
            u.as_str()
                .parse::<http::Uri>()
                .expect("an accepted url is a valid http::Uri");
        }
        Err(e) => {
            assert_eq!(e.field, Field::Url);
            assert!(e.message.starts_with("url"), "{e}");
        }
    }

    for (i, (name, value)) in d.headers.iter().enumerate() {
        match validate_header_name(i, name) {
            Ok(()) => {
                assert!(!is_reserved_header(name));
                http::HeaderName::from_bytes(name.as_bytes())
                    .expect("an accepted header name is a valid HTTP header name");
            }
            Err(e) => assert_eq!(e.field, Field::HeaderName(i)),
        }
        match validate_header_value(i, value) {
            Ok(()) => {
                assert!(value.len() <= MAX_HEADER_VALUE_BYTES);
                http::HeaderValue::from_str(value)
                    .expect("an accepted header value is a valid HTTP header value");
            }
            Err(e) => {
                assert_eq!(e.field, Field::HeaderValue(i));
                assert!(
                    value.is_empty() || !e.message.contains(value.as_str()),
                    "a refused header value is echoed in the error"
                );
            }
        }
    }

    match validate_custom_headers(&d.headers) {
        Ok(()) => {
            assert!(d.headers.len() <= MAX_HEADERS);
            for (i, (name, value)) in d.headers.iter().enumerate() {
                assert!(validate_header_name(i, name).is_ok());
                assert!(validate_header_value(i, value).is_ok());
                for (other, _) in &d.headers[..i] {
                    assert!(
                        !other.eq_ignore_ascii_case(name),
                        "duplicate names accepted"
                    );
                }
            }
        }
        Err(e) => match e.field {
            Field::CustomHeaders => assert!(d.headers.len() > MAX_HEADERS),
            Field::HeaderName(i) | Field::HeaderValue(i) => assert!(i < d.headers.len()),
            other => panic!("a header list error names {other:?}"),
        },
    }

    let types: Vec<AlertType> = d
        .alert_types
        .iter()
        .map(|b| AlertType::ALL[usize::from(*b) % AlertType::ALL.len()])
        .collect();
    assert_eq!(validate_alert_types(&types).is_ok(), !types.is_empty());
    // Stored as a bit mask: the list read back holds the same types, once each, in enum order.
    let back = AlertType::from_mask(AlertType::mask_of(&types));
    assert!(back.windows(2).all(|w| w[0] < w[1]));
    assert!(back.iter().all(|t| types.contains(t)));
    assert!(types.iter().all(|t| back.contains(t)));

    // Log types: what passes is comparable byte for byte (routing matches names exactly); what
    // fails names the list or the one entry that broke a rule.
    match validate_log_types(&d.log_types) {
        Ok(()) => {
            assert!(d.log_types.len() <= MAX_LOG_TYPES);
            for (i, name) in d.log_types.iter().enumerate() {
                assert!(!name.is_empty() && name.len() <= MAX_LOG_TYPE_CHARS);
                assert!(
                    name.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
                );
                assert!(!d.log_types[..i].contains(name));
            }
        }
        Err(e) => match e.field {
            Field::LogTypes => assert!(d.log_types.len() > MAX_LOG_TYPES),
            Field::LogType(i) => assert!(i < d.log_types.len()),
            other => panic!("a log type error names {other:?}"),
        },
    }
    assert_eq!(
        validate_rate_limit_per_minute(d.rate_limit_per_minute).is_ok(),
        (MIN_RATE_LIMIT_PER_MINUTE..=MAX_RATE_LIMIT_PER_MINUTE).contains(&d.rate_limit_per_minute)
    );
    assert_eq!(
        validate_auto_disable_after_failures(d.auto_disable_after_failures).is_ok(),
        (1..=MAX_AUTO_DISABLE_AFTER_FAILURES).contains(&d.auto_disable_after_failures)
    );
});
