#![forbid(unsafe_code)]

use std::process::ExitCode;

use terraform_provider_herald::herald::{HeraldProvider, PROVIDER_ADDRESS};
use terraform_provider_herald::tfplugin::{ServeError, ServeOptions, serve};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let debug = std::env::args()
        .skip(1)
        .any(|a| a == "--debug" || a == "-debug");
    let opts = ServeOptions {
        address: PROVIDER_ADDRESS.to_owned(),
        debug,
    };
    match serve(HeraldProvider, opts).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Run by hand: say what this binary is, without an error trace.
        Err(e @ ServeError::NotLaunchedByTerraform) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(anyhow::Error::new(e).context("terraform-provider-herald failed")),
    }
}
