//! News between replicas on PostgreSQL: LISTEN/NOTIFY channels and their payloads.
//!
//! A write that other replicas should hear of sends its notification inside its own transaction;
//! PostgreSQL delivers notifications only when that transaction commits, so a notice never
//! announces a row another replica cannot read yet (and a rolled-back write announces nothing).
//! Every payload carries the `origin` of the change (the worker id of the process that made it),
//! so a replica can skip its own echo. On SQLite there is one process, and sending is a no-op.
//!
//! Notifications are a hint, not a log: one sent while a listener is disconnected is lost. The
//! queue's poll is the backstop, and a listener that reconnects should look at the queue once.

use std::sync::Arc;

use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, RuntimeErr, Statement};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// Deliveries became due (alerts accepted, re-sends queued, a destination enabled again): a
/// replica with free capacity should claim now rather than at its next poll.
pub const QUEUE_CHANNEL: &str = "herald_queue";
/// Deliveries changed (an attempt recorded, a final state): the payload lists their ids.
pub const DELIVERIES_CHANNEL: &str = "herald_deliveries";
/// Destinations changed (an API write, an auto-disable): the payload lists their ids.
pub const DESTINATIONS_CHANNEL: &str = "herald_destinations";

/// The listener's `application_name`, so that operators (and tests) can find its connection in
/// `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "herald-listener";

/// PostgreSQL refuses payloads of 8000 bytes or more; a margin below that.
const MAX_PAYLOAD_BYTES: usize = 7800;

/// What a notification says, as it travels: `{"origin":"wrk_…","ids":["dlv_…",…]}`.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    origin: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ids: Vec<String>,
}

/// What changed, as a listener hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum News {
    /// New work is due.
    Queue,
    /// These deliveries changed; read them again.
    Deliveries(Vec<String>),
    /// These destinations changed; read them again.
    Destinations(Vec<String>),
}

/// One notification: what changed, and who changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The worker id of the process that made the change.
    pub origin: String,
    pub news: News,
}

/// Tells every replica that deliveries became due. Send it in the transaction that queues them.
pub async fn queue(conn: &impl ConnectionTrait, origin: &str) -> Result<(), StoreError> {
    let payload = serde_json::to_string(&Payload {
        origin: origin.to_owned(),
        ids: Vec::new(),
    })
    .expect("a payload serializes");
    send(conn, QUEUE_CHANNEL, &payload).await
}

/// Tells every replica that these deliveries changed. Send it in the transaction that changes them.
pub async fn deliveries(
    conn: &impl ConnectionTrait,
    origin: &str,
    ids: &[String],
) -> Result<(), StoreError> {
    for payload in payloads(origin, ids) {
        send(conn, DELIVERIES_CHANNEL, &payload).await?;
    }
    Ok(())
}

/// Tells every replica that these destinations changed. Send it in the transaction that changes
/// them.
pub async fn destinations(
    conn: &impl ConnectionTrait,
    origin: &str,
    ids: &[String],
) -> Result<(), StoreError> {
    for payload in payloads(origin, ids) {
        send(conn, DESTINATIONS_CHANNEL, &payload).await?;
    }
    Ok(())
}

async fn send(conn: &impl ConnectionTrait, channel: &str, payload: &str) -> Result<(), StoreError> {
    if conn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [channel.into(), payload.into()],
    ))
    .await?;
    Ok(())
}

/// The payloads that announce `ids`: as few as fit under PostgreSQL's size limit. None for no ids.
fn payloads(origin: &str, ids: &[String]) -> Vec<String> {
    let empty = serde_json::to_string(&Payload {
        origin: origin.to_owned(),
        ids: vec![String::new()],
    })
    .expect("a payload serializes")
    .len()
        - 2; // the empty id's quotes
    let mut out = Vec::new();
    let mut chunk: Vec<String> = Vec::new();
    let mut size = empty;
    for id in ids {
        // The id as a JSON string, and the comma before it unless it is the first.
        let cost = serde_json::to_string(id)
            .expect("a string serializes")
            .len()
            + usize::from(!chunk.is_empty());
        if !chunk.is_empty() && size + cost > MAX_PAYLOAD_BYTES {
            out.push(std::mem::take(&mut chunk));
            size = empty;
            chunk.push(id.clone());
            size += cost - 1;
        } else {
            chunk.push(id.clone());
            size += cost;
        }
    }
    if !chunk.is_empty() {
        out.push(chunk);
    }
    out.into_iter()
        .map(|ids| {
            serde_json::to_string(&Payload {
                origin: origin.to_owned(),
                ids,
            })
            .expect("a payload serializes")
        })
        .collect()
}

/// Reads a notification; `None` for a channel or payload that is not Herald's.
fn parse(channel: &str, payload: &str) -> Option<Notice> {
    let p: Payload = serde_json::from_str(payload).ok()?;
    let news = match channel {
        QUEUE_CHANNEL => News::Queue,
        DELIVERIES_CHANNEL => News::Deliveries(p.ids),
        DESTINATIONS_CHANNEL => News::Destinations(p.ids),
        _ => return None,
    };
    Some(Notice {
        origin: p.origin,
        news,
    })
}

fn listen_error(e: sea_orm::sqlx::Error) -> StoreError {
    StoreError::Database(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))
}

/// One connection that listens on Herald's channels. It does not reconnect by itself: when
/// [`Listener::next`] reports the connection lost, drop it and connect a new one, then look at
/// the queue, since notifications sent meanwhile are gone.
pub struct Listener {
    inner: PgListener,
}

impl Listener {
    /// Connects and listens; `Ok(None)` on SQLite, where there is nobody to hear.
    ///
    /// The connection is its own, outside the store's pool: it is held for as long as the process
    /// runs, and it must not take a slot the queue needs.
    pub async fn connect(store: &Store) -> Result<Option<Listener>, StoreError> {
        if store.backend() != DatabaseBackend::Postgres {
            return Ok(None);
        }
        let options = store
            .db()
            .get_postgres_connection_pool()
            .connect_options()
            .as_ref()
            .clone()
            .application_name(LISTENER_APPLICATION_NAME);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(listen_error)?;
        let mut inner = PgListener::connect_with(&pool)
            .await
            .map_err(listen_error)?;
        // A lost connection is reported, not silently re-made: the caller must know, to look at
        // the queue for what it missed.
        inner.eager_reconnect(false);
        inner
            .listen_all([QUEUE_CHANNEL, DELIVERIES_CHANNEL, DESTINATIONS_CHANNEL])
            .await
            .map_err(listen_error)?;
        Ok(Some(Listener { inner }))
    }

    /// The next notice; `Ok(None)` when the connection was lost. Notifications on these channels
    /// that are not Herald's (someone else's NOTIFY) are skipped.
    pub async fn next(&mut self) -> Result<Option<Notice>, StoreError> {
        loop {
            let Some(n) = self.inner.try_recv().await.map_err(listen_error)? else {
                return Ok(None);
            };
            match parse(n.channel(), n.payload()) {
                Some(notice) => return Ok(Some(notice)),
                None => tracing::warn!(
                    channel = n.channel(),
                    "ignored a notification that is not Herald's"
                ),
            }
        }
    }

    /// Notices that already arrived, without waiting; for handling a burst as one batch.
    pub fn next_buffered(&mut self) -> Option<Notice> {
        while let Some(n) = self.inner.next_buffered() {
            if let Some(notice) = parse(n.channel(), n.payload()) {
                return Some(notice);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("dlv_{:032x}", i as u128 * 7919))
            .collect()
    }

    #[test]
    fn a_large_batch_is_split_under_the_payload_limit_and_loses_no_id() {
        let all = ids(1000);
        let sent = payloads("wrk_0123456789abcdef0123456789abcdef", &all);
        assert!(sent.len() > 1, "1000 ids cannot fit one payload");
        let mut back = Vec::new();
        for p in &sent {
            assert!(p.len() < 8000, "payload of {} bytes", p.len());
            let notice = parse(DELIVERIES_CHANNEL, p).unwrap();
            assert_eq!(notice.origin, "wrk_0123456789abcdef0123456789abcdef");
            let News::Deliveries(ids) = notice.news else {
                panic!("not deliveries")
            };
            back.extend(ids);
        }
        assert_eq!(back, all);
        // Full chunks, not one id per notification.
        assert!(sent.len() <= 1000 * 40 / MAX_PAYLOAD_BYTES + 1);
    }

    #[test]
    fn a_small_batch_is_one_payload_and_none_is_none() {
        assert_eq!(payloads("w", &ids(3)).len(), 1);
        assert!(payloads("w", &[]).is_empty());
    }

    #[test]
    fn foreign_notifications_are_not_news() {
        assert_eq!(parse(QUEUE_CHANNEL, "hello"), None);
        assert_eq!(parse("other", r#"{"origin":"w"}"#), None);
        assert_eq!(
            parse(QUEUE_CHANNEL, r#"{"origin":"w"}"#),
            Some(Notice {
                origin: "w".into(),
                news: News::Queue
            })
        );
    }
}
