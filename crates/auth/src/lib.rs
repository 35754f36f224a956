//! openvgw-auth: byte-exact verification of the request signatures that the vendors' SDKs send.
//!
//! Pure library: no I/O, no async, no HTTP types. The HTTP layer hands over a [`RequestParts`],
//! looks up the secret for the access key named in the extracted credential, then calls `verify`,
//! `check_freshness`; the caller records the request's replay key (the store keeps them, shared by replicas). What a
//! failure is called on the wire is each
//! dialect's business: [`AuthError`] only says what went wrong.
//!
//! * [`aliyun`] — ACS3-HMAC-SHA256 ("V3") and HMAC-SHA1 "SignatureVersion 1.0" (RPC).
//! * [`huawei`] — SDK-HMAC-SHA256.
//!
//! The authority for every byte is what the vendors' SDKs send; `tests/vectors` holds requests captured from them.

pub mod aliyun;
mod encoding;
mod error;
pub mod huawei;

pub use error::AuthError;

use time::{Duration, OffsetDateTime};

/// How far a request's timestamp may be from the server clock, either way, unless configured otherwise (both
/// vendors use 15 minutes).
pub const DEFAULT_FRESHNESS_WINDOW: Duration = Duration::minutes(15);

/// A request as the HTTP layer received it.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method as received; it is signed as is.
    pub method: &'a str,
    /// Raw path as received, e.g. "/" or "/v5/abc/vpn-gateways" (no query).
    pub path: &'a str,
    /// Raw query string without '?', possibly "".
    pub raw_query: &'a str,
    /// Headers in arrival order, names as received (they are compared case-insensitively).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Shared by both dialects: `ts` must be within `window` of `now`.
fn check_window(ts: OffsetDateTime, now: OffsetDateTime, window: Duration, raw: &str) -> Result<(), AuthError> {
    if (now - ts).abs() <= window {
        Ok(())
    } else {
        Err(AuthError::TimestampExpired { timestamp: raw.to_owned() })
    }
}
