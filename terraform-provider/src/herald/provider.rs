//! The provider block: where Herald is and which token to use.

use std::sync::Arc;

use async_trait::async_trait;

use super::client::{Client, ClientError};
use super::data_source::{DestinationDataSource, DestinationsDataSource};
use super::destination::DestinationResource;
use super::fields::graphql_field_path;
use crate::tfplugin::{
    AttrPath, Attribute, DataSource, Diagnostic, Diagnostics, Provider, Resource, Schema, Type,
    Value,
};

pub const ENDPOINT_ENV: &str = "HERALD_ENDPOINT";
pub const TOKEN_ENV: &str = "HERALD_API_TOKEN";

pub struct HeraldProvider;

/// What resources get: a client, or the reason there is none yet (configuration still unknown
/// while planning, which is not an error until an API call is needed).
pub struct Herald {
    client: Result<Client, String>,
}

impl Herald {
    pub fn api(&self) -> Result<&Client, Diagnostics> {
        self.client
            .as_ref()
            .map_err(|why| Diagnostic::error("Herald provider not ready", why.clone()).into())
    }
}

fn setting(config: &Value, attr: &str, env: &str) -> Result<Option<String>, ()> {
    match config.get(attr) {
        Value::Unknown(_) => Err(()),
        Value::String(s) if !s.is_empty() => Ok(Some(s.clone())),
        _ => Ok(std::env::var(env).ok().filter(|v| !v.is_empty())),
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), Diagnostic> {
    match reqwest::Url::parse(endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(Diagnostic::error(
            "Invalid Herald endpoint",
            format!("{endpoint:?} is not an absolute http or https URL, e.g. https://herald.example.com."),
        )
        .at(AttrPath::root("endpoint"))),
    }
}

#[async_trait]
impl Provider for HeraldProvider {
    type Client = Herald;

    fn schema(&self) -> Schema {
        Schema::new(
            "Manages Herald alert webhook destinations: where alerts are delivered, with which headers, for which severities and alert types.",
            vec![
                Attribute::optional(
                    "endpoint",
                    Type::String,
                    "Herald's base URL, e.g. `https://herald.example.com`. Defaults to the `HERALD_ENDPOINT` environment variable.",
                ),
                Attribute::optional(
                    "api_token",
                    Type::String,
                    "An ADMIN API token (`hrld_...`). Defaults to the `HERALD_API_TOKEN` environment variable.",
                )
                .sensitive(),
            ],
        )
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let mut d = Diagnostics::default();
        if let Value::String(e) = config.get("endpoint")
            && let Err(diag) = check_endpoint(e)
        {
            d.push(diag);
        }
        d
    }

    async fn configure(&self, config: &Value) -> Result<Herald, Diagnostics> {
        let endpoint = setting(config, "endpoint", ENDPOINT_ENV);
        let token = setting(config, "api_token", TOKEN_ENV);
        let (endpoint, token) = match (endpoint, token) {
            (Err(()), _) | (_, Err(())) => {
                return Ok(Herald {
                    client: Err(
                        "The provider configuration depends on values not known until apply."
                            .into(),
                    ),
                });
            }
            (Ok(e), Ok(t)) => (e, t),
        };
        let mut diags = Diagnostics::default();
        if endpoint.is_none() {
            diags.push(
                Diagnostic::error(
                    "Missing Herald endpoint",
                    format!("Set `endpoint` in the provider block or the {ENDPOINT_ENV} environment variable."),
                )
                .at(AttrPath::root("endpoint")),
            );
        }
        if token.is_none() {
            diags.push(
                Diagnostic::error(
                    "Missing Herald API token",
                    format!("Set `api_token` in the provider block or the {TOKEN_ENV} environment variable."),
                )
                .at(AttrPath::root("api_token")),
            );
        }
        let (Some(endpoint), Some(token)) = (endpoint, token) else {
            return Err(diags);
        };
        check_endpoint(&endpoint).map_err(Diagnostics::from)?;
        let client = Client::new(&endpoint, &token).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Cannot set up the Herald client",
                e.to_string(),
            ))
        })?;
        Ok(Herald { client: Ok(client) })
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<Herald>>> {
        vec![Arc::new(DestinationResource)]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Herald>>> {
        vec![
            Arc::new(DestinationDataSource),
            Arc::new(DestinationsDataSource),
        ]
    }
}

/// The custom headers a request sent, in order, and the attribute they came from; Herald names
/// header errors by position.
#[derive(Default)]
pub struct SentHeaders {
    pub attr: &'static str,
    pub names: Vec<String>,
}

/// A Herald error as a diagnostic, pointing at the attribute when Herald names a field.
pub fn api_error(action: &str, e: ClientError, headers: &SentHeaders) -> Diagnostics {
    let summary = match e.code() {
        Some("UNAUTHENTICATED") => "Herald rejected the API token".to_string(),
        Some("FORBIDDEN") => "Herald refused: the API token lacks the ADMIN role".to_string(),
        Some("BAD_USER_INPUT") => format!("Herald refused to {action}"),
        _ => format!("Cannot {action}"),
    };
    let path = match &e {
        ClientError::Api { field: Some(f), .. } => {
            graphql_field_path(f, &headers.names, headers.attr)
        }
        _ => None,
    };
    let mut d = Diagnostic::error(summary, e.to_string());
    if let Some(p) = path {
        d = d.at(p);
    }
    d.into()
}
