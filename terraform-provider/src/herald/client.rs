//! Herald's GraphQL API, with operations checked against `schema.graphql` at build time.

use std::time::Duration;

use graphql_client::{GraphQLQuery, QueryBody};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::tfplugin::log;

/// Herald's `DateTime` scalar travels as an RFC 3339 string (`ID` is a string already).
type DateTime = String;

macro_rules! operation {
    ($name:ident) => {
        #[derive(GraphQLQuery)]
        #[graphql(
            schema_path = "../schema.graphql",
            query_path = "src/herald/operations.graphql",
            skip_serializing_none
        )]
        pub struct $name;
    };
}

operation!(GetDestination);
operation!(ListDestinations);
operation!(CreateDestination);
operation!(UpdateDestination);
operation!(ClearRateLimit);
operation!(DeleteDestination);
operation!(RotateSigningSecret);
operation!(ClearAutoDisable);

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts for a request that could not connect; nothing reached Herald, so retrying is safe
/// even for mutations.
const CONNECT_ATTEMPTS: u32 = 4;
const SERVER_ERROR_ATTEMPTS: u32 = 4;
const PAGE_SIZE: i64 = 100;

/// A destination as the provider works with it, whichever operation returned it.
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    pub id: String,
    pub display_name: String,
    pub url: String,
    /// Wire names, in Herald's order.
    pub severities: Vec<String>,
    pub alert_types: Vec<String>,
    /// Values are `None` when the token may not read them (viewer tokens).
    pub custom_headers: Vec<(String, Option<String>)>,
    /// Empty: every log type.
    pub log_types: Vec<String>,
    /// `None`: no limit.
    pub rate_limit_per_minute: Option<i64>,
    pub enabled: bool,
    /// `None`: never auto-disabled.
    pub auto_disable_after_failures: Option<i64>,
    /// Why Herald disabled it, if it did.
    pub disabled_reason: Option<String>,
    pub signing_secret: Option<String>,
    /// When the secret before the last rotation stops signing; `None` when none signs.
    pub previous_signing_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

// Header values and the signing secret are secrets: never print them.
impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("id", &self.id)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

/// The fields a create or update sends; `None` leaves a field out of the request.
#[derive(Default)]
pub struct DestinationInput {
    pub display_name: Option<String>,
    pub url: Option<String>,
    pub severities: Option<Vec<String>>,
    pub alert_types: Option<Vec<String>>,
    /// In this order; Herald reports header errors by position.
    pub custom_headers: Option<Vec<(String, String)>>,
    pub log_types: Option<Vec<String>>,
    /// `None`: leave as is; `Some(None)`: no limit; `Some(Some(n))`: this limit.
    pub rate_limit_per_minute: Option<Option<i64>>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears the threshold.
    pub auto_disable_after_failures: Option<Option<i64>>,
}

impl DestinationInput {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        let DestinationInput {
            display_name,
            url,
            severities,
            alert_types,
            custom_headers,
            log_types,
            enabled,
            rate_limit_per_minute,
            auto_disable_after_failures,
        } = self;
        display_name.is_none()
            && url.is_none()
            && severities.is_none()
            && alert_types.is_none()
            && custom_headers.is_none()
            && log_types.is_none()
            && enabled.is_none()
            && rate_limit_per_minute.is_none()
            && auto_disable_after_failures.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach Herald at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("request to Herald failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("Herald answered HTTP {status}")]
    Status { status: u16 },
    /// A GraphQL error; `code` is `extensions.code`, `field` the input path Herald blames.
    #[error("{message}")]
    Api {
        code: Option<String>,
        field: Option<String>,
        message: String,
    },
    #[error("Herald's answer held neither data nor errors")]
    NoData,
}

impl ClientError {
    fn is_server_side(&self) -> bool {
        match self {
            ClientError::Status { status } => *status >= 500,
            ClientError::Api { code, .. } => code.as_deref() == Some("INTERNAL_SERVER_ERROR"),
            _ => false,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    graphql_url: String,
    token: String,
}

/// Enum values are the same strings in every operation's generated types; going through serde
/// converts between them and the wire names without a match per enum per operation.
fn wire<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

fn from_wire<T: DeserializeOwned>(s: &str) -> T {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .expect("generated enums accept any string")
}

/// A list of wire names as the operation's generated enum type.
fn wire_list<T: DeserializeOwned>(names: Option<Vec<String>>) -> Option<Vec<T>> {
    names.map(|v| v.iter().map(|s| from_wire(s)).collect())
}

macro_rules! destination_from {
    ($module:ident) => {
        impl From<$module::DestinationFields> for Destination {
            fn from(d: $module::DestinationFields) -> Self {
                Destination {
                    id: d.id,
                    display_name: d.display_name,
                    url: d.url,
                    severities: d.severities.iter().map(wire).collect(),
                    alert_types: d.alert_types.iter().map(wire).collect(),
                    custom_headers: d
                        .custom_headers
                        .into_iter()
                        .map(|h| (h.name, h.value))
                        .collect(),
                    log_types: d.log_types,
                    rate_limit_per_minute: d.rate_limit_per_minute,
                    enabled: d.enabled,
                    auto_disable_after_failures: d.auto_disable_after_failures,
                    disabled_reason: d.disabled_reason,
                    signing_secret: d.signing_secret,
                    previous_signing_secret_expires_at: d.previous_signing_secret_expires_at,
                    created_at: d.created_at,
                    updated_at: d.updated_at,
                }
            }
        }
    };
}

destination_from!(get_destination);
destination_from!(list_destinations);
destination_from!(create_destination);
destination_from!(update_destination);
destination_from!(rotate_signing_secret);
destination_from!(clear_auto_disable);
destination_from!(clear_rate_limit);

impl Client {
    pub fn new(endpoint: &str, token: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!(
                "terraform-provider-herald/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Client {
            http,
            graphql_url: format!("{}/graphql", endpoint.trim_end_matches('/')),
            token: token.to_owned(),
        })
    }

    /// Runs an operation. `idempotent` operations are also retried when Herald fails on its side
    /// (such as SQLite reporting a busy database under concurrent writes): running them twice
    /// does no harm.
    async fn run<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        idempotent: bool,
    ) -> Result<Q::ResponseData, ClientError> {
        let body: QueryBody<Q::Variables> = Q::build_query(variables);
        let mut attempt = 1;
        loop {
            match self.send::<Q>(&body).await {
                Err(e) if idempotent && e.is_server_side() && attempt < SERVER_ERROR_ATTEMPTS => {
                    log::warn(&format!(
                        "Herald failed on its side ({e}); retrying {} (attempt {attempt})",
                        body.operation_name
                    ));
                    tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt - 1))).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    async fn send<Q: GraphQLQuery>(
        &self,
        body: &QueryBody<Q::Variables>,
    ) -> Result<Q::ResponseData, ClientError> {
        let mut attempt = 1;
        let response = loop {
            let sent = self
                .http
                .post(&self.graphql_url)
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await;
            match sent {
                Ok(r) => break r,
                Err(e) if e.is_connect() && attempt < CONNECT_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                    attempt += 1;
                }
                Err(e) if e.is_connect() => {
                    return Err(ClientError::Connect {
                        endpoint: self.graphql_url.clone(),
                        source: e,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        };
        let status = response.status();
        let bytes = response.bytes().await?;
        // Herald answers auth failures with a GraphQL error body as well; prefer its message.
        let parsed: Result<graphql_client::Response<Q::ResponseData>, _> =
            serde_json::from_slice(&bytes);
        let parsed = match parsed {
            Ok(p) => p,
            Err(_) if !status.is_success() => {
                return Err(ClientError::Status {
                    status: status.as_u16(),
                });
            }
            Err(e) => {
                return Err(ClientError::Api {
                    code: None,
                    field: None,
                    message: format!("unreadable answer from Herald: {e}"),
                });
            }
        };
        if let Some(err) = parsed.errors.and_then(|errs| errs.into_iter().next()) {
            let ext = err.extensions.unwrap_or_default();
            let text = |k: &str| ext.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            return Err(ClientError::Api {
                code: text("code"),
                field: text("field"),
                message: err.message,
            });
        }
        if !status.is_success() {
            return Err(ClientError::Status {
                status: status.as_u16(),
            });
        }
        parsed.data.ok_or(ClientError::NoData)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Destination>, ClientError> {
        let data = self
            .run::<GetDestination>(get_destination::Variables { id: id.to_owned() }, true)
            .await?;
        Ok(data.destination.map(Destination::from))
    }

    /// Every destination, or those whose display name matches (case-insensitively).
    pub async fn list(&self, display_name: Option<&str>) -> Result<Vec<Destination>, ClientError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let data = self
                .run::<ListDestinations>(
                    list_destinations::Variables {
                        first: Some(PAGE_SIZE),
                        after: after.take(),
                        display_name: display_name.map(str::to_owned),
                    },
                    true,
                )
                .await?;
            let page = data.destinations;
            out.extend(page.edges.into_iter().map(|e| Destination::from(e.node)));
            match (page.page_info.has_next_page, page.page_info.end_cursor) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => return Ok(out),
            }
        }
    }

    pub async fn create(&self, input: DestinationInput) -> Result<Destination, ClientError> {
        use create_destination as m;
        let v = m::Variables {
            input: m::CreateDestinationInput {
                display_name: input.display_name.unwrap_or_default(),
                url: input.url.unwrap_or_default(),
                severities: wire_list(input.severities),
                alert_types: wire_list(input.alert_types),
                custom_headers: input.custom_headers.map(|hs| {
                    hs.into_iter()
                        .map(|(name, value)| m::CustomHeaderInput { name, value })
                        .collect()
                }),
                log_types: input.log_types,
                rate_limit_per_minute: input.rate_limit_per_minute.flatten(),
                enabled: input.enabled,
                auto_disable_after_failures: input.auto_disable_after_failures.flatten(),
            },
        };
        let data = self.run::<CreateDestination>(v, false).await?;
        Ok(data.create_destination.destination.into())
    }

    pub async fn update(
        &self,
        id: &str,
        input: DestinationInput,
    ) -> Result<Destination, ClientError> {
        use update_destination as m;
        let v = m::Variables {
            input: m::UpdateDestinationInput {
                id: id.to_owned(),
                display_name: input.display_name,
                url: input.url,
                severities: wire_list(input.severities),
                alert_types: wire_list(input.alert_types),
                custom_headers: input.custom_headers.map(|hs| {
                    hs.into_iter()
                        .map(|(name, value)| m::CustomHeaderInput { name, value })
                        .collect()
                }),
                log_types: input.log_types,
                // A removed limit is sent by `ClearRateLimit`: the generated input leaves out
                // what is None, and Herald reads an absent field as "unchanged".
                rate_limit_per_minute: input.rate_limit_per_minute.flatten(),
                enabled: input.enabled,
                auto_disable_after_failures: input.auto_disable_after_failures.flatten(),
            },
        };
        let data = self.run::<UpdateDestination>(v, true).await?;
        let mut updated: Destination = data.update_destination.destination.into();
        // Explicit nulls, which the generated update input cannot carry.
        if input.auto_disable_after_failures == Some(None) {
            let cleared = self
                .run::<ClearAutoDisable>(clear_auto_disable::Variables { id: id.to_owned() }, true)
                .await?;
            updated = cleared.update_destination.destination.into();
        }
        if input.rate_limit_per_minute == Some(None) {
            let cleared = self
                .run::<ClearRateLimit>(clear_rate_limit::Variables { id: id.to_owned() }, true)
                .await?;
            updated = cleared.update_destination.destination.into();
        }
        Ok(updated)
    }

    /// Issues a new signing secret; the previous one keeps signing for `grace_seconds`. Not
    /// retried on Herald-side failures: a second run would rotate again and drop the secret the
    /// first run issued before anyone saw it.
    pub async fn rotate_signing_secret(
        &self,
        id: &str,
        grace_seconds: u32,
    ) -> Result<Destination, ClientError> {
        use rotate_signing_secret as m;
        let v = m::Variables {
            input: m::RotateSigningSecretInput {
                id: id.to_owned(),
                // At most 30 days (herald-domain's rule), well inside an i32.
                grace_period_seconds: Some(i64::from(grace_seconds)),
            },
        };
        let data = self.run::<RotateSigningSecret>(v, false).await?;
        Ok(data.rotate_signing_secret.destination.into())
    }

    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        use delete_destination as m;
        self.run::<DeleteDestination>(
            m::Variables {
                input: m::DeleteDestinationInput { id: id.to_owned() },
            },
            true,
        )
        .await?;
        Ok(())
    }
}
