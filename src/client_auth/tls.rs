//! The certificate-based methods of RFC 8705: `tls_client_auth` and
//! `self_signed_tls_client_auth`. The certificate is the transport's; the body names the client.

use super::{ClientAuth, Method};

impl ClientAuth {
    /// `tls_client_auth` (RFC 8705 §2.1): the client proves its identity with a client
    /// certificate issued by a certificate authority the server trusts, presented in the TLS
    /// handshake; the request body carries only `client_id`. The certificate belongs to the
    /// HTTP client: give the token endpoint an [`HttpClient`](crate::HttpClient) that presents
    /// it.
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// let auth = ClientAuth::tls_client_auth("my-service");
    /// assert_eq!(auth.method(), "tls_client_auth");
    /// ```
    pub fn tls_client_auth(client_id: impl Into<String>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            method: Method::TlsClientAuth,
        }
    }

    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): as
    /// [`tls_client_auth`](Self::tls_client_auth), with a self-signed certificate the server
    /// knows from the client's registration (its `jwks` or `jwks_uri`).
    ///
    /// ```
    /// use tower_oauth2::ClientAuth;
    ///
    /// let auth = ClientAuth::self_signed_tls_client_auth("my-service");
    /// assert_eq!(auth.method(), "self_signed_tls_client_auth");
    /// ```
    pub fn self_signed_tls_client_auth(client_id: impl Into<String>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            method: Method::SelfSignedTlsClientAuth,
        }
    }
}
