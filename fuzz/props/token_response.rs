//! Token responses: status, headers and body of up to four token endpoint answers, each
//! answering one fetch of a `ClientCredentials` source (or, with `@refresh`, of a
//! `RefreshToken` source, whose refresh token rotates between fetches).
//!
//! Options: `@refresh`, `@post` (client_secret_post instead of client_secret_basic),
//! `@max=N` (body size limit), `@lifetime=N` (default lifetime in seconds).
//!
//! Properties, for each fetch:
//! - a token comes only from a 2xx response, forms a valid `Authorization` header, has an
//!   access token of VSCHARs and a Bearer type, and expires no earlier than it was issued;
//! - an error is one of the kinds a server answer can cause, carries the response's status,
//!   and is `Error::OAuth2` with the server's code whenever the body (read as JSON) is an
//!   object with a string `error`; a body over the limit is `BodyTooLarge`, and only then;
//! - the refresh token sent is the last one issued (RFC 6749 §6 rotation), or the first;
//!   once a fetch returns `GrantLost`, later fetches return it too and send nothing;
//! - no secret (client secret, refresh tokens, access tokens) in any Display, Debug or log
//!   line, and no raw control character in an error's Display or a log line.

use std::time::Duration;

use tower_oauth2::clock::ManualClock;
use tower_oauth2::{
    ClientAuth, ClientCredentials, Error, RefreshToken, Token, TokenEndpoint, DEFAULT_MAX_BODY_SIZE,
};

use crate::common::{
    block_on, capture_logs, check_answer, check_error, check_logs, check_token, is_answer_error, Recorded,
    Script, Scripted, Secrets, Server, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TOKEN_URL,
};

/// Checks one input; `Err` describes the first property that failed.
pub fn check(data: &[u8]) -> Result<(), String> {
    let script = Script::parse(data, 4);
    let refresh = script.has("refresh");
    let max = script
        .value("max")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_MAX_BODY_SIZE);
    let auth = if script.has("post") {
        ClientAuth::client_secret_post(CLIENT_ID, CLIENT_SECRET)
    } else {
        ClientAuth::client_secret_basic(CLIENT_ID, CLIENT_SECRET)
    };
    let clock = ManualClock::new();
    let fallback = Scripted::json(500, r#"{"error":"server_error"}"#);
    let server = Server::new(script.responses.clone(), fallback, clock.clone());
    let mut builder = TokenEndpoint::builder(TOKEN_URL, auth)
        .http_client(server.http_client().with_max_body_size(max))
        .clock(clock);
    if let Some(seconds) = script.value("lifetime").and_then(|v| v.parse::<u64>().ok()) {
        builder = builder.default_lifetime(Duration::from_secs(seconds));
    }
    let endpoint = builder
        .build()
        .map_err(|e| format!("building the endpoint failed: {e}"))?;

    let fetches = script.responses.len();
    let ((results, source_debug), logs) = capture_logs(|| {
        block_on(async {
            let mut results: Vec<Result<Token, Error>> = Vec::new();
            if refresh {
                let source = RefreshToken::new(endpoint, REFRESH_TOKEN);
                for _ in 0..fetches {
                    results.push(source.fetch().await);
                }
                (results, format!("{source:?}"))
            } else {
                let source = ClientCredentials::new(endpoint);
                for _ in 0..fetches {
                    results.push(source.fetch().await);
                }
                (results, format!("{source:?}"))
            }
        })
    });

    // A refresh-token source that lost its grant sends nothing more: every later fetch
    // returns `GrantLost` at once.
    let sending = if refresh {
        results
            .iter()
            .position(|r| matches!(r, Err(Error::GrantLost(_))))
            .map_or(fetches, |lost| lost + 1)
    } else {
        fetches
    };
    let requests = server.requests();
    if requests.len() != sending {
        return Err(format!(
            "{fetches} fetches sent {} requests, expected {sending}",
            requests.len()
        ));
    }
    let mut secrets = Secrets::default();
    if refresh {
        secrets.add(REFRESH_TOKEN);
    }
    let mut expected_refresh_token = REFRESH_TOKEN.to_owned();
    // Refresh tokens the source rotated out (it redacts them from later answers).
    let mut held: Vec<String> = Vec::new();
    for ((result, response), request) in results.iter().zip(&script.responses).zip(&requests) {
        let basic = request.headers.get(http::header::AUTHORIZATION).is_some();
        let posted = request.field("client_secret") == Some(CLIENT_SECRET);
        if basic == script.has("post") || posted != script.has("post") {
            return Err(format!("the client authenticated the wrong way: {request:?}"));
        }
        if refresh {
            let sent = request.field("refresh_token");
            if sent != Some(expected_refresh_token.as_str()) {
                return Err(format!(
                    "sent the refresh token {sent:?}, expected {expected_refresh_token:?}"
                ));
            }
        }
        match result {
            Ok(token) => {
                if !response.status.is_success() {
                    return Err(format!("a token came from an HTTP {} response", response.status));
                }
                // A refresh-token source holds the refresh token and sends it later: from
                // now on it is the client's secret. A client-credentials source never uses it.
                if refresh {
                    secrets.add_token(token);
                }
                check_token(token, &secrets)?;
                if let Some(next) = token.refresh_token() {
                    if refresh && next.expose() != expected_refresh_token {
                        held.push(std::mem::replace(
                            &mut expected_refresh_token,
                            next.expose().to_owned(),
                        ));
                    }
                    expected_refresh_token = next.expose().to_owned();
                }
            }
            Err(err) => {
                check_error(err, is_answer_error, &secrets)?;
                check_typed(err, response, request, max, &held)?;
            }
        }
    }
    for result in &results[sending..] {
        match result {
            Err(err @ Error::GrantLost(_)) => check_error(err, is_answer_error, &secrets)?,
            other => return Err(format!("a fetch after the grant was lost gave {other:?}")),
        }
    }
    secrets.check("the source's Debug", &source_debug, &[])?;
    check_logs(&logs, &secrets)
}

/// The error says what the server answered, and a body over the limit is `BodyTooLarge`.
fn check_typed(
    err: &Error,
    response: &Scripted,
    request: &Recorded,
    max: usize,
    held: &[String],
) -> Result<(), String> {
    let too_large = response.body.len() > max;
    if too_large != matches!(err, Error::BodyTooLarge { limit } if *limit == max) {
        return Err(format!(
            "a {}-byte body with a {max}-byte limit gave {err:?}",
            response.body.len()
        ));
    }
    if too_large {
        return Ok(());
    }
    check_answer(err, response, request, held)
}
