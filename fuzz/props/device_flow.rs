//! The device flow (RFC 8628): the first response answers the device authorization request,
//! the next ones (up to 63) answer the polls; once they run out the server answers
//! `400 {"error":"expired_token"}`, so every run ends. Time is a `ManualClock`: polling waits
//! move it instead of sleeping.
//!
//! Options: `@post` (client_secret_post instead of client_secret_basic).
//!
//! Properties:
//! - the device authorization request comes first; the user is shown the code at most once,
//!   and before any poll; every poll is a device_code grant for the same device code;
//! - polls are at least 1 s and at least the server's `interval` apart, the interval (the
//!   gap between polls, leaving out a wait a `Retry-After` lengthened) never shrinks, and a
//!   `slow_down` widens it by at least 5 s (RFC 8628 §3.5); no poll is sent once the device
//!   code has expired;
//! - `authorization_pending` and `slow_down` never end the flow; a token comes only from a 2xx
//!   response and passes the token checks; `DeviceCodeExpired` only once the clock says so;
//!   other errors are of a kind a server answer can cause and carry its status;
//! - no secret (client secret, device code, tokens) in any Display, Debug or log line, and no
//!   raw control character in an error's Display or a log line.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{ClientAuth, DeviceAuthorization, DeviceCode, Error, TokenEndpoint};

use crate::common::{
    block_on, capture_logs, check_answer, check_error, check_logs, check_token, is_answer_error, lock,
    Script, Scripted, Secrets, Server, CLIENT_ID, CLIENT_SECRET, DEVICE_URL, TOKEN_URL,
};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Checks one input; `Err` describes the first property that failed.
pub fn check(data: &[u8]) -> Result<(), String> {
    let script = Script::parse(data, 64);
    let auth = if script.has("post") {
        ClientAuth::client_secret_post(CLIENT_ID, CLIENT_SECRET)
    } else {
        ClientAuth::client_secret_basic(CLIENT_ID, CLIENT_SECRET)
    };
    let clock = ManualClock::new();
    let fallback = Scripted::json(400, r#"{"error":"expired_token"}"#);
    let server = Server::new(script.responses.clone(), fallback.clone(), clock.clone());
    let endpoint = TokenEndpoint::builder(TOKEN_URL, auth)
        .http_client(server.http_client())
        .clock(clock.clone())
        .build()
        .map_err(|e| format!("building the endpoint failed: {e}"))?;
    let shown: Arc<Mutex<Vec<(DeviceAuthorization, SystemTime, usize)>>> = Arc::default();
    let source = {
        let shown = shown.clone();
        let clock = clock.clone();
        let server = server.clone();
        DeviceCode::new(endpoint, DEVICE_URL)
            .map_err(|e| format!("building the source failed: {e}"))?
            .on_user_code(move |auth| {
                lock(&shown).push((auth.clone(), clock.now(), server.requests().len()));
            })
    };
    let (result, logs) = capture_logs(|| block_on(source.fetch()));
    let source_debug = format!("{source:?}");
    let requests = server.requests();
    let shown = lock(&shown).clone();
    let answers: Vec<&Scripted> = script
        .responses
        .iter()
        .chain(std::iter::repeat(&fallback))
        .take(requests.len())
        .collect();

    let mut secrets = Secrets::default();
    let Some(first) = requests.first() else {
        return Err("no device authorization request was sent".to_owned());
    };
    if first.path != "/device" {
        return Err(format!("the first request went to {}", first.path));
    }
    let polls = &requests[1..];
    if shown.len() > 1 {
        return Err(format!("the user code was shown {} times", shown.len()));
    }
    let Some((auth, shown_at, requests_before)) = shown.first() else {
        if !polls.is_empty() {
            return Err("polled without showing the user code".to_owned());
        }
        let err = match &result {
            Ok(_) => return Err("a token without a device authorization".to_owned()),
            Err(err) => err,
        };
        check_error(err, is_answer_error, &secrets)?;
        return check_answer(err, answers[0], first, &[]);
    };
    if *requests_before != 1 {
        return Err(format!(
            "the user code was shown after {requests_before} requests"
        ));
    }
    let mut device_code = None;
    for poll in polls {
        if poll.path != "/token" || poll.field("grant_type") != Some(DEVICE_CODE_GRANT) {
            return Err(format!("a poll that is not a device_code grant: {poll:?}"));
        }
        let code = poll.field("device_code").unwrap_or_default();
        if *device_code.get_or_insert(code) != code {
            return Err("the polls sent different device codes".to_owned());
        }
        secrets.add(code);
    }
    let auth_debug = format!("{auth:?}");
    let auth_shown = [
        auth.user_code(),
        auth.verification_uri(),
        auth.verification_uri_complete().unwrap_or_default(),
    ];
    secrets.check("the DeviceAuthorization's Debug", &auth_debug, &auth_shown)?;

    // Timing: gaps between the device authorization answer and each poll.
    let floor = auth.interval().max(Duration::from_secs(1));
    let mut previous_at = *shown_at;
    // The last gap that no `Retry-After` lengthened: the polling interval at that point.
    let mut interval_gap = Duration::ZERO;
    for (i, poll) in polls.iter().enumerate() {
        let gap = poll.at.duration_since(previous_at).unwrap_or_default();
        if gap < floor {
            return Err(format!("poll {i} came {gap:?} after the last, under {floor:?}"));
        }
        // A `Retry-After` (on the answer to the previous poll) lengthens one wait only: the
        // interval itself never shrinks, and a `slow_down` widens the interval by 5 s, not
        // the wait a `Retry-After` lengthened.
        let lengthened = i > 0 && answers[i].headers.contains_key("retry-after");
        if gap < interval_gap {
            return Err(format!(
                "poll {i} came {gap:?} after the last: the interval shrank from {interval_gap:?}"
            ));
        }
        let slowed = i > 0 && answers[i].json_string("error").as_deref() == Some("slow_down");
        if slowed && gap < interval_gap + Duration::from_secs(5) {
            return Err(format!(
                "poll {i} came {gap:?} after a slow_down, the interval was {interval_gap:?}"
            ));
        }
        if poll.at >= auth.expires_at() {
            return Err(format!("poll {i} was sent after the device code expired"));
        }
        previous_at = poll.at;
        if !lengthened {
            interval_gap = gap;
        }
    }

    let last = answers.last().copied().unwrap_or(&fallback);
    match &result {
        Ok(token) => {
            if polls.is_empty() || !last.status.is_success() {
                return Err(format!("a token came from an HTTP {} response", last.status));
            }
            secrets.add_token(token);
            check_token(token, &secrets)?;
        }
        Err(Error::DeviceCodeExpired) => {
            if clock.now() < auth.expires_at() {
                return Err("DeviceCodeExpired before the device code expired".to_owned());
            }
        }
        Err(err) => {
            check_error(err, is_answer_error, &secrets)?;
            if let Some(code @ ("authorization_pending" | "slow_down")) = err.code().map(|c| c.as_str()) {
                return Err(format!("the flow ended on `{code}`"));
            }
            if !polls.is_empty() {
                check_answer(err, last, &requests[requests.len() - 1], &[])?;
            }
        }
    }
    secrets.check("the source's Debug", &source_debug, &[])?;
    // The token came from the last answer; text of the earlier ones was logged before it.
    let earlier: Vec<&[u8]> = answers[..answers.len().saturating_sub(1)]
        .iter()
        .map(|answer| &answer.body[..])
        .collect();
    check_logs(&logs, &secrets.without_disclosed(&earlier))
}
