//! End-to-end tests: the real `terraform` CLI drives the provider binary against a real
//! `herald serve` on an ephemeral port, all offline.

mod auto_disable;
mod docs;
mod examples;
mod gitops;
mod harness;
mod import;
mod log_types;
mod rate_limit;
mod resource;
mod rotation;
mod startup;
mod validation;
