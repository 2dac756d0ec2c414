//! The client's side of `wss://`: which roots it trusts. Mozilla's (webpki-roots, built in: the
//! same on every machine, no system store to find) and any given in
//! [`ConnectOptions::tls_roots_pem`](super::ConnectOptions::tls_roots_pem), with the `ring`
//! provider named here rather than taken from the process, so a program that also links
//! another rustls provider cannot make the choice ambiguous.
//!
//! Must not: know the protocol (the client's `mod.rs` speaks it).

use super::ClientError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::sync::{Arc, OnceLock};
use tokio_tungstenite::Connector;

/// The connector for a `wss://` URL: the public roots, plus the PEM certificates of
/// `extra_roots_pem`.
pub(super) fn connector(extra_roots_pem: Option<&[u8]>) -> Result<Connector, ClientError> {
    let Some(pem) = extra_roots_pem else {
        // Parsing the public roots for every connection would cost more than the handshake.
        static PUBLIC: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
        return Ok(Connector::Rustls(PUBLIC.get_or_init(|| config(public_roots())).clone()));
    };
    let bad = |why: String| ClientError::TlsRoots(why);
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM \"CERTIFICATE\" section".into()));
    }
    let mut roots = public_roots();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| bad(format!("certificate {}: {e}", i + 1)))?;
    }
    Ok(Connector::Rustls(config(roots)))
}

fn public_roots() -> rustls::RootCertStore {
    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

fn config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("invariant: ring's provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
