//! The Herald provider, built on [`crate::tfplugin`].

pub mod client;
pub mod data_source;
pub mod destination;
pub mod fields;
pub mod provider;

pub use provider::HeraldProvider;

/// Where Terraform finds this provider (`source = "herald/herald"`).
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/herald/herald";
