//! Herald: self-hosted alert webhook delivery.
//!
//! `app` starts the server, `http` is its HTTP surface, `graphql` the API, `store` the database,
//! `cli` the `herald` command,
//! `telemetry` the metrics and log lines.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod egress;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod retention;
pub mod signing;
pub mod store;
pub mod telemetry;
