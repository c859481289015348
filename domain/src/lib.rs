//! Herald's domain vocabulary, shared by the server and the Terraform provider so that the two never
//! disagree about what a valid destination is.
//!
//! The alert checks ([`alert`]), the payload Herald sends ([`payload`]) and retry timing ([`retry`])
//! live here too: pure functions, fuzzed (see `fuzz/`) without building the server.
//!
//! Nothing here knows about GraphQL, SQL or Terraform: the enums carry their wire names, and the
//! validation rules report *which* part of a destination broke *which* rule through [`Field`], so each
//! front end can render the location in its own syntax (`customHeaders[1].name` in GraphQL,
//! `custom_headers["X-Token"]` in HCL).
#![forbid(unsafe_code)]

pub mod alert;
mod enums;
pub mod payload;
pub mod retry;
mod validate;

pub use enums::{AlertType, Severity, UnknownVariant, WireEnum};
pub use validate::{
    Field, HeaderInput, MAX_DISPLAY_NAME_CHARS, MAX_HEADER_VALUE_BYTES, MAX_HEADERS, MAX_URL_LEN,
    RESERVED_HEADERS, ValidationError, is_reserved_header, validate_alert_types,
    validate_custom_headers, validate_display_name, validate_header_name, validate_header_value,
    validate_url,
};
