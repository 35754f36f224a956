//! Alibaba Cloud (VPC 2016-04-28): ACS3-HMAC-SHA256 ("V3") and HMAC-SHA1 "SignatureVersion 1.0" (RPC).
//!
//! Flow: [`decode_params`] -> [`credential`] -> look up the secret -> [`verify`] -> [`check_freshness`]
//! -> the caller records the nonce (once per access key, in the store).

use base64::Engine as _;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::encoding::{
    canonical_headers, constant_time_eq, encode, form_decode, header, hmac_sha1, hmac_sha256, parse_auth_fields,
    sha256_hex, split_signed_headers,
};
use crate::{check_window, AuthError, RequestParts};

const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";
const RPC_SIGNATURE_METHOD: &str = "HMAC-SHA1";
const RPC_SIGNATURE_VERSION: &str = "1.0";

/// Headers that, when present, must be covered by a V3 signature: the action, the date and the nonce
/// (replay protection depends on them) and the body's declared type and hash. Every SDK signs these
/// (Python signs all headers it sets, Node/Java/Go sign `host`, `content-type` and `x-acs-*`).
const V3_MUST_SIGN: [&str; 6] =
    ["x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "content-type"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: ACS3-HMAC-SHA256 ...` (tea-openapi default).
    Acs3HmacSha256,
    /// `Signature*` query parameters, HMAC-SHA1, SignatureVersion 1.0 (legacy core, tea `v2`).
    RpcHmacSha1,
}

/// Everything needed before looking up the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub scheme: Scheme,
    pub access_key_id: String,
    /// `x-acs-signature-nonce` (V3) or `SignatureNonce` (RPC).
    pub nonce: String,
    /// `x-acs-date` (V3) or `Timestamp` (RPC), as sent.
    pub timestamp: String,
    /// V3 only: the header names from `SignedHeaders`, in the order given. Empty for RPC.
    pub signed_headers: Vec<String>,
    /// The signature as sent (lower-case hex for V3, base64 for RPC).
    pub signature: String,
}

/// Decoded API parameters: query params (form-decoded: '+' = space, %XX UTF-8) followed by form-body
/// params when content-type is application/x-www-form-urlencoded. Order preserved.
pub fn decode_params(req: &RequestParts) -> Result<Vec<(String, String)>, AuthError> {
    let mut params = form_decode(req.raw_query)?;
    if is_form(req) {
        let body = std::str::from_utf8(req.body).map_err(|_| AuthError::MalformedParameters)?;
        params.extend(form_decode(body)?);
    }
    Ok(params)
}

fn is_form(req: &RequestParts) -> bool {
    header(req.headers, "content-type").is_some_and(|ct| {
        ct.split(';').next().is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    })
}

/// Detects the scheme (an `Authorization` header starting "ACS3-" => V3, otherwise the RPC params) and
/// extracts the credential. `params` must be what [`decode_params`] returned for `req`.
pub fn credential(req: &RequestParts, params: &[(String, String)]) -> Result<Credential, AuthError> {
    match header(req.headers, "authorization") {
        Some(auth) if auth.starts_with("ACS3-") => v3_credential(req, &auth),
        _ => rpc_credential(params),
    }
}

fn v3_credential(req: &RequestParts, auth: &str) -> Result<Credential, AuthError> {
    let (algorithm, rest) = auth.split_once(' ').unwrap_or((auth, ""));
    if algorithm != V3_ALGORITHM {
        // ACS3-HMAC-SM3 / ACS3-RSA-SHA256 exist but no VPN SDK uses them by default.
        return Err(AuthError::InvalidSignatureMethod);
    }
    let fields = parse_auth_fields(rest, "Credential");
    let access_key_id = fields.key_id.ok_or(AuthError::MissingAccessKeyId)?;
    let signature = fields.signature.ok_or(AuthError::MissingSignature)?;
    let signed_headers = split_signed_headers(
        fields.signed_headers.ok_or(AuthError::IncompleteSignature { reason: "Authorization lacks SignedHeaders" })?,
    )?;
    for name in V3_MUST_SIGN {
        let present = header(req.headers, name).is_some();
        if present && !signed_headers.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return Err(AuthError::IncompleteSignature {
                reason: "a required x-acs-* or content-type header is not in SignedHeaders",
            });
        }
    }
    let timestamp = header(req.headers, "x-acs-date").ok_or(AuthError::MissingTimestamp)?;
    let nonce = non_empty(header(req.headers, "x-acs-signature-nonce")).ok_or(AuthError::MissingSignatureNonce)?;
    Ok(Credential {
        scheme: Scheme::Acs3HmacSha256,
        access_key_id: access_key_id.to_owned(),
        nonce,
        timestamp,
        signed_headers,
        signature: signature.to_owned(),
    })
}

fn rpc_credential(params: &[(String, String)]) -> Result<Credential, AuthError> {
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let access_key_id = get("AccessKeyId").ok_or(AuthError::MissingAccessKeyId)?;
    let signature = get("Signature").ok_or(AuthError::MissingSignature)?;
    let method = get("SignatureMethod").ok_or(AuthError::MissingSignatureMethod)?;
    if method != RPC_SIGNATURE_METHOD {
        return Err(AuthError::InvalidSignatureMethod);
    }
    let version = get("SignatureVersion").ok_or(AuthError::MissingSignatureVersion)?;
    if version != RPC_SIGNATURE_VERSION {
        return Err(AuthError::InvalidSignatureVersion);
    }
    let timestamp = get("Timestamp").ok_or(AuthError::MissingTimestamp)?;
    let nonce = get("SignatureNonce").ok_or(AuthError::MissingSignatureNonce)?;
    Ok(Credential {
        scheme: Scheme::RpcHmacSha1,
        access_key_id,
        nonce,
        timestamp,
        signed_headers: Vec::new(),
        signature,
    })
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.is_empty())
}

/// The canonical form that is hashed (V3) or embedded (RPC) in the string to sign.
///
/// * V3: the full CanonicalRequest. Its query part comes from `req.raw_query` alone (form-body
///   params are covered by the payload hash instead), so `params` is not used.
/// * RPC: the sorted `k=v&...` string over `params` minus `Signature` ("Canonicalized" in the notes).
pub fn canonical_request(
    req: &RequestParts,
    params: &[(String, String)],
    cred: &Credential,
) -> Result<String, AuthError> {
    match cred.scheme {
        Scheme::Acs3HmacSha256 => v3_canonical_request(req, cred, &sha256_hex(req.body)),
        Scheme::RpcHmacSha1 => Ok(rpc_canonicalized(params)),
    }
}

fn v3_canonical_request(req: &RequestParts, cred: &Credential, payload_hash: &str) -> Result<String, AuthError> {
    // Re-encode the decoded query: Python (`+`, `%2A`) and Node (`%20`, literal `*'()!`) put
    // different text on the wire for the same signed values.
    let mut pairs: Vec<(String, String)> =
        form_decode(req.raw_query)?.iter().map(|(k, v)| (encode(k.as_bytes()), encode(v.as_bytes()))).collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let path = if req.path.is_empty() { "/" } else { req.path };

    let mut out = format!("{}\n{}\n{}\n", req.method, path, join_pairs(&pairs));
    canonical_headers(&mut out, req.headers, &cred.signed_headers);
    out.push('\n');
    out.push_str(&cred.signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

fn rpc_canonicalized(params: &[(String, String)]) -> String {
    let mut signed: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "Signature").collect();
    // The SDKs sort the unencoded keys (Python string order = UTF-8 byte order); stable for repeats.
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let pairs: Vec<(String, String)> =
        signed.into_iter().map(|(k, v)| (encode(k.as_bytes()), encode(v.as_bytes()))).collect();
    join_pairs(&pairs)
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The string the client signed, as the server computes it.
pub fn string_to_sign(req: &RequestParts, params: &[(String, String)], cred: &Credential) -> Result<String, AuthError> {
    let canonical = canonical_request(req, params, cred)?;
    Ok(sts_from_canonical(req, cred.scheme, &canonical))
}

fn sts_from_canonical(req: &RequestParts, scheme: Scheme, canonical: &str) -> String {
    match scheme {
        Scheme::Acs3HmacSha256 => format!("{V3_ALGORITHM}\n{}", sha256_hex(canonical.as_bytes())),
        Scheme::RpcHmacSha1 => format!("{}&%2F&{}", req.method, encode(canonical.as_bytes())),
    }
}

/// The signature a client holding `secret` sends for `string_to_sign` (useful to sign test requests).
pub fn signature(scheme: Scheme, string_to_sign: &str, secret: &str) -> String {
    match scheme {
        Scheme::Acs3HmacSha256 => hex::encode(hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes())),
        Scheme::RpcHmacSha1 => {
            let key = format!("{secret}&");
            base64::engine::general_purpose::STANDARD.encode(hmac_sha1(key.as_bytes(), string_to_sign.as_bytes()))
        }
    }
}

/// Verifies the signature with the secret (constant-time comparison). For V3 also checks that
/// `x-acs-content-sha256`, when sent, equals the body hash. Does not check freshness or the nonce.
pub fn verify(
    req: &RequestParts,
    params: &[(String, String)],
    cred: &Credential,
    secret: &str,
) -> Result<(), AuthError> {
    let (string_to_sign, provided) = match cred.scheme {
        Scheme::Acs3HmacSha256 => {
            let body_hash = sha256_hex(req.body);
            if let Some(declared) = header(req.headers, "x-acs-content-sha256") {
                if !declared.eq_ignore_ascii_case(&body_hash) {
                    return Err(AuthError::ContentSha256Mismatch);
                }
            }
            let canonical = v3_canonical_request(req, cred, &body_hash)?;
            let sts = sts_from_canonical(req, cred.scheme, &canonical);
            (sts, cred.signature.to_ascii_lowercase())
        }
        Scheme::RpcHmacSha1 => {
            let sts = sts_from_canonical(req, cred.scheme, &rpc_canonicalized(params));
            (sts, cred.signature.clone())
        }
    };
    let expected = signature(cred.scheme, &string_to_sign, secret);
    if constant_time_eq(&expected, &provided) {
        Ok(())
    } else {
        Err(AuthError::SignatureDoesNotMatch { string_to_sign })
    }
}

/// Parses the timestamp ("YYYY-MM-DDThh:mm:ssZ", UTC) and checks |now - ts| <= 15 min.
pub fn check_freshness(cred: &Credential, now: OffsetDateTime, window: Duration) -> Result<(), AuthError> {
    let ts = PrimitiveDateTime::parse(
        &cred.timestamp,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
    .map_err(|_| AuthError::InvalidTimestampFormat)?
    .assume_utc();
    check_window(ts, now, window, &cred.timestamp)
}
