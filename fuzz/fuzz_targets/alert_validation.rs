//! Alert validation (`herald_domain::alert`): a `POST /v1/alerts` body or a GraphQL-built draft.
//! An accepted alert obeys every limit and its payload round-trips through its own bytes; a
//! refused one is refused with an error that names its field.
#![no_main]

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, Utc};
use herald_domain::alert::{
    AlertDraft, AlertInputError, MAX_CONTEXT_BYTES, MAX_DYNAMIC_DESTINATIONS, MAX_TAGS,
    PantherAlert,
};
use herald_domain::payload::PantherPayload;
use herald_domain::{AlertType, MAX_LOG_TYPES, Severity, WireEnum, validate_log_type};
use herald_fuzz::{json_object, json_value};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const GENERATED_ID: &str = "generated-alert-id";
const PANTHER_KEYS: [&str; 13] = [
    "id",
    "createdAt",
    "severity",
    "type",
    "link",
    "title",
    "name",
    "alertId",
    "alertContext",
    "description",
    "runbook",
    "tags",
    "version",
];

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

/// A draft as the GraphQL layer builds one: typed fields, any content.
fn draft(u: &mut Unstructured) -> Result<AlertDraft> {
    let pick_severity =
        |u: &mut Unstructured| -> Result<Severity> { Ok(*u.choose(Severity::ALL)?) };
    Ok(AlertDraft {
        alert_id: u.arbitrary()?,
        detection_id: u.arbitrary()?,
        title: u.arbitrary()?,
        name: u.arbitrary()?,
        severity: if u.arbitrary()? {
            Some(pick_severity(u)?)
        } else {
            None
        },
        alert_type: if u.arbitrary()? {
            Some(*u.choose(AlertType::ALL)?)
        } else {
            None
        },
        description: u.arbitrary()?,
        runbook: u.arbitrary()?,
        tags: u.arbitrary()?,
        version: u.arbitrary()?,
        link: u.arbitrary()?,
        context: if u.arbitrary()? {
            Some(if u.arbitrary()? {
                Value::Object(json_object(u, 3)?)
            } else {
                json_value(u, 3)?
            })
        } else {
            None
        },
        created_at: if u.arbitrary()? {
            DateTime::from_timestamp(u.arbitrary()?, u.int_in_range(0..=1_999_999_999)?)
        } else {
            None
        },
        dynamic_severity: if u.arbitrary()? {
            Some(pick_severity(u)?)
        } else {
            None
        },
        destination_overrides: u.arbitrary()?,
        dynamic_destinations: u.arbitrary()?,
        log_types: log_types(u)?,
    })
}

/// Log types: arbitrary strings, or names from a small set (so that repeats happen), now and
/// then more than the limit allows.
fn log_types(u: &mut Unstructured) -> Result<Option<Vec<String>>> {
    const NAMES: [&str; 5] = [
        "AWS.CloudTrail",
        "Okta.SystemLog",
        "GitHub.Audit",
        "A_b.9",
        "",
    ];
    Ok(match u.int_in_range(0..=3)? {
        0 => None,
        1 => Some(u.arbitrary()?),
        2 => {
            let n = u.int_in_range(0..=8)?;
            Some(
                (0..n)
                    .map(|_| u.choose(&NAMES).map(|s| (*s).to_owned()))
                    .collect::<Result<_>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(MAX_LOG_TYPES - 1..=MAX_LOG_TYPES + 1)?;
            Some((0..n).map(|i| format!("Custom.T{i}")).collect())
        }
    })
}

fn check_error(e: &AlertInputError) {
    assert!(!e.field.is_empty());
    assert!(
        e.message.contains(e.field.as_str()),
        "the error does not name its field: {e:?}"
    );
    assert_eq!(
        e.too_large,
        e.field == "context" && e.message.contains("KiB")
    );
}

fn check_accepted(d: AlertDraft) {
    let given_id = d.alert_id.clone();
    let given_time = d.created_at;
    let overrides = d.destination_overrides.clone();
    let given_log_types = d.log_types.clone().unwrap_or_default();
    let checked = match d.check(now(), || GENERATED_ID.to_owned()) {
        Ok(c) => c,
        Err(e) => return check_error(&e),
    };
    let p = &checked.payload;
    let chars = |s: &str| s.chars().count();
    assert!(!p.id.trim().is_empty() && chars(&p.id) <= 512);
    assert!(!p.title.trim().is_empty() && chars(&p.title) <= 2000);
    assert!(chars(&p.name) <= 512);
    assert!(chars(&p.description) <= 20_000 && chars(&p.runbook) <= 20_000);
    assert!(chars(&p.version) <= 256 && chars(&p.link) <= 2048);
    assert!(p.tags.len() <= MAX_TAGS && p.tags.iter().all(|t| chars(t) <= 256));
    assert!(serde_json::to_vec(&p.alert_context).unwrap().len() <= MAX_CONTEXT_BYTES);
    assert!(
        checked
            .dynamic_destinations
            .as_ref()
            .is_none_or(|d| d.len() <= MAX_DYNAMIC_DESTINATIONS)
    );
    assert_eq!(checked.destination_overrides, overrides);
    // Log types pass the destination's rules, as given: at most 100, each valid, no repeats.
    assert_eq!(checked.log_types, given_log_types);
    assert!(checked.log_types.len() <= MAX_LOG_TYPES);
    for (i, name) in checked.log_types.iter().enumerate() {
        assert!(validate_log_type(i, name).is_ok(), "{name:?}");
        assert!(!checked.log_types[..i].contains(name), "{name:?} repeats");
    }
    match given_id {
        Some(id) => {
            assert_eq!(p.alert_id, id);
            assert!(!id.trim().is_empty() && chars(&id) <= 128);
            assert!(!id.chars().any(|c| c.is_whitespace() || c.is_control()));
        }
        None => assert_eq!(p.alert_id, GENERATED_ID),
    }
    assert_eq!(p.created_at, given_time.unwrap_or_else(now));

    // The body a receiver gets: Panther's 13 keys in Panther's order, and it reads back as the
    // same payload (the stored bytes are what GraphQL's `payload` and re-sends use).
    let bytes = p.to_bytes();
    let v: Value = serde_json::from_str(&bytes).expect("the payload is JSON");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, PANTHER_KEYS);
    let back: PantherPayload = serde_json::from_str(&bytes).expect("the payload reads back");
    assert_eq!(&back, p, "the payload does not round-trip: {bytes}");
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        // A /v1/alerts body, as bytes.
        if let Ok(alert) = serde_json::from_slice::<PantherAlert>(rest) {
            match alert.into_draft() {
                Ok(d) => check_accepted(d),
                Err(e) => check_error(&e),
            }
        }
    } else if let Ok(d) = draft(&mut Unstructured::new(rest)) {
        check_accepted(d);
    }
});
