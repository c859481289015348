//! The checks an alert must pass wherever it comes from (`sendAlert`, `sendAlerts`,
//! `POST /v1/alerts`), and the defaults it gets. Pure: the caller supplies the time and the id
//! generator, so the same input always gives the same result (and can be fuzzed).

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::payload::PantherPayload;
use crate::{AlertType, Severity, WireEnum};

/// `alertContext` may be at most this large, serialized.
pub const MAX_CONTEXT_BYTES: usize = 200 * 1024;
pub const MAX_DYNAMIC_DESTINATIONS: usize = 10;
pub const MAX_TAGS: usize = 100;

/// An alert as a caller describes it, before checks and defaults.
#[derive(Debug, Clone, Default)]
pub struct AlertDraft {
    pub alert_id: Option<String>,
    pub detection_id: String,
    pub title: String,
    pub name: Option<String>,
    pub severity: Option<Severity>,
    pub alert_type: Option<AlertType>,
    pub description: Option<String>,
    pub runbook: Option<String>,
    pub tags: Option<Vec<String>>,
    pub version: Option<String>,
    pub link: Option<String>,
    pub context: Option<Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub dynamic_severity: Option<Severity>,
    pub destination_overrides: Option<Vec<String>>,
    pub dynamic_destinations: Option<Vec<String>>,
    /// The log types the alert came from; omitted or empty: none.
    pub log_types: Option<Vec<String>>,
}

/// An alert that passed the checks: the payload to send, and what routing needs beyond it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedAlert {
    pub payload: PantherPayload,
    pub dynamic_severity: Option<Severity>,
    pub destination_overrides: Option<Vec<String>>,
    pub dynamic_destinations: Option<Vec<String>>,
    /// The log types the alert came from (not part of the payload: routing matches them against
    /// each destination's). Checked by the destination's rules, so any name a destination can
    /// list, an alert can name.
    pub log_types: Vec<String>,
}

/// A broken rule in an alert: the input field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AlertInputError {
    pub field: String,
    pub message: String,
    /// The context was too large (HTTP callers answer 413 for it).
    pub too_large: bool,
}

fn bad(field: &str, message: String) -> AlertInputError {
    AlertInputError {
        field: field.to_owned(),
        message,
        too_large: false,
    }
}

fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), AlertInputError> {
    if required && value.trim().is_empty() {
        return Err(bad(field, format!("{field} must not be empty")));
    }
    // PostgreSQL text cannot hold NUL: such an alert would fail to store (a 503 for the caller).
    if value.contains('\0') {
        return Err(bad(
            field,
            format!("{field} must not contain NUL characters"),
        ));
    }
    let n = value.chars().count();
    if n > max {
        return Err(bad(
            field,
            format!("{field} must be at most {max} characters, got {n}"),
        ));
    }
    Ok(())
}

impl AlertDraft {
    /// Applies the checks and defaults. `now` becomes `createdAt` when the draft has none, and
    /// `new_id` names an alert the caller gave no id. Field names are relative (`context`); the
    /// caller prefixes them for batches (`alerts[3].context`).
    pub fn check(
        self,
        now: DateTime<Utc>,
        new_id: impl FnOnce() -> String,
    ) -> Result<CheckedAlert, AlertInputError> {
        let alert_id = match self.alert_id {
            Some(id) => {
                check_text("alertId", &id, 128, true)?;
                if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad(
                        "alertId",
                        "alertId must not contain spaces or control characters".into(),
                    ));
                }
                id
            }
            None => new_id(),
        };
        check_text("detectionId", &self.detection_id, 512, true)?;
        check_text("title", &self.title, 2000, true)?;
        let severity = self
            .severity
            .ok_or_else(|| bad("severity", "severity is required".into()))?;
        let name = self.name.unwrap_or_else(|| self.detection_id.clone());
        check_text("name", &name, 512, false)?;
        for (field, value, max) in [
            ("description", &self.description, 20_000),
            ("runbook", &self.runbook, 20_000),
            ("version", &self.version, 256),
            ("link", &self.link, 2048),
        ] {
            if let Some(v) = value {
                check_text(field, v, max, false)?;
            }
        }
        let tags = self.tags.unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(bad(
                "tags",
                format!("at most {MAX_TAGS} tags are allowed, got {}", tags.len()),
            ));
        }
        for (i, t) in tags.iter().enumerate() {
            check_text(&format!("tags[{i}]"), t, 256, false)?;
        }
        let context = match self.context {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(bad(
                    "context",
                    format!("context must be a JSON object, got {}", json_kind(&other)),
                ));
            }
        };
        let size = serde_json::to_vec(&context).map(|v| v.len()).unwrap_or(0);
        if size > MAX_CONTEXT_BYTES {
            return Err(AlertInputError {
                field: "context".into(),
                message: format!(
                    "context must be at most {} KiB serialized, got {size} bytes",
                    MAX_CONTEXT_BYTES / 1024
                ),
                too_large: true,
            });
        }
        // RFC 3339 (and so Panther's createdAt) writes four-digit years; a time outside them
        // would reach receivers as "+10000-01-01T…", which their parsers refuse.
        if let Some(t) = self.created_at
            && !(0..=9999).contains(&t.year())
        {
            return Err(bad(
                "createdAt",
                format!(
                    "createdAt must be between the years 0000 and 9999, got {}",
                    t.year()
                ),
            ));
        }
        for (field, ids) in [
            ("destinationOverrides", &self.destination_overrides),
            ("dynamicDestinations", &self.dynamic_destinations),
        ] {
            for (i, id) in ids.iter().flatten().enumerate() {
                check_text(&format!("{field}[{i}]"), id, 128, false)?;
            }
        }
        if let Some(d) = &self.dynamic_destinations
            && d.len() > MAX_DYNAMIC_DESTINATIONS
        {
            return Err(bad(
                "dynamicDestinations",
                format!(
                    "dynamicDestinations may list at most {MAX_DYNAMIC_DESTINATIONS} destinations, got {}",
                    d.len()
                ),
            ));
        }
        let log_types = self.log_types.unwrap_or_default();
        // `logTypes[2]: log type must …`: the shared rule's message names the rule, the prefix
        // the field (as every other message here does), since the field is all a batch error
        // adds to it.
        crate::validate_log_types(&log_types)
            .map_err(|e| bad(&e.field.graphql_path(), e.to_string()))?;
        Ok(CheckedAlert {
            payload: PantherPayload {
                id: self.detection_id,
                created_at: self.created_at.unwrap_or(now),
                severity,
                alert_type: self.alert_type.unwrap_or(AlertType::Rule),
                link: self.link.unwrap_or_default(),
                title: self.title,
                name,
                alert_id,
                alert_context: context,
                description: self.description.unwrap_or_default(),
                runbook: self.runbook.unwrap_or_default(),
                tags,
                version: self.version.unwrap_or_default(),
            },
            dynamic_severity: self.dynamic_severity,
            destination_overrides: self.destination_overrides,
            dynamic_destinations: self.dynamic_destinations,
            log_types,
        })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Panther's Custom Webhook payload as `POST /v1/alerts` takes it (the 13 keys; `id` is the
/// detection id), plus Herald's optional routing keys.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PantherAlert {
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub severity: Option<String>,
    #[serde(rename = "type")]
    pub alert_type: Option<String>,
    pub link: Option<String>,
    pub title: Option<String>,
    pub name: Option<String>,
    pub alert_id: Option<String>,
    pub alert_context: Option<Value>,
    pub description: Option<String>,
    pub runbook: Option<String>,
    pub tags: Option<Vec<String>>,
    pub version: Option<String>,
    pub dynamic_severity: Option<String>,
    pub destination_overrides: Option<Vec<String>>,
    pub dynamic_destinations: Option<Vec<String>>,
    /// Herald's too: the log types the alert came from. Not part of the payload sent on.
    pub log_types: Option<Vec<String>>,
}

fn parse_enum<T: WireEnum>(field: &str, v: Option<String>) -> Result<Option<T>, AlertInputError> {
    v.map(|s| T::parse_wire(&s).map_err(|e| bad(field, format!("{field}: {e}"))))
        .transpose()
}

impl PantherAlert {
    /// The draft this payload describes; errors name the payload's own keys (`createdAt`, `type`).
    pub fn into_draft(self) -> Result<AlertDraft, AlertInputError> {
        let created_at = match self.created_at {
            None => None,
            Some(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        bad(
                            "createdAt",
                            format!("createdAt must be an RFC 3339 time such as 2020-10-13T03:35:24Z: {e}"),
                        )
                    })?,
            ),
        };
        Ok(AlertDraft {
            alert_id: self.alert_id,
            detection_id: self.id.unwrap_or_default(),
            title: self.title.unwrap_or_default(),
            name: self.name,
            severity: parse_enum::<Severity>("severity", self.severity)?,
            alert_type: parse_enum::<AlertType>("type", self.alert_type)?,
            description: self.description,
            runbook: self.runbook,
            tags: self.tags,
            version: self.version,
            link: self.link,
            context: self.alert_context,
            created_at,
            dynamic_severity: parse_enum::<Severity>("dynamicSeverity", self.dynamic_severity)?,
            destination_overrides: self.destination_overrides,
            dynamic_destinations: self.dynamic_destinations,
            log_types: self.log_types,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> AlertDraft {
        AlertDraft {
            detection_id: "d".into(),
            title: "t".into(),
            severity: Some(Severity::High),
            ..AlertDraft::default()
        }
    }

    fn now() -> DateTime<Utc> {
        "2024-01-01T00:00:00Z".parse().unwrap()
    }

    /// Found by the alert_validation fuzz target: this was the one error whose message did not
    /// name its field ("at most 10 dynamic destinations are allowed").
    #[test]
    fn every_error_message_names_its_field() {
        let too_many = AlertDraft {
            dynamic_destinations: Some(vec!["dst_x".into(); 11]),
            ..draft()
        };
        let e = too_many.check(now(), || "id".into()).unwrap_err();
        assert_eq!(e.field, "dynamicDestinations");
        assert!(e.message.contains("dynamicDestinations"), "{}", e.message);
        let no_severity = AlertDraft {
            severity: None,
            ..draft()
        };
        let e = no_severity.check(now(), || "id".into()).unwrap_err();
        assert!(e.message.contains(&e.field));
    }

    /// Found by the end-to-end fuzz test on PostgreSQL: a title with a NUL character failed to
    /// store, and the caller got a 503 instead of a 400 naming the field.
    #[test]
    fn nul_characters_are_refused_with_the_field() {
        let nul_title = AlertDraft {
            title: "CRITICAL\0".into(),
            ..draft()
        };
        let e = nul_title.check(now(), || "id".into()).unwrap_err();
        assert_eq!(e.field, "title");
        assert!(e.message.contains("NUL"));
        let nul_id = AlertDraft {
            dynamic_destinations: Some(vec!["dst_1".into(), "dst\0".into()]),
            ..draft()
        };
        let e = nul_id.check(now(), || "id".into()).unwrap_err();
        assert_eq!(e.field, "dynamicDestinations[1]");
    }

    /// Found by the alert_validation fuzz target: a createdAt past 9999 was accepted and written
    /// as "+10000-01-01T00:00:00Z", which is not RFC 3339 and does not read back.
    #[test]
    fn created_at_must_have_a_four_digit_year() {
        for year in [-1, 10_000] {
            let far = AlertDraft {
                created_at: Some(
                    chrono::NaiveDate::from_ymd_opt(year, 1, 1)
                        .unwrap()
                        .and_hms_opt(0, 0, 0)
                        .unwrap()
                        .and_utc(),
                ),
                ..draft()
            };
            let e = far.check(now(), || "id".into()).unwrap_err();
            assert_eq!(e.field, "createdAt");
        }
        let ok = AlertDraft {
            created_at: Some("9999-12-31T23:59:59Z".parse().unwrap()),
            ..draft()
        };
        let p = ok.check(now(), || "id".into()).unwrap().payload;
        let back: PantherPayload = serde_json::from_str(&p.to_bytes()).unwrap();
        assert_eq!(back, p);
    }

    /// main's log types, carried into the moved checks: the destination's rules, the field
    /// named by index, and the message naming it too (the fuzz target's invariant).
    #[test]
    fn log_types_are_checked_by_the_destination_rules() {
        let bad_name = AlertDraft {
            log_types: Some(vec![
                "AWS.CloudTrail".into(),
                "Okta.SystemLog".into(),
                "AWS CloudTrail".into(),
            ]),
            ..draft()
        };
        let e = bad_name.check(now(), || "id".into()).unwrap_err();
        assert_eq!(e.field, "logTypes[2]");
        assert!(e.message.starts_with("logTypes[2]: "), "{}", e.message);
        assert!(e.message.contains("letters, digits"), "{}", e.message);
        let repeated = AlertDraft {
            log_types: Some(vec!["A.B".into(), "A.B".into()]),
            ..draft()
        };
        assert_eq!(
            repeated.check(now(), || "id".into()).unwrap_err().field,
            "logTypes[1]"
        );
        let many = AlertDraft {
            log_types: Some((0..101).map(|i| format!("Custom.T{i}")).collect()),
            ..draft()
        };
        assert_eq!(
            many.check(now(), || "id".into()).unwrap_err().field,
            "logTypes"
        );
        let body: PantherAlert = serde_json::from_str(
            r#"{"id": "d", "title": "t", "severity": "LOW", "logTypes": ["AWS.S3"]}"#,
        )
        .unwrap();
        let checked = body
            .into_draft()
            .unwrap()
            .check(now(), || "id".into())
            .unwrap();
        assert_eq!(checked.log_types, ["AWS.S3"]);
        assert!(
            !checked.payload.to_bytes().contains("AWS.S3"),
            "not sent on"
        );
        assert!(
            draft()
                .check(now(), || "id".into())
                .unwrap()
                .log_types
                .is_empty()
        );
    }

    #[test]
    fn defaults_come_from_the_caller() {
        let checked = draft().check(now(), || "generated".into()).unwrap();
        assert_eq!(checked.payload.alert_id, "generated");
        assert_eq!(checked.payload.created_at, now());
        assert_eq!(checked.payload.name, "d");
        assert_eq!(checked.payload.alert_type, AlertType::Rule);
    }
}
