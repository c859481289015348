//! The `herald` command line.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::app;
use crate::config::{DatabaseConfig, Retention, RetentionConfig, ServeConfig};
use crate::store::audit::Actor;
use crate::store::keys::{self, KeyOrigin, Unlocked};
use crate::store::tokens::{self, Role};
use crate::store::{Store, backup};

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "Self-hosted alert webhook delivery with a GraphQL control plane"
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub logging: crate::telemetry::logging::LogConfig,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start and matched once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    Serve(ServeConfig),
    /// Apply database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    PrintSchema,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the key that encrypts secrets at rest.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Delete history older than HERALD_RETENTION now (one whole pass), beside running servers.
    Prune(RetentionConfig),
    /// Write a consistent copy of a SQLite database to PATH, beside running servers.
    Backup(BackupArgs),
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Where to write the copy; it must not exist.
    pub path: std::path::PathBuf,
    /// Also copy the key file beside the database to `PATH.key`. Off by default: a backup stored
    /// with its key protects the secrets no better than no encryption.
    #[arg(long)]
    pub with_key_file: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-encrypt every secret under a new key, beside running servers: the key in
    /// HERALD_NEW_ENCRYPTION_KEY, or on SQLite with a key file, a new key written to it.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; the token is printed once, alone on the last line.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke the token with this name.
    Revoke { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

async fn open_store(db: &DatabaseConfig) -> anyhow::Result<Store> {
    let store = Store::connect(&db.url, db.max_connections).await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

/// The store with its keys, checked against the database (see `keys::unlock`).
async fn open_store_with_keys(db: &DatabaseConfig) -> anyhow::Result<(Store, Unlocked)> {
    let store = open_store(db).await?;
    let (store, unlocked) = keys::unlock(
        store,
        &db.url,
        db.encryption.key.as_ref().map(|k| k.expose()),
        db.encryption.new_key.as_ref().map(|k| k.expose()),
    )
    .await?;
    if let KeyOrigin::KeyFile {
        path,
        created: true,
    } = &unlocked.origin
    {
        tracing::info!(
            path = %path.display(),
            key_id = %unlocked.active_key_id,
            "created the encryption key file (readable by its owner only); back it up with the \
             database: without it the signing secrets and custom header values cannot be read"
        );
    }
    if unlocked.sealed_plain_values > 0 {
        tracing::info!(
            values = unlocked.sealed_plain_values,
            key_id = %unlocked.active_key_id,
            "encrypted the secrets stored before encryption at rest"
        );
    }
    Ok((store, unlocked))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PrintSchema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            open_store(&cli.database).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Serve(cfg) => serve(&cli.database, cfg).await,
        Command::Token(cmd) => token(&cli.database, cmd).await,
        Command::Keys(KeysCommand::Rotate) => rotate_keys(&cli.database).await,
        Command::Prune(cfg) => prune(&cli.database, cfg.retention).await,
        Command::Backup(args) => backup(&cli.database, args).await,
    }
}

async fn serve(db: &DatabaseConfig, cfg: ServeConfig) -> anyhow::Result<()> {
    // The port first: a port in use is the one line an operator sees, before any key work.
    let listener = app::bind(cfg.listen).await?;
    let (store, unlocked) = open_store_with_keys(db).await?;
    tracing::debug!(key_id = %unlocked.active_key_id, "secrets are encrypted at rest");
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    let playground = format!("http://{host}/graphql");
    if let Some(token) = app::issue_first_admin_token(&store).await? {
        // Printed, not logged: this is the one time the token exists outside its holder's hands.
        println!(
            "First start: created the API token \"admin\" (role ADMIN). It is shown only this once:\n\n    {token}\n\n\
             Open the playground at {playground} and sign in with it (API clients send \
             `Authorization: Bearer <token>`).\n\n\
             Make more tokens with `herald token create --name NAME --role admin|viewer`."
        );
    }
    tracing::info!(%addr, %playground, "herald is listening");
    app::serve(
        store,
        cfg.dispatch,
        cfg.retention,
        listener,
        shutdown_signal(),
    )
    .await?;
    tracing::info!("herald stopped");
    Ok(())
}

async fn rotate_keys(db: &DatabaseConfig) -> anyhow::Result<()> {
    let (store, unlocked) = open_store_with_keys(db).await?;
    let new_key = db.encryption.new_key.as_ref().map(|k| k.expose());
    let done = keys::rotate(&store, &Actor::cli(), &unlocked.origin, new_key)
        .await
        .context("the key rotation stopped; run it again to finish")?;
    println!(
        "Re-encrypted {} secrets of {} destinations: key id {} replaces {}.",
        done.values, done.destinations, done.to_key_id, done.from_key_id
    );
    match done.key_file {
        Some(path) => println!("The key file {} holds the new key alone.", path.display()),
        None => println!(
            "Now give every replica the new key as HERALD_ENCRYPTION_KEY and unset \
             HERALD_NEW_ENCRYPTION_KEY."
        ),
    }
    Ok(())
}

async fn prune(db: &DatabaseConfig, retention: Retention) -> anyhow::Result<()> {
    let Some(cutoff) = crate::retention::cutoff(retention, chrono::Utc::now()) else {
        println!("HERALD_RETENTION is off: nothing was deleted.");
        return Ok(());
    };
    let store = open_store(db).await?;
    let p = crate::retention::run_pass(
        &store,
        cutoff,
        &crate::retention::PrunerSettings::default(),
        &|_| {},
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .context("pruning stopped; what was deleted stays deleted, run it again to go on")?;
    println!(
        "Deleted {} alerts, {} deliveries and {} attempts finished before {} (HERALD_RETENTION={}).",
        p.alerts,
        p.deliveries,
        p.attempts,
        cutoff.format("%Y-%m-%dT%H:%M:%SZ"),
        retention.spelled()
    );
    Ok(())
}

async fn backup(db: &DatabaseConfig, args: BackupArgs) -> anyhow::Result<()> {
    if !db.url.starts_with("sqlite:") {
        return Err(backup::BackupError::Postgres.into());
    }
    let Some(file) = keys::database_file(&db.url) else {
        return Err(backup::BackupError::InMemory.into());
    };
    // Without this, connecting would create an empty database where the operator mistyped one.
    anyhow::ensure!(
        file.exists(),
        "there is no database at {} (HERALD_DATABASE_URL)",
        file.display()
    );
    backup::refuse_existing(&args.path)?;
    let key_file = keys::key_file_beside(&file);
    let from_env = db.encryption.key.is_some();
    let copy_key_to = args
        .with_key_file
        .then(|| keys::key_file_beside(&args.path));
    if let Some(to) = &copy_key_to {
        anyhow::ensure!(
            !from_env && key_file.exists(),
            "--with-key-file: this database has no key file beside it ({}); its key is \
             HERALD_ENCRYPTION_KEY, which you keep with the backup yourself",
            key_file.display()
        );
        backup::refuse_existing(to)?;
    }
    // No migration: a backup taken before an upgrade must hold the schema as it was.
    let store = Store::connect(&db.url, 1).await?;
    let done = backup::write(&store, &args.path).await?;
    println!(
        "Wrote a consistent copy of {} to {} ({} bytes).",
        file.display(),
        done.path.display(),
        done.bytes
    );
    let Some(key_id) = done.key_id.as_deref() else {
        // Never started with keys: nothing in it is encrypted, so it needs none.
        println!("No secret in it is encrypted yet: it opens without a key.");
        if let Some(to) = &copy_key_to {
            backup::copy_key_file(&key_file, to)?;
            println!("Copied the key file to {}.", to.display());
        }
        return Ok(());
    };
    if let Some(to) = &copy_key_to {
        backup::copy_key_file(&key_file, to)?;
        println!(
            "Copied the key file to {} (key id {key_id}): store it apart from the backup, \
             or anyone with both reads the signing secrets.",
            to.display()
        );
    } else if from_env {
        println!(
            "Its signing secrets and custom header values open only with the key in \
             HERALD_ENCRYPTION_KEY (key id {key_id}); keep that key safe, apart from the backup."
        );
    } else {
        println!(
            "Its signing secrets and custom header values open only with the key file {} \
             (key id {key_id}); back it up too, kept apart from the database copy. To restore, \
             put it beside the copy as {}.",
            key_file.display(),
            keys::key_file_beside(&args.path).display()
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn token(db: &DatabaseConfig, cmd: TokenCommand) -> anyhow::Result<()> {
    let store = open_store(db).await?;
    match cmd {
        TokenCommand::Create { name, role } => {
            let (info, token) =
                tokens::create(store.writer(), &Actor::cli(), &name, role.into()).await?;
            println!(
                "Created API token {:?} with role {}. It is shown only this once:",
                info.name,
                info.role.as_str()
            );
            println!("{token}");
        }
        TokenCommand::List => {
            let list = tokens::list(store.db()).await?;
            println!("{:<32} {:<7} {:<25} LAST USED", "NAME", "ROLE", "CREATED");
            for t in list {
                println!(
                    "{:<32} {:<7} {:<25} {}",
                    t.name,
                    t.role.as_str(),
                    t.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    t.last_used_at
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        TokenCommand::Revoke { name } => {
            tokens::revoke(store.writer(), &Actor::cli(), &name).await?;
            println!("revoked API token {name:?}");
        }
    }
    Ok(())
}
