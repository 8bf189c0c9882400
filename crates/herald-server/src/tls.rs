//! TLS settings (`docs/protocol.md` 15): the server's certificate and key,
//! and optionally the CA that client certificates must be signed by, read
//! from PEM files into one rustls [`ServerConfig`] that the protocol
//! listener and the HTTP listener share.
//!
//! Only TLS 1.2 and 1.3, with rustls' `ring` provider (its default cipher
//! suites). Everything that can be wrong with the files is found here, at
//! start, with the file named: a missing file, no certificate, no key, a
//! key that does not belong to the certificate.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing of the kind wanted.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the combination (for example a key that does not
    /// match the certificate).
    #[error("{0}")]
    Config(String),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The certificates of a PEM file (a chain: the server's first).
///
/// # Errors
/// If the file cannot be read or holds no certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// If the file cannot be read or holds no key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => file_error(
            path,
            "no PEM private key in the file (PKCS#8, PKCS#1 or SEC1)",
        ),
        e => file_error(path, e),
    })
}

/// The crypto provider every TLS configuration of Herald uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration: `cert` (PEM chain) and `key`, and, with
/// `client_ca`, client certificates required and checked against it.
///
/// # Errors
/// A [`TlsError`] naming the file or the mismatch.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(cert)?;
    let key_der = load_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c).map_err(|e| file_error(ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| file_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    // `with_single_cert` checks that the key is the certificate's.
    let config = builder.with_single_cert(certs, key_der).map_err(|e| {
        TlsError::Config(format!(
            "{} and {} do not go together: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok(Arc::new(config))
}
