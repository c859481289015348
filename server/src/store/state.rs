//! Once-per-database facts.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::entities::server_state;
use super::{StoreError, now};

/// Records `key` if it was never recorded. Returns whether this call recorded it: of several
/// processes racing, exactly one gets `true`. `ON CONFLICT DO NOTHING` rather than catching the
/// unique violation, because on PostgreSQL a failed statement would poison the caller's transaction.
pub async fn claim_once(
    conn: &impl ConnectionTrait,
    key: &str,
    value: &str,
) -> Result<bool, StoreError> {
    let inserted = server_state::Entity::insert(server_state::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(value.to_owned()),
        updated_at: Set(now()),
    })
    .on_conflict(
        OnConflict::column(server_state::Column::Key)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}
