//! TLS to the broker (`docs/protocol.md` §15): [`TlsOptions`] is a rustls
//! client configuration and the name the broker's certificate must carry.
//!
//! [`TlsOptions::new`] builds the usual one: the broker's certificate
//! checked against a CA file (a private CA) or, without one, the system's
//! trusted roots; TLS 1.2 and 1.3 with rustls' `ring` provider. For client
//! certificates or other settings, build a [`rustls::ClientConfig`] and use
//! [`TlsOptions::with_config`].

use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How to speak TLS to the broker.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsOptions {
    /// Checks the broker's certificate for `server_name` (a DNS name or an
    /// IP address) against the CA certificates of the PEM file `ca`, or
    /// against the system's roots when `ca` is `None`.
    ///
    /// # Errors
    /// [`Error::Settings`] for a bad server name, an unreadable CA file or
    /// no usable root certificate.
    pub fn new(server_name: &str, ca: Option<&Path>) -> Result<TlsOptions> {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| Error::Settings(format!("{}: {e}", path.display())))?;
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| Error::Settings(format!("{}: {e}", path.display())))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        if roots.is_empty() {
            return Err(Error::Settings(
                "no CA certificate to check the broker against".into(),
            ));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Settings(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        TlsOptions::with_config(Arc::new(config), server_name)
    }

    /// A configuration of the caller's, for the broker named `server_name`.
    ///
    /// # Errors
    /// [`Error::Settings`] if `server_name` is neither a DNS name nor an IP
    /// address.
    pub fn with_config(config: Arc<rustls::ClientConfig>, server_name: &str) -> Result<TlsOptions> {
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| Error::Settings(format!("server name '{server_name}': {e}")))?;
        Ok(TlsOptions {
            config,
            server_name,
        })
    }

    /// Handshakes over `tcp`.
    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
    }
}
