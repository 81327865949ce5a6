#![allow(dead_code)]
//! Small helpers shared by the test files: a bound on anything that could hang, the error of
//! a result that must have failed, and the reading of a request's body and form fields.
//! Included by `support/stub.rs` and `support/interop.rs` (as `stub::util`, `harness::util`),
//! or on its own with `#[path = "support/util.rs"] mod util;`.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tower_oauth2::Error;

/// How long a test waits for anything that talks to a server.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Bounds a future that talks to a server: a hung server fails the test instead of hanging it.
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("no answer within {} s", LIMIT.as_secs()))
}

/// The error of a `result` that must have failed.
pub fn expect_err<T: Debug>(result: Result<T, Error>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err,
    }
}

/// The fields of an `application/x-www-form-urlencoded` body, in order.
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The only value of form field `name` in `form` (panics if it is repeated).
pub fn only_field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let values: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(values.len() <= 1, "{name} sent {} times: {form:?}", values.len());
    values.first().copied()
}

/// Splits `request` into its head and its whole body.
pub async fn read_request(request: http::Request<Full<Bytes>>) -> (http::request::Parts, Bytes) {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e: Infallible| match e {})
        .to_bytes();
    (parts, body)
}
