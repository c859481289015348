//! The body Herald sends: Panther's Custom Webhook payload, exactly 13 keys in Panther's order.
//! Built once when the alert is accepted and stored as bytes, so every attempt, re-send and
//! signature uses the same bytes.

use crate::{AlertType, Severity};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Field order is the wire order; serde keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PantherPayload {
    /// The detection's id.
    pub id: String,
    #[serde(with = "rfc3339_z")]
    pub created_at: DateTime<Utc>,
    pub severity: Severity,
    #[serde(rename = "type")]
    pub alert_type: AlertType,
    pub link: String,
    pub title: String,
    pub name: String,
    pub alert_id: String,
    pub alert_context: Map<String, Value>,
    pub description: String,
    pub runbook: String,
    pub tags: Vec<String>,
    pub version: String,
}

impl PantherPayload {
    pub fn to_bytes(&self) -> String {
        serde_json::to_string(self).expect("the payload always serializes")
    }
}

/// RFC 3339 in UTC with `Z`, as Panther writes it.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

mod rfc3339_z {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_keys_in_panthers_order() {
        let p = PantherPayload {
            id: "AWS.Root.Login".into(),
            created_at: "2020-10-13T03:35:24Z".parse().unwrap(),
            severity: Severity::High,
            alert_type: AlertType::Rule,
            link: "https://panther.example/alerts/1".into(),
            title: "Root login".into(),
            name: "AWS Root Login".into(),
            alert_id: "a1".into(),
            alert_context: serde_json::from_str(r#"{"z":1,"a":{"b":[true,null]}}"#).unwrap(),
            description: "".into(),
            runbook: "page someone".into(),
            tags: vec!["aws".into()],
            version: "v1".into(),
        };
        assert_eq!(
            p.to_bytes(),
            r#"{"id":"AWS.Root.Login","createdAt":"2020-10-13T03:35:24Z","severity":"HIGH","type":"RULE","link":"https://panther.example/alerts/1","title":"Root login","name":"AWS Root Login","alertId":"a1","alertContext":{"z":1,"a":{"b":[true,null]}},"description":"","runbook":"page someone","tags":["aws"],"version":"v1"}"#
        );
    }

    /// Found by the payload fuzz target: without serde_json's `float_roundtrip`, a float in the
    /// context could read back one bit off, so the GraphQL `payload` (parsed from the stored
    /// body) was not exactly the body receivers got.
    #[test]
    fn floats_in_the_context_read_back_exactly() {
        let given = r#"{"id":"d","createdAt":"2024-01-01T00:00:00Z","severity":"LOW","type":"RULE","link":"","title":"t","name":"d","alertId":"a","alertContext":{"x":-6.408709394954789e96,"y":0.1,"z":1.7976931348623157e308},"description":"","runbook":"","tags":[],"version":""}"#;
        let p: PantherPayload = serde_json::from_str(given).unwrap();
        let body = p.to_bytes();
        let back: PantherPayload = serde_json::from_str(&body).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_bytes(), body);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), body);
    }
}
