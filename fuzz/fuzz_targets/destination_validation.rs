//! Destination validation (`herald_domain::validate_*`): whatever it accepts can be used as it is
//! (the URL parses as an http(s) URL with a host and an `http::Uri`; header names and values are
//! valid `http` headers), and whatever it refuses is refused with the right field, without echoing
//! a header value (it may be a secret).
#![no_main]

use herald_domain::{
    AlertType, Field, MAX_DISPLAY_NAME_CHARS, MAX_HEADER_VALUE_BYTES, MAX_HEADERS, MAX_URL_LEN,
    WireEnum, is_reserved_header, validate_alert_types, validate_custom_headers,
    validate_display_name, validate_header_name, validate_header_value, validate_url,
};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Destination {
    display_name: String,
    url: String,
    headers: Vec<(String, String)>,
    alert_types: Vec<u8>,
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
                    assert!(!other.eq_ignore_ascii_case(name), "duplicate names accepted");
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
});
