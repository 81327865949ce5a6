//! [`HttpClient::reqwest`]: the application's own `reqwest::Client` as the token endpoint's
//! transport (cargo feature `reqwest`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::{HttpClient, DEFAULT_TIMEOUT};

impl HttpClient {
    /// Sends the token endpoint's requests with the application's own `reqwest::Client`
    /// (cargo feature `reqwest`): its proxies (reqwest honours `HTTPS_PROXY` and the rest),
    /// its TLS settings and trust roots, its connection pool and its timeouts.
    ///
    /// What this crate adds is the same as for any [`HttpClient`]: a [30 s](DEFAULT_TIMEOUT)
    /// limit on each exchange, as for [`HttpClient::hyper`] (change it with
    /// [`with_timeout`](Self::with_timeout), or [`without_timeout`](Self::without_timeout)
    /// to rely on the client's own; a reqwest timeout is an [`Error::Transport`]), the body
    /// size limit ([`with_max_body_size`](Self::with_max_body_size)), and a body cut short
    /// being a transient [`Error::Transport`]. Response bodies are read as they come, so an
    /// oversized one is refused without being read whole.
    ///
    /// **Redirects.** reqwest follows redirects unless told not to, and on a `307` or `308`
    /// it sends the request body again, to wherever the redirect points: with
    /// `client_secret_post`, that body holds the client secret. Token endpoints do not
    /// redirect; build the client with `redirect(reqwest::redirect::Policy::none())` (as
    /// below) unless you know why you need them. A `3xx` that reaches this crate is an error.
    ///
    /// To keep a single crypto provider in the build (this crate uses rustls with `ring`),
    /// enable reqwest's `rustls-no-provider` feature rather than its default `rustls` (which
    /// brings aws-lc-rs) and hand it a ring-based configuration, or install ring as the
    /// process's default provider.
    ///
    /// [`Error::Transport`]: crate::Error::Transport
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::{ClientAuth, ClientCredentials, HttpClient, TokenEndpoint};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app_client = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .connect_timeout(Duration::from_secs(5))
    ///     .build()?;
    /// let endpoint = TokenEndpoint::builder(
    ///     "https://auth.example.com/token",
    ///     ClientAuth::client_secret_post("my-service", "its-secret"),
    /// )
    /// .http_client(HttpClient::reqwest(app_client))
    /// .build()?;
    /// let source = ClientCredentials::new(endpoint);
    /// # let _ = source; Ok(()) }
    /// ```
    pub fn reqwest(client: reqwest::Client) -> Self {
        let service = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
            let client = client.clone();
            async move {
                let (parts, body) = request.into_parts();
                // `Full`'s error is `Infallible`.
                let body = match body.collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(never) => match never {},
                };
                let request =
                    reqwest::Request::try_from(http::Request::from_parts(parts, reqwest::Body::from(body)))?;
                let response = client.execute(request).await?;
                Ok::<_, reqwest::Error>(http::Response::<reqwest::Body>::from(response))
            }
        });
        HttpClient::new(service).with_timeout(DEFAULT_TIMEOUT)
    }
}
