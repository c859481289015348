//! terraform-provider-herald: Herald destinations as Terraform resources.
//!
//! [`tfplugin`] speaks the plugin protocol and knows nothing about Herald; [`herald`] is the
//! provider built on it.
#![forbid(unsafe_code)]

pub mod herald;
pub mod tfplugin;
