#![forbid(unsafe_code)]

use std::process::ExitCode;

use terraform_provider_herald::herald::{HeraldProvider, PROVIDER_ADDRESS};
use terraform_provider_herald::tfplugin::{ServeError, ServeOptions, serve};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The version a mirror package carries (`cargo xtask provider-mirror`), for checking which
    // build a mirror or plugin cache holds.
    if args.iter().any(|a| a == "--version" || a == "-version") {
        println!("terraform-provider-herald {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let debug = args.iter().any(|a| a == "--debug" || a == "-debug");
    // Terraform shows this under TF_LOG_PROVIDER, beside the version it installed; run by
    // hand, the binary says only that it is a plugin.
    if std::env::var_os("TF_PLUGIN_MAGIC_COOKIE").is_some() {
        terraform_provider_herald::tfplugin::log::info(concat!(
            "terraform-provider-herald v",
            env!("CARGO_PKG_VERSION")
        ));
    }
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
