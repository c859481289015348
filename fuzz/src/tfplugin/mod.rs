//! The Terraform provider's value codec, compiled from the provider's own source files, unchanged.
//! They need only `rmpv` and `serde_json`; depending on the provider crate instead would build
//! tonic, rustls with aws-lc (C), protox and reqwest under the sanitizer for these three files.
//! If the provider's `value.rs` ever reaches beyond `diag` and `types`, this build says so.
#![allow(dead_code)]

#[path = "../../../terraform-provider/src/tfplugin/diag.rs"]
pub mod diag;
#[path = "../../../terraform-provider/src/tfplugin/types.rs"]
pub mod types;
#[path = "../../../terraform-provider/src/tfplugin/value.rs"]
pub mod value;
