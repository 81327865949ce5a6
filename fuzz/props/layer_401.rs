//! The layer's 401 handling: up to 16 responses of a resource server (status and headers,
//! `WWW-Authenticate` above all), answering in turn the requests sent through
//! `OAuth2Layer::invalidate_on_401(true)` over an in-memory inner service, and the
//! `www_authenticate` parser on their headers.
//!
//! Options: `@retry` (`OAuth2Layer::with_retry()`, retries stacked above the
//! layer), `@off` (`invalidate_on_401(false)`).
//!
//! Properties:
//! - the parser: at most `MAX_CHALLENGES` challenges and `MAX_PARAMS` parameters each; what
//!   it returns, written back as a canonical header value, parses to the same challenges
//!   without error; parsing all lines equals parsing each line, up to the cap;
//! - every request reaches the inner service with exactly one `Authorization` header, the
//!   current token's; the token is dropped (and the next request fetches a new one) exactly
//!   after a 401 with a Bearer or DPoP `error=invalid_token` challenge, and never when off;
//! - with `@retry`, exactly such a request is sent once more, and the caller gets the last
//!   answer; otherwise the answer, status and headers, is passed through unchanged;
//! - no token in any log line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use tower_oauth2::layer::www_authenticate::{self, Challenge, Challenges, MAX_CHALLENGES, MAX_PARAMS};
use tower_oauth2::{source_fn, OAuth2Layer, Token, TokenCache};

use crate::common::{block_on, capture_logs, check_logs, lock, Script, Scripted, Secrets};

type Body = Full<Bytes>;

/// The token the source issues on its `n`th fetch (from 1).
fn token_value(n: usize) -> String {
    format!("at-Secret-{n:04}")
}

/// Checks one input; `Err` describes the first property that failed.
pub fn check(data: &[u8]) -> Result<(), String> {
    let script = Script::parse(data, 16);
    for response in &script.responses {
        check_parser(&response.headers)?;
    }
    check_layer(&script)
}

/// Whether a response says the token is dead, by the public parser.
fn says_invalid_token(response: &Scripted) -> bool {
    response.status == StatusCode::UNAUTHORIZED
        && www_authenticate::parse_headers(&response.headers)
            .iter()
            .any(|c| {
                (c.is_scheme("bearer") || c.is_scheme("dpop")) && c.param("error") == Some("invalid_token")
            })
}

/// One call of the inner service: the request's number and its `Authorization` values.
type Call = (String, Vec<HeaderValue>);

fn check_layer(script: &Script) -> Result<(), String> {
    let retry = script.has("retry");
    // `with_retry` always invalidates a rejected token: `@off` only counts without `@retry`.
    let on = retry || !script.has("off");
    let fetches = Arc::new(AtomicUsize::new(0));
    let source = {
        let fetches = fetches.clone();
        source_fn(move || {
            let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok(Token::bearer(token_value(n))) }
        })
    };
    let cache = TokenCache::new(source);
    let oauth2 = OAuth2Layer::from_cache(cache.clone()).invalidate_on_401(on);
    let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(
        script.responses.clone(),
    )));
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let inner = {
        let queue = queue.clone();
        let calls = calls.clone();
        tower::service_fn(move |request: Request<Body>| {
            let number = request
                .headers()
                .get("x-request")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let authorization = request.headers().get_all(AUTHORIZATION).iter().cloned().collect();
            lock(&calls).push((number, authorization));
            let next = lock(&queue).pop_front();
            let response = next.unwrap_or_else(|| Scripted::json(200, "{}"));
            let mut answer = Response::new(());
            *answer.status_mut() = response.status;
            *answer.headers_mut() = response.headers;
            async move { Ok::<_, std::convert::Infallible>(answer) }
        })
    };
    let (answers, logs) = capture_logs(|| {
        if retry {
            let service = oauth2.with_retry().layer(inner);
            block_on(drive(service, &queue))
        } else {
            block_on(drive(oauth2.layer(inner), &queue))
        }
    });
    let answers = answers?;
    let calls = lock(&calls).clone();

    // The model: which token each call carries, which requests are retried, what each
    // caller gets.
    let mut token = 1;
    let mut expected_calls: Vec<(String, String)> = Vec::new();
    let mut expected_answers: Vec<Scripted> = Vec::new();
    let mut responses = script.responses.iter().cloned().peekable();
    let mut request = 0;
    while responses.peek().is_some() {
        let mut attempts = 0;
        loop {
            expected_calls.push((request.to_string(), token_value(token)));
            let response = responses.next().unwrap_or_else(|| Scripted::json(200, "{}"));
            attempts += 1;
            let invalid = says_invalid_token(&response);
            if invalid && on {
                token += 1;
            }
            if !(invalid && retry && attempts == 1) {
                expected_answers.push(response);
                break;
            }
        }
        request += 1;
    }
    if answers.len() != expected_answers.len() {
        return Err(format!(
            "{} requests answered, expected {}",
            answers.len(),
            expected_answers.len()
        ));
    }
    if calls.len() != expected_calls.len() {
        return Err(format!(
            "{} inner calls, expected {}",
            calls.len(),
            expected_calls.len()
        ));
    }
    for (i, ((number, authorization), (expected_number, expected_token))) in
        calls.iter().zip(&expected_calls).enumerate()
    {
        if number != expected_number {
            return Err(format!(
                "inner call {i} was request {number:?}, expected {expected_number}"
            ));
        }
        let expected = format!("Bearer {expected_token}");
        if authorization.len() != 1 || authorization[0] != expected.as_str() {
            return Err(format!(
                "inner call {i} carried {authorization:?}, expected {expected:?}"
            ));
        }
    }
    // A request after the last invalidation would fetch once more; none is sent.
    let expected_fetches = expected_calls.last().map_or(0, |(_, t)| {
        t.trim_start_matches("at-Secret-").parse::<usize>().unwrap_or(0)
    });
    if fetches.load(Ordering::SeqCst) != expected_fetches {
        return Err(format!(
            "{} token fetches, expected {expected_fetches}",
            fetches.load(Ordering::SeqCst)
        ));
    }
    for (i, ((status, headers), expected)) in answers.iter().zip(&expected_answers).enumerate() {
        if *status != expected.status || *headers != expected.headers {
            return Err(format!(
                "request {i} got {status} {headers:?}, expected {expected:?}"
            ));
        }
    }
    let mut secrets = Secrets::default();
    for t in 1..=expected_fetches {
        secrets.add(&token_value(t));
    }
    check_logs(&logs, &secrets)
}

/// Sends numbered requests until the scripted responses run out; returns each answer.
async fn drive<S>(
    mut service: S,
    queue: &Mutex<std::collections::VecDeque<Scripted>>,
) -> Result<Vec<(StatusCode, HeaderMap)>, String>
where
    S: Service<Request<Body>, Response = Response<()>>,
    S::Error: std::fmt::Display,
{
    let mut answers = Vec::new();
    let mut number = 0;
    while !lock(queue).is_empty() {
        let request = Request::get("http://resource.example/")
            .header("x-request", number.to_string())
            .body(Body::default())
            .map_err(|e| e.to_string())?;
        let response = service
            .ready()
            .await
            .map_err(|e| format!("not ready: {e}"))?
            .call(request)
            .await
            .map_err(|e| format!("request {number} failed: {e}"))?;
        answers.push((response.status(), response.headers().clone()));
        number += 1;
    }
    Ok(answers)
}

/// The parser's properties on one response's headers.
fn check_parser(headers: &HeaderMap) -> Result<(), String> {
    let all = www_authenticate::parse_headers(headers);
    check_bounds(&all)?;
    let mut concatenated = Vec::new();
    let mut any_error = false;
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let line = www_authenticate::parse(value);
        check_bounds(&line)?;
        any_error |= line.error().is_some();
        let canonical = write_challenges(line.as_slice());
        let again = www_authenticate::parse(&canonical);
        if again.error().is_some() || again.as_slice() != line.as_slice() {
            return Err(format!(
                "{value:?} parsed to {line:?}, written back as {:?}, which parses to {again:?}",
                String::from_utf8_lossy(&canonical)
            ));
        }
        concatenated.extend(line.into_vec());
    }
    let capped = concatenated.len() > MAX_CHALLENGES;
    concatenated.truncate(MAX_CHALLENGES);
    if all.as_slice() != concatenated.as_slice() {
        return Err(format!(
            "all lines parse to {all:?}, each line to {concatenated:?}"
        ));
    }
    if all.error().is_some() != (any_error || capped) {
        return Err(format!(
            "all lines give the error {:?}, lines one by one {any_error}",
            all.error()
        ));
    }
    Ok(())
}

fn check_bounds(challenges: &Challenges) -> Result<(), String> {
    if challenges.len() > MAX_CHALLENGES || challenges.iter().any(|c| c.params().len() > MAX_PARAMS) {
        return Err(format!("over the caps: {challenges:?}"));
    }
    Ok(())
}

/// Challenges as a header value: every parameter value quoted, `"` and `\` escaped.
fn write_challenges(challenges: &[Challenge]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, challenge) in challenges.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(challenge.scheme().as_bytes());
        if let Some(token68) = challenge.token68() {
            out.push(b' ');
            out.extend_from_slice(token68.as_bytes());
        }
        for (j, (name, value)) in challenge.params().enumerate() {
            out.extend_from_slice(if j == 0 { b" " } else { b", " });
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"=\"");
            for byte in value.bytes() {
                if byte == b'"' || byte == b'\\' {
                    out.push(b'\\');
                }
                out.push(byte);
            }
            out.push(b'"');
        }
    }
    out
}
