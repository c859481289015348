//! Alerts in: the checks an alert must pass (wherever it comes from: `sendAlert`, `sendAlerts`,
//! `POST /v1/alerts`), and group commit. Concurrent calls queue here and are written together, in
//! one transaction per group, so a thousand single-alert calls a second cost a few dozen commits,
//! not a thousand. Each call returns once its alert and deliveries are committed.

use chrono::{DateTime, SubsecRound, Utc};
use herald_domain::{AlertType, Severity};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::Dispatcher;
use crate::dispatch::payload::PantherPayload;
use crate::dispatch::routing::RoutingRequest;
use crate::store::alerts::{self, Accepted, IncomingAlert};
use crate::store::{Store, StoreError, ids};

/// `alertContext` may be at most this large, serialized.
pub const MAX_CONTEXT_BYTES: usize = 200 * 1024;
pub const MAX_DYNAMIC_DESTINATIONS: usize = 10;
pub const MAX_BATCH: usize = 1000;
/// Alerts written per group transaction, at most.
const GROUP_LIMIT: usize = 2000;

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

/// A broken rule in an alert: the input field and what is wrong.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// Applies the checks and defaults; field names are relative (`context`), the caller prefixes
    /// them for batches (`alerts[3].context`).
    pub fn into_incoming(self) -> Result<IncomingAlert, AlertInputError> {
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
            None => ids::alert(),
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
        if tags.len() > 100 {
            return Err(bad(
                "tags",
                format!("at most 100 tags are allowed, got {}", tags.len()),
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
        if let Some(d) = &self.dynamic_destinations
            && d.len() > MAX_DYNAMIC_DESTINATIONS
        {
            return Err(bad(
                "dynamicDestinations",
                format!(
                    "at most {MAX_DYNAMIC_DESTINATIONS} dynamic destinations are allowed, got {}",
                    d.len()
                ),
            ));
        }
        let log_types = self.log_types.unwrap_or_default();
        // The destination's rules, so any name a destination can list, an alert can name.
        herald_domain::validate_log_types(&log_types)
            .map_err(|e| bad(&e.field.graphql_path(), e.message))?;
        let alert_type = self.alert_type.unwrap_or(AlertType::Rule);
        Ok(IncomingAlert {
            payload: PantherPayload {
                id: self.detection_id,
                // Panther's timestamps have whole seconds; a caller's own precision is kept.
                created_at: self
                    .created_at
                    .unwrap_or_else(|| Utc::now().trunc_subsecs(0)),
                severity,
                alert_type,
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
            routing: RoutingRequest {
                severity: Some(severity),
                dynamic_severity: self.dynamic_severity,
                alert_type: Some(alert_type),
                destination_overrides: self.destination_overrides,
                dynamic_destinations: self.dynamic_destinations,
                log_types,
            },
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

type Reply = oneshot::Sender<Result<Vec<Accepted>, String>>;

/// The group-commit writer. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<(Vec<IncomingAlert>, Reply)>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the alert could not be stored: {0}")]
    Store(String),
    #[error("the server is shutting down")]
    Stopped,
}

impl Ingest {
    pub fn start(store: Store, dispatcher: Dispatcher) -> Self {
        let (tx, rx) = mpsc::channel(10_000);
        tokio::spawn(group_commit(store, dispatcher, rx));
        Ingest { tx }
    }

    /// Stores the alerts and their deliveries; returns when they are committed.
    pub async fn accept(&self, alerts: Vec<IncomingAlert>) -> Result<Vec<Accepted>, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((alerts, reply))
            .await
            .map_err(|_| IngestError::Stopped)?;
        answer
            .await
            .map_err(|_| IngestError::Stopped)?
            .map_err(IngestError::Store)
    }
}

async fn group_commit(
    store: Store,
    dispatcher: Dispatcher,
    mut rx: mpsc::Receiver<(Vec<IncomingAlert>, Reply)>,
) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let mut size = group[0].0.len();
        while size < GROUP_LIMIT {
            match rx.try_recv() {
                Ok(next) => {
                    size += next.0.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let counts: Vec<usize> = group.iter().map(|(a, _)| a.len()).collect();
        let all: Vec<IncomingAlert> = group.iter_mut().flat_map(|(a, _)| a.drain(..)).collect();
        let result = alerts::accept(store.db(), all).await;
        if result.is_ok() {
            dispatcher.wake();
        }
        match result {
            Ok(accepted) => {
                let mut accepted = accepted.into_iter();
                for ((_, reply), n) in group.into_iter().zip(counts) {
                    let _ = reply.send(Ok(accepted.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, alerts = size, "cannot store alerts");
                let message = store_error_message(&e);
                for (_, reply) in group {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}

fn store_error_message(e: &StoreError) -> String {
    match e {
        StoreError::Database(_) | StoreError::Connect(_) => "the database failed; try again".into(),
        other => other.to_string(),
    }
}
