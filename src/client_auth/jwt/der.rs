//! The DER ring reads, from PEM contents or built from a JWK, with simple_asn1: PKCS#1 for
//! RSA, PKCS#8 for EC and Ed25519. Every byte string of a parsed or built tree is wiped.

use simple_asn1::{oid, ASN1Block, ASN1Class, BigInt, BigUint, OID};
use zeroize::{Zeroize, Zeroizing};

use super::key::{JwtError, KeyType};
use crate::error::Error;

const RSA_ENCRYPTION: [u64; 7] = [1, 2, 840, 113549, 1, 1, 1];
const EC_PUBLIC_KEY: [u64; 6] = [1, 2, 840, 10045, 2, 1];
const ED25519: [u64; 4] = [1, 3, 101, 112];

fn oid_is(oid: &OID, expected: &[u64]) -> bool {
    oid.as_vec::<u64>().is_ok_and(|parts| parts == expected)
}

fn curve_type(curve: &OID) -> Option<KeyType> {
    if oid_is(curve, &[1, 2, 840, 10045, 3, 1, 7]) {
        Some(KeyType::EcP256)
    } else if oid_is(curve, &[1, 3, 132, 0, 34]) {
        Some(KeyType::EcP384)
    } else {
        None
    }
}

/// The AlgorithmIdentifier of an EC key on `curve`.
pub(super) fn ec_algorithm(curve: OID) -> ASN1Block {
    ASN1Block::Sequence(
        0,
        vec![
            ASN1Block::ObjectIdentifier(0, oid!(1, 2, 840, 10045, 2, 1)),
            ASN1Block::ObjectIdentifier(0, curve),
        ],
    )
}

pub(super) fn explicit(tag: u8, block: ASN1Block) -> ASN1Block {
    ASN1Block::Explicit(ASN1Class::ContextSpecific, 0, BigUint::from(tag), Box::new(block))
}

/// DER of `block`, then `block` wiped.
pub(super) fn der(mut block: ASN1Block) -> Result<Zeroizing<Vec<u8>>, Error> {
    let der = simple_asn1::to_der(&block)
        .map(Zeroizing::new)
        .map_err(|_| JwtError::InvalidKey("the key cannot be encoded".to_owned()).into());
    wipe_asn1(std::slice::from_mut(&mut block));
    der
}

/// A PKCS#8 v1 PrivateKeyInfo (RFC 5208): version 0, `algorithm`, `private_key` as an OCTET
/// STRING.
pub(super) fn pkcs8(algorithm: ASN1Block, private_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    der(ASN1Block::Sequence(
        0,
        vec![
            ASN1Block::Integer(0, BigInt::from(0u8)),
            algorithm,
            ASN1Block::OctetString(0, private_key.to_vec()),
        ],
    ))
}

/// Parses DER, runs `read` on it, and wipes what was parsed.
fn with_asn1<T>(der: &[u8], read: impl FnOnce(&[ASN1Block]) -> Result<T, Error>) -> Result<T, Error> {
    let mut blocks = simple_asn1::from_der(der)
        .map_err(|_| JwtError::InvalidKey("the PEM's contents are not DER".to_owned()))?;
    let result = read(&blocks);
    wipe_asn1(&mut blocks);
    result
}

/// The type of a PKCS#8 key, and the DER ring reads for it: the PKCS#1 inside for RSA, the
/// PKCS#8 itself for EC and Ed25519.
pub(super) fn pkcs8_key(der: &[u8]) -> Result<(KeyType, Zeroizing<Vec<u8>>), Error> {
    let malformed = || Error::from(JwtError::InvalidKey("the PKCS#8 key is malformed".to_owned()));
    with_asn1(der, |blocks| {
        let [ASN1Block::Sequence(_, items)] = blocks else {
            return Err(malformed());
        };
        let (Some(ASN1Block::Sequence(_, algorithm)), Some(ASN1Block::OctetString(_, private_key))) =
            (items.get(1), items.get(2))
        else {
            return Err(malformed());
        };
        let Some(ASN1Block::ObjectIdentifier(_, oid)) = algorithm.first() else {
            return Err(malformed());
        };
        if oid_is(oid, &RSA_ENCRYPTION) {
            Ok((KeyType::Rsa, Zeroizing::new(private_key.clone())))
        } else if oid_is(oid, &EC_PUBLIC_KEY) {
            match algorithm.get(1) {
                Some(ASN1Block::ObjectIdentifier(_, curve)) => match curve_type(curve) {
                    Some(key_type) => Ok((key_type, Zeroizing::new(der.to_vec()))),
                    None => Err(JwtError::InvalidKey(
                        "unsupported EC curve (P-256 and P-384 are)".to_owned(),
                    )
                    .into()),
                },
                _ => Err(malformed()),
            }
        } else if oid_is(oid, &ED25519) {
            Ok((KeyType::Ed25519, Zeroizing::new(der.to_vec())))
        } else {
            Err(JwtError::InvalidKey("unsupported key type (RSA, EC and Ed25519 are)".to_owned()).into())
        }
    })
}

/// A SEC1 `EC PRIVATE KEY` (RFC 5915) wrapped in the PKCS#8 ring reads.
pub(super) fn sec1_to_pkcs8(der: &[u8]) -> Result<(KeyType, Zeroizing<Vec<u8>>), Error> {
    let curve = with_asn1(der, |blocks| {
        let [ASN1Block::Sequence(_, items)] = blocks else {
            return Err(JwtError::InvalidKey("the EC key is malformed".to_owned()).into());
        };
        items
            .iter()
            .find_map(|item| match item {
                ASN1Block::Explicit(ASN1Class::ContextSpecific, _, tag, inner)
                    if *tag == BigUint::from(0u8) =>
                {
                    match &**inner {
                        ASN1Block::ObjectIdentifier(_, curve) => Some(curve.clone()),
                        _ => None,
                    }
                }
                _ => None,
            })
            .ok_or_else(|| JwtError::InvalidKey("the EC key does not name its curve".to_owned()).into())
    })?;
    let key_type = curve_type(&curve)
        .ok_or_else(|| JwtError::InvalidKey("unsupported EC curve (P-256 and P-384 are)".to_owned()))?;
    Ok((key_type, pkcs8(ec_algorithm(curve), der)?))
}

/// Overwrites the byte strings of a parsed or built ASN.1 tree (the integers, num-bigint's,
/// cannot be reached).
pub(super) fn wipe_asn1(blocks: &mut [ASN1Block]) {
    for block in blocks {
        match block {
            ASN1Block::OctetString(_, bytes)
            | ASN1Block::BitString(_, _, bytes)
            | ASN1Block::Unknown(_, _, _, _, bytes) => bytes.zeroize(),
            ASN1Block::Sequence(_, items) | ASN1Block::Set(_, items) => wipe_asn1(items),
            ASN1Block::Explicit(_, _, _, inner) => wipe_asn1(std::slice::from_mut(&mut **inner)),
            _ => {}
        }
    }
}
