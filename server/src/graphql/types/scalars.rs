use async_graphql::{Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{SecondsFormat, Utc};

/// RFC 3339 in UTC with a `Z`, e.g. `2020-10-13T03:35:24Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// RFC 3339 in UTC, e.g. 2020-10-13T03:35:24Z
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(s) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| DateTime(t.with_timezone(&Utc)))
            .map_err(|e| {
                InputValueError::custom(format!(
                    "must be an RFC 3339 time such as 2020-10-13T03:35:24Z: {e}"
                ))
            })
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl From<chrono::DateTime<Utc>> for DateTime {
    fn from(t: chrono::DateTime<Utc>) -> Self {
        DateTime(t)
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Severity", remote = "herald_domain::Severity")]
pub enum SeverityGql {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AlertType", remote = "herald_domain::AlertType")]
pub enum AlertTypeGql {
    Rule,
    ScheduledRule,
    Policy,
    RuleError,
    ScheduledRuleError,
    SystemError,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Role", remote = "crate::store::tokens::Role")]
pub enum RoleGql {
    Admin,
    Viewer,
}
