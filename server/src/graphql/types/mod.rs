//! GraphQL types, built from store values (never derived on database rows).

mod alert;
mod audit;
pub(crate) mod connection;
mod delivery;
mod destination;
mod scalars;
mod viewer;

pub use alert::*;
pub use audit::AuditEvent;
pub use connection::{ConnectionArgs, TotalCount, connection};
pub use delivery::*;
pub use destination::*;
pub use scalars::{AlertTypeGql, DateTime, RoleGql, SeverityGql};
pub use viewer::Viewer;
