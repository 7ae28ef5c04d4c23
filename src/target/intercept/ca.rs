//! The throwaway certificate authority of one intercepting run: generated when the run starts,
//! its certificate written to `{ca_file}` for the target to trust, its private key kept in memory
//! only and gone when the run ends. It signs one leaf certificate per intercepted host name.
//!
//! A fresh CA per run means no key outlives the run and nothing is ever installed in a trust
//! store: only a target told `{ca_file}` trusts it.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;

/// The run's CA. Its key never leaves memory (not in `Debug`, files or reports).
pub struct ThrowawayCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for ThrowawayCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThrowawayCa { key: <in memory only> }")
    }
}

/// A leaf certificate for one host name and its key, as rustls serves them.
pub struct Leaf {
    /// The leaf alone: the client holds the CA.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ThrowawayCa {
    /// A new CA (ECDSA P-256), allowed to sign leaves only (path length 0).
    pub fn generate() -> Result<ThrowawayCa, String> {
        let fail = |e: rcgen::Error| format!("cannot generate the interception CA: {e}");
        let key = KeyPair::generate().map_err(fail)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "credpool throwaway interception CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(fail)?;
        Ok(ThrowawayCa { issuer })
    }

    /// The CA's certificate, PEM (what `{ca_file}` holds).
    pub fn certificate_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's certificate, DER (for a rustls client's root store).
    pub fn certificate_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Writes the CA's certificate (not its key) to `path`, mode 0600.
    pub fn write_certificate(&self, path: &Path) -> Result<(), String> {
        // Created new with mode 0600 by the store's own file creation, like the accounts file.
        crate::store::backend::FileBackend::new(path)
            .create(&self.certificate_pem())
            .map_err(|e| format!("{}: cannot write the interception CA certificate: {e}", path.display()))
    }

    /// A leaf for `host` (its only subject alternative name), signed by this CA, for serving TLS.
    pub fn leaf(&self, host: &str) -> Result<Leaf, String> {
        let fail = |e: rcgen::Error| format!("cannot sign a leaf certificate for {host}: {e}");
        let key = KeyPair::generate().map_err(fail)?;
        let mut params = CertificateParams::new(vec![host.to_string()]).map_err(fail)?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(fail)?;
        Ok(Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A TLS handshake over loopback: a server with `leaf`, a client trusting `ca` and asking
    /// for `name`. Ok when the client accepted the server's certificate.
    async fn handshake(ca: &ThrowawayCa, leaf: Leaf, name: &str) -> Result<(), String> {
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(leaf.chain, leaf.key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.certificate_der()).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"hello").await;
                let _ = tls.shutdown().await;
            }
        });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let result = match connector
            .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
            .await
        {
            Ok(mut tls) => {
                let mut got = Vec::new();
                tls.read_to_end(&mut got).await.map_err(|e| e.to_string())?;
                assert_eq!(got, b"hello");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        server.abort();
        result
    }

    #[tokio::test]
    async fn a_client_trusting_the_ca_accepts_the_leaf_for_its_host_only() {
        let ca = ThrowawayCa::generate().unwrap();
        let host = "oauth2.googleapis.com";
        handshake(&ca, ca.leaf(host).unwrap(), host).await.unwrap();
        let other = handshake(&ca, ca.leaf(host).unwrap(), "example.com").await.unwrap_err();
        assert!(other.to_lowercase().contains("not valid for name"), "{other}");
        // A leaf from another run's CA is refused by a client trusting this one (same CA name,
        // another key: the signature does not verify).
        let stranger = ThrowawayCa::generate().unwrap();
        let foreign = handshake(&ca, stranger.leaf(host).unwrap(), host).await.unwrap_err();
        assert!(foreign.contains("invalid peer certificate"), "{foreign}");
    }

    #[test]
    fn the_key_is_in_no_output() {
        let ca = ThrowawayCa::generate().unwrap();
        assert!(ca.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!ca.certificate_pem().contains("PRIVATE KEY"));
        assert!(!format!("{ca:?}").contains("PRIVATE"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        ca.write_certificate(&file).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), ca.certificate_pem());
        let again = ca.write_certificate(&file).unwrap_err();
        assert!(again.contains("ca.pem"), "{again}");
    }
}
