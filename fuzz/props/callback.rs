//! Authorization callbacks: the redirect back from the authorization server, as a URL
//! (`Callback::from_url`) or a query string (`Callback::from_query`), checked against a
//! pending authorization (`PendingAuthorization::verify`); and pending authorizations read
//! back from JSON (`PendingAuthorization::from_json`).
//!
//! Input: an optional first line of options, then the callback text (a URL when it has a
//! `:` before any `?`, `#`, `&` or `=`, else a query). `$STATE` and `$ISSUER` in it become
//! the pending authorization's state and the issuer (form-encoded), so that inputs reach the
//! success path. Options: `@iss` (the server advertises RFC 9207 `iss`), `@noissuer` (the
//! client knows no issuer), `@pushed` (the request was pushed, PAR), `@json` (the text is a
//! pending authorization's JSON instead).
//!
//! Properties:
//! - nothing panics;
//! - a code comes back only when the callback (decoded independently with `url`) has exactly
//!   one `state`, equal to the pending state, exactly one non-empty `code`, no `error`, and an
//!   `iss` that equals the issuer when one is sent (and one is sent when `@iss`; none at all
//!   when the client knows no issuer);
//! - an `error` callback with the right state, or none for a pushed request (and the right
//!   issuer), is `CallbackError::Server` with that code;
//! - no control character in an error's `Display`; the code, the verifier and the nonce
//!   never in a `Display` or `Debug` (unless the input carries their text elsewhere: an `iss`
//!   equal to the nonce's text is shown as the `iss` found); the state never in the pending
//!   authorization's `Debug`;
//! - JSON: whatever `from_json` accepts writes back to JSON that reads back the same.

use tower_oauth2::{Callback, CallbackError, Error, ErrorCode, PendingAuthorization};

const STATE: &str = "st4te-Secret-0123456789abcdefghijklmnopqrstu";
const VERIFIER: &str = "verifier-Secret-0123456789abcdefghijklmnopqr";
const NONCE: &str = "nonce-Secret-0123456789";
const ISSUER: &str = "https://auth.example.com";

fn pending(iss_required: bool, issuer: bool, pushed: bool) -> Result<PendingAuthorization, String> {
    let mut json = serde_json::json!({
        "version": 1,
        "state": STATE,
        "redirect_uri": "http://127.0.0.1:9000/cb",
        "code_verifier": VERIFIER,
        "pkce_method": "S256",
        "nonce": NONCE,
        "iss_required": iss_required,
        "client_id": "fuzz-client",
        "authorization_endpoint": "https://auth.example.com/authorize",
        "openid": true,
        "pushed": pushed,
    });
    if issuer {
        json["issuer"] = ISSUER.into();
    }
    PendingAuthorization::from_json(&json.to_string()).map_err(|e| format!("the fixture does not load: {e}"))
}

/// The parameters an authorization response carries, decoded without the crate: the query,
/// or the fragment when the query has no `code`, `error` or `state` (as the crate reads URLs).
fn decode(text: &str, is_url: bool) -> Option<Vec<(String, String)>> {
    let parse = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .into_owned()
            .collect::<Vec<_>>()
    };
    if !is_url {
        return Some(parse(text));
    }
    let url = url::Url::parse(text).ok()?;
    let query = parse(url.query().unwrap_or(""));
    let is_response = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .any(|(k, _)| k == "code" || k == "error" || k == "state")
    };
    if is_response(&query) {
        return Some(query);
    }
    Some(url.fragment().map(parse).unwrap_or(query))
}

fn looks_like_url(text: &str) -> bool {
    match text.find([':', '?', '#', '&', '=']) {
        Some(i) => text.as_bytes()[i] == b':',
        None => false,
    }
}

/// Checks one input; `Err` describes the first property that failed.
pub fn check(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let (options, body) = match text.strip_prefix('@') {
        Some(_) => match text.split_once('\n') {
            Some((line, rest)) => (line.to_owned(), rest.to_owned()),
            None => (text.to_string(), String::new()),
        },
        None => (String::new(), text.to_string()),
    };
    let has = |name: &str| options.split_whitespace().any(|w| w == format!("@{name}"));

    if has("json") {
        return check_json(&body);
    }
    let iss_required = has("iss");
    let knows_issuer = !has("noissuer");
    let pushed = has("pushed");
    let pending = pending(iss_required, knows_issuer, pushed)?;
    let encoded_issuer: String = url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect();
    let body = body.replace("$STATE", STATE).replace("$ISSUER", &encoded_issuer);

    let is_url = looks_like_url(&body);
    let callback = if is_url {
        match Callback::from_url(&body) {
            Ok(callback) => callback,
            Err(Error::Callback(CallbackError::Malformed(_))) => {
                if url::Url::parse(&body).is_ok() {
                    return Err("from_url refused a URL that parses".into());
                }
                return Ok(());
            }
            Err(other) => return Err(format!("from_url failed with {other:?}")),
        }
    } else {
        Callback::from_query(&body)
    };
    let pairs = decode(&body, is_url).ok_or("the oracle cannot decode what the crate parsed")?;
    let values = |name: &str| {
        pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };

    let result = pending.verify(&callback);
    let states = values("state");
    let codes = values("code");
    let errors = values("error");
    let isses = values("iss");
    let state_ok = states.len() == 1 && states[0] == STATE;
    let iss_ok = match (isses.as_slice(), knows_issuer) {
        ([], _) => !iss_required,
        ([one], true) => *one == ISSUER,
        // A client that knows no issuer cannot compare an `iss`: it refuses it.
        ([_], false) => false,
        _ => false,
    };
    let repeated = ["code", "state", "iss", "error", "error_description", "error_uri"]
        .iter()
        .any(|name| values(name).len() > 1);

    match &result {
        Ok(code) => {
            if !(state_ok && iss_ok && !repeated && errors.is_empty() && codes.len() == 1) {
                return Err(format!(
                    "a code came back from states {states:?}, codes {}, errors {errors:?}, iss {isses:?}",
                    codes.len()
                ));
            }
            if code.secret().expose() != codes[0] || codes[0].is_empty() {
                return Err("the code is not the callback's".into());
            }
        }
        Err(err) => {
            let stateless_error = pushed && states.is_empty() && errors.len() == 1;
            if (state_ok || stateless_error) && iss_ok && !repeated {
                match (errors.as_slice(), err) {
                    ([code], Error::Callback(CallbackError::Server(server))) => {
                        let plain = code.len() < 64 && code.chars().all(|c| c.is_ascii_graphic());
                        if plain && server.code != ErrorCode::from(*code) {
                            return Err(format!("error `{code}` came back as {:?}", server.code));
                        }
                    }
                    ([_], other) => return Err(format!("an error response came back as {other:?}")),
                    ([], Error::Callback(CallbackError::MissingCode)) => {
                        if codes.len() == 1 && !codes[0].is_empty() {
                            return Err("a good callback was refused as having no code".into());
                        }
                    }
                    (_, other) => return Err(format!("a good callback was refused: {other:?}")),
                }
            }
            let display = err.to_string();
            if display.chars().any(char::is_control) {
                return Err(format!("a control character in {display:?}"));
            }
            // Unless the input carries their text itself (an `iss` of the nonce's text is shown
            // as the `iss` that was found).
            let in_input = |secret: &str| {
                pairs
                    .iter()
                    .any(|(k, v)| k.contains(secret) || v.contains(secret))
            };
            for secret in [VERIFIER, NONCE].into_iter().filter(|s| !in_input(s)) {
                if display.contains(secret) || format!("{err:?}").contains(secret) {
                    return Err("a secret in an error".into());
                }
            }
        }
    }

    // The code is never shown, unless the input itself puts its text somewhere else.
    if let [code] = codes.as_slice() {
        let elsewhere = pairs
            .iter()
            .any(|(k, v)| k.contains(code) || (k != "code" && v.contains(code)));
        if code.len() >= 8 && !elsewhere {
            let shown = format!(
                "{callback:?} {}",
                result
                    .as_ref()
                    .map(|c| format!("{c:?}"))
                    .unwrap_or_else(|e| format!("{e} {e:?}"))
            );
            if shown.contains(code) {
                return Err("the code is shown".into());
            }
        }
    }
    let debug = format!("{pending:?}");
    if [STATE, VERIFIER, NONCE].iter().any(|s| debug.contains(s)) {
        return Err("a secret in the pending authorization's Debug".into());
    }
    Ok(())
}

fn check_json(json: &str) -> Result<(), String> {
    match PendingAuthorization::from_json(json) {
        Ok(pending) => {
            let written = pending.to_json();
            let again = PendingAuthorization::from_json(&written)
                .map_err(|e| format!("what to_json wrote does not read back: {e}"))?;
            if again.to_json() != written {
                return Err("the JSON does not round-trip".into());
            }
            Ok(())
        }
        Err(Error::Callback(CallbackError::InvalidPending(reason))) => {
            if reason.chars().any(char::is_control) {
                return Err("a control character in the reason".into());
            }
            Ok(())
        }
        Err(other) => Err(format!("from_json failed with {other:?}")),
    }
}
