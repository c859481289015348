//! Where the encryption keys come from (the environment, or a key file beside a SQLite database),
//! setting up encryption at rest on a database's first start with a key, and `herald keys rotate`.

use std::io::Write;
use std::path::{Path, PathBuf};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::audit::{self, Actor};
use super::entities::{destination, server_state};
use super::secrets::{
    self, CANARY_KEY, Key, SecretError, Secrets, Slot, canary_opens, read_canary, seal_canary,
};
use super::{Store, StoreError, begin_write, now};

/// How many destinations a rotation re-seals per transaction, so a running server's writes wait
/// for one short batch at most.
const ROTATION_BATCH: u64 = 100;

/// Where the keys a process holds came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `HERALD_ENCRYPTION_KEY` (and `HERALD_NEW_ENCRYPTION_KEY`).
    Environment,
    /// The key file beside the SQLite database; `created` on this start.
    KeyFile { path: PathBuf, created: bool },
    /// An in-memory SQLite database: a key that lives as long as the process, like the data.
    Ephemeral,
}

/// What `unlock` did, for the caller to report.
#[derive(Debug, Clone)]
pub struct Unlocked {
    pub origin: KeyOrigin,
    /// The key id new writes are sealed with.
    pub active_key_id: String,
    /// Values sealed on this start because they were written before encryption at rest.
    pub sealed_plain_values: u64,
}

/// The database file of a SQLite URL, or `None` for an in-memory database (or not SQLite).
pub fn database_file(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// The key file for a SQLite URL: `<database file>.key`, or `None` for an in-memory database.
pub fn key_file_path(database_url: &str) -> Option<PathBuf> {
    database_file(database_url).map(|p| key_file_beside(&p))
}

/// `<file>.key`: where Herald looks for the key of the database `file`.
pub fn key_file_beside(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// The keys in a key file, first the one that seals. Blank lines and `#` comments are skipped.
pub fn read_key_file(path: &Path) -> Result<Vec<Key>, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| key_file_error(path, source))?;
    let keys = text
        .lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| Key::from_base64(l, &format!("line {} of {}", n + 1, path.display())))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(SecretError::BadKey(format!(
            "the key file {} (it holds no key)",
            path.display()
        )));
    }
    Ok(keys)
}

fn key_file_error(path: &Path, source: std::io::Error) -> SecretError {
    SecretError::KeyFile {
        path: path.display().to_string(),
        source,
    }
}

fn key_file_text(keys: &[&Key]) -> String {
    let mut text = String::from(
        "# Herald's encryption keys (base64 of 32 bytes). The first seals new writes; the others\n\
         # still open older values. Back this file up with the database: without it the signing\n\
         # secrets and custom header values in the database cannot be read.\n",
    );
    for k in keys {
        text.push_str(&k.to_base64());
        text.push('\n');
    }
    text
}

/// Writes `keys` to a new file beside `path`, readable by its owner only, flushed to disk.
fn write_temp(path: &Path, keys: &[&Key]) -> Result<PathBuf, SecretError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "herald.key".into());
    let temp = path.with_file_name(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts
        .open(&temp)
        .map_err(|source| key_file_error(&temp, source))?;
    file.write_all(key_file_text(keys).as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|source| {
            let _ = std::fs::remove_file(&temp);
            key_file_error(&temp, source)
        })?;
    Ok(temp)
}

/// Creates the key file holding `key`, unless it exists. Returns whether this call created it:
/// the complete file is linked into place, which fails if the name is taken, so of two first
/// starts racing one creates it and the other reads it, and nobody ever sees a half-written file.
fn create_key_file(path: &Path, key: &Key) -> Result<bool, SecretError> {
    let temp = write_temp(path, &[key])?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(key_file_error(path, source)),
    }
}

/// Replaces the key file's contents at once (write a new file, then rename it over the old one).
fn replace_key_file(path: &Path, keys: &[&Key]) -> Result<(), SecretError> {
    let temp = write_temp(path, keys)?;
    std::fs::rename(&temp, path).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        key_file_error(path, source)
    })
}

/// A write transaction that no other start-up or rotation runs beside: on PostgreSQL a
/// transaction-scoped advisory lock, on SQLite the write lock that `begin_write` takes at BEGIN.
async fn begin_exclusive(store: &Store) -> Result<DatabaseTransaction, StoreError> {
    let txn = begin_write(store.writer()).await?;
    if store.backend() == DatabaseBackend::Postgres {
        // Arbitrary but fixed, and not the migrations' lock: "herald" in ASCII, plus one.
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(114101114097108101)")
            .await?;
    }
    Ok(txn)
}

/// Gives `store` its keys and checks them against the database, before anything reads a secret.
///
/// Keys come from `key` (`HERALD_ENCRYPTION_KEY`) and `new_key` (`HERALD_NEW_ENCRYPTION_KEY`, for
/// a rotation under way), or, on SQLite without `key`, from the key file beside the database,
/// which the very first start creates. On a database never encrypted, every value written before
/// encryption at rest is sealed in one transaction and the canary is written; otherwise the canary
/// must open, so a wrong key stops the start with an error that names it.
pub async fn unlock(
    store: Store,
    database_url: &str,
    key: Option<&str>,
    new_key: Option<&str>,
) -> Result<(Store, Unlocked), StoreError> {
    let mut keys = Vec::new();
    if let Some(text) = key {
        keys.push(Key::from_base64(text, "HERALD_ENCRYPTION_KEY")?);
    }
    if let Some(text) = new_key {
        keys.push(Key::from_base64(text, "HERALD_NEW_ENCRYPTION_KEY")?);
    }
    let (origin, key_file, keys) = if key.is_some() {
        (KeyOrigin::Environment, None, keys)
    } else if store.backend() == DatabaseBackend::Postgres {
        return Err(SecretError::MissingKey.into());
    } else if let Some(path) = key_file_path(database_url) {
        let (created, mut from_file) = load_or_create_key_file(&store, &path).await?;
        from_file.extend(keys);
        (
            KeyOrigin::KeyFile {
                path: path.clone(),
                created,
            },
            Some(path),
            from_file,
        )
    } else {
        keys.insert(0, Key::generate());
        (KeyOrigin::Ephemeral, None, keys)
    };
    let source_name = match &origin {
        KeyOrigin::KeyFile { path, .. } => format!("the key file {}", path.display()),
        _ => "HERALD_ENCRYPTION_KEY".to_owned(),
    };
    let first_id = keys[0].id().to_owned();
    let store = store.with_secrets(Secrets::new(keys, key_file));

    let txn = begin_exclusive(&store).await?;
    let (active_key_id, sealed_plain_values) = match read_canary(&txn, false).await? {
        Some(canary) => {
            if !canary_opens(store.secrets(), &canary) {
                return Err(SecretError::WrongKey {
                    source_name,
                    sealed_under: secrets::key_id_of(&canary).unwrap_or("?").to_owned(),
                    given: store.secrets().key_ids().join(", "),
                }
                .into());
            }
            let id = secrets::key_id_of(&canary).unwrap_or_default().to_owned();
            (id, 0)
        }
        None => {
            let key = store
                .secrets()
                .find(&first_id)
                .expect("the first key was just added");
            let sealed = seal_plain_rows(&txn, &key).await?;
            super::state::claim_once(&txn, CANARY_KEY, &seal_canary(&key)).await?;
            (first_id, sealed)
        }
    };
    txn.commit().await?;
    if sealed_plain_values > 0 && store.backend() == DatabaseBackend::Sqlite {
        // The plain-text pages still sit in the database file until a checkpoint copies the new
        // ones over them; do it now rather than at some later auto-checkpoint. Best effort: a busy
        // reader only delays it to the next checkpoint.
        if let Err(e) = store
            .db()
            .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
        {
            tracing::warn!(error = %e, "cannot checkpoint the WAL after encrypting the secrets");
        }
    }
    Ok((
        store,
        Unlocked {
            origin,
            active_key_id,
            sealed_plain_values,
        },
    ))
}

/// The keys in the key file, creating it with a new key if there is none; `true` if created.
async fn load_or_create_key_file(
    store: &Store,
    path: &Path,
) -> Result<(bool, Vec<Key>), StoreError> {
    if path.exists() {
        return Ok((false, read_key_file(path)?));
    }
    // A database already encrypted under a key that is not here must not get a new key file:
    // that would only hide the real problem (a lost or moved key file) behind a wrong-key error.
    if let Some(canary) = read_canary(store.db(), false).await? {
        return Err(SecretError::KeyFileMissing {
            path: path.display().to_string(),
            key_id: secrets::key_id_of(&canary).unwrap_or("?").to_owned(),
        }
        .into());
    }
    let created = create_key_file(path, &Key::generate())?;
    Ok((created, read_key_file(path)?))
}

fn destination_slot<'a>(column: &'static str, row: &'a str) -> Slot<'a> {
    Slot {
        table: "destinations",
        column,
        row,
    }
}

/// Seals every secret column still in plain text (written before encryption at rest).
async fn seal_plain_rows(txn: &DatabaseTransaction, key: &Key) -> Result<u64, StoreError> {
    let rows = destination::Entity::find()
        .order_by_asc(destination::Column::Id)
        .all(txn)
        .await?;
    let mut sealed = 0;
    for row in rows {
        let mut update = destination::Entity::update_many()
            .filter(destination::Column::Id.eq(row.id.as_str()))
            .to_owned();
        let mut changed = false;
        if !secrets::is_sealed(&row.signing_secret) {
            let v = key.seal(
                destination_slot("signing_secret", &row.id),
                &row.signing_secret,
            );
            update = update.col_expr(destination::Column::SigningSecret, Expr::value(v));
            changed = true;
            sealed += 1;
        }
        if let Some(prev) = row
            .previous_signing_secret
            .as_deref()
            .filter(|p| !secrets::is_sealed(p))
        {
            let v = key.seal(destination_slot("previous_signing_secret", &row.id), prev);
            update = update.col_expr(destination::Column::PreviousSigningSecret, Expr::value(v));
            changed = true;
            sealed += 1;
        }
        if !secrets::is_sealed(&row.custom_headers) {
            let v = key.seal(
                destination_slot("custom_headers", &row.id),
                &row.custom_headers,
            );
            update = update.col_expr(destination::Column::CustomHeaders, Expr::value(v));
            changed = true;
            sealed += 1;
        }
        if changed {
            update.exec(txn).await?;
        }
    }
    Ok(sealed)
}

/// What `rotate` did.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub from_key_id: String,
    pub to_key_id: String,
    pub destinations: u64,
    pub values: u64,
    /// The key file now holding the new key alone, when keys come from a key file.
    pub key_file: Option<PathBuf>,
}

/// Re-seals every secret under a new key while servers keep running: `new_key` if given
/// (`HERALD_NEW_ENCRYPTION_KEY`, which every replica must already hold), else a generated key
/// written to the key file (SQLite). First the canary moves to the new key, so from then on every
/// write seals under it; then the destinations move over, `ROTATION_BATCH` per transaction, until
/// none is left under another key. `store` must come from `unlock`.
pub async fn rotate(
    store: &Store,
    actor: &Actor,
    origin: &KeyOrigin,
    new_key: Option<&str>,
) -> Result<Rotation, StoreError> {
    let secrets = store.secrets();
    let key_file = match origin {
        KeyOrigin::KeyFile { path, .. } => Some(path.clone()),
        _ => None,
    };
    let new = match (new_key, &key_file) {
        (Some(text), _) => Key::from_base64(text, "HERALD_NEW_ENCRYPTION_KEY")?,
        (None, Some(_)) => Key::generate(),
        (None, None) => return Err(SecretError::NoNewKey.into()),
    };
    if let Some(path) = &key_file {
        // The new key goes into the file before anything is sealed under it, so a running server
        // that meets its id finds it there.
        let mut keys = read_key_file(path)?;
        keys.retain(|k| k.id() != new.id());
        let mut all: Vec<&Key> = vec![&new];
        all.extend(keys.iter());
        replace_key_file(path, &all)?;
    }
    let new = secrets.add(new);

    let txn = begin_exclusive(store).await?;
    let canary = read_canary(&txn, true).await?.ok_or(SecretError::Locked)?;
    let from_key_id = secrets::key_id_of(&canary).unwrap_or("?").to_owned();
    server_state::Entity::update_many()
        .col_expr(server_state::Column::Value, Expr::value(seal_canary(&new)))
        .col_expr(server_state::Column::UpdatedAt, Expr::value(now()))
        .filter(server_state::Column::Key.eq(CANARY_KEY))
        .exec(&txn)
        .await?;
    txn.commit().await?;

    let (mut destinations, mut values) = (0, 0);
    loop {
        let (rows, sealed) = reseal_batch(store, &new).await?;
        if rows == 0 {
            break;
        }
        destinations += rows;
        values += sealed;
    }
    if let Some(path) = &key_file {
        // Nothing is sealed under the old keys any more.
        replace_key_file(path, &[&new])?;
    }
    // Recorded once every value is under the new key: an interrupted rotation is not a rotation.
    let txn = begin_write(store.writer()).await?;
    audit::record_encryption_key_rotated(
        &txn,
        actor,
        Some(new.id()),
        &["signingSecret", "previousSigningSecret", "customHeaders"],
    )
    .await?;
    txn.commit().await?;
    Ok(Rotation {
        from_key_id,
        to_key_id: new.id().to_owned(),
        destinations,
        values,
        key_file,
    })
}

/// Re-seals up to `ROTATION_BATCH` destinations that still hold a value under another key.
async fn reseal_batch(store: &Store, new: &Key) -> Result<(u64, u64), StoreError> {
    let under_new = format!("{}{}:%", secrets::PREFIX, new.id());
    let stale = Condition::any()
        .add(destination::Column::SigningSecret.not_like(&under_new))
        .add(destination::Column::CustomHeaders.not_like(&under_new))
        .add(
            Condition::all()
                .add(destination::Column::PreviousSigningSecret.is_not_null())
                .add(destination::Column::PreviousSigningSecret.not_like(&under_new)),
        );
    let txn = begin_write(store.writer()).await?;
    let mut select = destination::Entity::find()
        .filter(stale)
        .order_by_asc(destination::Column::Id)
        .limit(ROTATION_BATCH);
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        select = select.lock_exclusive();
    }
    let rows = select.all(&txn).await?;
    let secrets = store.secrets();
    let mut sealed = 0;
    for row in &rows {
        let reseal = |column: &'static str, stored: &str| -> Result<String, StoreError> {
            let slot = destination_slot(column, &row.id);
            Ok(new.seal(slot, &secrets.open(slot, stored)?))
        };
        let mut update = destination::Entity::update_many()
            .filter(destination::Column::Id.eq(row.id.as_str()))
            .col_expr(
                destination::Column::SigningSecret,
                Expr::value(reseal("signing_secret", &row.signing_secret)?),
            )
            .col_expr(
                destination::Column::CustomHeaders,
                Expr::value(reseal("custom_headers", &row.custom_headers)?),
            );
        sealed += 2;
        if let Some(prev) = &row.previous_signing_secret {
            update = update.col_expr(
                destination::Column::PreviousSigningSecret,
                Expr::value(reseal("previous_signing_secret", prev)?),
            );
            sealed += 1;
        }
        update.exec(&txn).await?;
    }
    txn.commit().await?;
    Ok((rows.len() as u64, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_sits_beside_the_database_file() {
        assert_eq!(
            key_file_path("sqlite://herald.db"),
            Some(PathBuf::from("herald.db.key"))
        );
        assert_eq!(
            key_file_path("sqlite:///var/lib/herald/h.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/herald/h.db.key"))
        );
        assert_eq!(key_file_path("sqlite::memory:"), None);
        assert_eq!(key_file_path("postgres://h@localhost/h"), None);
    }

    #[test]
    fn a_key_file_is_created_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.db.key");
        let first = Key::generate();
        assert!(create_key_file(&path, &first).unwrap());
        assert!(!create_key_file(&path, &Key::generate()).unwrap());
        let read = read_key_file(&path).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].id(), first.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = Key::generate();
        replace_key_file(&path, &[&second, &first]).unwrap();
        let ids: Vec<_> = read_key_file(&path)
            .unwrap()
            .iter()
            .map(|k| k.id().to_owned())
            .collect();
        assert_eq!(ids, [second.id(), first.id()]);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn a_bad_key_file_line_is_named_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "# comment\n\nbm90LWEta2V5\n").unwrap();
        let err = read_key_file(&path).err().unwrap().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(!err.contains("bm90LWEta2V5"), "{err}");
    }
}
