//! SQLite's WAL checkpoints, moved off the writer.
//!
//! By default the connection whose commit takes the WAL past 1,000 pages copies them back into the
//! database file then and there, and with one writer connection that was every write's
//! connection: `perf` of its thread put 7–17 % of its time in `sqlite3_wal_checkpoint`, fsyncs
//! included, while every other write waited for it (BENCHMARKS.md). Here a reader connection copies
//! them back a few times a second, beside the writer (a PASSIVE checkpoint takes no lock a writer
//! needs); the writer checkpoints itself only if the WAL still grows past
//! `WRITER_AUTOCHECKPOINT_PAGES`, so the WAL stays bounded if this falls behind or stops.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the WAL is copied back.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The WAL's size, in pages, past which the writer's own commit checkpoints anyway: a safety net
/// four times SQLite's default.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 4000;

/// Copies the WAL back every `every` until `stop`; nothing to do on PostgreSQL.
pub fn spawn_checkpointer(
    db: DatabaseConnection,
    every: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if db.get_database_backend() != DatabaseBackend::Sqlite {
            return;
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            // Busy (another process holds the database, or a checkpoint is running elsewhere) is
            // no fault: the next turn tries again, and the writer's own safety net remains.
            if let Err(e) = db
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint skipped");
            }
        }
    })
}
