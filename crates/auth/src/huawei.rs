//! Huawei Cloud: SDK-HMAC-SHA256 (huaweicloudsdkcore `signer.py`, class `Signer`).
//!
//! Flow: [`credential`] -> look up the secret -> [`verify`] -> [`check_freshness`].
//! There is no nonce in this scheme; a captured request can be replayed inside the freshness window.

use percent_encoding::percent_decode_str;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::encoding::{
    canonical_headers, constant_time_eq, encode, header, hmac_sha256, parse_auth_fields, sha256_hex,
    split_signed_headers,
};
use crate::{check_window, AuthError, RequestParts};

const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Everything needed before looking up the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `X-Sdk-Date` as sent ("YYYYMMDDTHHMMSSZ").
    pub sdk_date: String,
    /// Header names from `SignedHeaders`, in the order given.
    pub signed_headers: Vec<String>,
    /// Lower-case hex HMAC-SHA256 as sent.
    pub signature: String,
}

/// Extracts the credential from `Authorization: SDK-HMAC-SHA256 Access=.., SignedHeaders=.., Signature=..`
/// and `X-Sdk-Date`.
pub fn credential(req: &RequestParts) -> Result<Credential, AuthError> {
    let auth = header(req.headers, "authorization").ok_or(AuthError::MissingSignature)?;
    let (algorithm, rest) = auth.split_once(' ').unwrap_or((auth.as_str(), ""));
    if algorithm != ALGORITHM {
        // SDK-HMAC-SM3, V11-HMAC-SHA256, ECDSA/SM2 are opt-in in the SDK and not supported here.
        return Err(if algorithm.starts_with("SDK-") || algorithm.starts_with("V11-") {
            AuthError::InvalidSignatureMethod
        } else {
            AuthError::IncompleteSignature { reason: "Authorization does not start with a signing algorithm" }
        });
    }
    let fields = parse_auth_fields(rest, "Access");
    let access_key_id = fields.key_id.ok_or(AuthError::MissingAccessKeyId)?;
    // MissingSignature is kept for "no Authorization at all" (APIG: "x-auth-token not found").
    let signature =
        fields.signature.ok_or(AuthError::IncompleteSignature { reason: "Authorization lacks Signature" })?;
    let signed_headers = split_signed_headers(
        fields.signed_headers.ok_or(AuthError::IncompleteSignature { reason: "Authorization lacks SignedHeaders" })?,
    )?;
    let sdk_date = header(req.headers, "x-sdk-date").filter(|d| !d.is_empty()).ok_or(AuthError::MissingTimestamp)?;
    Ok(Credential {
        access_key_id: access_key_id.to_owned(),
        sdk_date,
        signed_headers,
        signature: signature.to_owned(),
    })
}

/// `METHOD\nURI\nQUERY\nCANONICAL_HEADERS\nSIGNED_HEADERS\nPAYLOAD_HASH`.
pub fn canonical_request(req: &RequestParts, cred: &Credential) -> Result<String, AuthError> {
    let mut out = format!("{}\n{}\n{}\n", req.method, canonical_uri(req.path), canonical_query(req.raw_query));
    canonical_headers(&mut out, req.headers, &cred.signed_headers);
    out.push('\n');
    out.push_str(&cred.signed_headers.join(";"));
    out.push('\n');
    out.push_str(&payload_hash(req)?);
    Ok(out)
}

/// `unquote(path).split('/')`, each segment `quote(seg, safe='~')`, joined with '/', then a '/' appended
/// unless already there: the signature cannot tell `/x` from `/x/`, and `%2F` acts as a separator.
/// Works on bytes, which equals the SDK's str handling for every UTF-8 path it can send.
fn canonical_uri(path: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(path).collect();
    let mut uri = decoded.split(|b| *b == b'/').map(encode).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Split on '&', split at the first '=', percent-decode (not form-decode: '+' stays '+'),
/// sort by (key, value), re-encode with `quote(safe='~')` (space = `%20`).
fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode_str(k).collect(), percent_decode_str(v).collect())
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// Empty body: hash of "". Otherwise the literal `X-Sdk-Content-Sha256` if sent, else sha256(body).
/// A declared hash must match the body, and `UNSIGNED-PAYLOAD` is refused: the SDK uses it only for
/// non-JSON bodies (never for VPN), and accepting it would leave the body unauthenticated.
fn payload_hash(req: &RequestParts) -> Result<String, AuthError> {
    let computed = sha256_hex(req.body);
    if req.body.is_empty() {
        return Ok(computed);
    }
    match header(req.headers, "x-sdk-content-sha256") {
        Some(declared) if declared.eq_ignore_ascii_case(&computed) => Ok(declared),
        Some(_) => Err(AuthError::ContentSha256Mismatch),
        None => Ok(computed),
    }
}

/// `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(req: &RequestParts, cred: &Credential) -> Result<String, AuthError> {
    let canonical = canonical_request(req, cred)?;
    Ok(format!("{ALGORITHM}\n{}\n{}", cred.sdk_date, sha256_hex(canonical.as_bytes())))
}

/// The signature a client holding `secret` sends for `string_to_sign` (useful to sign test requests).
pub fn signature(string_to_sign: &str, secret: &str) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes()))
}

/// Verifies the signature with the secret (constant-time comparison). Does not check freshness.
pub fn verify(req: &RequestParts, cred: &Credential, secret: &str) -> Result<(), AuthError> {
    let string_to_sign = string_to_sign(req, cred)?;
    let expected = signature(&string_to_sign, secret);
    if constant_time_eq(&expected, &cred.signature.to_ascii_lowercase()) {
        Ok(())
    } else {
        Err(AuthError::SignatureDoesNotMatch { string_to_sign })
    }
}

/// Parses `X-Sdk-Date` ("YYYYMMDDTHHMMSSZ", UTC) and checks |now - date| <= 15 min, as APIG does.
pub fn check_freshness(cred: &Credential, now: OffsetDateTime, window: Duration) -> Result<(), AuthError> {
    let ts =
        PrimitiveDateTime::parse(&cred.sdk_date, format_description!("[year][month][day]T[hour][minute][second]Z"))
            .map_err(|_| AuthError::InvalidTimestampFormat)?
            .assume_utc();
    check_window(ts, now, window, &cred.sdk_date)
}
