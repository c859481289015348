use async_graphql::{ID, Object};

use super::DateTime;
use crate::store::audit;

/// One change made through the API or the command line. `changedFields` names the fields the
/// change set; their values (secret or not) are never recorded.
pub struct AuditEvent(pub audit::AuditEvent);

#[Object]
impl AuditEvent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn at(&self) -> DateTime {
        DateTime(self.0.at)
    }

    /// The API token's name, or `cli` for the `herald` command line.
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// `destination.created`, `destination.updated`, … (the README lists them all).
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// `destination`, `delivery`, `api_token` or `encryption_key`.
    async fn target_type(&self) -> &str {
        &self.0.target_type
    }

    async fn target_id(&self) -> Option<ID> {
        self.0.target_id.clone().map(ID)
    }

    async fn changed_fields(&self) -> &[String] {
        &self.0.changed_fields
    }
}
