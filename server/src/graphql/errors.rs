//! The errors clients see, each with the `extensions.code` they can switch on.
//!
//! `ApiError` deliberately does not implement `Display`: async-graphql converts any `Display` type
//! into an error without extensions, and this way the only conversion is ours, which sets `code`
//! (and `field`) and keeps internal details out of responses.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, NextValidation, ResolveInfo,
};
use async_graphql::{ErrorExtensions, ServerError, ServerResult, ValidationResult, Value};
use herald_domain::ValidationError;

use crate::store::StoreError;

#[derive(Debug, Clone)]
pub enum ApiError {
    BadUserInput {
        field: String,
        message: String,
    },
    NotFound {
        kind: &'static str,
        id: String,
    },
    Forbidden,
    /// A dependency is down for the moment; the caller may retry.
    Unavailable(String),
    /// Something on our side; the detail went to the log, never to the client.
    Internal,
}

impl ApiError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The database could not take the call (down, unreachable, locked): try again.
    pub fn unavailable() -> Self {
        ApiError::Unavailable("the database is unavailable; try again".into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::NotFound { .. } => "NOT_FOUND",
            ApiError::Forbidden => "FORBIDDEN",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::Internal => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::BadUserInput { message, .. } => message.clone(),
            ApiError::NotFound { kind, id } => format!("{kind} {id:?} does not exist"),
            ApiError::Forbidden => {
                "this operation needs the ADMIN role; the token in use is a VIEWER token".into()
            }
            ApiError::Unavailable(m) => m.clone(),
            ApiError::Internal => "internal error; the server log has the details".into(),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::bad_input(e.field.graphql_path(), e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(v) => v.into(),
            StoreError::NotFound { kind, id } => ApiError::NotFound { kind, id },
            StoreError::DuplicateDisplayName(_) => {
                ApiError::bad_input("displayName", e.to_string())
            }
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "request failed: the database is unavailable");
                ApiError::unavailable()
            }
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::Internal
            }
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", e.code());
            if let ApiError::BadUserInput { field, .. } = &e {
                ext.set("field", field.as_str());
            }
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Gives async-graphql's own argument errors our shape: `code: BAD_USER_INPUT` and `field` naming
/// the argument. Without it, a value a scalar cannot parse (`since: "yesterday"`) or a literal the
/// validator rejects would come back with no code at all, and clients could not tell it from a
/// server fault.
pub(super) struct ArgumentErrors;

impl ExtensionFactory for ArgumentErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ArgumentErrors)
    }
}

fn mark_bad_input(err: &mut ServerError, field: &str) {
    let ext = err.extensions.get_or_insert_with(Default::default);
    ext.set("code", "BAD_USER_INPUT");
    ext.set("field", field);
}

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

#[async_graphql::async_trait::async_trait]
impl Extension for ArgumentErrors {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for err in errors.iter_mut().filter(|e| !has_code(e)) {
                // The validator's wording: `Invalid value for argument "name", <reason>` (a
                // nested path like "input.url" names the input field).
                let name = err
                    .message
                    .strip_prefix("Invalid value for argument \"")
                    .and_then(|rest| rest.split_once('"'))
                    .map(|(name, _)| name.to_owned());
                if let Some(name) = name {
                    mark_bad_input(err, &name);
                }
            }
            errors
        })
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let field = info.field;
        next.run(ctx, info).await.map_err(|mut err| {
            // A value that failed to parse is reported at the argument value's position.
            if !has_code(&err) {
                let argument = field
                    .arguments
                    .iter()
                    .find(|(_, value)| err.locations.contains(&value.pos));
                if let Some((name, _)) = argument {
                    mark_bad_input(&mut err, name.node.as_str());
                }
            }
            err
        })
    }
}
