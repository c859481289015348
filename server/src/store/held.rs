//! What a process's dispatcher holds per destination, as its lease-taking transactions read it.
//!
//! Two kinds of write lease deliveries to this process: an alert group (deliveries leased at
//! insert) and a claim. Each reads how many deliveries each destination already holds here, leases
//! no more than the room left under the destination's bound, and the dispatcher counts what it
//! leased once the transaction has committed. Were the two to read side by side, each could miss
//! what the other was leasing, and together they would lease a destination past its bound. So the
//! reading is taken under a gate that its holder keeps until the dispatcher has counted what it
//! leased on that reading.
//!
//! The gate is taken inside the write transaction, after `begin_write`: a transaction waiting for
//! SQLite's lock (or for a PostgreSQL connection) holds no gate, so a call never waits out another
//! write's wait before its own, and on SQLite, where the one writer orders the two already, the
//! gate is never contended but for the moment between a commit and the count.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// How the counts are read; the dispatcher supplies it (the store knows nothing of dispatching).
type ReadCounts = dyn Fn() -> HashMap<String, usize> + Send + Sync;

/// The dispatcher's per-destination counts behind their gate. Cloning shares both.
#[derive(Clone)]
pub struct HeldCounts {
    gate: Arc<Mutex<()>>,
    read: Arc<ReadCounts>,
}

impl fmt::Debug for HeldCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldCounts").finish_non_exhaustive()
    }
}

/// Keeps the gate shut until dropped: drop it once what was leased on the reading is counted.
#[derive(Debug)]
pub struct HeldGuard {
    _gate: OwnedMutexGuard<()>,
}

impl HeldCounts {
    pub fn new(read: impl Fn() -> HashMap<String, usize> + Send + Sync + 'static) -> Self {
        HeldCounts {
            gate: Arc::default(),
            read: Arc::new(read),
        }
    }

    /// Waits for the gate, then reads the counts.
    pub(crate) async fn read(&self) -> (HashMap<String, usize>, HeldGuard) {
        let guard = self.gate.clone().lock_owned().await;
        ((self.read)(), HeldGuard { _gate: guard })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_reading_waits_until_the_first_guard_is_dropped() {
        let counts = Arc::new(std::sync::Mutex::new(0usize));
        let c = counts.clone();
        let held = HeldCounts::new(move || HashMap::from([("d".to_owned(), *c.lock().unwrap())]));
        let (first, guard) = held.read().await;
        assert_eq!(first["d"], 0);
        let second = tokio::spawn({
            let held = held.clone();
            async move { held.read().await.0 }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !second.is_finished(),
            "the second reading waits for the gate"
        );
        // What the first holder leased is counted before it lets the gate go.
        *counts.lock().unwrap() = 3;
        drop(guard);
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the gate opens when the guard is dropped")
            .unwrap();
        assert_eq!(
            second["d"], 3,
            "the second reading sees the first one's count"
        );
    }
}
