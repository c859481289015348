//! API tokens. A token is `hrld_` and 43 characters of base64url (32 random bytes); only its
//! SHA-256 is stored, so a leaked database does not leak working tokens. A plain hash (no salt, no
//! slow KDF) is right here because the token is random, not a password: it cannot be guessed from
//! a dictionary, and a lookup must be one indexed equality.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder,
};
use sha2::{Digest, Sha256};

use super::audit::{self, Action, Actor};
use super::entities::api_token;
use super::error::is_unique_violation;
use super::{StoreError, ids, now};

pub const TOKEN_PREFIX: &str = "hrld_";

/// How often `last_used_at` is written: at most once a minute per token, so that authenticating
/// thousands of requests a second does not turn every read into a write.
const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Viewer => "VIEWER",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "ADMIN" => Ok(Role::Admin),
            "VIEWER" => Ok(Role::Viewer),
            other => Err(StoreError::Corrupt(format!("unknown token role {other:?}"))),
        }
    }
}

/// A token as listed: everything but the secret, which is never stored.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TryFrom<api_token::Model> for TokenInfo {
    type Error = StoreError;
    fn try_from(m: api_token::Model) -> Result<Self, StoreError> {
        Ok(TokenInfo {
            role: Role::parse(&m.role)?,
            id: m.id,
            name: m.name,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
        })
    }
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Creates a token and returns it with the secret, which the caller shows once. Recorded as
/// `token.created` in the same transaction.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    name: &str,
    role: Role,
) -> Result<(TokenInfo, String), StoreError> {
    let txn = super::begin_write(db).await?;
    let created = create_in(&txn, actor, name, role).await?;
    txn.commit().await?;
    Ok(created)
}

/// `create` inside the caller's transaction.
pub(crate) async fn create_in(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    name: &str,
    role: Role,
) -> Result<(TokenInfo, String), StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(StoreError::InvalidTokenName);
    }
    let token = generate();
    let row = api_token::ActiveModel {
        id: Set(ids::token()),
        name: Set(name.to_owned()),
        role: Set(role.as_str().to_owned()),
        token_hash: Set(hash(&token)),
        created_at: Set(now()),
        last_used_at: Set(None),
    };
    let model = match api_token::Entity::insert(row)
        .exec_with_returning(conn)
        .await
    {
        Ok(m) => m,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::DuplicateTokenName(name.to_owned()));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        conn,
        actor,
        Action::TokenCreated,
        Some(&model.id),
        &["name", "role"],
    )
    .await?;
    Ok((model.try_into()?, token))
}

pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<TokenInfo>, StoreError> {
    api_token::Entity::find()
        .order_by_asc(api_token::Column::Name)
        .all(conn)
        .await?
        .into_iter()
        .map(TokenInfo::try_from)
        .collect()
}

pub async fn count(conn: &impl ConnectionTrait) -> Result<u64, StoreError> {
    Ok(api_token::Entity::find().count(conn).await?)
}

/// Deletes the token named `name`; a revoked token stops working on its next request. Recorded as
/// `token.revoked` in the same transaction.
pub async fn revoke(db: &DatabaseConnection, actor: &Actor, name: &str) -> Result<(), StoreError> {
    let txn = super::begin_write(db).await?;
    let Some(model) = api_token::Entity::find()
        .filter(api_token::Column::Name.eq(name))
        .one(&txn)
        .await?
    else {
        return Err(StoreError::NotFound {
            kind: "API token",
            id: name.to_owned(),
        });
    };
    api_token::Entity::delete_by_id(model.id.clone())
        .exec(&txn)
        .await?;
    audit::record(&txn, actor, Action::TokenRevoked, Some(&model.id), &[]).await?;
    txn.commit().await?;
    Ok(())
}

/// The token that `presented` is, if any, noting (coarsely) that it was used. Read through
/// `conn`; the rare write of `last_used_at` goes through `writer` (see `Store::writer`).
pub async fn authenticate(
    conn: &impl ConnectionTrait,
    writer: &DatabaseConnection,
    presented: &str,
) -> Result<Option<TokenInfo>, StoreError> {
    let Some(model) = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(hash(presented)))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let now = now();
    if model
        .last_used_at
        .is_none_or(|t| now - t >= LAST_USED_RESOLUTION)
    {
        // In a transaction of its own: `begin_write` is what waits out another process's
        // lock on SQLite for as long as any call may wait.
        let txn = super::begin_write(writer).await?;
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
            .filter(api_token::Column::Id.eq(model.id.clone()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
    }
    Ok(Some(model.try_into()?))
}
