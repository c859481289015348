//! `herald backup`: a consistent copy of a SQLite database while servers write to it.
//!
//! `VACUUM INTO` reads the database in one read transaction (a snapshot: writers go on beside it
//! in WAL mode) and writes a new, compacted file that holds everything, with no `-wal` file beside
//! it. The copy is then switched to the rollback journal, so it is one self-contained file that
//! tools and file copies treat as such; `herald serve` switches it back to WAL when it opens it.
//!
//! PostgreSQL has its own tools for this (`pg_dump`), which do it better than Herald could.

use std::io::Write;
use std::path::{Path, PathBuf};

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sea_orm::sqlx::{ConnectOptions, Connection};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use super::secrets::{self, read_canary};
use super::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "herald backup copies SQLite databases only; back up PostgreSQL with pg_dump \
         (e.g. `pg_dump --format=custom --file=herald.dump DATABASE`) and keep \
         HERALD_ENCRYPTION_KEY with it"
    )]
    Postgres,
    #[error("an in-memory database cannot be backed up")]
    InMemory,
    #[error("{0} already exists; herald backup never overwrites a file, choose a new path")]
    Exists(PathBuf),
    #[error("the backup path {0} is not valid UTF-8")]
    NotUtf8(PathBuf),
    #[error("cannot write the backup to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot finish the backup {path}: {source}")]
    Finish {
        path: PathBuf,
        #[source]
        source: sea_orm::sqlx::Error,
    },
    #[error("cannot copy the key file to {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A backup that was written.
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
    /// The id of the key that opens the copy's secrets (never the key), if any were encrypted.
    pub key_id: Option<String>,
}

/// Refuses a path that exists (a file, a directory, a dangling symlink): a backup never replaces
/// anything, least of all an earlier backup.
pub fn refuse_existing(path: &Path) -> Result<(), BackupError> {
    if path.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(path.to_owned()));
    }
    Ok(())
}

/// Writes a consistent copy of the SQLite database behind `store` to `path`, which must not exist.
pub async fn write(store: &Store, path: &Path) -> Result<Backup, BackupError> {
    if store.backend() == DatabaseBackend::Postgres {
        return Err(BackupError::Postgres);
    }
    refuse_existing(path)?;
    let target = path
        .to_str()
        .ok_or_else(|| BackupError::NotUtf8(path.to_owned()))?;
    // The key id first, from the same database: a rotation between the two reads is as unlikely
    // as it is harmless (the server names the key it wants when it opens the copy).
    let key_id = read_canary(store.db(), false)
        .await?
        .and_then(|c| secrets::key_id_of(&c).map(str::to_owned));
    store
        .db()
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Sqlite,
            "VACUUM INTO $1",
            [target.into()],
        ))
        .await
        .map_err(|e| BackupError::Write {
            path: path.to_owned(),
            source: e.into(),
        })?;
    // The copy keeps the source's WAL flag in its header; the rollback journal makes it a file
    // that stands alone whatever opens it (a copy of it never misses a `-wal` beside it).
    let finish = |source| BackupError::Finish {
        path: path.to_owned(),
        source,
    };
    let conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Delete)
        .connect()
        .await
        .map_err(finish)?;
    conn.close().await.map_err(finish)?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Backup {
        path: path.to_owned(),
        bytes,
        key_id,
    })
}

/// Copies the key file `from` to `to` (which must not exist), readable by its owner only, as the
/// key file Herald creates is.
pub fn copy_key_file(from: &Path, to: &Path) -> Result<(), BackupError> {
    refuse_existing(to)?;
    let err = |source| BackupError::KeyFile {
        path: to.to_owned(),
        source,
    };
    let content = std::fs::read(from).map_err(err)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(to).map_err(err)?;
    file.write_all(&content).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(())
}
