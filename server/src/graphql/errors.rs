//! The errors clients see, each with the `extensions.code` they can switch on.
//!
//! `ApiError` deliberately does not implement `Display`: async-graphql converts any `Display` type
//! into an error without extensions, and this way the only conversion is ours, which sets `code`
//! (and `field`) and keeps internal details out of responses.

use async_graphql::ErrorExtensions;
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

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::NotFound { .. } => "NOT_FOUND",
            ApiError::Forbidden => "FORBIDDEN",
            ApiError::Unavailable(_) => "UNAVAILABLE",
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
