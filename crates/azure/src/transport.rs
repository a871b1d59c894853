//! The bridge from `azure_core`'s pipeline to our reqwest 0.12 client, so the official
//! credentials use Rehydra's HTTP settings (trust, proxy, no redirects, timeouts) instead
//! of the reqwest 0.13 + aws-lc-rs stack their default features bring.

use std::fmt::Write as _;
use std::sync::Arc;

use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Request, StatusCode, Transport};

/// The most of a response body we read: token responses are a few kilobytes.
const MAX_BODY: usize = 1 << 20;

/// An `azure_core` HTTP client backed by a reqwest client.
#[derive(Debug)]
pub(crate) struct Reqwest(pub(crate) reqwest::Client);

impl Reqwest {
    /// The `azure_core` transport for `client`.
    pub(crate) fn transport(client: reqwest::Client) -> Transport {
        Transport::new(Arc::new(Reqwest(client)))
    }
}

#[async_trait::async_trait]
impl HttpClient for Reqwest {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|e| Error::with_error(ErrorKind::Other, e, "unsupported HTTP method"))?;
        let url = request.url().clone();
        let mut builder = self.0.request(method, url.as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match request.body() {
            Body::Bytes(bytes) => builder.body(bytes.clone()),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "streamed request bodies are not supported",
                ));
            }
        };
        let mut response = builder.send().await.map_err(|e| io_error(&url, e))?;
        let status = StatusCode::from(response.status().as_u16());
        let mut headers = Headers::new();
        for (name, value) in response.headers() {
            if let Ok(value) = value.to_str() {
                headers.insert(
                    HeaderName::from(name.as_str().to_owned()),
                    HeaderValue::from(value.to_owned()),
                );
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| io_error(&url, e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::with_message(
                    ErrorKind::Io,
                    format!("{} answered with more than {MAX_BODY} bytes", host(&url)),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(AsyncRawResponse::from_bytes(status, headers, body))
    }
}

/// A transport error in plain words: the host and the innermost causes (a refused
/// connection, an unknown certificate issuer, a timeout …).
/// An untrusted certificate is not retried (the pipeline retries `Io` errors only).
fn io_error(url: &azure_core::http::Url, e: reqwest::Error) -> Error {
    let causes = causes(&e);
    let kind = if causes.contains("invalid peer certificate") {
        ErrorKind::Other
    } else {
        ErrorKind::Io
    };
    let message = format!("could not reach {}: {causes}", host(url));
    Error::with_error(kind, e, message)
}

pub(crate) fn host(url: &azure_core::http::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => url.as_str().to_owned(),
    }
}

/// An error and its sources, skipping reqwest's own "error sending request for url (…)"
/// preamble (which repeats the URL, query and all).
pub(crate) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(e);
    let mut first = true;
    while let Some(err) = next {
        let text = err.to_string();
        let skip = first
            && (text.starts_with("error sending request") || text.starts_with("error decoding"));
        if !skip && !text.is_empty() && !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            let _ = write!(out, "{text}");
        }
        first = false;
        next = err.source();
    }
    if out.is_empty() {
        "unknown error".to_owned()
    } else {
        out
    }
}
