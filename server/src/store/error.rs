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

/// SQLite's SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock.
pub(crate) fn is_sqlite_busy(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => {
            sqlite_code(e).is_some_and(|c| matches!(c, 5 | 6))
        }
        _ => false,
    }
}

/// The primary result code of a SQLite error (SQLite reports extended codes; the primary code is
/// the low byte); None for other errors and other databases.
fn sqlite_code(e: &sea_orm::sqlx::Error) -> Option<i32> {
    let sea_orm::sqlx::Error::Database(db) = e else {
        return None;
    };
    db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()?;
    db.code()?.parse::<i32>().ok().map(|c| c & 0xff)
}

impl StoreError {
    /// Whether the database could not be reached or could not take the call just now (connection
    /// refused or closed, the pool timed out waiting for a connection, SQLite busy or locked by
    /// another process, PostgreSQL shutting down or starting up), as opposed to a fault in the
    /// call itself. Callers answer these with "try again" (HTTP 503, `SERVICE_UNAVAILABLE`) and
    /// keep what they must write until the database is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect(_) => true,
            StoreError::Database(e) => db_err_is_unavailable(e),
            _ => false,
        }
    }
}

fn db_err_is_unavailable(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_err_is_unavailable(e)
        }
        _ => false,
    }
}

fn sqlx_err_is_unavailable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match e {
        Error::Io(_)
        | Error::Tls(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if let Ok(extended) = code.parse::<i32>() {
                // SQLite reports extended result codes; the primary code is the low byte.
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6): another connection holds the lock.
                return matches!(extended & 0xff, 5 | 6);
            }
            // PostgreSQL SQLSTATEs: class 08 is a connection exception; 57P01 to 57P03 are an
            // administrator's or a crash's shutdown and "the database system is starting up";
            // 53300 is "too many connections".
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }
        _ => false,
    }
}
