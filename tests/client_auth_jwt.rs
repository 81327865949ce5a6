//! The `jwt` feature in process: the assertions the crate sends (decoded and verified here
//! with jsonwebtoken: header `alg`/`kid`, claims `iss`/`sub`/`aud`/`exp`/`iat`/`jti`, the
//! assertion type), keys from PEM (PKCS#8, PKCS#1, SEC1) and JWK, and the error paths: bad
//! keys and service-account files give typed errors without key text, server errors (4xx with
//! an OAuth body, 5xx, non-JSON, hostile) are typed, and an echoed assertion is redacted.
#![cfg(feature = "jwt")]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tower_oauth2::clock::{Clock, ManualClock};
use tower_oauth2::{
    AssertionAudience, ClientAuth, ClientCredentials, Error, ErrorCode, HttpClient, JwsAlgorithm, JwtBearer,
    JwtError, JwtSigningKey, Secret, ServiceAccountKey, TokenEndpoint,
};

const TOKEN_URL: &str = "https://auth.example.com/oauth2/token";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const OK_BODY: &str = r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;

// Public halves of the interop keys (tests/interop/server.mjs).
const EC_X: &str = "UR7fyxlKu8g1hwQ2zvdt8RDUjgxcpBsKwMDv_cBKmVk";
const EC_Y: &str = "90q2tPIVWBBSVlqkp5TYa4dSheYA5rByTNqMihfm-kg";
const RSA_N: &str = "k_lWwgtcIJnivdN_18bAYh6TXIRw1qzNXjuc62bATQzfkpBxgFJPD9N6EYk3JI6EbhoAj5GN5TkRN-UtMo0DYnGzdytjLOziCQxhv_PKJaGHd0Ksy-uqbgMsFtCMw5jTguTno1z_bXAYhMelpcDJDzqbqpEr5m1W-QnMvh-_APq4XtSvyjzEXYAtCzka2lHvsRLqqp6ECFAG3fhT_iQuoSlTJnB8zLzMDkocqekrhtvq9Lo4FntOcnfAQHLGuC46vq_U0Yrs_p4_arjeBeANDyJScwOFo7cRUM6KmrsPpOnK9NvksWPL55IVkHcm2ZSUwJ3ONgPJqyI_hrJsbYfzNw";
const ED_X: &str = "tRc9B_aZlLPmpbXvCe39uub07a8X5etIKlLxggF3gaY";

// The same interop keys as private JWKs (exported with node's crypto).
const EC_JWK: &str = r#"{"kty":"EC","x":"UR7fyxlKu8g1hwQ2zvdt8RDUjgxcpBsKwMDv_cBKmVk","y":"90q2tPIVWBBSVlqkp5TYa4dSheYA5rByTNqMihfm-kg","crv":"P-256","d":"Gk_LA7nWcDjcfzbsgnMPUlPb7hl-EfFHoS_RCrjTcl0"}"#;
const RSA_JWK: &str = r#"{"kty":"RSA","n":"k_lWwgtcIJnivdN_18bAYh6TXIRw1qzNXjuc62bATQzfkpBxgFJPD9N6EYk3JI6EbhoAj5GN5TkRN-UtMo0DYnGzdytjLOziCQxhv_PKJaGHd0Ksy-uqbgMsFtCMw5jTguTno1z_bXAYhMelpcDJDzqbqpEr5m1W-QnMvh-_APq4XtSvyjzEXYAtCzka2lHvsRLqqp6ECFAG3fhT_iQuoSlTJnB8zLzMDkocqekrhtvq9Lo4FntOcnfAQHLGuC46vq_U0Yrs_p4_arjeBeANDyJScwOFo7cRUM6KmrsPpOnK9NvksWPL55IVkHcm2ZSUwJ3ONgPJqyI_hrJsbYfzNw","e":"AQAB","d":"jI3KWtwaJjKwV_Ri-r1O_-RgalYNgzGgi7cUK9rtzkJBcHYYrvV_zl3nFRZryng_p6q13ak5nwHAg9dW7IKv3v0hUDtmI3DemLmqH9TxrneVX911ROgVJWozTCMhkf5tlLzZSdM2zDzYYpyWO1tjn5OL8_hGOsShAuzMDcvEd1LoDpCbXqOHLmpS2u13it0ofXDjFfTM69fSrWZDa2j7CnYAyXxWP63U_oBw4qEzJkhXxVS9XLDOWJp-abU8MJeSpfOaw9uL_g3J6X6pZ5mlPp6OhjN1fT5vu0y5JEYckHMhQO0SPk75JGV6h8khQVNSNreKkI1tbYid8I7K5Djx","p":"yw1f0XqUx_P3c16I0Q5F_1h10laYjaNdPH0LqPtZvj_eSuLTBcw4x0N7j64cVt2z-ewPnL4LF6L_jnaJsxLRIPJm5MPkwRk0Xw9fQ0oWbnMFZcSKUjj5cC1IBUwZHDEYX6jaKvuT7OW_EG4R56gJduOUhXnl3bpspYGxouPkxAc","q":"uo8_4ba-unPFQTKnLQ1_Lp0dfNcVWPUz-yLAg4v-1PjHY5gzLfAuTtSh4EWYdAmt09nPcWHPqgz6B6kP36QkU0Wt6dwIc_5mEjlc3El2C-k2k2U1qlsWJA9GLGjHlZMpTAaj3J_Ujlij3m8lNazwzfyUVT9Dp4fS21HY42JRa1E","dp":"A-HUlCe40n3anE0RZpXURsaFMilPr12ROcfWQjvUAmwsLthZWoIGD-E9aojUp-CDQWL_BWsowSHvquSfS1ovv2aDCxqns_1sX-jmVF4FQcVXNBPm5R2Lv1ZOSzOiQ0S5B5Mt4KaAtIXL-l9wXjJ7Q9ekDk0_VNbsntl08P1UcV8","dq":"dXL3ybcN7j4yQfCMtN1ZY1RAmzahVubP-dwQDQEWxqd0h6vrFJGv5asR2iqWZv8s80GdyojEfw86XZY-yxIAWHh2m9MNc1EGm5SHdJu--JKy7Cp8lapQjxUanZy9gdoq1pUblir9WzxMth2M9HTTCStpix2QDymAQtkNTWG5VnE","qi":"HVtrq6QtzPvichDUdf_4So6Fk0xpfwKmLOwNVhJE7lWXhaaRC5Odp4RZ44mMriIjaxcXG9PLz23KuJxPvQREjP6Q45Sp7Yklta7juYVuvuXqktk4Q5mHdjn3mOUcGFXE2PWQYezuZpQKCmHlQiyXDc63rmuYgf6zkm2J6Vt2xFQ"}"#;
const ED_JWK: &str = r#"{"crv":"Ed25519","d":"QPum9L9WkGFpg9BTy7jMjMs1g6bxJPBVNpEVWS_gR38","x":"tRc9B_aZlLPmpbXvCe39uub07a8X5etIKlLxggF3gaY","kty":"OKP"}"#;

#[path = "support/log_capture.rs"]
mod log_capture;

#[path = "support/keys.rs"]
mod keys;
#[path = "support/stub.rs"]
mod stub;

use keys::{jwt_claims, key_file};
use stub::{json, Seen, Stub};

/// A stand-in authorization server answering JSON `respond(request)`; the [`Stub`] has
/// the requests it got.
fn server(respond: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> (HttpClient, Stub) {
    let stub = Stub::new(move |seen| {
        let (status, body) = respond(seen);
        json(status, &body)
    });
    (stub.http.clone(), stub)
}

fn endpoint(auth: ClientAuth, http: HttpClient, clock: &ManualClock) -> TokenEndpoint {
    TokenEndpoint::builder(TOKEN_URL, auth)
        .http_client(http)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// Verifies `jwt` with `key` (signature, `aud`, `iss`, `sub`, `exp`) and returns its header
/// and claims.
fn verify(
    jwt: &str,
    key: &DecodingKey,
    alg: Algorithm,
    iss: &str,
    sub: &str,
    aud: &str,
) -> (jsonwebtoken::Header, Value) {
    let mut validation = Validation::new(alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[iss]);
    validation.sub = Some(sub.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let data = jsonwebtoken::decode::<Value>(jwt, key, &validation).expect("a valid JWT");
    (data.header, data.claims)
}

/// [`verify`] with the interop EC key (ES256), for [`TOKEN_URL`].
fn verify_ec(jwt: &str, iss: &str, sub: &str) -> (jsonwebtoken::Header, Value) {
    verify(
        jwt,
        &DecodingKey::from_ec_components(EC_X, EC_Y).unwrap(),
        Algorithm::ES256,
        iss,
        sub,
        TOKEN_URL,
    )
}

/// Sends one client_credentials request with `auth` and returns the client assertion sent,
/// after checking the form's other client-authentication fields.
async fn client_assertion(auth: ClientAuth, clock: &ManualClock) -> String {
    let (http, seen) = server(|_| (200, OK_BODY.to_owned()));
    let client_id = auth.client_id().to_owned();
    ClientCredentials::new(endpoint(auth, http, clock))
        .fetch()
        .await
        .unwrap();
    let seen = seen.seen().remove(0);
    assert_eq!(seen.authorization(), None);
    assert_eq!(seen.field("client_id"), Some(client_id.as_str()));
    assert_eq!(seen.field("client_assertion_type"), Some(ASSERTION_TYPE));
    assert_eq!(seen.field("client_secret"), None);
    assert_eq!(seen.field("grant_type"), Some("client_credentials"));
    seen.field("client_assertion")
        .expect("a client assertion")
        .to_owned()
}

fn check_times_and_jti(claims: &Value, clock: &ManualClock, lifetime: u64) {
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(iat, unix(clock.now()), "iat is the endpoint clock's");
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + lifetime);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 22, "128 bits, base64url: {jti}");
}

#[tokio::test]
async fn private_key_jwt_assertions_verify_for_every_algorithm() {
    let clock = ManualClock::new();
    let rsa = key_file("pkjwt-client-rsa.key.pem");
    let cases = [
        (
            JwtSigningKey::from_pem(&key_file("pkjwt-client.key.pem"), JwsAlgorithm::ES256).unwrap(),
            Algorithm::ES256,
            DecodingKey::from_ec_components(EC_X, EC_Y).unwrap(),
        ),
        (
            JwtSigningKey::from_pem(&rsa, JwsAlgorithm::RS256).unwrap(),
            Algorithm::RS256,
            DecodingKey::from_rsa_components(RSA_N, "AQAB").unwrap(),
        ),
        (
            JwtSigningKey::from_pem(&rsa, JwsAlgorithm::PS256).unwrap(),
            Algorithm::PS256,
            DecodingKey::from_rsa_components(RSA_N, "AQAB").unwrap(),
        ),
        (
            JwtSigningKey::from_pem(&key_file("pkjwt-client-ed25519.key.pem"), JwsAlgorithm::EdDSA).unwrap(),
            Algorithm::EdDSA,
            DecodingKey::from_ed_components(ED_X).unwrap(),
        ),
    ];
    let mut jtis = HashSet::new();
    for (key, alg, public) in cases {
        let auth = ClientAuth::private_key_jwt("my-service", key.with_kid("k-1")).unwrap();
        assert_eq!(auth.signing_algorithm(), Some(key_alg_name(alg)));
        let jwt = client_assertion(auth, &clock).await;
        let (header, claims) = verify(&jwt, &public, alg, "my-service", "my-service", TOKEN_URL);
        assert_eq!(header.alg, alg);
        assert_eq!(header.kid.as_deref(), Some("k-1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        check_times_and_jti(&claims, &clock, 60);
        assert!(jtis.insert(claims["jti"].as_str().unwrap().to_owned()));
    }
}

fn key_alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        Algorithm::EdDSA => "EdDSA",
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn keys_from_pkcs1_sec1_and_jwk_sign_verifiable_assertions() {
    let clock = ManualClock::new();
    let ec = DecodingKey::from_ec_components(EC_X, EC_Y).unwrap();
    let rsa = DecodingKey::from_rsa_components(RSA_N, "AQAB").unwrap();
    let ed = DecodingKey::from_ed_components(ED_X).unwrap();
    let cases = [
        (
            JwtSigningKey::from_pem(&key_file("pkjwt-client.sec1.pem"), JwsAlgorithm::ES256).unwrap(),
            &ec,
        ),
        (
            JwtSigningKey::from_pem(&key_file("pkjwt-client-rsa.pkcs1.pem"), JwsAlgorithm::RS256).unwrap(),
            &rsa,
        ),
        (JwtSigningKey::from_jwk(EC_JWK).unwrap(), &ec),
        (
            JwtSigningKey::from_jwk_with_algorithm(RSA_JWK, JwsAlgorithm::PS256).unwrap(),
            &rsa,
        ),
        (JwtSigningKey::from_jwk(ED_JWK).unwrap(), &ed),
    ];
    for (key, public) in cases {
        let alg = match key.algorithm() {
            JwsAlgorithm::ES256 => Algorithm::ES256,
            JwsAlgorithm::RS256 => Algorithm::RS256,
            JwsAlgorithm::PS256 => Algorithm::PS256,
            JwsAlgorithm::EdDSA => Algorithm::EdDSA,
            other => panic!("{other}"),
        };
        let jwt = client_assertion(ClientAuth::private_key_jwt("c", key).unwrap(), &clock).await;
        verify(&jwt, public, alg, "c", "c", TOKEN_URL);
    }
    // A JWK's alg and kid are the key's.
    let mut jwk: Value = serde_json::from_str(RSA_JWK).unwrap();
    jwk["alg"] = "RS256".into();
    jwk["kid"] = "rsa-from-jwk".into();
    let key = JwtSigningKey::from_jwk(&jwk.to_string()).unwrap();
    assert_eq!(
        (key.algorithm(), key.kid()),
        (JwsAlgorithm::RS256, Some("rsa-from-jwk"))
    );
    let jwt = client_assertion(ClientAuth::private_key_jwt("c", key).unwrap(), &clock).await;
    let (header, _) = verify(&jwt, &rsa, Algorithm::RS256, "c", "c", TOKEN_URL);
    assert_eq!(header.kid.as_deref(), Some("rsa-from-jwk"));
}

#[tokio::test]
async fn client_secret_jwt_signs_with_the_secret_and_options_apply() {
    let clock = ManualClock::new();
    let secret = "a-long-shared-secret-0123456789abcdef0123456789abcdef0123456789";
    let jwt = client_assertion(ClientAuth::client_secret_jwt("my-app", secret), &clock).await;
    let (header, claims) = verify(
        &jwt,
        &DecodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
        "my-app",
        "my-app",
        TOKEN_URL,
    );
    assert_eq!(header.kid, None);
    check_times_and_jti(&claims, &clock, 60);

    let auth = ClientAuth::client_secret_jwt_with("my-app", secret, JwsAlgorithm::HS512)
        .unwrap()
        .assertion_audience(AssertionAudience::Issuer("https://auth.example.com".into()))
        .assertion_lifetime(Duration::from_secs(30));
    assert_eq!(auth.method(), "client_secret_jwt");
    clock.advance(Duration::from_secs(1000));
    let jwt = client_assertion(auth, &clock).await;
    let (_, claims) = verify(
        &jwt,
        &DecodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS512,
        "my-app",
        "my-app",
        "https://auth.example.com",
    );
    check_times_and_jti(&claims, &clock, 30);

    // The options leave other methods alone.
    let basic = ClientAuth::client_secret_basic("a", "b").assertion_lifetime(Duration::from_secs(5));
    assert_eq!(
        (basic.method(), basic.signing_algorithm()),
        ("client_secret_basic", None)
    );
}

#[tokio::test]
async fn every_request_gets_a_new_assertion() {
    let clock = ManualClock::new();
    let (http, seen) = server(|_| (200, OK_BODY.to_owned()));
    let key = JwtSigningKey::from_pem(&key_file("pkjwt-client.key.pem"), JwsAlgorithm::ES256).unwrap();
    let source = ClientCredentials::new(endpoint(
        ClientAuth::private_key_jwt("c", key).unwrap(),
        http,
        &clock,
    ));
    for _ in 0..5 {
        source.fetch().await.unwrap();
    }
    let jtis: HashSet<String> = seen
        .seen()
        .iter()
        .map(|s| {
            let jwt = s.field("client_assertion").unwrap();
            let (_, claims) = verify_ec(jwt, "c", "c");
            claims["jti"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(jtis.len(), 5);
}

#[tokio::test]
async fn jwt_bearer_sends_a_fresh_signed_assertion_with_its_claims_and_params() {
    let clock = ManualClock::new();
    let (http, seen) = server(|_| (200, OK_BODY.to_owned()));
    let key = JwtSigningKey::from_pem(&key_file("pkjwt-client.key.pem"), JwsAlgorithm::ES256)
        .unwrap()
        .with_kid("iss-key");
    let source = JwtBearer::new(
        endpoint(ClientAuth::none("app"), http, &clock),
        key,
        "https://issuer.example",
    )
    .subject("user-1")
    .claim("scope", "a b")
    .claim("iss", "cannot-override")
    .assertion_lifetime(Duration::from_secs(120))
    .scope("read")
    .param("tenant", "acme");
    source.fetch().await.unwrap();
    clock.advance(Duration::from_secs(7));
    source.fetch().await.unwrap();
    let seen = seen.seen();
    assert_eq!(seen.len(), 2);
    let mut jtis = HashSet::new();
    for request in &seen {
        assert_eq!(request.field("grant_type"), Some(JWT_BEARER));
        assert_eq!(request.field("scope"), Some("read"));
        assert_eq!(request.field("tenant"), Some("acme"));
        assert_eq!(request.field("client_id"), Some("app"));
        let jwt = request.field("assertion").unwrap();
        let (header, claims) = verify_ec(jwt, "https://issuer.example", "user-1");
        assert_eq!(header.kid.as_deref(), Some("iss-key"));
        assert_eq!(claims["scope"], "a b");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            120
        );
        jtis.insert(claims["jti"].as_str().unwrap().to_owned());
    }
    assert_eq!(jtis.len(), 2, "no jti is reused");
    let iat = |i: usize| {
        jwt_claims(seen[i].field("assertion").unwrap())["iat"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(iat(1) - iat(0), 7, "each assertion is signed at fetch time");
}

#[tokio::test]
async fn a_failing_assertion_supplier_fails_the_fetch_without_a_request() {
    let (http, seen) = server(|_| (200, OK_BODY.to_owned()));
    let source = JwtBearer::from_assertion_fn(
        endpoint(ClientAuth::none("app"), http, &ManualClock::new()),
        || async { Err(Error::Config("no assertion today".into())) },
    );
    assert!(matches!(source.fetch().await, Err(Error::Config(_))));
    assert!(seen.seen().is_empty());
}

#[tokio::test]
async fn an_async_assertion_supplier_is_awaited_once_per_fetch() {
    let (http, seen) = server(|_| (200, OK_BODY.to_owned()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let source = JwtBearer::from_assertion_fn(
        endpoint(ClientAuth::none("app"), http, &ManualClock::new()),
        move || {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                // The supplier yields before it answers: an async source of assertions.
                tokio::task::yield_now().await;
                Ok(Secret::new(format!("eyJ.supplied.{n}")))
            }
        },
    );
    source.fetch().await.unwrap();
    source.fetch().await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let seen = seen.seen();
    assert_eq!(seen[0].field("assertion"), Some("eyJ.supplied.0"));
    assert_eq!(seen[1].field("assertion"), Some("eyJ.supplied.1"));
}

/// A server that echoes the assertion (and the client secret) it got in its error text.
fn echoing_server(status: u16) -> (HttpClient, Stub) {
    server(move |seen| {
        let echoed: Vec<String> = seen.form.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let body = serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("bad request: {}", echoed.join(" ")),
        });
        (status, body.to_string())
    })
}

#[tokio::test]
async fn a_client_assertion_echoed_by_the_server_is_redacted() {
    let secret = "a-long-shared-secret-0123456789abcdef0123456789abcdef0123456789";
    for auth in [
        ClientAuth::client_secret_jwt("my-app", secret),
        ClientAuth::private_key_jwt(
            "my-app",
            JwtSigningKey::from_pem(&key_file("pkjwt-client.key.pem"), JwsAlgorithm::ES256).unwrap(),
        )
        .unwrap(),
    ] {
        let (http, seen) = echoing_server(401);
        let err = ClientCredentials::new(endpoint(auth, http, &ManualClock::new()))
            .fetch()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&ErrorCode::InvalidClient));
        let assertion = seen.seen()[0].field("client_assertion").unwrap().to_owned();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&assertion), "{shown}");
        assert!(!shown.contains(secret));
        assert!(shown.contains("client_assertion=[redacted]"), "{shown}");
    }
}

#[tokio::test]
async fn jwt_bearer_server_errors_are_typed_and_the_assertion_is_redacted() {
    let key = JwtSigningKey::from_pem(&key_file("pkjwt-client.key.pem"), JwsAlgorithm::ES256).unwrap();
    let source = |http| {
        JwtBearer::new(
            endpoint(ClientAuth::none("app"), http, &ManualClock::new()),
            key.clone(),
            "app",
        )
    };

    // 400 with an OAuth error body echoing the assertion.
    let (http, seen) = server(|seen| {
        let body = serde_json::json!({"error": "invalid_grant", "error_description": format!("bad assertion {}", seen.field("assertion").unwrap())});
        (400, body.to_string())
    });
    let err = source(http).fetch().await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    let assertion = seen.seen()[0].field("assertion").unwrap().to_owned();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(&assertion) && shown.contains("[redacted]"),
        "{shown}"
    );

    // 503 without an OAuth body: transient.
    let (http, _) = server(|_| (503, "<html>down</html>".to_owned()));
    let err = source(http).fetch().await.unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status, .. } if status == StatusCode::SERVICE_UNAVAILABLE),
        "{err:?}"
    );
    assert!(err.is_transient());

    // 200 that is not JSON, and a truncated JSON body.
    for body in ["not json at all", r#"{"access_token":"abc","token_ty"#] {
        let (http, _) = server(move |_| (200, body.to_owned()));
        let err = source(http).fetch().await.unwrap_err();
        assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    }

    // A hostile error body: control characters and a huge description are made safe.
    let (http, _) = server(|_| {
        let body = serde_json::json!({"error": "invalid_grant", "error_description": format!("\u{1b}[31mred\u{7}{}", "x".repeat(100_000))});
        (400, body.to_string())
    });
    let err = source(http).fetch().await.unwrap_err();
    let shown = err.to_string();
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:.200}"
    );
    assert!(shown.len() < 10_000);
}

fn assert_no_key_text(err: &Error, key_text: &[impl AsRef<str>]) {
    let shown = format!("{err} {err:?}");
    for text in key_text {
        assert!(!shown.contains(text.as_ref()), "key material in {shown}");
    }
}

#[test]
fn bad_pem_keys_give_typed_errors_without_key_text() {
    let ec = key_file("pkjwt-client.key.pem");
    let body_line = ec.lines().nth(1).unwrap();
    let private = keys::ec_private_spellings(&ec);
    keys::assert_spellings_catch_the_key(&ec, &private);
    // Not PEM at all, a key cut short, a public key, an encrypted key.
    let garbage = format!("{body_line}{body_line}");
    let cut = ec
        .lines()
        .take(2)
        .chain(["-----END PRIVATE KEY-----"])
        .collect::<Vec<_>>()
        .join("\n");
    let public = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEUR7fyxlKu8g1hwQ2zvdt8RDUjgxcpBsKwMDv/cBKmVn3SrW08hVYEFJWWqSnlNhrh1KF5gDmsHJM2oyKF+b6SA==\n-----END PUBLIC KEY-----\n";
    let encrypted =
        format!("-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body_line}\n-----END ENCRYPTED PRIVATE KEY-----\n");
    for pem in [garbage.as_str(), cut.as_str(), public, encrypted.as_str()] {
        let err = JwtSigningKey::from_pem(pem, JwsAlgorithm::ES256).unwrap_err();
        assert!(matches!(err, Error::Jwt(JwtError::InvalidKey(_))), "{err:?}");
        assert!(!err.is_transient());
        assert_no_key_text(&err, &private);
    }
    // The right key for the wrong algorithm.
    for (alg, expected) in [
        (JwsAlgorithm::RS256, "an EC P-256 key"),
        (JwsAlgorithm::ES384, "an EC P-256 key"),
        (JwsAlgorithm::HS256, "an EC P-256 key"),
    ] {
        let err = JwtSigningKey::from_pem(&ec, alg).unwrap_err();
        assert!(
            matches!(err, Error::Jwt(JwtError::AlgorithmMismatch { algorithm, key }) if algorithm == alg && key == expected),
            "{err:?}"
        );
    }
    let err =
        JwtSigningKey::from_pem(&key_file("pkjwt-client-rsa.key.pem"), JwsAlgorithm::EdDSA).unwrap_err();
    assert_eq!(err.to_string(), "EdDSA cannot sign with an RSA key");
}

/// `value` with `change` made, as JSON text.
fn changed(value: &Value, change: &dyn Fn(&mut Value)) -> String {
    let mut value = value.clone();
    change(&mut value);
    value.to_string()
}

#[test]
fn bad_jwks_give_typed_errors_without_key_text() {
    let ec: Value = serde_json::from_str(EC_JWK).unwrap();
    let d = ec["d"].as_str().unwrap().to_owned();
    let with = |change: &dyn Fn(&mut Value)| changed(&ec, change);
    let cases = [
        "not json".to_owned(),
        format!("{{\"kty\":\"EC\",\"d\":\"{d}\""), // cut short
        "[1,2]".to_owned(),
        with(&|j| {
            j.as_object_mut().unwrap().remove("d");
        }),
        with(&|j| j["d"] = "%%%not-base64%%%".into()),
        with(&|j| j["d"] = "AAAA".into()),
        with(&|j| j["crv"] = "P-521".into()),
        with(&|j| j["kty"] = "XYZ".into()),
        with(&|j| j["x"] = 7.into()),
        with(&|j| j["y"] = "UR7fyxlKu8g1hwQ2zvdt8RDUjgxcpBsKwMDv_cBKmVk".into()), // not on the curve / not its key
    ];
    for jwk in &cases {
        let err = JwtSigningKey::from_jwk(jwk).unwrap_err();
        assert!(
            matches!(err, Error::Jwt(JwtError::InvalidKey(_))),
            "{jwk}: {err:?}"
        );
        assert_no_key_text(&err, &[&d]);
    }
    // Algorithms: unknown, `none`, contradicting the key's, or missing for RSA.
    for jwk in [
        with(&|j| j["alg"] = "none".into()),
        with(&|j| j["alg"] = "ES999".into()),
        RSA_JWK.to_owned(),
    ] {
        let err = JwtSigningKey::from_jwk(&jwk).unwrap_err();
        assert!(
            matches!(err, Error::Jwt(JwtError::UnsupportedAlgorithm(_))),
            "{err:?}"
        );
    }
    let err =
        JwtSigningKey::from_jwk_with_algorithm(&with(&|j| j["alg"] = "ES256".into()), JwsAlgorithm::ES384)
            .unwrap_err();
    assert!(matches!(err, Error::Jwt(JwtError::InvalidKey(_))), "{err:?}");
    let err = JwtSigningKey::from_jwk_with_algorithm(EC_JWK, JwsAlgorithm::RS256).unwrap_err();
    assert!(
        matches!(err, Error::Jwt(JwtError::AlgorithmMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn bad_service_account_files_give_typed_errors_without_key_text() {
    let pem = key_file("service-account.key.pem");
    // Body line 8 (bytes 336..384 of the DER) is inside the private exponent of this 2048-bit
    // RSA key, past the modulus every reader of the public key knows.
    let body_line = pem.lines().nth(8).unwrap().to_owned();
    let good = serde_json::json!({
        "type": "service_account",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": "robot@p.iam.gserviceaccount.com",
    });
    let key = ServiceAccountKey::from_json(&good.to_string()).unwrap();
    let shown = format!("{key:?}");
    assert!(shown.contains("robot@p.iam.gserviceaccount.com") && shown.contains("kid-1"));
    assert!(!shown.contains(&body_line));
    // An EC private key is not a service-account key (RS256 only).
    let ec = key_file("pkjwt-client.key.pem");
    let broken = |change: &dyn Fn(&mut Value)| changed(&good, change);
    let cases = [
        "{".to_owned(),
        broken(&|j| j["type"] = "authorized_user".into()),
        broken(&|j| {
            j.as_object_mut().unwrap().remove("type");
        }),
        broken(&|j| {
            j.as_object_mut().unwrap().remove("client_email");
        }),
        broken(&|j| {
            j.as_object_mut().unwrap().remove("private_key");
        }),
        broken(&|j| j["private_key"] = pem.replace("MII", "XXX").into()),
        broken(&|j| j["private_key"] = pem.lines().take(5).collect::<Vec<_>>().join("\n").into()),
        broken(&|j| j["private_key"] = ec.clone().into()),
        broken(&|j| j["token_uri"] = 5.into()),
    ];
    for json in &cases {
        let err = ServiceAccountKey::from_json(json).unwrap_err();
        assert!(matches!(err, Error::Jwt(JwtError::ServiceAccount(_))), "{err:?}");
        assert_no_key_text(
            &err,
            &[&[body_line.clone()][..], &keys::ec_private_spellings(&ec)].concat(),
        );
    }
    // A token_uri that is plain http off loopback is refused when the source is built.
    let http = broken(&|j| j["token_uri"] = "http://oauth2.example.com/token".into());
    let err = ServiceAccountKey::from_json(&http)
        .unwrap()
        .token_source("s")
        .unwrap_err();
    assert!(matches!(err, Error::InsecureUrl { .. }), "{err:?}");
}

#[test]
fn debug_never_shows_keys_or_secrets() {
    let pem = key_file("pkjwt-client.key.pem");
    let key = JwtSigningKey::from_pem(&pem, JwsAlgorithm::ES256)
        .unwrap()
        .with_kid("k");
    let secret = "a-long-shared-secret-0123456789abcdef";
    let hmac = JwtSigningKey::hmac(Secret::new(secret), JwsAlgorithm::HS256).unwrap();
    let shown = format!(
        "{key:?} {hmac:?} {:?} {:?} {:?}",
        ClientAuth::private_key_jwt("c", key.clone()).unwrap(),
        ClientAuth::client_secret_jwt("c", secret),
        JwtBearer::new(
            TokenEndpoint::new(TOKEN_URL, ClientAuth::none("c")).unwrap(),
            key.clone(),
            "c"
        ),
    );
    assert!(!shown.contains(secret), "{shown}");
    let private = keys::ec_private_spellings(&pem);
    keys::assert_spellings_catch_the_key(&pem, &private);
    keys::assert_none_shown(&shown, &private);
    assert!(shown.contains("ES256") && shown.contains("HS256"));
}

#[tokio::test]
async fn a_service_account_sends_only_the_grant_and_the_assertion_by_default() {
    let clock = ManualClock::new();
    let (http, seen) = server(|_| (200, OK_BODY.to_owned()));
    let json = serde_json::json!({
        "type": "service_account",
        "private_key_id": "kid-1",
        "private_key": key_file("service-account.key.pem"),
        "client_email": "robot@p.iam.gserviceaccount.com",
        "token_uri": TOKEN_URL,
    });
    let key = ServiceAccountKey::from_json(&json.to_string()).unwrap();
    let endpoint = key
        .token_endpoint()
        .http_client(http)
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(endpoint.client_auth().method(), "none");
    key.jwt_bearer(endpoint, "s1 s2").fetch().await.unwrap();
    let seen = seen.seen().remove(0);
    let names = seen.names();
    assert_eq!(
        names,
        ["grant_type", "assertion"],
        "Google's form: no client_id, no scope"
    );
    assert_eq!(seen.authorization(), None);
    let claims = jwt_claims(seen.field("assertion").unwrap());
    assert_eq!(claims["iss"], "robot@p.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], TOKEN_URL);
    assert_eq!(claims["scope"], "s1 s2");
    check_times_and_jti(&claims, &clock, 60);
}

#[test]
fn private_key_jwt_refuses_shared_secret_keys() {
    let oct = format!(
        r#"{{"kty":"oct","alg":"HS384","k":"{}"}}"#,
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            "a-long-shared-secret-0123456789abcdef0123456789ab"
        )
    );
    for key in [
        JwtSigningKey::hmac("a-long-shared-secret-0123456789abcdef", JwsAlgorithm::HS256).unwrap(),
        JwtSigningKey::from_jwk(&oct).unwrap(),
    ] {
        let alg = key.algorithm();
        let err = ClientAuth::private_key_jwt("c", key).unwrap_err();
        assert!(
            matches!(err, Error::Jwt(JwtError::SharedSecretKey(a)) if a == alg),
            "{err:?}"
        );
        assert!(err.to_string().contains("client_secret_jwt"), "{err}");
        assert!(!err.to_string().contains("a-long-shared-secret"), "{err}");
    }
}

#[tokio::test]
async fn an_hmac_jwk_secret_echoed_by_the_server_is_redacted() {
    let secret = "a-long-shared-secret-0123456789abcdef0123456789ab";
    let k = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret);
    let key = JwtSigningKey::from_jwk(&format!(r#"{{"kty":"oct","alg":"HS256","k":"{k}"}}"#)).unwrap();
    let (http, _) = server(move |_| {
        let body = serde_json::json!({"error": "invalid_grant", "error_description": format!("the key is {secret}")});
        (400, body.to_string())
    });
    let source = JwtBearer::new(
        endpoint(ClientAuth::none("app"), http, &ManualClock::new()),
        key,
        "app",
    );
    let err = source.fetch().await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("the key is [redacted]"), "{shown}");
}

#[test]
fn hmac_keys_shorter_than_the_hash_are_refused() {
    for (alg, minimum) in [
        (JwsAlgorithm::HS256, 32),
        (JwsAlgorithm::HS384, 48),
        (JwsAlgorithm::HS512, 64),
    ] {
        let short = "k".repeat(minimum - 1);
        let err = JwtSigningKey::hmac(short.as_str(), alg).unwrap_err();
        assert!(
            matches!(err, Error::Jwt(JwtError::ShortHmacKey { algorithm, minimum: m }) if algorithm == alg && m == minimum),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains(&short));
        assert!(JwtSigningKey::hmac("k".repeat(minimum), alg).is_ok());
        let k = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &short);
        let err =
            JwtSigningKey::from_jwk(&format!(r#"{{"kty":"oct","alg":"{alg}","k":"{k}"}}"#)).unwrap_err();
        assert!(
            matches!(err, Error::Jwt(JwtError::ShortHmacKey { .. })),
            "{err:?}"
        );
    }
}

#[test]
fn a_short_client_secret_is_used_with_a_warning_that_never_shows_it() {
    let logs = log_capture::capture();
    let short = "short-server-secret";
    let auth = ClientAuth::client_secret_jwt("short-app", short);
    assert_eq!(auth.signing_algorithm(), Some("HS256"));
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("short-app") && text.contains("RFC 7518"),
        "{text}"
    );
    assert!(!text.contains(short), "{text}");
    // HS512 takes 64 bytes: 40 are used, with a warning; RS256 is no secret's algorithm.
    let forty = "0123456789012345678901234567890123456789";
    assert!(ClientAuth::client_secret_jwt_with("long-app", forty, JwsAlgorithm::HS512).is_ok());
    assert!(logs.text().contains("long-app"));
    assert!(ClientAuth::client_secret_jwt_with("a", forty, JwsAlgorithm::RS256).is_err());
    // A long enough one: no warning.
    let _ = ClientAuth::client_secret_jwt("quiet-app", "k".repeat(32));
    assert!(!logs.text().contains("quiet-app"));
}
