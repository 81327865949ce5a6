#![allow(dead_code)]
//! An in-process stand-in server: an [`HttpClient`] over a `tower::service_fn` that answers
//! each request from a closure (or a script) and records what the crate sent: method, URI,
//! headers, body and form fields. Included with `#[path = "support/stub.rs"] mod stub;`
//! (it includes `support/util.rs` as `stub::util`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use tower_oauth2::{ClientAuth, HttpClient, TokenEndpoint};

#[path = "util.rs"]
pub mod util;

/// The token endpoint of [`Stub::endpoint`].
pub const TOKEN_URL: &str = "https://auth.example.com/token";

/// One request the crate sent.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: http::Method,
    pub uri: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: String,
    /// The body's form fields, in order.
    pub form: Vec<(String, String)>,
}

impl Seen {
    /// The only value of form field `name` (panics if it is repeated).
    pub fn field(&self, name: &str) -> Option<&str> {
        util::only_field(&self.form, name)
    }

    /// The names of the form fields, in order.
    pub fn names(&self) -> Vec<&str> {
        self.form.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }
}

type Handler = dyn Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync;

/// An in-process server: a handler answers each request; every request is recorded.
#[derive(Clone)]
pub struct Stub {
    seen: Arc<Mutex<Vec<Seen>>>,
    pub http: HttpClient,
}

impl Stub {
    /// A server that answers each request with `handler(request)`.
    pub fn new(handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static) -> Stub {
        Self::with_limit(handler, None)
    }

    /// As [`Stub::new`], with the client's body cap set to `max_body_size`.
    pub fn with_limit(
        handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
        max_body_size: Option<usize>,
    ) -> Stub {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let record = seen.clone();
        let service = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
            let record = record.clone();
            let handler = handler.clone();
            async move {
                let (parts, body) = util::read_request(request).await;
                let seen = Seen {
                    method: parts.method,
                    uri: parts.uri.to_string(),
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    form: util::form_fields(&body),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let response = handler(&seen);
                record.lock().unwrap().push(seen);
                Ok::<_, Infallible>(response)
            }
        });
        let mut http = HttpClient::new(service).with_timeout(Duration::from_secs(10));
        if let Some(limit) = max_body_size {
            http = http.with_max_body_size(limit);
        }
        Stub { seen, http }
    }

    /// A server that answers each request with the next of `answers` (status, JSON body);
    /// the last one repeats.
    pub fn scripted(answers: &[(u16, &str)]) -> Stub {
        let script: VecDeque<(u16, String)> = answers.iter().map(|(s, b)| (*s, (*b).to_owned())).collect();
        let script = Mutex::new(script);
        Stub::new(move |_| {
            let mut script = script.lock().unwrap();
            let (status, body) = if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script.front().cloned().expect("a scripted response")
            };
            json(status, &body)
        })
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A token endpoint at [`TOKEN_URL`] on this server.
    pub fn endpoint(&self, auth: ClientAuth) -> TokenEndpoint {
        TokenEndpoint::builder(TOKEN_URL, auth)
            .http_client(self.http.clone())
            .build()
            .unwrap()
    }
}

/// A response with `status`, `headers` and `body`.
pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Full::new(body.into())).unwrap()
}

/// A JSON response with `status`.
pub fn json(status: u16, body: &str) -> Response<Full<Bytes>> {
    respond(status, &[("content-type", "application/json")], body.to_owned())
}
