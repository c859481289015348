//! GraphQL types, built from store values (never derived on database rows).

mod connection;
mod destination;
mod scalars;
mod viewer;

pub use connection::{ConnectionArgs, TotalCount};
pub use destination::*;
pub use scalars::{AlertTypeGql, DateTime, RoleGql, SeverityGql};
pub use viewer::Viewer;
