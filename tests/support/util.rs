#![allow(dead_code)]
//! Small helpers shared by the test files: a bound on anything that could hang, and the
//! error of a result that must have failed. Included with
//! `#[path = "support/util.rs"] mod util;`.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

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
    let mut values = form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let first = values.next();
    let repeats = values.count();
    assert!(repeats == 0, "{name} sent {} times", repeats + 1);
    first
}
