//! Which destinations get an alert: Panther's order of precedence, as a pure function over a
//! snapshot of the destinations, so the rules are testable without a database.

use std::collections::HashSet;

use herald_domain::{AlertType, Severity, WireEnum};

/// The routing-relevant facts about one destination.
#[derive(Debug, Clone)]
pub struct RouteTarget {
    pub id: String,
    pub display_name: String,
    pub enabled: bool,
    pub severity_mask: i32,
    pub alert_type_mask: i32,
    /// The log types it receives; empty: every log type.
    pub log_types: Vec<String>,
}

/// What an alert says about where it should go.
#[derive(Debug, Clone, Default)]
pub struct RoutingRequest {
    pub severity: Option<Severity>,
    pub dynamic_severity: Option<Severity>,
    pub alert_type: Option<AlertType>,
    pub destination_overrides: Option<Vec<String>>,
    pub dynamic_destinations: Option<Vec<String>>,
    /// The log types the alert came from; empty for alerts that have none (policies, system
    /// errors), which pass every destination's log-type filter.
    pub log_types: Vec<String>,
}

/// The override value that sends an alert nowhere.
pub const SKIP: &str = "SKIP";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routed {
    /// Destination ids, each at most once, in the order chosen.
    pub destinations: Vec<String>,
    /// One line per id that was skipped, for the caller.
    pub warnings: Vec<String>,
}

/// Panther's precedence: `["SKIP"]` overrides send nowhere; then dynamic destinations if any of
/// them exists; then the static overrides if any exists; then every destination whose severities
/// hold the effective severity, whose alert types hold the alert's type and whose log types (if
/// it has any) include one the alert names (if it names any). The explicit tiers bypass those
/// filters. Disabled destinations receive nothing.
pub fn route(req: &RoutingRequest, targets: &[RouteTarget]) -> Routed {
    let mut out = Routed::default();
    if req
        .destination_overrides
        .as_ref()
        .is_some_and(|o| o.len() == 1 && o[0] == SKIP)
    {
        return out;
    }
    let find = |id: &str| targets.iter().find(|t| t.id == id);
    for (tier, ids) in [
        ("dynamicDestinations", &req.dynamic_destinations),
        ("destinationOverrides", &req.destination_overrides),
    ] {
        let Some(ids) = ids.as_ref().filter(|ids| !ids.is_empty()) else {
            continue;
        };
        let mut seen = HashSet::new();
        let mut chosen = Vec::new();
        let mut warnings = Vec::new();
        for id in ids {
            if !seen.insert(id.as_str()) {
                continue;
            }
            match find(id) {
                None => warnings.push(format!(
                    "{tier}: destination {id:?} does not exist; skipped"
                )),
                Some(t) if !t.enabled => warnings.push(format!(
                    "{tier}: destination {id:?} ({}) is disabled; skipped",
                    t.display_name
                )),
                Some(t) => chosen.push(t.id.clone()),
            }
        }
        let any_exists = ids.iter().any(|id| find(id).is_some());
        out.warnings.extend(warnings);
        if any_exists {
            out.destinations = chosen;
            return out;
        }
        out.warnings.push(format!(
            "{tier}: none of the listed destinations exists; falling back"
        ));
    }
    let severity = req.dynamic_severity.or(req.severity);
    let Some(severity) = severity else {
        return out;
    };
    let alert_type = req.alert_type.unwrap_or(AlertType::Rule);
    out.destinations = targets
        .iter()
        .filter(|t| {
            t.enabled
                && t.severity_mask & severity.bit() != 0
                && t.alert_type_mask & alert_type.bit() != 0
                && accepts_log_types(&t.log_types, &req.log_types)
        })
        .map(|t| t.id.clone())
        .collect();
    out
}

/// Panther's rule: a destination with log types takes an alert only if the alert names one of
/// them; a destination without takes every log type, and an alert that names none passes.
/// Names compare exactly, as Panther's log type names are case-sensitive identifiers.
pub fn accepts_log_types(destination: &[String], alert: &[String]) -> bool {
    destination.is_empty() || alert.is_empty() || alert.iter().any(|l| destination.contains(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(
        id: &str,
        severities: &[Severity],
        types: &[AlertType],
        enabled: bool,
    ) -> RouteTarget {
        RouteTarget {
            id: id.into(),
            display_name: id.to_uppercase(),
            enabled,
            severity_mask: Severity::mask_of(severities),
            alert_type_mask: AlertType::mask_of(types),
            log_types: Vec::new(),
        }
    }

    fn with_log_types(mut t: RouteTarget, log_types: &[&str]) -> RouteTarget {
        t.log_types = log_types.iter().map(|s| s.to_string()).collect();
        t
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// "cloud" takes CloudTrail and S3 logs, "okta" only Okta's, "any" every log type; "off"
    /// would take CloudTrail but is disabled.
    fn log_fleet() -> Vec<RouteTarget> {
        vec![
            with_log_types(
                target("cloud", Severity::ALL, AlertType::ALL, true),
                &["AWS.CloudTrail", "AWS.S3ServerAccess"],
            ),
            with_log_types(
                target("okta", Severity::ALL, AlertType::ALL, true),
                &["Okta.SystemLog"],
            ),
            target("any", Severity::ALL, AlertType::ALL, true),
            with_log_types(
                target("high-cloud", &[Severity::High], AlertType::ALL, true),
                &["AWS.CloudTrail"],
            ),
            with_log_types(
                target("off", Severity::ALL, AlertType::ALL, false),
                &["AWS.CloudTrail"],
            ),
        ]
    }

    #[test]
    fn severity_tier_filters_by_log_type() {
        let route_logs = |logs: &[&str], severity| {
            route(
                &RoutingRequest {
                    severity: Some(severity),
                    log_types: names(logs),
                    ..Default::default()
                },
                &log_fleet(),
            )
            .destinations
        };
        assert_eq!(
            route_logs(&["AWS.CloudTrail"], Severity::High),
            ["cloud", "any", "high-cloud"]
        );
        assert_eq!(
            route_logs(&["AWS.CloudTrail"], Severity::Low),
            ["cloud", "any"]
        );
        assert_eq!(
            route_logs(&["Okta.SystemLog"], Severity::High),
            ["okta", "any"]
        );
        // One match among several names is enough.
        assert_eq!(
            route_logs(&["GitHub.Audit", "AWS.S3ServerAccess"], Severity::Low),
            ["cloud", "any"]
        );
        // A log type no destination lists reaches only those without log types.
        assert_eq!(route_logs(&["GitHub.Audit"], Severity::High), ["any"]);
        // Exact names: a different case is a different log type.
        assert_eq!(route_logs(&["aws.cloudtrail"], Severity::High), ["any"]);
        // An alert that names none (a policy, a system error) passes every log-type filter.
        assert_eq!(
            route_logs(&[], Severity::High),
            ["cloud", "okta", "any", "high-cloud"]
        );
    }

    #[test]
    fn explicit_tiers_bypass_the_log_type_filter() {
        let base = RoutingRequest {
            severity: Some(Severity::Low),
            log_types: names(&["GitHub.Audit"]),
            ..Default::default()
        };
        let r = route(
            &RoutingRequest {
                dynamic_destinations: ids(&["okta", "high-cloud"]),
                ..base.clone()
            },
            &log_fleet(),
        );
        assert_eq!(r.destinations, ["okta", "high-cloud"]);
        let r = route(
            &RoutingRequest {
                destination_overrides: ids(&["cloud"]),
                ..base.clone()
            },
            &log_fleet(),
        );
        assert_eq!(r.destinations, ["cloud"]);
        // A disabled destination stays disabled whatever its log types.
        let r = route(
            &RoutingRequest {
                destination_overrides: ids(&["off"]),
                ..base.clone()
            },
            &log_fleet(),
        );
        assert!(r.destinations.is_empty());
        // SKIP still sends nowhere, and a tier whose ids are all unknown falls back to the
        // filtered severity tier.
        let r = route(
            &RoutingRequest {
                destination_overrides: ids(&["SKIP"]),
                ..base.clone()
            },
            &log_fleet(),
        );
        assert!(r.destinations.is_empty());
        let r = route(
            &RoutingRequest {
                dynamic_destinations: ids(&["gone"]),
                ..base
            },
            &log_fleet(),
        );
        assert_eq!(r.destinations, ["any"]);
    }

    fn fleet() -> Vec<RouteTarget> {
        vec![
            target(
                "high",
                &[Severity::High, Severity::Critical],
                AlertType::ALL,
                true,
            ),
            target("all", Severity::ALL, AlertType::ALL, true),
            target("policy", Severity::ALL, &[AlertType::Policy], true),
            target("manual", &[], AlertType::ALL, true),
            target("off", Severity::ALL, AlertType::ALL, false),
        ]
    }

    fn ids(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn severity_path_filters_by_severity_type_and_enabled() {
        let r = route(
            &RoutingRequest {
                severity: Some(Severity::High),
                ..Default::default()
            },
            &fleet(),
        );
        assert_eq!(r.destinations, ["high", "all"]);
        assert!(r.warnings.is_empty());

        let r = route(
            &RoutingRequest {
                severity: Some(Severity::Info),
                dynamic_severity: Some(Severity::Critical),
                alert_type: Some(AlertType::Policy),
                ..Default::default()
            },
            &fleet(),
        );
        assert_eq!(r.destinations, ["high", "all", "policy"]);
    }

    #[test]
    fn skip_sends_nowhere_even_with_dynamic_destinations() {
        let r = route(
            &RoutingRequest {
                severity: Some(Severity::High),
                destination_overrides: ids(&["SKIP"]),
                dynamic_destinations: ids(&["all"]),
                ..Default::default()
            },
            &fleet(),
        );
        assert_eq!(r, Routed::default());
    }

    #[test]
    fn dynamic_beats_overrides_and_overrides_beat_severity() {
        let req = RoutingRequest {
            severity: Some(Severity::Info),
            destination_overrides: ids(&["manual"]),
            dynamic_destinations: ids(&["gone", "high", "high"]),
            ..Default::default()
        };
        let r = route(&req, &fleet());
        assert_eq!(
            r.destinations,
            ["high"],
            "severity filters do not apply to explicit tiers"
        );
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("\"gone\""));

        let r = route(
            &RoutingRequest {
                dynamic_destinations: ids(&["gone"]),
                ..req.clone()
            },
            &fleet(),
        );
        assert_eq!(r.destinations, ["manual"]);
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    }

    #[test]
    fn tiers_fall_through_to_severity_when_nothing_listed_exists() {
        let r = route(
            &RoutingRequest {
                severity: Some(Severity::Critical),
                destination_overrides: ids(&["gone-1"]),
                dynamic_destinations: ids(&["gone-2"]),
                ..Default::default()
            },
            &fleet(),
        );
        assert_eq!(r.destinations, ["high", "all"]);
        assert_eq!(r.warnings.len(), 4);
    }

    #[test]
    fn a_disabled_listed_destination_keeps_its_tier_but_receives_nothing() {
        let r = route(
            &RoutingRequest {
                severity: Some(Severity::High),
                destination_overrides: ids(&["off"]),
                ..Default::default()
            },
            &fleet(),
        );
        assert!(r.destinations.is_empty());
        assert!(r.warnings[0].contains("disabled"));
    }
}
