//! TLS for the server: [`TlsConfig`], a certificate chain and its private key read from PEM
//! files and checked against each other before anything listens, as a rustls server
//! configuration (the `ring` provider: no OpenSSL). [`Server::serve_tls`](crate::Server::serve_tls)
//! serves HTTPS and WSS with it; [`TlsError`] says which file is wrong and how.
//!
//! Must not: know sockets or HTTP (the listener serves the configuration).

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate chain and its private key, ready to serve: made by
/// [`from_pem_files`](Self::from_pem_files), served by
/// [`Server::serve_tls`](crate::Server::serve_tls). Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// Why a [`TlsConfig`] could not be made. Each variant names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A file is not valid PEM (a section without its end line, bad base64).
    #[error("{}: not valid PEM: {reason}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("{}: no certificate in it (expected PEM \"-----BEGIN CERTIFICATE-----\", the server's first)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key section.
    #[error("{}: no private key in it (expected PEM \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\")", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is of a kind rustls cannot sign with (RSA, ECDSA P-256/P-384 and Ed25519
    /// are supported) or its encoding is broken.
    #[error("{}: unusable private key: {error}", path.display())]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// rustls's reason.
        error: rustls::Error,
    },
    /// The key is not the one of the first certificate of the chain: the wrong pair of files, or
    /// a chain whose server certificate is not first.
    #[error("{} is not the private key of the first certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the certificate chain (its first certificate cannot be parsed).
    #[error("{}: unusable certificate: {error}", path.display())]
    BadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// rustls's reason.
        error: rustls::Error,
    },
}

impl TlsConfig {
    /// Reads a certificate chain (PEM `CERTIFICATE` sections, the server's own first, then the
    /// intermediates) and its private key (PEM PKCS#8, SEC1 or PKCS#1), and checks that the key
    /// is the first certificate's. Offers HTTP/1.1 by ALPN, the only HTTP the server speaks.
    pub fn from_pem_files(cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<TlsConfig, TlsError> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let read = |path: &Path| std::fs::read(path).map_err(|error| TlsError::Read { path: path.to_owned(), error });
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadPem { path: cert_path.to_owned(), reason: pem_reason(e) })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: cert_path.to_owned() });
        }
        let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(key) => key,
            Err(pem::Error::NoItemsFound) => return Err(TlsError::NoKey { path: key_path.to_owned() }),
            Err(e) => return Err(TlsError::BadPem { path: key_path.to_owned(), reason: pem_reason(e) }),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|error| TlsError::BadKey { path: key_path.to_owned(), error })?;
        let certified = rustls::sign::CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // Unknown: the key cannot tell its public half; rustls serves it all the same.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch { cert: cert_path.to_owned(), key: key_path.to_owned() })
            }
            Err(error) => return Err(TlsError::BadCertificate { path: cert_path.to_owned(), error }),
        }
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("invariant: ring's provider supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig { server: Arc::new(server) })
    }

    /// The acceptor of each connection's handshake.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }
}

/// A PEM error in words: rustls's own show the marker lines as byte arrays.
fn pem_reason(e: pem::Error) -> String {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("a {0} section has no \"-----END {0}-----\" line", text(&end_marker))
        }
        pem::Error::IllegalSectionStart { line } => format!("a section starts with the bad line {:?}", text(&line)),
        pem::Error::Base64Decode(why) => format!("bad base64 ({why})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (name, contents) into a temporary directory and makes a config of the
    /// first two named; returns the error's message.
    fn check_error(files: &[(&str, &[u8])], cert: &str, key: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let e = TlsConfig::from_pem_files(dir.path().join(cert), dir.path().join(key)).expect_err("a bad pair");
        e.to_string()
    }

    fn pair(name: &str) -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("certificate");
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_make_a_config() {
        let (cert, key) = pair("localhost");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("c.pem"), cert).expect("write");
        std::fs::write(dir.path().join("k.pem"), key).expect("write");
        let tls = TlsConfig::from_pem_files(dir.path().join("c.pem"), dir.path().join("k.pem")).expect("config");
        assert_eq!(tls.server.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(!format!("{tls:?}").contains("PRIVATE"), "no key in Debug");
    }

    #[test]
    fn each_wrong_file_is_named_with_what_is_wrong() {
        let (cert, key) = pair("localhost");
        let (_, other_key) = pair("other");
        let (cert, key, other_key) = (cert.as_bytes(), key.as_bytes(), other_key.as_bytes());
        let missing = check_error(&[("k.pem", key)], "c.pem", "k.pem");
        assert!(missing.starts_with("cannot read ") && missing.contains("c.pem"), "{missing}");
        let swapped = check_error(&[("c.pem", cert), ("k.pem", key)], "k.pem", "c.pem");
        assert!(swapped.contains("k.pem: no certificate"), "{swapped}");
        let no_key = check_error(&[("c.pem", cert)], "c.pem", "c.pem");
        assert!(no_key.contains("c.pem: no private key"), "{no_key}");
        let mismatch = check_error(&[("c.pem", cert), ("o.pem", other_key)], "c.pem", "o.pem");
        assert!(mismatch.contains("o.pem is not the private key of the first certificate in"), "{mismatch}");
        let cut = &cert[..cert.len() / 2];
        let truncated = check_error(&[("c.pem", cut), ("k.pem", key)], "c.pem", "k.pem");
        assert!(truncated.contains("c.pem: not valid PEM: a CERTIFICATE section has no"), "{truncated}");
        let junk = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let bad_key = check_error(&[("c.pem", cert), ("k.pem", junk)], "c.pem", "k.pem");
        assert!(bad_key.contains("k.pem: unusable private key"), "{bad_key}");
    }
}
