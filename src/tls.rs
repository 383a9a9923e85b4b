//! One TLS provider for every client glidepath makes: kube-rs, reqwest (Prometheus,
//! webhooks, smoke tests) and the load generator all use rustls with `ring`, so the build
//! compiles one crypto library and no C toolchain beyond `ring`'s own small part.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The crypto provider every TLS client of glidepath uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes [`provider`] the process's default, where reqwest and kube-rs look for it; a no-op
/// once a default is set (whoever set it first, the result is the same provider).
pub fn install() {
    let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
}

/// An HTTP client builder with the provider installed and glidepath's user agent.
pub fn http_client() -> reqwest::ClientBuilder {
    install();
    reqwest::Client::builder().user_agent(concat!("glidepath/", env!("CARGO_PKG_VERSION")))
}
