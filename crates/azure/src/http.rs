//! The one HTTP client configuration Rehydra uses for Azure and plugin requests.
//!
//! reqwest 0.12 over rustls (ring) with HTTP/2; trust comes from the system store, or from
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set; `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`
//! are honoured; redirects are never followed (a redirect could carry an
//! `Authorization` header elsewhere); every request has a connect and a total timeout.

use std::time::Duration;

/// The longest a TCP + TLS connect may take, whatever the total timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client builder with Rehydra's settings, for callers that add their own (roots,
/// no proxy for a loopback endpoint, …).
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .timeout(timeout)
        .user_agent(concat!("rehydra/", env!("CARGO_PKG_VERSION")))
}

/// The HTTP client: `timeout` bounds each whole request (connect, send, and reading the
/// response).
///
/// # Errors
///
/// When the TLS setup fails, e.g. `SSL_CERT_FILE` names a file without one valid
/// certificate.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    builder(timeout).build()
}
