//! The body Herald sends. It lives in `herald-domain` (pure, and fuzzed there without the server's
//! dependencies); re-exported so the dispatcher's paths stay as they were.

pub use herald_domain::payload::{PantherPayload, format_time};
