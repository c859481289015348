//! `cargo xtask …`: repository tasks (`.cargo/config.toml` aliases `cargo xtask`).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use xtask::{Platform, package, provider_dir};

const PROVIDER_PACKAGE: &str = "terraform-provider-herald";

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Herald's repository tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Builds terraform-provider-herald in release mode and packs it into DIR in Terraform's
    /// packed mirror layout (zip, index.json, <version>.json, SHA256SUMS). DIR then works as a
    /// `filesystem_mirror`, or served over HTTPS as a `network_mirror`. Packages of other
    /// versions already in DIR are kept and listed.
    ProviderMirror {
        /// The mirror directory (created if missing).
        dir: PathBuf,
        /// Pack this already built provider binary instead of building one (such as a
        /// cross-compiled binary, or a debug build in tests).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::ProviderMirror { dir, binary } => provider_mirror(&dir, binary),
    }
}

/// `cargo` as the alias ran it (cargo sets `CARGO` for the programs it runs).
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The provider's version and the workspace's target directory, from `cargo metadata`.
fn metadata() -> anyhow::Result<(String, PathBuf)> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("read cargo metadata's output")?;
    let version = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == PROVIDER_PACKAGE)
        .and_then(|p| p["version"].as_str())
        .with_context(|| format!("the workspace has no package {PROVIDER_PACKAGE}"))?
        .to_owned();
    let target = meta["target_directory"]
        .as_str()
        .context("cargo metadata names no target directory")?;
    Ok((version, PathBuf::from(target)))
}

fn provider_mirror(dir: &Path, binary: Option<PathBuf>) -> anyhow::Result<()> {
    let (version, target) = metadata()?;
    let binary = match binary {
        Some(b) => b,
        None => {
            let status = cargo()
                .args(["build", "--release", "--package", PROVIDER_PACKAGE])
                .status()
                .context("run cargo build")?;
            if !status.success() {
                bail!("cargo build --release --package {PROVIDER_PACKAGE} failed ({status})");
            }
            target.join("release").join(PROVIDER_PACKAGE)
        }
    };
    let platform = Platform::current();
    let pkg = package(dir, &binary, &version, &platform).with_context(|| {
        format!(
            "package {PROVIDER_PACKAGE} {version} into {}",
            dir.display()
        )
    })?;
    println!(
        "{PROVIDER_PACKAGE} {version} for {} packed into {}",
        platform.key(),
        provider_dir(dir).display()
    );
    println!("  {}", pkg.zip.display());
    println!("  {}", pkg.h1);
    println!("  {}", pkg.zh);
    Ok(())
}
