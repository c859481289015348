use herald_domain::ValidationError;
use sea_orm::{DbErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("HERALD_DATABASE_URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] DbErr),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{kind} {id:?} does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error(
        "displayName must be unique (case-insensitive): {0:?} is already used by another destination"
    )]
    DuplicateDisplayName(String),
    #[error("an API token named {0:?} already exists")]
    DuplicateTokenName(String),
    #[error("token name must be 1 to 100 characters and not blank")]
    InvalidTokenName,
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Secret(#[from] super::secrets::SecretError),
    #[error("database error: {0}")]
    Database(#[source] DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        StoreError::Database(e)
    }
}

pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
