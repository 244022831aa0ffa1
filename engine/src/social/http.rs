//! The outgoing HTTP client for providers: rustls, no redirects followed
//! (the crate's advice against SSRF through a provider's answers), a
//! bounded time for every call, and the adapter `openidconnect` calls.

use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse};

/// Why a call to a provider failed.
#[derive(Debug)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// Answers larger than this are refused (a discovery document or JWKS is
/// a few KiB).
const MAX_BODY: usize = 1 << 20;

/// A client whose every request ends within `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// A sent request's future, owning everything it uses.
pub type Sending = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<HttpResponse, HttpError>> + Send + 'static>,
>;

/// What `openidconnect` calls to send: owns a handle of `client`, so the
/// futures it makes borrow nothing (and are `Send` for any caller).
pub fn caller(client: &reqwest::Client) -> impl Fn(HttpRequest) -> Sending + Send + Sync + use<> {
    let client = client.clone();
    move |r| {
        let client = client.clone();
        Box::pin(async move { send(&client, r).await })
    }
}

/// Sends one request for `openidconnect`.
pub async fn send(client: &reqwest::Client, req: HttpRequest) -> Result<HttpResponse, HttpError> {
    let req: reqwest::Request = req
        .try_into()
        .map_err(|e: reqwest::Error| HttpError(e.to_string()))?;
    let resp = client
        .execute(req)
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let mut b = openidconnect::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        b = b.header(k, v);
    }
    let body = read_body(resp).await?;
    b.body(body).map_err(|e| HttpError(e.to_string()))
}

/// Reads a body, refusing one larger than [`MAX_BODY`].
pub async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| HttpError(e.to_string()))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpError("answer too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
