//! One file per table. These are storage rows, never exposed as GraphQL types directly: the API
//! builds its own types from them so that a column can never leak by accident.

pub mod alert;
pub mod api_token;
pub mod audit_event;
pub mod delivery;
pub mod delivery_attempt;
pub mod destination;
pub mod server_state;
