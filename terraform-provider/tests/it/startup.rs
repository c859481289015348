//! The provider's start-up as Terraform sees it: the handshake line, AutoMTLS that admits only
//! Terraform's client certificate, health, and a prompt exit on Shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use terraform_provider_herald::tfplugin::proto::health::HealthCheckRequest;
use terraform_provider_herald::tfplugin::proto::health::health_client::HealthClient;
use terraform_provider_herald::tfplugin::proto::plugin::Empty;
use terraform_provider_herald::tfplugin::proto::plugin::grpc_controller_client::GrpcControllerClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// A certificate shaped like Terraform's: a self-signed P-521/SHA-512 CA certificate.
fn terraform_like_cert() -> (CertificateDer<'static>, PrivateKeyDer<'static>, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().clone();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        body.join("\n")
    );
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (der, key_der, pem)
}

struct Plugin {
    child: Child,
    addr: String,
    cert: Option<CertificateDer<'static>>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_plugin(client_cert_pem: Option<&str>) -> Plugin {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_terraform-provider-herald"));
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env_remove("PLUGIN_CLIENT_CERT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(pem) = client_cert_pem {
        cmd.env("PLUGIN_CLIENT_CERT", pem);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let parts: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(parts.len(), 6, "handshake line: {line:?}");
    assert_eq!(&parts[..3], ["1", "6", "tcp"]);
    assert_eq!(parts[4], "grpc");
    let port: u16 = parts[3]
        .strip_prefix("127.0.0.1:")
        .unwrap()
        .parse()
        .unwrap();
    assert!((10000..=25000).contains(&port));
    assert!(
        !parts[5].ends_with('='),
        "the certificate is base64 without padding"
    );
    let cert = (!parts[5].is_empty()).then(|| {
        CertificateDer::from(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(parts[5])
                .unwrap(),
        )
    });
    Plugin {
        child,
        addr: parts[3].to_owned(),
        cert,
    }
}

/// Connects over TLS trusting the announced certificate; `Ok` only when the server answered
/// the HTTP/2 preface, i.e. it accepted the client.
async fn tls_exchange(
    plugin: &Plugin,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<Option<Vec<u8>>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(plugin.cert.clone().unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(&plugin.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Ok(alpn),
        Ok(Ok(_)) => Err("closed".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

#[tokio::test]
async fn auto_mtls_admits_only_terraforms_client_certificate() {
    let (der, key, pem) = terraform_like_cert();
    let plugin = start_plugin(Some(&pem));
    assert!(
        plugin.cert.is_some(),
        "AutoMTLS announces a server certificate"
    );

    let alpn = tls_exchange(&plugin, Some((der, key.clone_key())))
        .await
        .expect("Terraform's certificate is accepted");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "ALPN h2 is negotiated");

    let refused = tls_exchange(&plugin, None).await;
    assert!(
        refused.is_err(),
        "a client without a certificate is refused"
    );

    let (other_der, other_key, _) = terraform_like_cert();
    let refused = tls_exchange(&plugin, Some((other_der, other_key))).await;
    assert!(refused.is_err(), "another certificate is refused");
}

#[tokio::test]
async fn health_is_serving_and_shutdown_exits_promptly() {
    let mut plugin = start_plugin(None);
    assert!(
        plugin.cert.is_none(),
        "no client certificate: plaintext and no certificate field"
    );
    let url = format!("http://{}", plugin.addr);
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");

    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(status) = plugin.child.try_wait().unwrap() {
            assert!(status.success(), "exits cleanly: {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 2 s after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn run_by_hand_it_says_it_is_a_plugin() {
    let out = Command::new(env!("CARGO_BIN_EXE_terraform-provider-herald"))
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("This binary is a plugin"));
}

#[test]
fn debug_mode_prints_reattach_settings_that_terraform_uses() {
    let herald = crate::harness::Herald::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_terraform-provider-herald"))
        .arg("--debug")
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reattach = None;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref().take(10) {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            reattach = Some(rest.trim_end_matches('\'').to_owned());
            break;
        }
    }
    let reattach = reattach.expect("a TF_REATTACH_PROVIDERS line");
    let parsed: serde_json::Value = serde_json::from_str(&reattach).unwrap();
    let entry = &parsed["registry.terraform.io/herald/herald"];
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Addr"]["Network"], "tcp");

    let mut tf = crate::harness::Tf::new(Some(&herald));
    tf.env("TF_REATTACH_PROVIDERS", &reattach);
    // The reattached process does not see Terraform's environment: configure it in HCL.
    tf.env("TF_VAR_herald_token", &herald.token);
    tf.file(
        "main.tf",
        &format!(
            r#"
terraform {{
  required_providers {{
    herald = {{ source = "herald/herald" }}
  }}
}}
variable "herald_token" {{
  type      = string
  sensitive = true
}}
provider "herald" {{
  endpoint  = "{}"
  api_token = var.herald_token
}}
resource "herald_destination" "d" {{
  display_name = "debugged"
  url          = "https://hooks.example.com/d"
}}
"#,
            herald.endpoint
        ),
    );
    tf.apply();
    tf.assert_empty_plan();
    assert_eq!(
        herald.destination_named("debugged")["url"],
        "https://hooks.example.com/d"
    );
    // Terraform leaves a reattached provider running: it belongs to whoever started it.
    assert!(
        child.try_wait().unwrap().is_none(),
        "still serving after Terraform is done"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn refuses_terraform_that_offers_no_protocol_6() {
    let out = Command::new(env!("CARGO_BIN_EXE_terraform-provider-herald"))
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no handshake line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("speaks only version 6"));
}
