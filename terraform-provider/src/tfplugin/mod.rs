//! The Terraform plugin protocol (v6) and a small framework on top of it. Nothing in here knows
//! about Herald; the provider plugs in through [`framework::Provider`].

mod convert;
pub mod diag;
pub mod framework;
pub mod log;
pub mod plugin;
pub mod proto;
pub mod schema;
mod server;
pub mod tls;
pub mod types;
pub mod value;

pub use diag::{AttrPath, Diagnostic, Diagnostics};
pub use framework::{DataSource, Plan, Provider, Resource};
pub use plugin::{ServeError, ServeOptions, serve};
pub use schema::{Attribute, Mode, Schema};
pub use types::Type;
pub use value::{FromValue, Value};
