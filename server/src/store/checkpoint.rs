//! SQLite's WAL checkpoints, done beside the writer instead of by it.
//!
//! In WAL mode a commit appends pages to the `-wal` file, and a checkpoint copies them back into
//! the database file (and fsyncs it). By default the connection whose commit takes the WAL past
//! 1,000 pages does that copy inside its COMMIT: on Herald's one writer connection (see
//! [`super::Store`]) every alert group, claim and result batch then waits behind it. Profiled
//! while a backlog drained, writes and fsyncs were a fifth of the writer thread's time, most of
//! them the checkpoints (BENCHMARKS.md).
//!
//! So the writer's own threshold is raised to [`WRITER_FALLBACK_PAGES`], a bound it reaches only
//! if this task falls behind, and [`spawn`] runs a PASSIVE checkpoint on a reader connection each
//! time the WAL has grown by about [`TARGET_FRAMES`] pages, as often as the writer did it itself.
//! A PASSIVE checkpoint takes no lock that a writer or a reader waits for: it copies what is
//! committed and leaves the rest for next time. Once it has copied all of it, the writer's next
//! transaction starts the WAL over from its beginning. Checkpoints every 100 ms instead, of a few
//! hundred pages each, raised the API p99 at 1,000 alerts/s from 8 to 12–25 ms; of a second's
//! pages each, to 28 ms; at the default's size, 6 ms (BENCHMARKS.md).
//!
//! Durability is unchanged: a commit is in the WAL either way (`synchronous=NORMAL`), and a
//! process killed before a checkpoint leaves a WAL that the next open replays.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::StoreError;

/// WAL pages at which the writer checkpoints in its own COMMIT, as SQLite does by default at
/// 1,000: only if the checkpoints here fall behind (about 40 MiB of WAL at 4 KiB pages).
pub const WRITER_FALLBACK_PAGES: u32 = 10_000;

/// WAL pages per checkpoint, as many as SQLite's default threshold: checkpoints of a few pages
/// each cost an fsync per few commits, and large ones hold the disk longer at a time.
pub const TARGET_FRAMES: u64 = 1_000;

/// The shortest and the longest wait between two checkpoints; the longest is an idle database's.
pub const MIN_EVERY: Duration = Duration::from_millis(50);
pub const IDLE_EVERY: Duration = Duration::from_secs(1);

/// What one checkpoint found, in WAL frames (pages): how many the WAL holds and how many of them
/// are now in the database file. Both -1 when the database is not in WAL mode (in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    pub wal_frames: i64,
    pub copied_frames: i64,
}

/// One PASSIVE checkpoint on a connection of `db`. Never waits for a writer or a reader; a
/// checkpoint that another connection runs at the same moment is SQLITE_BUSY, reported here as
/// nothing copied.
pub async fn passive(db: &DatabaseConnection) -> Result<Checkpointed, StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            "PRAGMA wal_checkpoint(PASSIVE)",
        ))
        .await?
        .ok_or_else(|| StoreError::Corrupt("wal_checkpoint returned no row".into()))?;
    Ok(Checkpointed {
        wal_frames: row.try_get_by_index(1)?,
        copied_frames: row.try_get_by_index(2)?,
    })
}

/// Checkpoints `db` (SQLite only; on PostgreSQL it returns at once) until `stop` is cancelled,
/// about every [`TARGET_FRAMES`] pages of WAL: the time to the next checkpoint follows the rate at
/// which the last interval appended pages, between [`MIN_EVERY`] and [`IDLE_EVERY`]. A failed
/// checkpoint is logged and tried again: until then the writer's fallback bounds the WAL.
pub fn spawn(db: DatabaseConnection, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if db.get_database_backend() != DatabaseBackend::Sqlite {
            return;
        }
        let mut last: Option<(Checkpointed, Instant)> = None;
        let mut every = MIN_EVERY;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match passive(&db).await {
                Ok(now) => {
                    let at = Instant::now();
                    every = match last {
                        Some((before, then)) if now.wal_frames >= 0 => {
                            // A WAL that holds fewer frames than before was started over.
                            let appended = if now.wal_frames >= before.wal_frames {
                                now.wal_frames - before.wal_frames
                            } else {
                                now.wal_frames
                            };
                            next_interval(appended as u64, at - then)
                        }
                        _ => MIN_EVERY,
                    };
                    last = Some((now, at));
                }
                Err(e) => {
                    every = IDLE_EVERY;
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying later");
                }
            }
        }
    })
}

/// How long until the WAL holds about [`TARGET_FRAMES`] new pages, at the rate of `appended` pages
/// in `over`.
fn next_interval(appended: u64, over: Duration) -> Duration {
    if appended == 0 {
        return IDLE_EVERY;
    }
    over.mul_f64(TARGET_FRAMES as f64 / appended as f64)
        .clamp(MIN_EVERY, IDLE_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// About 6 MB in one transaction: some 1,500 WAL pages, past SQLite's default threshold.
    const FILL: &str = "CREATE TABLE filler (v TEXT); \
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) \
        INSERT INTO filler SELECT hex(randomblob(2000)) FROM n";

    #[tokio::test]
    async fn the_writer_leaves_checkpoints_to_the_task_that_does_them_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()), 2)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        passive(store.db()).await.unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        store.writer().execute_unprepared(FILL).await.unwrap();
        // With SQLite's default the commit itself would have copied the pages into the file.
        assert!(size() < before + 1_000_000, "{before} → {}", size());

        let stop = CancellationToken::new();
        let task = spawn(store.db().clone(), stop.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while size() < before + 5_000_000 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not checkpointed: {}",
                size()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let done = passive(store.db()).await.unwrap();
        assert!(done.wal_frames > 1_000, "{done:?}");
        assert_eq!(done.copied_frames, done.wal_frames, "{done:?}");
        stop.cancel();
        task.await.unwrap();
    }
}
