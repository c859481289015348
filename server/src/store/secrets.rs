//! The one seam between secret values (signing secrets, custom header values) and their columns:
//! every reader and writer of a secret column goes through `Secrets::open` and `Key::seal`.
//!
//! A sealed value is text, `hrld:v1:<key id>:<base64 of nonce || ciphertext>`, sealed with
//! XChaCha20-Poly1305 under a random 24-byte nonce. The associated data is the value's place,
//! `table/column/row id`, so a ciphertext copied into another row or column does not open. The key
//! id (the first four bytes of the key's SHA-256, in hex) says which key opens a value, so a
//! rotation can move rows from one key to the next while both are readable.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement};
use sha2::{Digest, Sha256};

use super::StoreError;

/// What every sealed value starts with; a value without it was written before encryption at rest.
pub const PREFIX: &str = "hrld:v1:";
/// The `server_state` key of the canary: a known value sealed under the active key. Its key id
/// says which key seals new writes, and opening it at start-up tells a wrong key from a right one
/// even when no destination exists yet.
pub const CANARY_KEY: &str = "encryption_canary";
const CANARY_PLAIN: &str = "herald encryption canary";
const NONCE_LEN: usize = 24;

/// Where a sealed value lives. It is bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row: &'a str,
}

impl Slot<'_> {
    fn aad(&self) -> String {
        format!("{}/{}/{}", self.table, self.column, self.row)
    }
}

impl fmt::Display for Slot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} of {}", self.table, self.column, self.row)
    }
}

pub fn canary_slot() -> Slot<'static> {
    Slot {
        table: "server_state",
        column: "value",
        row: CANARY_KEY,
    }
}

/// Why a key or a sealed value was refused. No variant carries key material or plain text.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{0} must be the standard base64 of 32 bytes (make one with `openssl rand -base64 32`)"
    )]
    BadKey(String),
    #[error("no encryption key is loaded, so secrets cannot be read or written")]
    Locked,
    #[error("{slot} is sealed under key id {key_id}, which this server was not given")]
    UnknownKey { slot: String, key_id: String },
    #[error("{slot} does not open with key id {key_id}: it was altered or copied from another row")]
    DoesNotOpen { slot: String, key_id: String },
    #[error("{slot} is not a sealed value")]
    NotSealed { slot: String },
    #[error(
        "{source_name} does not open this database's secrets (they are sealed under key id \
         {sealed_under}; the key given has id {given})"
    )]
    WrongKey {
        source_name: String,
        sealed_under: String,
        given: String,
    },
    #[error(
        "HERALD_ENCRYPTION_KEY is not set: on PostgreSQL every replica must be given the same key \
         (base64 of 32 bytes, e.g. from `openssl rand -base64 32`)"
    )]
    MissingKey,
    #[error(
        "this database's secrets are encrypted (key id {key_id}) but HERALD_ENCRYPTION_KEY is not \
         set and there is no key file at {path}"
    )]
    KeyFileMissing { path: String, key_id: String },
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HERALD_NEW_ENCRYPTION_KEY has the same key id ({0}) as the key in use")]
    SameKey(String),
    #[error(
        "HERALD_NEW_ENCRYPTION_KEY is not set: set it to the new key (base64 of 32 bytes) on every \
         replica and here, or use the SQLite key file"
    )]
    NoNewKey,
}

/// A 32-byte key and its id. Neither `Debug` nor any error shows the key itself.
pub struct Key {
    id: String,
    bytes: [u8; 32],
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("id", &self.id).finish()
    }
}

impl Key {
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        Key {
            id,
            cipher: XChaCha20Poly1305::new(&bytes.into()),
            bytes,
        }
    }

    pub fn generate() -> Key {
        Key::from_bytes(rand::random())
    }

    /// Parses the standard base64 of 32 bytes; `what` names the source in the error (the variable
    /// or the key file), which never repeats the value.
    pub fn from_base64(text: &str, what: &str) -> Result<Key, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| SecretError::BadKey(what.to_owned()))?;
        Ok(Key::from_bytes(bytes))
    }

    /// The key as base64, for the key file only.
    pub(crate) fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain` for `slot` under this key.
    pub fn seal(&self, slot: Slot<'_>, plain: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = slot.aad();
        let ciphertext = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{PREFIX}{}:{}", self.id, STANDARD.encode(out))
    }

    fn open(&self, slot: Slot<'_>, body: &str) -> Result<String, SecretError> {
        let does_not_open = || SecretError::DoesNotOpen {
            slot: slot.to_string(),
            key_id: self.id.clone(),
        };
        let raw = STANDARD.decode(body).map_err(|_| does_not_open())?;
        if raw.len() < NONCE_LEN {
            return Err(does_not_open());
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce's length");
        let aad = slot.aad();
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| does_not_open())?;
        String::from_utf8(plain).map_err(|_| does_not_open())
    }
}

/// Whether `stored` is a sealed value (rather than plain text from before encryption at rest).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The key id a sealed value names.
pub fn key_id_of(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(PREFIX)?;
    let (id, _) = rest.split_once(':')?;
    Some(id)
}

/// The keys a server holds: the ones it may open with, and (through the canary in the database)
/// the one it seals with. On SQLite with a key file, a key id it meets and does not know makes it
/// read the file again, so a `herald keys rotate` beside a running server needs no restart.
pub struct Secrets {
    keys: RwLock<Vec<Arc<Key>>>,
    key_file: Option<PathBuf>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("key_ids", &self.key_ids())
            .field("key_file", &self.key_file)
            .finish()
    }
}

impl Secrets {
    /// No keys: every seal and open fails with `SecretError::Locked`. What commands that never
    /// touch a secret (`migrate`, `token`) run with.
    pub fn locked() -> Secrets {
        Secrets {
            keys: RwLock::new(Vec::new()),
            key_file: None,
        }
    }

    pub fn new(keys: Vec<Key>, key_file: Option<PathBuf>) -> Secrets {
        Secrets {
            keys: RwLock::new(keys.into_iter().map(Arc::new).collect()),
            key_file,
        }
    }

    pub fn key_ids(&self) -> Vec<String> {
        self.keys
            .read()
            .expect("key list lock")
            .iter()
            .map(|k| k.id.clone())
            .collect()
    }

    pub fn key_file(&self) -> Option<&std::path::Path> {
        self.key_file.as_deref()
    }

    /// Adds a key it may open with (and seal with, once the canary names it).
    pub fn add(&self, key: Key) -> Arc<Key> {
        let mut keys = self.keys.write().expect("key list lock");
        if let Some(k) = keys.iter().find(|k| k.id == key.id) {
            return k.clone();
        }
        let key = Arc::new(key);
        keys.push(key.clone());
        key
    }

    /// The key with this id; on a miss, reads the key file again (a rotation may have added it).
    pub fn find(&self, id: &str) -> Option<Arc<Key>> {
        if let Some(k) = self.lookup(id) {
            return Some(k);
        }
        let path = self.key_file.as_ref()?;
        match super::keys::read_key_file(path) {
            Ok(found) => {
                for key in found {
                    self.add(key);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the key file again"),
        }
        self.lookup(id)
    }

    fn lookup(&self, id: &str) -> Option<Arc<Key>> {
        self.keys
            .read()
            .expect("key list lock")
            .iter()
            .find(|k| k.id == id)
            .cloned()
    }

    /// Opens a sealed value read from `slot`.
    pub fn open(&self, slot: Slot<'_>, stored: &str) -> Result<String, StoreError> {
        let key_id = key_id_of(stored).ok_or_else(|| SecretError::NotSealed {
            slot: slot.to_string(),
        })?;
        if self.keys.read().expect("key list lock").is_empty() && self.key_file.is_none() {
            return Err(SecretError::Locked.into());
        }
        let key = self.find(key_id).ok_or_else(|| SecretError::UnknownKey {
            slot: slot.to_string(),
            key_id: key_id.to_owned(),
        })?;
        let body = &stored[PREFIX.len() + key_id.len() + 1..];
        Ok(key.open(slot, body)?)
    }

    /// The key new writes are sealed with: the one the canary is sealed under, read inside the
    /// caller's write transaction. On PostgreSQL the canary row is read FOR SHARE, so a rotation
    /// (which re-seals the canary first) waits for this write to commit and then re-seals it too,
    /// and every write that starts after the rotation began seals under the new key.
    pub async fn sealing_key(&self, conn: &impl ConnectionTrait) -> Result<Arc<Key>, StoreError> {
        let canary = read_canary(conn, true).await?.ok_or(SecretError::Locked)?;
        let id = key_id_of(&canary).ok_or_else(|| SecretError::NotSealed {
            slot: canary_slot().to_string(),
        })?;
        Ok(self.find(id).ok_or_else(|| SecretError::UnknownKey {
            slot: canary_slot().to_string(),
            key_id: id.to_owned(),
        })?)
    }
}

#[derive(FromQueryResult)]
struct StateValue {
    value: String,
}

/// The sealed canary, if encryption at rest was ever set up on this database.
pub(crate) async fn read_canary(
    conn: &impl ConnectionTrait,
    lock: bool,
) -> Result<Option<String>, StoreError> {
    let backend = conn.get_database_backend();
    let sql = match (backend, lock) {
        (DatabaseBackend::Postgres, true) => {
            "SELECT value FROM server_state WHERE key = $1 FOR SHARE"
        }
        (DatabaseBackend::Postgres, false) => "SELECT value FROM server_state WHERE key = $1",
        _ => "SELECT value FROM server_state WHERE key = ?",
    };
    let row = StateValue::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [CANARY_KEY.into()],
    ))
    .one(conn)
    .await?;
    Ok(row.map(|r| r.value))
}

/// A sealed canary under `key`.
pub(crate) fn seal_canary(key: &Key) -> String {
    key.seal(canary_slot(), CANARY_PLAIN)
}

/// Whether `stored` is the canary sealed under a key this keyring has.
pub(crate) fn canary_opens(secrets: &Secrets, stored: &str) -> bool {
    secrets
        .open(canary_slot(), stored)
        .is_ok_and(|p| p == CANARY_PLAIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(row: &str) -> Slot<'_> {
        Slot {
            table: "destinations",
            column: "signing_secret",
            row,
        }
    }

    #[test]
    fn sealed_values_name_the_key_and_open_again() {
        let key = Key::generate();
        let sealed = key.seal(slot("dst_1"), "whsec_abc");
        assert!(sealed.starts_with(&format!("hrld:v1:{}:", key.id())));
        assert_eq!(key_id_of(&sealed), Some(key.id()));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(key.id().len(), 8);
        let secrets = Secrets::new(vec![key], None);
        assert_eq!(secrets.open(slot("dst_1"), &sealed).unwrap(), "whsec_abc");
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = Key::generate();
        assert_ne!(key.seal(slot("a"), "x"), key.seal(slot("a"), "x"));
    }

    #[test]
    fn a_value_moved_to_another_row_or_column_does_not_open() {
        let key = Key::generate();
        let sealed = key.seal(slot("dst_1"), "whsec_abc");
        let secrets = Secrets::new(vec![key], None);
        let err = secrets
            .open(slot("dst_2"), &sealed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not open"), "{err}");
        assert!(err.contains("dst_2"), "{err}");
        let other_column = Slot {
            column: "previous_signing_secret",
            ..slot("dst_1")
        };
        assert!(secrets.open(other_column, &sealed).is_err());
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let key = Key::generate();
        let sealed = key.seal(slot("dst_1"), "whsec_abc");
        let secrets = Secrets::new(vec![key], None);
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(secrets.open(slot("dst_1"), &tampered).is_err());
        assert!(secrets.open(slot("dst_1"), "hrld:v1:").is_err());
        assert!(secrets.open(slot("dst_1"), "whsec_plain").is_err());
    }

    #[test]
    fn an_unknown_key_id_is_named_in_the_error() {
        let a = Key::generate();
        let b = Key::generate();
        let sealed = a.seal(slot("dst_1"), "x");
        let secrets = Secrets::new(vec![b], None);
        let err = secrets
            .open(slot("dst_1"), &sealed)
            .unwrap_err()
            .to_string();
        assert!(err.contains(a.id()), "{err}");
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes_and_errors_never_echo_them() {
        let text = STANDARD.encode([7u8; 32]);
        let key = Key::from_base64(&format!(" {text}\n"), "HERALD_ENCRYPTION_KEY").unwrap();
        assert_eq!(key.to_base64(), text);
        assert!(!format!("{key:?}").contains(&text));
        let short = STANDARD.encode([7u8; 31]);
        let err = Key::from_base64(&short, "HERALD_ENCRYPTION_KEY")
            .unwrap_err()
            .to_string();
        assert!(err.contains("HERALD_ENCRYPTION_KEY"), "{err}");
        assert!(!err.contains(&short), "{err}");
        assert!(Key::from_base64("not base64!", "X").is_err());
    }

    #[test]
    fn a_locked_keyring_opens_nothing() {
        let key = Key::generate();
        let sealed = key.seal(slot("dst_1"), "x");
        let err = Secrets::locked()
            .open(slot("dst_1"), &sealed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no encryption key"), "{err}");
    }
}
