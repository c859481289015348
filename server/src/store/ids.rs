//! Identifiers: a short prefix that says what kind of thing an id names, then a UUIDv7 in hex.
//! UUIDv7 sorts by creation time, so ordering by id is ordering by age and ids make stable
//! pagination cursors.

use uuid::Uuid;

fn prefixed(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

pub fn destination() -> String {
    prefixed("dst")
}

pub fn delivery() -> String {
    prefixed("dlv")
}

pub fn token() -> String {
    prefixed("tok")
}

/// An alert id Herald makes up when the caller gave none: 32 hex digits, like Panther's.
pub fn alert() -> String {
    Uuid::now_v7().simple().to_string()
}

/// A Standard Webhooks message id.
pub fn webhook() -> String {
    prefixed("msg")
}
