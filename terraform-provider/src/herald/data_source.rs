//! `herald_destination` and `herald_destinations` data sources.

use async_trait::async_trait;
use herald_domain::{Severity, WireEnum, validate_log_type};

use super::destination::{computed_attributes, doc, state};
use super::provider::{Herald, SentHeaders, api_error};
use crate::tfplugin::{
    AttrPath, Attribute, DataSource, Diagnostic, Diagnostics, Mode, Schema, Type, Value,
};

pub struct DestinationDataSource;

#[async_trait]
impl DataSource<Herald> for DestinationDataSource {
    fn type_name(&self) -> &'static str {
        "herald_destination"
    }

    fn schema(&self) -> Schema {
        let attributes = computed_attributes()
            .into_iter()
            .map(|a| match a.name.as_str() {
                "id" => Attribute {
                    mode: Mode::OptionalComputed,
                    description: format!("{} Give exactly one of `id` and `display_name`.", doc::ID),
                    ..a
                },
                "display_name" => Attribute {
                    mode: Mode::OptionalComputed,
                    description: "The destination's display name, matched case-insensitively. Give exactly one of `id` and `display_name`.".into(),
                    ..a
                },
                _ => a,
            })
            .collect();
        Schema::new(
            "Looks up one Herald destination by id or by display name.",
            attributes,
        )
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let (id, name) = (config.get("id"), config.get("display_name"));
        // Unknown values may turn out null or not; decide when they are known.
        if !id.is_known() || !name.is_known() {
            return Diagnostics::default();
        }
        match (id.is_null(), name.is_null()) {
            (false, false) => Diagnostic::error(
                "Conflicting lookup keys",
                "Give exactly one of `id` and `display_name`, not both.",
            )
            .at(AttrPath::root("display_name"))
            .into(),
            (true, true) => Diagnostic::error(
                "Missing lookup key",
                "Give exactly one of `id` and `display_name`.",
            )
            .at(AttrPath::root("id"))
            .into(),
            _ => Diagnostics::default(),
        }
    }

    async fn read(&self, herald: &Herald, config: &Value) -> Result<Value, Diagnostics> {
        let api = herald.api()?;
        let found = if let Some(id) = config.get("id").as_str() {
            api.get(id)
                .await
                .or_else(|e| {
                    if e.code() == Some("NOT_FOUND") {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| api_error("read the destination", e, &SentHeaders::default()))?
        } else if let Some(name) = config.get("display_name").as_str() {
            api.list(Some(name))
                .await
                .map_err(|e| api_error("list destinations", e, &SentHeaders::default()))?
                .into_iter()
                .find(|d| d.display_name.to_lowercase() == name.to_lowercase())
        } else {
            return Err(self.validate(config));
        };
        match found {
            Some(d) => Ok(state(&d, &Value::Map(Default::default()))),
            None => {
                let (attr, key) = match config.get("id").as_str() {
                    Some(id) => ("id", id.to_owned()),
                    None => (
                        "display_name",
                        config
                            .get("display_name")
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                };
                Err(Diagnostic::error(
                    "Destination not found",
                    format!("Herald has no destination with {attr} {key:?}."),
                )
                .at(AttrPath::root(attr))
                .into())
            }
        }
    }
}

pub struct DestinationsDataSource;

#[async_trait]
impl DataSource<Herald> for DestinationsDataSource {
    fn type_name(&self) -> &'static str {
        "herald_destinations"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Lists every Herald destination, optionally only those that receive one severity or one log type.",
            vec![
                Attribute::optional(
                    "severity",
                    Type::String,
                    "Only destinations whose `severities` include this one (`INFO`, `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`).",
                ),
                Attribute::optional(
                    "log_type",
                    Type::String,
                    "Only destinations that receive alerts of this log type (such as `AWS.CloudTrail`): those whose `log_types` list it, and those with no `log_types` (every log type).",
                ),
                Attribute::nested_list(
                    "destinations",
                    Mode::Computed,
                    computed_attributes(),
                    "The destinations, in creation order.",
                ),
            ],
        )
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let mut diags = Diagnostics::default();
        if let Some(Err(e)) = config.get("severity").as_str().map(Severity::parse_wire) {
            diags.push(
                Diagnostic::error("Invalid severity", e.to_string()).at(AttrPath::root("severity")),
            );
        }
        if let Some(Err(e)) = config
            .get("log_type")
            .as_str()
            .map(|l| validate_log_type(0, l))
        {
            diags.push(
                Diagnostic::error("Invalid log_type", e.message).at(AttrPath::root("log_type")),
            );
        }
        diags
    }

    async fn read(&self, herald: &Herald, config: &Value) -> Result<Value, Diagnostics> {
        let api = herald.api()?;
        let severity = config.get("severity").as_str();
        let log_type = config.get("log_type").as_str();
        let all = api
            .list(None)
            .await
            .map_err(|e| api_error("list destinations", e, &SentHeaders::default()))?;
        let destinations = all
            .iter()
            .filter(|d| severity.is_none_or(|s| d.severities.iter().any(|x| x == s)))
            // The routing rule for an alert naming this one log type.
            .filter(|d| {
                log_type
                    .is_none_or(|l| d.log_types.is_empty() || d.log_types.iter().any(|x| x == l))
            })
            .map(|d| state(d, &Value::Map(Default::default())))
            .collect();
        Ok(Value::object([
            ("severity", config.get("severity").clone()),
            ("log_type", config.get("log_type").clone()),
            ("destinations", Value::List(destinations)),
        ]))
    }
}
