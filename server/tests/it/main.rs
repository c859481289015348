//! Integration tests: the real server on an ephemeral port, spoken to over HTTP, on SQLite and on
//! a throwaway PostgreSQL 15. One test binary, so the suite links once.

mod app;
mod attempt_request;
mod audit;
mod auth;
mod auto_disable;
mod batched_reads;
mod delivery;
mod destinations;
mod egress;
mod ingest;
mod leases;
mod limits;
mod log_types;
mod metrics;
mod rate_limit;
mod readyz;
mod retention;
mod schema;
mod subscription;
mod validation;
