//! Everything that reads or writes the database. Callers get decoded domain values, never raw rows,
//! and every write that must be atomic (a change and its audit entry, an alert and its deliveries)
//! is one transaction here.

pub mod alerts;
pub mod audit;
pub mod backup;
pub mod counts;
pub mod deliveries;
pub mod destinations;
pub mod entities;
mod error;
pub mod held;
pub mod ids;
pub mod keys;
pub mod migrations;
pub mod notify;
pub mod rate_limit;
pub mod retention;
pub mod secrets;
pub mod snapshot;
mod sql;
pub mod state;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use error::StoreError;
pub use secrets::{SecretError, Secrets};

/// How long a call waits for the database (a pooled connection; on SQLite, a lock another process
/// holds) before it fails as unavailable.
pub const DATABASE_WAIT: Duration = Duration::from_secs(5);

/// SQLite page cache of the writer connection and of each reader connection, in KiB.
const WRITER_CACHE_KIB: u32 = 8 * 1024;
const READER_CACHE_KIB: u32 = 1024;

/// A handle on the database and the keys that open its secrets; cheap to clone.
///
/// Two pools on SQLite: `db` for reads, and `writer`, a single connection that every write
/// transaction goes through. SQLite allows one writer at a time; with writers on many connections
/// the losers wait in SQLite's busy handler, which sleeps 1–100 ms and retries instead of taking
/// the lock when it is free. Measured under load (`perf trace` in BENCHMARKS.md), the pooled
/// connections slept more than the wall time, with the cores half idle. A pool of one queues the
/// writers in order in the process, and each gets the lock the moment the previous one commits.
/// On PostgreSQL both are the same pool: its writers lock rows, not the database.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    writer: DatabaseConnection,
    secrets: Arc<Secrets>,
    snapshots: Arc<snapshot::Snapshots>,
}

/// The current time at the precision both databases keep (microseconds), so a value read back
/// equals the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// How long SQLite's writer connection waits in one go for a lock another process holds, before
/// [`begin_write`] lets the next writer in this process have the connection and tries again.
const WRITER_BUSY_SLICE: Duration = Duration::from_millis(100);

/// Begins a transaction that will write. On SQLite it takes the write lock at BEGIN (IMMEDIATE),
/// so it waits its turn; a deferred transaction that reads first and then writes would instead
/// fail at once with SQLITE_BUSY when another writer got in between.
///
/// While another process holds SQLite's lock, every write of this process queues for the one
/// writer connection (see [`Store`]). Were each to wait out the whole busy timeout on it, a call
/// queued behind a background write would wait for that write's five seconds and then its own:
/// calls answered after seven seconds of a seven-second lock instead of refused at five. So the
/// writer waits in slices of [`WRITER_BUSY_SLICE`], handing the connection on between them, and
/// each caller gives up once it has waited [`DATABASE_WAIT`] in all.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, StoreError> {
    begin_write_by(db, Instant::now() + DATABASE_WAIT).await
}

/// [`begin_write`] for a caller that has waited already (an alert group, for its oldest call):
/// it stops waiting for another process's lock at `deadline`, having tried at least once.
pub async fn begin_write_by(
    db: &DatabaseConnection,
    deadline: Instant,
) -> Result<DatabaseTransaction, StoreError> {
    loop {
        match db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        {
            Err(e) if error::is_sqlite_busy(&e) && Instant::now() < deadline => continue,
            other => return Ok(other?),
        }
    }
}

/// One page of a list, in the shape a Relay connection needs.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub total_count: u64,
}

impl<T> Page<T> {
    /// A page from rows fetched with `LIMIT first + 1`: the extra row only says there is more.
    pub(crate) fn from_rows<R>(
        mut rows: Vec<R>,
        first: u64,
        total_count: u64,
    ) -> Result<Self, StoreError>
    where
        T: TryFrom<R, Error = StoreError>,
    {
        let has_next_page = rows.len() as u64 > first;
        rows.truncate(first as usize);
        Ok(Page {
            items: rows
                .into_iter()
                .map(T::try_from)
                .collect::<Result<_, _>>()?,
            has_next_page,
            total_count,
        })
    }
}

/// How every SQLite connection is opened; `cache_kib` is its page cache, `busy` how long one
/// statement waits for a lock another process holds.
fn sqlite_options(o: SqliteConnectOptions, cache_kib: u32, busy: Duration) -> SqliteConnectOptions {
    // WAL lets readers run beside the one writer; NORMAL sync in WAL mode survives a
    // killed process (not a power cut), which is the durability the queue promises.
    o.create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        // A lock held by another process is waited out for as long as a PostgreSQL
        // call waits for a connection; past that the call fails as unavailable. The writer
        // waits in slices, and `begin_write` adds them up to the same bound.
        .busy_timeout(busy)
        .foreign_keys(true)
        // Pages kept per connection (negative: KiB). The page cache is most of the
        // process's memory on SQLite, one cache per connection: see `connect`.
        .pragma("cache_size", format!("-{cache_kib}"))
        // Deleted and overwritten content is zeroed, so a secret's plain text (from
        // before encryption at rest) or an old key's ciphertext does not linger in
        // free space of the file.
        .pragma("secure_delete", "ON")
        // A statement that may fail halfway inside a transaction (a multi-row UPDATE) keeps a
        // journal of the pages it changes so it can be undone alone; on disk that was a write
        // system call per page. In memory it is bounded by the statement's own pages.
        .pragma("temp_store", "MEMORY")
        // Rows a statement may send ahead of the task reading them: a claim or a result batch
        // returns up to 256, and each time the worker thread fills the default 50 it waits for
        // the task, one more hand-off between threads.
        .row_buffer_size(256)
}

impl Store {
    /// Connects to `sqlite:…` (the file is created on first use) or `postgres://…`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            DatabaseBackend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DatabaseBackend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = |connections: u32| {
            let mut opts = ConnectOptions::new(url);
            opts.max_connections(connections)
                .min_connections(1)
                .connect_timeout(Duration::from_secs(5))
                // While the database is down a call waits this long for a connection and then
                // fails (`StoreError::is_unavailable`): a client hears "try again" in seconds,
                // not tens. For SQLite's writer it is also how long a write may queue in here.
                .acquire_timeout(DATABASE_WAIT)
                // Statements carry signing secrets and header values as parameters: never log
                // them.
                .sqlx_logging(false);
            if backend == DatabaseBackend::Sqlite {
                // sqlx pings a connection each time it leaves the pool, by default: on SQLite a
                // round trip to the connection's thread before every transaction and every read,
                // 0.4 ms under load (BENCHMARKS.md), to check a file that cannot hang up. A
                // PostgreSQL connection can (a restart, a network cut), and keeps the check.
                opts.test_before_acquire(false);
            }
            opts
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (db, writer) = if backend == DatabaseBackend::Sqlite && !in_memory {
            // The writer's cache holds the pages every write touches (the queue's indexes,
            // the newest rows): larger. Readers share the OS page cache behind their own
            // small ones; 16 MiB on each of ten connections was 160 MiB of RSS at depth.
            let mut w = options(1);
            w.map_sqlx_sqlite_opts(|o| sqlite_options(o, WRITER_CACHE_KIB, WRITER_BUSY_SLICE));
            let mut r = options(max_connections);
            r.map_sqlx_sqlite_opts(|o| sqlite_options(o, READER_CACHE_KIB, DATABASE_WAIT));
            let writer = Database::connect(w).await.map_err(StoreError::Connect)?;
            let db = Database::connect(r).await.map_err(StoreError::Connect)?;
            (db, writer)
        } else {
            let mut opts = options(max_connections);
            if backend == DatabaseBackend::Sqlite {
                // An in-memory database exists per pool: one pool, or writes would vanish.
                opts.map_sqlx_sqlite_opts(|o| sqlite_options(o, WRITER_CACHE_KIB, DATABASE_WAIT));
            }
            let db = Database::connect(opts).await.map_err(StoreError::Connect)?;
            (db.clone(), db)
        };
        Ok(Self {
            db,
            writer,
            secrets: Arc::new(Secrets::locked()),
            snapshots: Arc::default(),
        })
    }

    /// The pool for reads (and on PostgreSQL for everything).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The pool that write transactions go through: on SQLite one connection (see [`Store`]). A
    /// write through `db()` is still correct, only slower under load, as it waits in SQLite's
    /// busy handler.
    pub fn writer(&self) -> &DatabaseConnection {
        &self.writer
    }

    /// The keys; without `keys::unlock`, none, and every secret read or write fails.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub(crate) fn with_secrets(self, secrets: Secrets) -> Store {
        Store {
            db: self.db,
            writer: self.writer,
            secrets: Arc::new(secrets),
            snapshots: self.snapshots,
        }
    }

    /// The write paths' copy of every destination (see [`snapshot`]).
    pub fn snapshots(&self) -> &snapshot::Snapshots {
        &self.snapshots
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Applies pending migrations. Safe when several processes start together: on PostgreSQL a
    /// transaction-scoped advisory lock serializes them, and on SQLite the migrating transaction
    /// takes the write lock before it reads which migrations are applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let txn = begin_write(&self.writer).await?;
        match self.backend() {
            DatabaseBackend::Postgres => {
                // The key is arbitrary but fixed: "herald" in ASCII.
                txn.execute_unprepared("SELECT pg_advisory_xact_lock(114101114097108100)")
                    .await?;
            }
            _ => {
                txn.execute_unprepared(
                    "CREATE TABLE IF NOT EXISTS herald_migration_lock (id INTEGER PRIMARY KEY)",
                )
                .await?;
                txn.execute_unprepared("DELETE FROM herald_migration_lock")
                    .await?;
            }
        }
        migrations::Migrator::up(&txn, None).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }
}
