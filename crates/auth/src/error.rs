//! Authentication failures. Each dialect maps them to its wire codes and words in its own error table.
//!
//! `Display` is meant for logs: it never carries a secret nor the RPC string to sign (that string holds
//! every API parameter, e.g. an IPsec pre-shared key).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("access key id is missing")]
    MissingAccessKeyId,
    #[error("signature is missing")]
    MissingSignature,
    #[error("signature method is missing")]
    MissingSignatureMethod,
    #[error("signature version is missing")]
    MissingSignatureVersion,
    #[error("signature nonce is missing")]
    MissingSignatureNonce,
    #[error("timestamp is missing")]
    MissingTimestamp,
    /// The Authorization header is malformed or leaves out something that must be signed.
    #[error("incomplete signature: {reason}")]
    IncompleteSignature { reason: &'static str },
    /// Unsupported signature method / signing algorithm.
    #[error("unsupported signature method")]
    InvalidSignatureMethod,
    #[error("unsupported signature version")]
    InvalidSignatureVersion,
    #[error("timestamp is not well formatted")]
    InvalidTimestampFormat,
    /// `timestamp` is the value as sent.
    #[error("timestamp {timestamp} is outside the freshness window")]
    TimestampExpired { timestamp: String },
    #[error("signature nonce was used already")]
    SignatureNonceUsed,
    /// A nonce (or what stands for one) longer than the service remembers.
    #[error("signature nonce is longer than {max} bytes")]
    SignatureNonceTooLong { max: usize },
    /// The access key has as many remembered nonces as allowed; new requests wait until old ones expire.
    #[error("too many recent signed requests for this access key")]
    ReplayCacheFull,
    /// `string_to_sign` is the server's, echoed to the client as the vendors do.
    #[error("signature does not match")]
    SignatureDoesNotMatch { string_to_sign: String },
    /// The declared body hash (`x-acs-content-sha256` / `X-Sdk-Content-Sha256`) is not the body's.
    #[error("declared content sha256 does not match the body")]
    ContentSha256Mismatch,
    /// Decided by the caller after the key lookup.
    #[error("access key {access_key_id} not found")]
    AccessKeyNotFound { access_key_id: String },
    /// The key exists and the request is signed with it, but its tenant is disabled (`openvgw tenant disable`).
    #[error("access key {access_key_id} is disabled")]
    AccessKeyDisabled { access_key_id: String },
    /// A token that was never issued, or has expired.
    #[error("token is not valid")]
    TokenInvalid,
    /// Query or form body is not UTF-8 once percent-decoded.
    #[error("request parameters are not valid percent-encoded UTF-8")]
    MalformedParameters,
}
