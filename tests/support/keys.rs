#![allow(dead_code)]
//! Test keys: the interop key files, and the ways an EC P-256 private key's secret part could
//! show in text that must not show it.

use base64::Engine as _;

/// The text of `tests/interop/{name}`.
pub fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/interop/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Spellings of the private scalar `d` of a PKCS#8 EC P-256 key in PEM: a slice of the PEM
/// body that encodes `d` (not the header every such key shares), `d` in base64url (as a JWK
/// has it), in hex, and as Rust's `Debug` of its bytes. Text that shows none of them does not
/// show the key.
pub fn ec_private_spellings(pem: &str) -> Vec<String> {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(&body).unwrap();
    // PKCS#8 (RFC 5208) around an RFC 5915 ECPrivateKey: `d` is the OCTET STRING of 32 bytes
    // that starts at byte 36.
    assert_eq!(
        &der[34..36],
        &[0x04, 0x20],
        "not a PKCS#8 P-256 key as ring writes it"
    );
    let d = &der[36..68];
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{:?}", &d[..4]);
    vec![
        // Bytes 36..48 are base64 characters 48..64.
        body[48..64].to_owned(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)[..16].to_owned(),
        hex[..16].to_owned(),
        hex[..16].to_uppercase(),
        debug.trim_matches(['[', ']']).to_owned(),
    ]
}

/// Checks that `spellings` (of `pem`'s key) catch the key when it is shown: as PEM, as the
/// DER's `Debug`, as hex, as a JWK `d`. The tests that look for the spellings can fail.
pub fn assert_spellings_catch_the_key(pem: &str, spellings: &[String]) {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(&body).unwrap();
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    let jwk_d = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[36..68]);
    for shown in [
        pem.to_owned(),
        format!("{der:?}"),
        hex,
        format!(r#"{{"d":"{jwk_d}"}}"#),
    ] {
        assert!(
            spellings.iter().any(|s| shown.contains(s.as_str())),
            "no spelling catches {shown}"
        );
    }
}

/// Panics if `text` shows any of `spellings`.
pub fn assert_none_shown(text: &str, spellings: &[String]) {
    for spelling in spellings {
        assert!(
            !text.contains(spelling.as_str()),
            "key material ({spelling}) in {text}"
        );
    }
}

/// The claims of a compact JWS, decoded but not verified.
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    jws_part(jwt, 1)
}

/// The protected header of a compact JWS, decoded but not verified.
pub fn jwt_header(jwt: &str) -> serde_json::Value {
    jws_part(jwt, 0)
}

fn jws_part(jwt: &str, index: usize) -> serde_json::Value {
    let part = jwt.split('.').nth(index).expect("a compact JWS");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&json).expect("a JSON object")
}
