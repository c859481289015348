//! Where a broken rule sits in Terraform terms: herald-domain's [`Field`] and Herald's GraphQL
//! input paths both become attribute paths, with header positions resolved to map keys.

use herald_domain::Field;

use crate::tfplugin::AttrPath;

/// `names` are the custom header names in the order they were validated or sent, taken from the
/// map attribute `headers_attr` (`custom_headers` or its write-only twin).
pub fn field_path(field: &Field, names: &[String], headers_attr: &str) -> AttrPath {
    let header = |i: usize| match names.get(i) {
        Some(name) => AttrPath::root(headers_attr).key(name),
        None => AttrPath::root(headers_attr),
    };
    match field {
        Field::DisplayName => AttrPath::root("display_name"),
        Field::Url => AttrPath::root("url"),
        Field::Severities => AttrPath::root("severities"),
        Field::AlertTypes => AttrPath::root("alert_types"),
        Field::HeaderName(i) | Field::HeaderValue(i) => header(*i),
        Field::CustomHeaders => AttrPath::root(headers_attr),
        // Set elements have no address Terraform can show: the set itself is the place.
        Field::LogType(_) | Field::LogTypes => AttrPath::root("log_types"),
        Field::GracePeriod => AttrPath::root("signing_secret_grace_period"),
        Field::AutoDisableAfterFailures => AttrPath::root("auto_disable_after_failures"),
        Field::RateLimitPerMinute => AttrPath::root("rate_limit_per_minute"),
    }
}

/// Herald's `extensions.field` (`customHeaders[1].name`) as an attribute path.
pub fn graphql_field_path(field: &str, names: &[String], headers_attr: &str) -> Option<AttrPath> {
    let (head, rest) = match field.find('[') {
        Some(i) => (&field[..i], Some(&field[i + 1..])),
        None => (field.split('.').next().unwrap_or(field), None),
    };
    let parsed = match head {
        "displayName" => Field::DisplayName,
        "url" => Field::Url,
        "severities" => Field::Severities,
        "alertTypes" => Field::AlertTypes,
        "enabled" => return Some(AttrPath::root("enabled")),
        "logTypes" => Field::LogTypes,
        "gracePeriodSeconds" => Field::GracePeriod,
        "autoDisableAfterFailures" => Field::AutoDisableAfterFailures,
        "rateLimitPerMinute" => Field::RateLimitPerMinute,
        "customHeaders" => match rest.and_then(|r| r.split(']').next()?.parse::<usize>().ok()) {
            Some(i) => Field::HeaderName(i),
            None => Field::CustomHeaders,
        },
        _ => return None,
    };
    Some(field_path(&parsed, names, headers_attr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_positions_become_map_keys() {
        let names = vec!["Authorization".to_string(), "X-Team".to_string()];
        assert_eq!(
            field_path(&Field::HeaderValue(1), &names, "custom_headers"),
            AttrPath::root("custom_headers").key("X-Team")
        );
        assert_eq!(
            graphql_field_path("customHeaders[0].name", &names, "custom_headers"),
            Some(AttrPath::root("custom_headers").key("Authorization"))
        );
        assert_eq!(
            graphql_field_path("customHeaders", &names, "custom_headers"),
            Some(AttrPath::root("custom_headers"))
        );
        assert_eq!(
            graphql_field_path("alertTypes", &names, "custom_headers"),
            Some(AttrPath::root("alert_types"))
        );
        assert_eq!(
            graphql_field_path("displayName", &[], "custom_headers"),
            Some(AttrPath::root("display_name"))
        );
        assert_eq!(
            graphql_field_path("logTypes[3]", &names, "custom_headers"),
            Some(AttrPath::root("log_types"))
        );
        assert_eq!(
            graphql_field_path("rateLimitPerMinute", &[], "custom_headers"),
            Some(AttrPath::root("rate_limit_per_minute"))
        );
        assert_eq!(
            graphql_field_path("autoDisableAfterFailures", &[], "custom_headers"),
            Some(AttrPath::root("auto_disable_after_failures"))
        );
        assert_eq!(
            graphql_field_path("somethingNew", &[], "custom_headers"),
            None
        );
    }
}
