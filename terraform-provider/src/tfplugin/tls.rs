//! AutoMTLS: Terraform hands the plugin its client certificate and trusts exactly the server
//! certificate the plugin prints in the handshake.
//!
//! Two crypto libraries, each for what it does best here. aws-lc-rs only checks the client's
//! handshake signature (P-521/SHA-512, which ring lacks); verifying needs no randomness. ring makes
//! the server key, signs the certificate and runs the handshake. aws-lc's random generator seeds
//! itself from CPU jitter the first time it is used, which cost 35-50 ms of CPU at every start-up
//! (`perf record` of a start: 90 % of the samples in `jent_*`), and Terraform starts the provider
//! three or four times per command, one after another; ring's generator reads the OS's.

use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, aws_lc_rs, ring as ring_provider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("PLUGIN_CLIENT_CERT holds no PEM certificate: {0}")]
    ClientCert(String),
    #[error("generating the server certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("generating the server key: {0}")]
    Key(String),
    #[error("building the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The server side of AutoMTLS: the rustls configuration and the certificate to announce.
pub struct AutoMtls {
    pub config: Arc<ServerConfig>,
    pub server_cert_der: CertificateDer<'static>,
}

/// Builds a server configuration that accepts only the client certificate in `client_cert_pem`.
pub fn auto_mtls(client_cert_pem: &str) -> Result<AutoMtls, TlsError> {
    let client_cert = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
        .map_err(|e| TlsError::ClientCert(e.to_string()))?;
    // Terraform dials "localhost" and checks serverAuth; a self-signed leaf is all it needs
    // because it trusts this exact certificate.
    let key = ServerKey::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = params.self_signed(&key)?;
    let server_cert_der = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8));

    let verifier = PinnedClientCert {
        pinned: client_cert,
        algorithms: aws_lc_rs::default_provider().signature_verification_algorithms,
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(ring_provider::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(vec![server_cert_der.clone()], key_der)?;
    // grpc-go from 1.67 on refuses TLS servers that do not negotiate h2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(AutoMtls {
        config: Arc::new(config),
        server_cert_der,
    })
}

/// The server's throwaway P-256 key, made and used by ring (see the module's comment), in the form
/// rcgen signs the certificate with.
struct ServerKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl ServerKey {
    fn generate() -> Result<Self, TlsError> {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|e| TlsError::Key(e.to_string()))?
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng)
            .map_err(|e| TlsError::Key(e.to_string()))?;
        Ok(ServerKey { pair, pkcs8, rng })
    }
}

impl rcgen::PublicKeyData for ServerKey {
    fn der_bytes(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for ServerKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.pair
            .sign(&self.rng, msg)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// Accepts exactly one client certificate, byte for byte.
///
/// Terraform's certificate is a self-signed CA certificate (P-521, SHA-512), which webpki refuses
/// as an end entity, and it is a throwaway anyway: pinning it is both simpler and stricter than
/// building a trust store around it. Handshake signatures are still checked, so the client must
/// hold the matching private key.
#[derive(Debug)]
struct PinnedClientCert {
    pinned: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
