#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use herald_server::cli::{self, Cli};
use herald_server::telemetry::logging;

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
