#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use herald_server::cli::{self, Cli};
use herald_server::telemetry::logging;

/// jemalloc rather than glibc's malloc: under load glibc's allocator took a fifth of the server's
/// CPU samples, a sixth of them consolidating free lists (`malloc_consolidate`), and with jemalloc
/// the batched scenario delivers a quarter more (BENCHMARKS.md). It takes SQLite's allocations
/// too (`malloc` itself, the `unprefixed_malloc_on_supported_platforms` feature), a sixth of what
/// glibc served, so that one allocator serves the process. Its settings are built in from
/// `.cargo/config.toml`: freed pages go back to the system within a second, which keeps the peak
/// RSS where glibc's was. (mimalloc was as fast only while it held on to its freed pages: peak
/// RSS up to 151 MB.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.logging.format);
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, no backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
