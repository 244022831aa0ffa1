//! The rustls client configuration for ScyllaDB nodes.
//!
//! The driver connects to node IP addresses and names the server by IP. When
//! the nodes' certificates carry a DNS name instead (the usual case), the
//! configured server name is verified in its place: the chain, validity and
//! signatures are still checked by webpki against the configured CA.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::config::ScyllaTls;
use crate::{StoreError, StoreResult};

fn tls_err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("ScyllaDB TLS: {what}: {e}"))
}

/// Builds the client configuration from `tls`.
pub(crate) fn client_config(tls: &ScyllaTls) -> StoreResult<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&tls.ca_file)
        .map_err(|e| tls_err(&format!("cannot read CA file {}", tls.ca_file.display()), e))?;
    for cert in certs {
        let cert = cert.map_err(|e| tls_err("bad certificate in the CA file", e))?;
        roots
            .add(cert)
            .map_err(|e| tls_err("unusable CA certificate", e))?;
    }
    if roots.is_empty() {
        return Err(tls_err(
            "no certificate in the CA file",
            tls.ca_file.display(),
        ));
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("protocol versions", e))?;
    let builder = match &tls.server_name {
        None => builder.with_root_certificates(roots),
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|e| tls_err(&format!("invalid server name '{name}'"), e))?;
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_err("verifier", e))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(FixedName { inner, name }))
        }
    };
    let config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| tls_err(&format!("cannot read {}", cert.display()), e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_err("bad client certificate", e))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| tls_err(&format!("cannot read the key {}", key.display()), e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_err("client certificate", e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Verifies every node's certificate against one configured DNS name.
#[derive(Debug)]
struct FixedName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for FixedName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
