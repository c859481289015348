//! Starting as a plugin: go-plugin's handshake, AutoMTLS, the gRPC server, and a clean exit when
//! Terraform asks for it. `--debug` serves plaintext and prints how to reattach Terraform.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::framework::Provider;
use super::log;
use super::proto::health::health_server::HealthServer;
use super::proto::plugin::grpc_controller_server::GrpcControllerServer;
use super::proto::tfplugin6::provider_server::ProviderServer;
use super::server::{Controller, Health, ProviderService};
use super::tls;

const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const CORE_PROTOCOL_VERSION: u32 = 1;
const APP_PROTOCOL_VERSION: u32 = 6;
/// How long in-flight answers get to drain after Shutdown; Terraform kills the process after 2 s.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "This binary is a plugin. These are not meant to be executed directly.\n\
         Please execute the program that consumes these plugins, which will\n\
         load any plugins automatically"
    )]
    NotLaunchedByTerraform,
    #[error("Terraform offers plugin protocol versions {0:?}; this provider speaks only version 6")]
    UnsupportedProtocol(String),
    #[error("no free port between {min} and {max}")]
    NoPort { min: u16, max: u16 },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub struct ServeOptions {
    /// The provider's source address, e.g. `registry.terraform.io/herald/herald`.
    pub address: String,
    pub debug: bool,
}

pub async fn serve<P: Provider>(provider: P, opts: ServeOptions) -> Result<(), ServeError> {
    if opts.debug {
        return serve_debug(provider, &opts.address).await;
    }
    if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        return Err(ServeError::NotLaunchedByTerraform);
    }
    if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        let offered = versions
            .split(',')
            .any(|v| v.trim() == APP_PROTOCOL_VERSION.to_string());
        if !offered {
            return Err(ServeError::UnsupportedProtocol(versions));
        }
    }
    let listener = bind_in_range().await?;
    let addr = listener.local_addr()?;
    let client_cert = std::env::var("PLUGIN_CLIENT_CERT").unwrap_or_default();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let router = Server::builder()
        .add_service(ProviderServer::new(ProviderService::new(provider)))
        .add_service(GrpcControllerServer::new(Controller {
            shutdown: shutdown_tx,
            ignore: false,
        }))
        .add_service(HealthServer::new(Health));
    ignore_interrupts();

    if client_cert.trim().is_empty() {
        handshake(addr, "");
        let incoming = plain_incoming(listener);
        run_until_shutdown(
            router.serve_with_incoming_shutdown(incoming, wait(shutdown_rx.clone())),
            shutdown_rx,
        )
        .await
    } else {
        let mtls = tls::auto_mtls(&client_cert)?;
        let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&mtls.server_cert_der);
        let incoming = tls_incoming(listener, tokio_rustls::TlsAcceptor::from(mtls.config));
        handshake(addr, &cert);
        run_until_shutdown(
            router.serve_with_incoming_shutdown(incoming, wait(shutdown_rx.clone())),
            shutdown_rx,
        )
        .await
    }
}

/// The one line go-plugin waits for on stdout.
fn handshake(addr: SocketAddr, cert_b64: &str) {
    let line = format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|{addr}|grpc|{cert_b64}");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn wait(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves until the server ends or Shutdown was requested plus a short grace: a graceful h2 drain
/// would wait for Terraform to close its connection, which it does not do before killing us.
async fn run_until_shutdown<F>(server: F, rx: watch::Receiver<bool>) -> Result<(), ServeError>
where
    F: std::future::Future<Output = Result<(), tonic::transport::Error>>,
{
    tokio::select! {
        r = server => r.map_err(ServeError::from),
        _ = async { wait(rx).await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            log::debug("exiting after shutdown");
            Ok(())
        }
    }
}

/// Terraform forwards Ctrl-C as StopProvider and then Shutdown; dying on the terminal's SIGINT
/// would cut an apply short in the middle of an API call.
fn ignore_interrupts() {
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            log::debug("interrupt ignored; waiting for Terraform to stop the provider");
        }
    });
}

async fn bind_in_range() -> Result<TcpListener, ServeError> {
    let port = |name: &str, default: u16| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u16>().ok())
            .unwrap_or(default)
    };
    let (min, max) = (
        port("PLUGIN_MIN_PORT", 10000),
        port("PLUGIN_MAX_PORT", 25000),
    );
    if min == 0 || max < min {
        return Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?);
    }
    // Start at a pid-dependent offset so the three providers Terraform runs per plan rarely collide.
    let span = u32::from(max - min) + 1;
    let start = std::process::id() % span;
    for i in 0..span {
        let p = min as u32 + (start + i) % span;
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, p as u16)).await {
            return Ok(l);
        }
    }
    Err(ServeError::NoPort { min, max })
}

/// Accepted connections with Nagle's algorithm off. Terraform sends many small RPCs over one
/// HTTP/2 connection, and an answer goes out as several small writes (TLS records; HEADERS, DATA
/// and trailer frames): with Nagle on, each write after the first waited for Terraform's delayed
/// ACK, about 40 ms on Linux, so nearly every RPC took 40 ms however little it did (seen in
/// `TF_LOG=trace` timestamps: GetProviderSchema, ValidateProviderConfig and ConfigureProvider
/// each answered 43-44 ms after the call).
fn plain_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts TCP, runs the TLS handshake per connection, and hands only verified streams to tonic:
/// a client without Terraform's certificate never reaches a service.
fn tls_incoming(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) -> ReceiverStream<std::io::Result<TlsStream>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    log::warn(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // See `plain_incoming`: without it most RPCs wait 40 ms for a delayed ACK.
            if let Err(e) = tcp.set_nodelay(true) {
                log::warn(&format!(
                    "cannot turn off Nagle's algorithm for {peer}: {e}"
                ));
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => log::warn(&format!("TLS handshake with {peer} refused: {e}")),
                    Err(_) => log::warn(&format!("TLS handshake with {peer} timed out")),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

async fn serve_debug<P: Provider>(provider: P, address: &str) -> Result<(), ServeError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let reattach = serde_json::json!({
        address: {
            "Protocol": "grpc",
            "ProtocolVersion": APP_PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": { "Network": "tcp", "String": addr.to_string() },
        }
    });
    println!(
        "Provider started. To attach Terraform, set TF_REATTACH_PROVIDERS in the shell that runs it:\n\n\
         \tTF_REATTACH_PROVIDERS='{reattach}'\n"
    );
    let _ = std::io::stdout().flush();
    // Terraform does not own a reattached provider: Shutdown is ignored and Ctrl-C ends it.
    let (shutdown_tx, _keep) = watch::channel(false);
    Server::builder()
        .add_service(ProviderServer::new(ProviderService::new(provider)))
        .add_service(GrpcControllerServer::new(Controller {
            shutdown: shutdown_tx,
            ignore: true,
        }))
        .add_service(HealthServer::new(Health))
        .serve_with_incoming_shutdown(plain_incoming(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
