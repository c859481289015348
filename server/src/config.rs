//! Configuration: command-line flags that fall back to environment variables, checked when parsed
//! so that a bad value stops the program with one clear line before anything starts.

use std::net::SocketAddr;

use clap::Args;

/// Where the data lives; every subcommand reads the same settings.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` (created on first start) or `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long = "database-url",
        env = "HERALD_DATABASE_URL",
        default_value = "sqlite://herald.db",
        global = true,
        hide_env_values = true
    )]
    pub url: String,

    /// Connections in the pool.
    #[arg(
        long = "database-max-connections",
        env = "HERALD_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=1000),
        global = true
    )]
    pub max_connections: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// The address the HTTP server listens on.
    #[arg(long, env = "HERALD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}
