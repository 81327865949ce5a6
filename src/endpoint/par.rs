//! Pushed authorization requests (RFC 9126): the client POSTs the authorization request's
//! parameters to the server, with its client authentication, and sends the browser to the
//! authorization endpoint with only the `request_uri` the server gave back. The parameters
//! can then be neither read nor changed on their way through the browser.
//!
//! ```
//! # use bytes::Bytes;
//! # use http_body_util::{BodyExt, Full};
//! use tower_oauth2::{ClientAuth, HttpClient, OAuth2Client};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::Error> {
//! # let server = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//! #     let body = request.into_body().collect().await.unwrap().to_bytes();
//! #     let body = String::from_utf8(body.to_vec()).unwrap();
//! #     assert!(body.contains("code_challenge_method=S256"));
//! #     let json = r#"{"request_uri":"urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c","expires_in":60}"#;
//! #     Ok::<_, std::convert::Infallible>(http::Response::builder().status(201).body(Full::new(Bytes::from(json))).unwrap())
//! # });
//! let client = OAuth2Client::builder(ClientAuth::client_secret_basic("my-app", "its-secret"))
//!     .authorization_url("https://auth.example.com/authorize")
//!     .pushed_authorization_request_url("https://auth.example.com/par")
//!     .token_url("https://auth.example.com/token")
//!     .http_client(HttpClient::new(server)) // a stand-in PAR endpoint
//!     .build()?;
//! // `pushed()` asks for it; a server whose metadata has
//! // `require_pushed_authorization_requests: true` gets it without asking.
//! let authorization = client.authorization_request("https://app.example.com/cb").pushed().start().await?;
//! assert!(authorization.url().as_str().ends_with("request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A6esc_11ACC5bwc014ltc14eY22c"));
//! # Ok(()) }
//! ```
//!
//! The endpoint answers `201 Created` with `request_uri` and `expires_in` (RFC 9126 §2.2); an
//! error is an OAuth 2.0 error response, typed as the token endpoint's ([`Error::OAuth2`],
//! [`Error::HttpStatus`] with its `Retry-After`).

use serde_json::Value;
use tracing::Instrument;

use crate::client::OAuth2Client;
use crate::error::Error;
use crate::token::check_response;

impl OAuth2Client {
    /// Pushes an authorization request's parameters to the PAR endpoint and returns the
    /// `request_uri` to send the browser with.
    pub(crate) async fn push_authorization_request(&self, params: &[(&str, &str)]) -> Result<String, Error> {
        let url = self.endpoint(
            "pushed_authorization_request",
            self.pushed_authorization_request_url(),
        )?;
        let span = tracing::debug_span!("pushed_authorization_request", %url);
        async {
            // The state and the nonce are not for anyone's eyes: cut out of any error text.
            let also: Vec<&str> = params
                .iter()
                .filter(|(name, _)| matches!(*name, "state" | "nonce"))
                .map(|(_, value)| *value)
                .collect();
            let response = self.token_endpoint().post_form(url, params, &also).await?;
            let fields = check_response(&response).inspect_err(|err| {
                tracing::debug!(error = %err.report(), "pushed authorization request failed");
            })?;
            match fields.get("request_uri") {
                Some(Value::String(request_uri)) if !request_uri.is_empty() => {
                    tracing::debug!("authorization request pushed");
                    Ok(request_uri.clone())
                }
                _ => Err(Error::MalformedResponse {
                    status: response.status,
                    reason: "the pushed authorization response has no `request_uri` string".to_owned(),
                }),
            }
        }
        .instrument(span)
        .await
    }
}
