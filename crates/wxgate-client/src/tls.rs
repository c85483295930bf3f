//! How every HTTP client of wxgate is built: rustls on the ring provider, trusting the
//! webpki roots. Never the platform's verifier or trust store and never aws-lc, so a
//! check gives the same answer on every machine.
//!
//! reqwest is built without a crypto provider of its own: a client made with
//! `reqwest::Client::new()` or a bare builder panics when it is built. Start from
//! [`http_client_builder`] instead.

use std::sync::Arc;

/// A rustls client configuration on the ring provider, trusting the webpki roots.
pub fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A reqwest client builder with [`tls_config`] as its TLS.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(tls_config())
}

/// A reqwest client with the defaults of [`http_client_builder`].
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("a client on a preconfigured rustls builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_preconfigured_builder_makes_a_client() {
        http_client();
        // No process-wide provider is installed, so reqwest's own path (the platform
        // verifier) cannot be taken by accident: it panics instead.
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        let bare = std::panic::catch_unwind(|| reqwest::Client::builder().build());
        assert!(bare.is_err(), "a bare reqwest builder made a client");
    }
}
