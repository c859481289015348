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
mod rotation;
mod validate;

pub use enums::{AlertType, Severity, UnknownVariant, WireEnum};
pub use rotation::{MAX_GRACE_SECONDS, parse_grace_period, validate_grace_period_seconds};
pub use validate::{
    Field, HeaderInput, MAX_AUTO_DISABLE_AFTER_FAILURES, MAX_DISPLAY_NAME_CHARS,
    MAX_HEADER_VALUE_BYTES, MAX_HEADERS, MAX_LOG_TYPE_CHARS, MAX_LOG_TYPES,
    MAX_RATE_LIMIT_PER_MINUTE, MAX_URL_LEN, MIN_RATE_LIMIT_PER_MINUTE, RESERVED_HEADERS,
    ValidationError, is_reserved_header, validate_alert_types,
    validate_auto_disable_after_failures, validate_custom_headers, validate_display_name,
    validate_header_name, validate_header_value, validate_log_type, validate_log_types,
    validate_rate_limit_per_minute, validate_url,
};
