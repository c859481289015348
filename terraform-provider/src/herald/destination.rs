//! `herald_destination`: one webhook destination, every attribute changeable in place.

use std::collections::BTreeMap;

use async_trait::async_trait;
use herald_domain::{
    AlertType, Severity, WireEnum, parse_grace_period, validate_alert_types,
    validate_auto_disable_after_failures, validate_custom_headers, validate_display_name,
    validate_header_name, validate_header_value, validate_log_type, validate_log_types,
    validate_rate_limit_per_minute, validate_url,
};

use super::client::{Destination, DestinationInput};
use super::fields::field_path;
use super::provider::{Herald, SentHeaders, api_error};
use crate::tfplugin::value::{FromValue, Number};
use crate::tfplugin::{
    AttrPath, Attribute, Diagnostic, Diagnostics, Mode, Resource, Schema, Type, Value,
};

pub const TYPE_NAME: &str = "herald_destination";

pub mod doc {
    pub const ID: &str = "The destination's id, assigned by Herald; stable across updates.";
    pub const DISPLAY_NAME: &str =
        "Name shown in Herald; 1 to 100 characters, unique (case-insensitive).";
    pub const URL: &str = "Absolute `http` or `https` URL that receives the alerts.";
    pub const SEVERITIES: &str = "Severities routed here, any of `INFO`, `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`. Omitted: all five. `[]`: only alerts that name this destination explicitly.";
    pub const ALERT_TYPES: &str = "Alert types routed here, any of `RULE`, `SCHEDULED_RULE`, `POLICY`, `RULE_ERROR`, `SCHEDULED_RULE_ERROR`, `SYSTEM_ERROR`. Omitted: all six. Must not be empty.";
    pub const CUSTOM_HEADERS: &str = "Headers sent with every delivery, name to value (at most 20). Names are RFC 9110 tokens; `Host`, `Content-Length`, `Content-Type`, `Transfer-Encoding`, `Connection` and `webhook-*` are reserved. Values must not contain CR, LF or other control characters.";
    pub const CUSTOM_HEADERS_WO: &str = "Write-only alternative to `custom_headers` (Terraform 1.11 or later): the values are sent to Herald but never stored in the plan or state. Herald receives them on create and whenever `custom_headers_wo_version` changes. Conflicts with `custom_headers`.";
    pub const CUSTOM_HEADERS_WO_VERSION: &str = "Required with `custom_headers_wo`; change it to send the current `custom_headers_wo` to Herald.";
    pub const LOG_TYPES: &str = "Log types routed here by severity, such as `AWS.CloudTrail` or `Okta.SystemLog`: an alert that names log types arrives only if one of them is listed. Omitted or `[]`: every log type. Alerts that name no log type, and alerts that name this destination in `dynamicDestinations` or `destinationOverrides`, are not filtered. At most 100; each 1 to 128 letters, digits, `.` and `_`, compared exactly.";
    pub const RATE_LIMIT_PER_MINUTE: &str = "Requests per minute Herald sends this destination at most, 1 to 600000 (a Slack incoming webhook takes about 60). Omitted: no limit. Deliveries over the rate wait in the queue, neither failed nor counted as attempts, and go out as the rate allows, with a burst of at most one second's worth; other destinations are not held up. The limit holds across replicas. The test alert goes at once but counts.";
    pub const ENABLED: &str = "Whether alerts are delivered. Default `true`. When Herald auto-disables the destination (see `auto_disable_after_failures`), the next plan shows `enabled: false -> true` and applying it enables the destination again, clearing `disabled_reason` and releasing the deliveries held meanwhile.";
    pub const AUTO_DISABLE_AFTER_FAILURES: &str = "Herald disables the destination after this many consecutive deliveries end FAILED (retries used up; test alerts do not count; any success resets the count), 1 to 10000. Omitted: never.";
    pub const DISABLED_REASON: &str = "Why Herald disabled the destination, such as `auto-disabled after 20 consecutive failed deliveries; last: request failed: 503 …`; null while enabled or when disabled by hand.";
    pub const SIGNING_SECRET: &str = "The `whsec_` secret Herald signs deliveries with, for configuring the receiver. After a rotation, the new secret.";
    pub const SIGNING_SECRET_VERSION: &str = "Raise it to rotate the signing secret in place: Herald issues a new `signing_secret`, and the previous one keeps signing beside it for `signing_secret_grace_period`, so receivers can switch over without rejecting a delivery. Any higher whole number rotates once; it cannot go down. Default `1`; import sets `1`.";
    pub const SIGNING_SECRET_GRACE_PERIOD: &str = "How long the previous secret keeps signing after a rotation: whole hours, minutes and seconds such as `24h`, `90m` or `1h30m`, at most `720h` (30 days); `0s` stops it at once. Used when `signing_secret_version` is raised; changing it alone rotates nothing. Default `24h`.";
    pub const PREVIOUS_SIGNING_SECRET_EXPIRES_AT: &str = "When the secret before the last rotation stops signing (RFC 3339, UTC); null when no previous secret signs.";
    pub const CREATED_AT: &str = "When the destination was created (RFC 3339, UTC).";
    pub const UPDATED_AT: &str = "When the destination last changed (RFC 3339, UTC).";
}

pub struct DestinationResource;

const DEFAULT_GRACE_PERIOD: &str = "24h";

/// Attributes that only say how Terraform manages a destination, not what Herald holds: data
/// sources leave them out.
const MANAGEMENT_ONLY: &[&str] = &[
    "custom_headers_wo",
    "custom_headers_wo_version",
    "signing_secret_version",
    "signing_secret_grace_period",
];

fn all<E: WireEnum>() -> Value {
    Value::set_of_strings(E::ALL.iter().map(|v| v.as_str()))
}

fn resource_schema() -> Schema {
    Schema::new(
        "A Herald destination: a webhook URL that receives alerts, filtered by severity and alert type.",
        vec![
            Attribute::computed("id", Type::String, doc::ID).stable(),
            Attribute::required("display_name", Type::String, doc::DISPLAY_NAME),
            Attribute::required("url", Type::String, doc::URL),
            Attribute::optional_computed("severities", Type::set(Type::String), doc::SEVERITIES)
                .default(all::<Severity>()),
            Attribute::optional_computed("alert_types", Type::set(Type::String), doc::ALERT_TYPES)
                .default(all::<AlertType>()),
            Attribute::optional(
                "custom_headers",
                Type::map(Type::String),
                doc::CUSTOM_HEADERS,
            )
            .sensitive(),
            Attribute::optional(
                "custom_headers_wo",
                Type::map(Type::String),
                doc::CUSTOM_HEADERS_WO,
            )
            .sensitive()
            .write_only(),
            Attribute::optional(
                "custom_headers_wo_version",
                Type::Number,
                doc::CUSTOM_HEADERS_WO_VERSION,
            ),
            Attribute::optional_computed("log_types", Type::set(Type::String), doc::LOG_TYPES)
                .default(Value::Set(Vec::new())),
            Attribute::optional(
                "rate_limit_per_minute",
                Type::Number,
                doc::RATE_LIMIT_PER_MINUTE,
            ),
            Attribute::optional_computed("enabled", Type::Bool, doc::ENABLED)
                .default(Value::Bool(true)),
            Attribute::optional(
                "auto_disable_after_failures",
                Type::Number,
                doc::AUTO_DISABLE_AFTER_FAILURES,
            ),
            Attribute::computed("disabled_reason", Type::String, doc::DISABLED_REASON),
            Attribute::computed("signing_secret", Type::String, doc::SIGNING_SECRET)
                .sensitive()
                .stable(),
            Attribute::optional_computed(
                "signing_secret_version",
                Type::Number,
                doc::SIGNING_SECRET_VERSION,
            )
            .default(Value::Number(Number::Int(1))),
            Attribute::optional_computed(
                "signing_secret_grace_period",
                Type::String,
                doc::SIGNING_SECRET_GRACE_PERIOD,
            )
            .default(Value::string(DEFAULT_GRACE_PERIOD)),
            // Stable: only a rotation changes it, and modify_plan says when one is planned.
            Attribute::computed(
                "previous_signing_secret_expires_at",
                Type::String,
                doc::PREVIOUS_SIGNING_SECRET_EXPIRES_AT,
            )
            .stable(),
            Attribute::computed("created_at", Type::String, doc::CREATED_AT).stable(),
            Attribute::computed("updated_at", Type::String, doc::UPDATED_AT),
        ],
    )
}

/// The same attributes, all computed, for data sources.
pub fn computed_attributes() -> Vec<Attribute> {
    resource_schema()
        .attributes
        .into_iter()
        .filter(|a| !MANAGEMENT_ONLY.contains(&a.name.as_str()))
        .map(|a| Attribute {
            mode: Mode::Computed,
            default: None,
            sensitive: a.sensitive,
            ..a
        })
        .collect()
}

/// Checks an enum set, skipping unknown elements; the path stops at the set because set elements
/// have no address Terraform can show.
fn check_enum_set<E: WireEnum>(v: &Value, attr: &str, diags: &mut Diagnostics) -> Option<Vec<E>> {
    let elements = v.as_elements()?;
    let mut out = Vec::new();
    let mut complete = true;
    for e in elements {
        match e.as_str() {
            Some(s) => match E::parse_wire(s) {
                Ok(parsed) => out.push(parsed),
                Err(err) => diags.push(
                    Diagnostic::error(format!("Invalid {attr} value"), err.to_string())
                        .at(AttrPath::root(attr)),
                ),
            },
            None => complete = false,
        }
    }
    complete.then_some(out)
}

/// Every rule herald-domain has for a destination, on whatever part of the config is known.
pub fn validate_config(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let fail = |diags: &mut Diagnostics, e: herald_domain::ValidationError, summary: &str| {
        diags.push(Diagnostic::error(summary, e.message).at(field_path(&e.field, &[], "")));
    };
    if let Some(name) = config.get("display_name").as_str()
        && let Err(e) = validate_display_name(name)
    {
        fail(&mut diags, e, "Invalid display_name");
    }
    if let Some(url) = config.get("url").as_str()
        && let Err(e) = validate_url(url)
    {
        fail(&mut diags, e, "Invalid url");
    }
    for attr in ["custom_headers", "custom_headers_wo"] {
        if let Some(headers) = config.get(attr).as_map() {
            check_headers(headers, attr, &mut diags);
        }
    }
    let (plain, wo, version) = (
        config.get("custom_headers"),
        config.get("custom_headers_wo"),
        config.get("custom_headers_wo_version"),
    );
    if !plain.is_null() && !wo.is_null() {
        diags.push(
            Diagnostic::error(
                "Conflicting custom headers",
                "Set either custom_headers or custom_headers_wo, not both.",
            )
            .at(AttrPath::root("custom_headers_wo")),
        );
    }
    // Without a version there is no record in state that headers are managed write-only, and
    // no way to tell Terraform when to send them again.
    if !wo.is_null() && version.is_null() {
        diags.push(
            Diagnostic::error(
                "Missing custom_headers_wo_version",
                "custom_headers_wo needs custom_headers_wo_version; change the version to send new header values.",
            )
            .at(AttrPath::root("custom_headers_wo_version")),
        );
    }
    check_log_types(config.get("log_types"), &mut diags);
    check_rotation(config, &mut diags);
    if let Value::Number(_) = config.get("auto_disable_after_failures")
        && let Ok(n) = config.attr::<f64>("auto_disable_after_failures")
    {
        let attr = AttrPath::root("auto_disable_after_failures");
        if n.fract() != 0.0 {
            diags.push(
                Diagnostic::error(
                    "Invalid auto_disable_after_failures",
                    format!("auto_disable_after_failures must be a whole number, got {n}"),
                )
                .at(attr),
            );
        } else if let Err(e) = validate_auto_disable_after_failures(n as i64) {
            // `as` saturates, so a huge number still fails the range rule; the message then
            // quotes the saturated value, which is still far out of range.
            fail(&mut diags, e, "Invalid auto_disable_after_failures");
        }
    }
    check_rate_limit(config.get("rate_limit_per_minute"), &mut diags);
    check_enum_set::<Severity>(config.get("severities"), "severities", &mut diags);
    if let Some(types) =
        check_enum_set::<AlertType>(config.get("alert_types"), "alert_types", &mut diags)
        && let Err(e) = validate_alert_types(&types)
    {
        diags.push(
            Diagnostic::error("Invalid alert_types", e.message).at(AttrPath::root("alert_types")),
        );
    }
    diags
}

/// herald-domain's log type rules on the known entries; each bad name is its own error at the
/// set, naming the value (set elements have no address to point at).
fn check_log_types(v: &Value, diags: &mut Diagnostics) {
    let Some(elements) = v.as_elements() else {
        return;
    };
    let mut entry_errors = false;
    let mut known = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        if let Some(name) = e.as_str() {
            if let Err(err) = validate_log_type(i, name) {
                diags.push(
                    Diagnostic::error("Invalid log_types value", err.message)
                        .at(AttrPath::root("log_types")),
                );
                entry_errors = true;
            }
            known.push(name);
        }
    }
    // The rules across entries (the count) once every known entry is valid, so one mistake is
    // not reported twice; entries still unknown are checked by Herald at apply.
    if !entry_errors && let Err(err) = validate_log_types(&known) {
        diags.push(
            Diagnostic::error("Invalid log_types", err.message).at(AttrPath::root("log_types")),
        );
    }
}

/// The version is a counter compared at plan time, so it must be a whole number; the grace period
/// follows herald-domain's rule (Herald caps it at 30 days).
fn check_rotation(config: &Value, diags: &mut Diagnostics) {
    if let Value::Number(n) = config.get("signing_secret_version")
        && version_number(*n).is_none()
    {
        let shown = match n {
            Number::Int(i) => i.to_string(),
            Number::Float(f) => f.to_string(),
        };
        diags.push(
            Diagnostic::error(
                "Invalid signing_secret_version",
                format!("signing_secret_version must be a whole number of 1 or more, got {shown}"),
            )
            .at(AttrPath::root("signing_secret_version")),
        );
    }
    if let Some(text) = config.get("signing_secret_grace_period").as_str()
        && let Err(e) = parse_grace_period(text)
    {
        diags.push(
            Diagnostic::error("Invalid signing_secret_grace_period", e.message)
                .at(AttrPath::root("signing_secret_grace_period")),
        );
    }
}

/// A signing secret version: a whole number from 1 up to where an f64 still counts exactly.
fn version_number(n: Number) -> Option<i64> {
    const MAX_EXACT: i64 = 1 << 53;
    let v = match n {
        Number::Int(i) => i,
        Number::Float(f) if f.fract() == 0.0 && f.abs() <= MAX_EXACT as f64 => f as i64,
        Number::Float(_) => return None,
    };
    (1..=MAX_EXACT).contains(&v).then_some(v)
}

fn version_of(v: &Value) -> Option<i64> {
    match v.get("signing_secret_version") {
        Value::Number(n) => version_number(*n),
        _ => None,
    }
}

/// herald-domain's range, on a whole number; a fraction is refused here rather than rounded.
fn check_rate_limit(v: &Value, diags: &mut Diagnostics) {
    let Ok(Some(limit)) = Option::<f64>::from_value(v) else {
        return;
    };
    let path = AttrPath::root("rate_limit_per_minute");
    if limit.fract() != 0.0 || !limit.is_finite() {
        diags.push(
            Diagnostic::error(
                "Invalid rate_limit_per_minute",
                format!("rate limit must be a whole number of requests per minute, got {limit}"),
            )
            .at(path),
        );
        return;
    }
    // Saturating: a number past i64 is out of range all the same.
    if let Err(e) = validate_rate_limit_per_minute(limit as i64) {
        diags.push(Diagnostic::error("Invalid rate_limit_per_minute", e.message).at(path));
    }
}

/// Each header on its own, then the rules across headers (count, case-insensitive duplicates)
/// once every entry is valid, so that one mistake is not reported twice.
fn check_headers(headers: &BTreeMap<String, Value>, attr: &str, diags: &mut Diagnostics) {
    let names: Vec<String> = headers.keys().cloned().collect();
    let mut fail = |e: herald_domain::ValidationError, summary: &str| {
        diags.push(Diagnostic::error(summary, e.message).at(field_path(&e.field, &names, attr)));
    };
    let mut entry_errors = false;
    let mut known = Vec::new();
    for (i, (name, value)) in headers.iter().enumerate() {
        if let Err(e) = validate_header_name(i, name) {
            fail(e, "Invalid custom header name");
            entry_errors = true;
        }
        if let Some(v) = value.as_str() {
            if let Err(e) = validate_header_value(i, v) {
                fail(e, "Invalid custom header value");
                entry_errors = true;
            }
            known.push((name.as_str(), v));
        }
    }
    if !entry_errors && let Err(e) = validate_custom_headers(&known) {
        fail(e, &format!("Invalid {attr}"));
    }
}

/// What a plan or a state asks of Herald, typed. At apply time every attribute the
/// configuration owns is known, and a prior state is known throughout.
#[derive(PartialEq)]
struct Spec {
    display_name: String,
    url: String,
    severities: Vec<Severity>,
    alert_types: Vec<AlertType>,
    custom_headers: Option<BTreeMap<String, String>>,
    /// Sorted: a set has no order, so two orders must compare equal.
    log_types: Vec<String>,
    rate_limit_per_minute: Option<i64>,
    enabled: bool,
    auto_disable_after_failures: Option<i64>,
    wo_version: Option<f64>,
}

impl Spec {
    fn from_value(v: &Value) -> Result<Spec, Diagnostics> {
        Ok(Spec {
            display_name: v.attr("display_name")?,
            url: v.attr("url")?,
            severities: wire_enums(v, "severities")?,
            alert_types: wire_enums(v, "alert_types")?,
            custom_headers: v.attr("custom_headers")?,
            log_types: {
                let mut names: Vec<String> = v.attr("log_types")?;
                names.sort();
                names
            },
            rate_limit_per_minute: v
                .attr::<Option<f64>>("rate_limit_per_minute")?
                .map(|n| n as i64),
            enabled: v.attr("enabled")?,
            auto_disable_after_failures: v
                .attr::<Option<f64>>("auto_disable_after_failures")?
                .map(|n| n as i64),
            wo_version: v.attr("custom_headers_wo_version")?,
        })
    }
}

/// A set of enum names, in Herald's order so that requests are deterministic.
fn wire_enums<E: WireEnum>(v: &Value, attr: &str) -> Result<Vec<E>, Diagnostics> {
    let names: Vec<String> = v.attr(attr)?;
    let parsed = names
        .iter()
        .map(|n| E::parse_wire(n))
        .collect::<Result<Vec<E>, _>>()
        .map_err(|e| {
            Diagnostic::error(format!("Invalid {attr} value"), e.to_string())
                .at(AttrPath::root(attr))
        })?;
    Ok(E::normalize(&parsed))
}

fn wire_names<E: WireEnum>(values: &[E]) -> Vec<String> {
    values.iter().map(|v| v.as_str().to_owned()).collect()
}

/// Header name and value pairs, in the order sent.
type HeaderList = Vec<(String, String)>;

/// The headers a write sends: the write-only attribute's when the configuration uses it, else
/// the plan's. Names come along so Herald's positional errors can be mapped back to map keys.
fn outgoing_headers(
    spec: &Spec,
    config: &Value,
) -> Result<(SentHeaders, Option<HeaderList>), Diagnostics> {
    let write_only: Option<BTreeMap<String, String>> = config.attr("custom_headers_wo")?;
    let (attr, map) = match write_only {
        Some(m) => ("custom_headers_wo", Some(m)),
        None => ("custom_headers", spec.custom_headers.clone()),
    };
    let list: Option<HeaderList> = map.map(|m| m.into_iter().collect());
    let names = list
        .iter()
        .flatten()
        .map(|(name, _)| name.clone())
        .collect();
    Ok((SentHeaders { attr, names }, list))
}

/// `Some(new)` when it differs from `old`: update sends only what changed.
fn changed<T: PartialEq + Clone>(old: &T, new: &T) -> Option<T> {
    (old != new).then(|| new.clone())
}

/// The state for a destination. `headers_like` is the custom_headers value the state replaces:
/// Herald has no "unset" list, so no headers is written back as null or `{}` to match it, and a
/// value Herald withholds (viewer tokens) keeps the one already known.
pub fn state(d: &Destination, headers_like: &Value) -> Value {
    let custom_headers = if d.custom_headers.is_empty() && !matches!(headers_like, Value::Map(_)) {
        Value::Null
    } else {
        let known = headers_like.as_map();
        Value::Map(
            d.custom_headers
                .iter()
                .map(|(name, value)| {
                    let v = match value {
                        Some(v) => Value::string(v.clone()),
                        None => known
                            .and_then(|m| m.get(name))
                            .cloned()
                            .unwrap_or(Value::string("")),
                    };
                    (name.clone(), v)
                })
                .collect::<BTreeMap<_, _>>(),
        )
    };
    Value::object([
        ("id", Value::string(d.id.clone())),
        ("display_name", Value::string(d.display_name.clone())),
        ("url", Value::string(d.url.clone())),
        (
            "severities",
            Value::set_of_strings(d.severities.iter().cloned()),
        ),
        (
            "alert_types",
            Value::set_of_strings(d.alert_types.iter().cloned()),
        ),
        ("custom_headers", custom_headers),
        (
            "log_types",
            Value::set_of_strings(d.log_types.iter().cloned()),
        ),
        (
            "rate_limit_per_minute",
            d.rate_limit_per_minute
                .map_or(Value::Null, |n| Value::Number(Number::Int(n))),
        ),
        ("enabled", Value::Bool(d.enabled)),
        (
            "auto_disable_after_failures",
            d.auto_disable_after_failures
                .map_or(Value::Null, |n| Value::Number(Number::Int(n))),
        ),
        (
            "disabled_reason",
            d.disabled_reason.clone().map_or(Value::Null, Value::String),
        ),
        (
            "signing_secret",
            d.signing_secret.clone().map_or(Value::Null, Value::String),
        ),
        (
            "previous_signing_secret_expires_at",
            d.previous_signing_secret_expires_at
                .clone()
                .map_or(Value::Null, Value::String),
        ),
        ("created_at", Value::string(d.created_at.clone())),
        ("updated_at", Value::string(d.updated_at.clone())),
        // Herald keeps no version: a state read from Herald alone (an import) starts at 1.
        ("signing_secret_version", Value::Number(Number::Int(1))),
        (
            "signing_secret_grace_period",
            Value::string(DEFAULT_GRACE_PERIOD),
        ),
    ])
}

/// The attributes only Terraform knows (Herald keeps no record of them), carried from the state
/// or plan that `s` replaces.
fn keep_terraform_only(s: &mut Value, from: &Value) {
    for attr in [
        "custom_headers_wo_version",
        "signing_secret_version",
        "signing_secret_grace_period",
    ] {
        let v = from.get(attr);
        // A state from before these attributes existed holds null: keep the defaults.
        if !v.is_null() || attr == "custom_headers_wo_version" {
            s.set_attr(attr, v.clone());
        }
    }
}

/// The state after a create or update: the attributes only the configuration knows (header
/// shape, write-only version) come from the plan.
fn state_after_write(d: &Destination, planned: &Value) -> Value {
    let mut s = state(d, planned.get("custom_headers"));
    if headers_are_write_only(planned) {
        s.set_attr("custom_headers", Value::Null);
    }
    keep_terraform_only(&mut s, planned);
    // Without a rotation the plan kept the prior expiry; if it passed between plan and apply,
    // Herald now says null, which Terraform would call an inconsistent result. The next refresh
    // shows the null.
    let planned_expiry = planned.get("previous_signing_secret_expires_at");
    if planned_expiry.is_known() {
        s.set_attr("previous_signing_secret_expires_at", planned_expiry.clone());
    }
    s
}

/// Headers managed write-only stay out of state, so drift in them cannot be shown.
fn headers_are_write_only(v: &Value) -> bool {
    !v.get("custom_headers_wo_version").is_null()
}

/// The grace period in seconds when the plan raises the signing secret version; `None` when it
/// does not rotate. A state from before versions existed (null) counts as 1.
fn rotation_grace(prior: &Value, planned: &Value) -> Result<Option<u32>, Diagnostics> {
    let old = version_of(prior).unwrap_or(1);
    match version_of(planned) {
        Some(new) if new > old => {
            let text: String = planned.attr("signing_secret_grace_period")?;
            parse_grace_period(&text).map(Some).map_err(|e| {
                Diagnostic::error("Invalid signing_secret_grace_period", e.message)
                    .at(AttrPath::root("signing_secret_grace_period"))
                    .into()
            })
        }
        _ => Ok(None),
    }
}

/// `terraform import herald_destination.x name:<display name>`: ids are Herald's, but a person
/// bringing a destination made in the console under Terraform knows it by name.
pub const IMPORT_BY_NAME: &str = "name:";

/// The destination whose display name matches, ignoring case (Herald keeps display names unique
/// that way, so at most one does).
async fn import_by_name(api: &super::client::Client, name: &str) -> Result<Value, Diagnostics> {
    let cannot = |detail: String| -> Diagnostics {
        Diagnostic::error("Cannot import herald_destination", detail).into()
    };
    if name.trim().is_empty() {
        return Err(cannot(format!(
            "The import id {IMPORT_BY_NAME:?} names no destination: write {IMPORT_BY_NAME}<display name>, such as \"name:SOC pager\", or give the destination's id."
        )));
    }
    let found = api
        .list(Some(name))
        .await
        .map_err(|e| api_error("import the destination", e, &SentHeaders::default()))?;
    let wanted = name.to_lowercase();
    let mut matches = found
        .into_iter()
        .filter(|d| d.display_name.to_lowercase() == wanted);
    match (matches.next(), matches.next()) {
        (Some(d), None) => Ok(state(&d, &Value::Null)),
        (None, _) => Err(cannot(format!(
            "Herald has no destination named {name:?} (display names are matched ignoring case)."
        ))),
        (Some(_), Some(_)) => Err(cannot(format!(
            "More than one destination is named {name:?}; import it by id instead."
        ))),
    }
}

fn id_of(v: &Value) -> Result<&str, Diagnostics> {
    v.get("id").as_str().ok_or_else(|| {
        Diagnostic::error(
            "Missing id",
            "The state of this herald_destination has no id.",
        )
        .into()
    })
}

#[async_trait]
impl Resource<Herald> for DestinationResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        resource_schema()
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        validate_config(config)
    }

    async fn create(
        &self,
        herald: &Herald,
        planned: &Value,
        config: &Value,
    ) -> Result<Value, Diagnostics> {
        let api = herald.api()?;
        let spec = Spec::from_value(planned)?;
        let (sent, custom_headers) = outgoing_headers(&spec, config)?;
        let input = DestinationInput {
            display_name: Some(spec.display_name),
            url: Some(spec.url),
            severities: Some(wire_names(&spec.severities)),
            alert_types: Some(wire_names(&spec.alert_types)),
            custom_headers,
            log_types: Some(spec.log_types),
            rate_limit_per_minute: spec.rate_limit_per_minute.map(Some),
            enabled: Some(spec.enabled),
            auto_disable_after_failures: Some(spec.auto_disable_after_failures),
        };
        let created = api
            .create(input)
            .await
            .map_err(|e| api_error("create the destination", e, &sent))?;
        Ok(state_after_write(&created, planned))
    }

    async fn read(&self, herald: &Herald, current: &Value) -> Result<Option<Value>, Diagnostics> {
        let api = herald.api()?;
        let id = id_of(current)?;
        let found = match api.get(id).await {
            Ok(found) => found,
            Err(e) if e.code() == Some("NOT_FOUND") => None,
            Err(e) => {
                return Err(api_error(
                    "read the destination",
                    e,
                    &SentHeaders::default(),
                ));
            }
        };
        Ok(found.map(|d| {
            let mut s = state(&d, current.get("custom_headers"));
            if headers_are_write_only(current) {
                s.set_attr("custom_headers", Value::Null);
            }
            // Herald withholds the secret from VIEWER tokens (a pipeline's plan and drift
            // check): keep the one in state rather than showing it as changed to null.
            if d.signing_secret.is_none() && current.get("signing_secret").as_str().is_some() {
                s.set_attr("signing_secret", current.get("signing_secret").clone());
            }
            keep_terraform_only(&mut s, current);
            s
        }))
    }

    async fn update(
        &self,
        herald: &Herald,
        prior: &Value,
        planned: &Value,
        config: &Value,
    ) -> Result<Value, Diagnostics> {
        let api = herald.api()?;
        let id = id_of(prior)?;
        let (before, after) = (Spec::from_value(prior)?, Spec::from_value(planned)?);
        let (sent, custom_headers) = outgoing_headers(&after, config)?;
        let headers_changed =
            before.custom_headers != after.custom_headers || before.wo_version != after.wo_version;
        let rotate = rotation_grace(prior, planned)?;
        let input = DestinationInput {
            display_name: changed(&before.display_name, &after.display_name),
            url: changed(&before.url, &after.url),
            severities: changed(&before.severities, &after.severities).map(|v| wire_names(&v)),
            alert_types: changed(&before.alert_types, &after.alert_types).map(|v| wire_names(&v)),
            // No headers is sent as the empty list, which clears them.
            custom_headers: headers_changed.then(|| custom_headers.unwrap_or_default()),
            log_types: changed(&before.log_types, &after.log_types),
            rate_limit_per_minute: changed(
                &before.rate_limit_per_minute,
                &after.rate_limit_per_minute,
            ),
            enabled: changed(&before.enabled, &after.enabled),
            auto_disable_after_failures: changed(
                &before.auto_disable_after_failures,
                &after.auto_disable_after_failures,
            ),
        };
        // Nothing for Herald when only Terraform's own attributes changed (such as the grace
        // period alone): no write, no audit entry, no new updated_at.
        let mut current = if input.is_empty() {
            None
        } else {
            Some(
                api.update(id, input)
                    .await
                    .map_err(|e| api_error("update the destination", e, &sent))?,
            )
        };
        // After the update, so a refused update leaves the secret as it was.
        if let Some(grace) = rotate {
            current =
                Some(api.rotate_signing_secret(id, grace).await.map_err(|e| {
                    api_error("rotate the signing secret", e, &SentHeaders::default())
                })?);
        }
        let current = match current {
            Some(d) => d,
            None => api
                .get(id)
                .await
                .map_err(|e| api_error("read the destination", e, &SentHeaders::default()))?
                .ok_or_else(|| {
                    Diagnostic::error(
                        "Destination gone",
                        format!("Herald has no destination with id {id:?} any more."),
                    )
                })?,
        };
        Ok(state_after_write(&current, planned))
    }

    fn modify_plan(&self, prior: &Value, _config: &Value, planned: &mut Value) -> Diagnostics {
        let mut diags = Diagnostics::default();
        if prior.is_null() {
            return diags;
        }
        // Only enabling (or disabling) changes why the destination is disabled: any other update
        // keeps it, so a plan does not show `disabled_reason` as known after apply for nothing.
        let enabled = planned.get("enabled").clone();
        if enabled.is_known() && &enabled == prior.get("enabled") {
            planned.set_attr("disabled_reason", prior.get("disabled_reason").clone());
        }
        let next = planned.get("signing_secret_version");
        if !next.is_known() {
            // Might be a rotation: the secret is not known until apply.
            planned.set_attr("signing_secret", Value::unknown());
            planned.set_attr("previous_signing_secret_expires_at", Value::unknown());
            return diags;
        }
        match (version_of(prior), version_of(planned)) {
            (Some(old), Some(new)) if new < old => diags.push(
                Diagnostic::error(
                    "signing_secret_version cannot go down",
                    format!(
                        "signing_secret_version is {old} in the state and {new} in the plan. Rotations cannot be undone: raise the version to rotate again, or keep it at {old} (leaving it out means 1)."
                    ),
                )
                .at(AttrPath::root("signing_secret_version")),
            ),
            (Some(old), Some(new)) if new > old => {
                planned.set_attr("signing_secret", Value::unknown());
                planned.set_attr("previous_signing_secret_expires_at", Value::unknown());
            }
            _ => {}
        }
        diags
    }

    async fn delete(&self, herald: &Herald, prior: &Value) -> Result<(), Diagnostics> {
        let api = herald.api()?;
        match api.delete(id_of(prior)?).await {
            // Already gone is what delete wanted.
            Err(e) if e.code() == Some("NOT_FOUND") => Ok(()),
            r => r.map_err(|e| api_error("delete the destination", e, &SentHeaders::default())),
        }
    }

    async fn import(&self, herald: &Herald, id: &str) -> Result<Value, Diagnostics> {
        let api = herald.api()?;
        if let Some(name) = id.strip_prefix(IMPORT_BY_NAME) {
            return import_by_name(api, name).await;
        }
        match api.get(id).await {
            Ok(Some(d)) => Ok(state(&d, &Value::Null)),
            Ok(None) => Err(Diagnostic::error(
                "Cannot import herald_destination",
                format!("Herald has no destination with id {id:?}."),
            )
            .into()),
            Err(e) => Err(api_error(
                "import the destination",
                e,
                &SentHeaders::default(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    fn paths(d: &Diagnostics) -> Vec<String> {
        d.0.iter()
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn valid_and_unknown_configs_pass() {
        let c = config(&[
            ("display_name", Value::string("SOC")),
            ("url", Value::unknown()),
            (
                "severities",
                Value::Set(vec![Value::string("HIGH"), Value::unknown()]),
            ),
            ("alert_types", Value::unknown()),
            (
                "custom_headers",
                Value::Map(BTreeMap::from([("X-Key".into(), Value::unknown())])),
            ),
        ]);
        assert!(validate_config(&c).is_empty(), "{:?}", validate_config(&c));
    }

    #[test]
    fn every_rule_points_at_its_attribute() {
        let c = config(&[
            ("display_name", Value::string(" ")),
            ("url", Value::string("ftp://x")),
            ("severities", Value::set_of_strings(["SEVERE"])),
            ("alert_types", Value::set_of_strings(Vec::<String>::new())),
            (
                "custom_headers",
                Value::Map(BTreeMap::from([
                    ("Host".into(), Value::string("x")),
                    ("X-Ok".into(), Value::string("a\nb")),
                ])),
            ),
        ]);
        let d = validate_config(&c);
        assert_eq!(
            paths(&d),
            vec![
                "display_name",
                "url",
                "custom_headers[\"Host\"]",
                "custom_headers[\"X-Ok\"]",
                "severities",
                "alert_types"
            ]
        );
        assert!(!d.0[3].detail.contains("a\nb"), "header values are secrets");
    }

    #[test]
    fn duplicate_header_names_differing_in_case() {
        let c = config(&[(
            "custom_headers",
            Value::Map(BTreeMap::from([
                ("X-One".into(), Value::string("1")),
                ("x-one".into(), Value::string("2")),
            ])),
        )]);
        assert_eq!(
            paths(&validate_config(&c)),
            vec!["custom_headers[\"x-one\"]"]
        );
    }

    #[test]
    fn log_type_rules_point_at_log_types_and_name_the_value() {
        let c = config(&[(
            "log_types",
            Value::Set(vec![
                Value::string("AWS.CloudTrail"),
                Value::unknown(),
                Value::string("Okta SystemLog"),
            ]),
        )]);
        let d = validate_config(&c);
        assert_eq!(paths(&d), vec!["log_types"]);
        assert_eq!(d.0[0].summary, "Invalid log_types value");
        assert!(
            d.0[0].detail.contains("\"Okta SystemLog\""),
            "{}",
            d.0[0].detail
        );
        let many = Value::set_of_strings((0..101).map(|i| format!("Custom.T{i}")));
        let d = validate_config(&config(&[("log_types", many)]));
        assert_eq!(paths(&d), vec!["log_types"]);
        assert!(d.0[0].detail.contains("at most 100"), "{}", d.0[0].detail);
        assert!(
            validate_config(&config(&[(
                "log_types",
                Value::set_of_strings(["AWS.CloudTrail", "Okta.SystemLog"])
            )]))
            .is_empty()
        );
    }

    #[test]
    fn rate_limit_rules_point_at_the_attribute() {
        for (n, word) in [
            (Value::Number(Number::Int(0)), "1 to 600000"),
            (Value::Number(Number::Int(600_001)), "1 to 600000"),
            (Value::Number(Number::Float(2.5)), "whole number"),
        ] {
            let d = validate_config(&config(&[("rate_limit_per_minute", n)]));
            assert_eq!(paths(&d), vec!["rate_limit_per_minute"]);
            assert!(d.0[0].detail.contains(word), "{}", d.0[0].detail);
        }
        for ok in [
            Value::Number(Number::Int(1)),
            Value::Number(Number::Int(600_000)),
            Value::unknown(),
            Value::Null,
        ] {
            assert!(validate_config(&config(&[("rate_limit_per_minute", ok)])).is_empty());
        }
    }

    fn destination(headers: Vec<(String, Option<String>)>) -> Destination {
        Destination {
            id: "d1".into(),
            display_name: "a".into(),
            url: "https://x".into(),
            severities: vec!["HIGH".into()],
            alert_types: vec!["RULE".into()],
            custom_headers: headers,
            log_types: vec![],
            rate_limit_per_minute: None,
            enabled: true,
            auto_disable_after_failures: None,
            disabled_reason: None,
            signing_secret: Some("whsec_x".into()),
            previous_signing_secret_expires_at: None,
            created_at: "t".into(),
            updated_at: "t".into(),
        }
    }

    #[test]
    fn no_headers_keep_the_shape_the_config_used() {
        let d = destination(vec![]);
        assert!(state(&d, &Value::Null).get("custom_headers").is_null());
        assert_eq!(
            state(&d, &Value::Map(BTreeMap::new())).get("custom_headers"),
            &Value::Map(BTreeMap::new())
        );
        let withheld = destination(vec![("X".into(), None)]);
        let prior = Value::Map(BTreeMap::from([("X".into(), Value::string("kept"))]));
        assert_eq!(state(&withheld, &prior).get("custom_headers"), &prior);
    }

    #[test]
    fn rotation_attributes_are_checked_where_they_are_written() {
        let c = config(&[
            ("signing_secret_version", Value::Number(Number::Float(1.5))),
            ("signing_secret_grace_period", Value::string("1 day")),
        ]);
        let d = validate_config(&c);
        assert_eq!(
            paths(&d),
            vec!["signing_secret_version", "signing_secret_grace_period"]
        );
        assert!(d.0[0].detail.contains("whole number of 1 or more, got 1.5"));
        assert!(d.0[1].detail.contains("\"1 day\""), "{}", d.0[1].detail);
        let d = validate_config(&config(&[
            ("signing_secret_version", Value::Number(Number::Int(0))),
            ("signing_secret_grace_period", Value::string("721h")),
        ]));
        assert_eq!(
            paths(&d),
            vec!["signing_secret_version", "signing_secret_grace_period"]
        );
        assert!(d.0[1].detail.contains("at most 720h"), "{}", d.0[1].detail);
        assert!(
            validate_config(&config(&[
                ("signing_secret_version", Value::Number(Number::Float(3.0))),
                ("signing_secret_grace_period", Value::string("1h30m")),
            ]))
            .is_empty()
        );
    }

    fn with_version(v: i64) -> Value {
        let mut s = state(&destination(vec![]), &Value::Null);
        s.set_attr("signing_secret_version", Value::Number(Number::Int(v)));
        s
    }

    #[test]
    fn raising_the_version_plans_a_new_secret_and_lowering_it_is_refused() {
        let prior = with_version(2);
        let mut same = prior.clone();
        assert!(
            DestinationResource
                .modify_plan(&prior, &Value::Null, &mut same)
                .is_empty()
        );
        assert_eq!(same, prior, "same version: the secret stays known");

        let mut raised = with_version(3);
        assert!(
            DestinationResource
                .modify_plan(&prior, &Value::Null, &mut raised)
                .is_empty()
        );
        assert!(!raised.get("signing_secret").is_known());
        assert!(!raised.get("previous_signing_secret_expires_at").is_known());

        let mut lowered = with_version(1);
        let d = DestinationResource.modify_plan(&prior, &Value::Null, &mut lowered);
        assert_eq!(paths(&d), vec!["signing_secret_version"]);
        assert!(
            d.0[0].detail.contains("2 in the state and 1 in the plan"),
            "{}",
            d.0[0].detail
        );

        let mut created = with_version(5);
        assert!(
            DestinationResource
                .modify_plan(&Value::Null, &Value::Null, &mut created)
                .is_empty()
        );
        assert!(
            created.get("signing_secret").is_known(),
            "a create has no rotation"
        );
    }

    #[test]
    fn only_a_raised_version_rotates_and_with_the_planned_grace() {
        let prior = with_version(1);
        let mut grace_only = prior.clone();
        grace_only.set_attr("signing_secret_grace_period", Value::string("1h"));
        assert_eq!(rotation_grace(&prior, &grace_only).ok(), Some(None));
        let mut raised = grace_only.clone();
        raised.set_attr("signing_secret_version", Value::Number(Number::Int(2)));
        assert_eq!(rotation_grace(&prior, &raised).ok(), Some(Some(3600)));
        // A state written before versions existed counts as 1.
        let mut old_state = prior.clone();
        old_state.set_attr("signing_secret_version", Value::Null);
        assert_eq!(rotation_grace(&old_state, &raised).ok(), Some(Some(3600)));
    }
}
