//! Authentication failures and how each vendor renders them.
//!
//! `Display` is meant for logs: it never carries a secret nor the RPC string to sign (that string holds
//! every API parameter, e.g. an IPsec pre-shared key). `message()` is what goes back to the client.

/// Prefix of every APIG IAM-authentication message (Huawei).
const HUAWEI_PREFIX: &str = "Incorrect IAM authentication information: ";

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
    /// `string_to_sign` is the server's, echoed to the client as the vendors do.
    #[error("signature does not match")]
    SignatureDoesNotMatch { string_to_sign: String },
    /// The declared body hash (`x-acs-content-sha256` / `X-Sdk-Content-Sha256`) is not the body's.
    #[error("declared content sha256 does not match the body")]
    ContentSha256Mismatch,
    /// Decided by the caller after the key lookup.
    #[error("access key {access_key_id} not found")]
    AccessKeyNotFound { access_key_id: String },
    /// Query or form body is not UTF-8 once percent-decoded.
    #[error("request parameters are not valid percent-encoded UTF-8")]
    MalformedParameters,
}

impl AuthError {
    /// Alibaba Cloud error code (`Code` in the error body).
    pub fn aliyun_code(&self) -> &'static str {
        match self {
            Self::MissingAccessKeyId => "MissingAccessKeyId",
            Self::MissingSignature => "MissingSignature",
            Self::MissingSignatureMethod => "MissingSignatureMethod",
            Self::MissingSignatureVersion => "MissingSignatureVersion",
            Self::MissingSignatureNonce => "MissingSignatureNonce",
            Self::MissingTimestamp => "MissingTimestamp",
            Self::IncompleteSignature { .. } => "IncompleteSignature",
            Self::InvalidSignatureMethod => "InvalidSignatureMethod",
            Self::InvalidSignatureVersion => "InvalidSignatureVersion",
            Self::InvalidTimestampFormat => "InvalidTimeStamp.Format",
            Self::TimestampExpired { .. } => "InvalidTimeStamp.Expired",
            Self::SignatureNonceUsed => "SignatureNonceUsed",
            Self::SignatureDoesNotMatch { .. } => "SignatureDoesNotMatch",
            Self::ContentSha256Mismatch => "InvalidContentSha256",
            Self::AccessKeyNotFound { .. } => "InvalidAccessKeyId.NotFound",
            Self::MalformedParameters => "InvalidParameter",
        }
    }

    /// HTTP status for the Alibaba dialect.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::AccessKeyNotFound { .. } => 404,
            _ => 400,
        }
    }

    /// Alibaba Cloud error message (`Message` in the error body).
    pub fn message(&self) -> String {
        match self {
            Self::MissingAccessKeyId => mandatory("AccessKeyId"),
            Self::MissingSignature => mandatory("Signature"),
            Self::MissingSignatureMethod => mandatory("SignatureMethod"),
            Self::MissingSignatureVersion => mandatory("SignatureVersion"),
            Self::MissingSignatureNonce => mandatory("SignatureNonce"),
            Self::MissingTimestamp => mandatory("Timestamp"),
            Self::IncompleteSignature { reason } => {
                format!("The request signature does not conform to Aliyun standards. {reason}.")
            }
            Self::InvalidSignatureMethod => "Specified signature method is not valid.".into(),
            Self::InvalidSignatureVersion => "Specified signature version is not valid.".into(),
            Self::InvalidTimestampFormat => "Specified time stamp or date value is not well formatted.".into(),
            Self::TimestampExpired { .. } => "Specified time stamp or date value is expired.".into(),
            Self::SignatureNonceUsed => "Specified signature nonce was used already.".into(),
            // The legacy Python SDK does `message.split(':')[1]`: keep exactly one ':' before the string.
            Self::SignatureDoesNotMatch { string_to_sign } => format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
            Self::ContentSha256Mismatch => {
                "The x-acs-content-sha256 header does not match the SHA-256 of the request body.".into()
            }
            Self::AccessKeyNotFound { .. } => "Specified access key is not found.".into(),
            Self::MalformedParameters => "The request parameters are not valid percent-encoded UTF-8.".into(),
        }
    }

    /// Huawei APIG error code (`error_code`). Every AK/SK failure at APIG is `APIGW.0301`.
    pub fn huawei_code(&self) -> &'static str {
        "APIGW.0301"
    }

    /// HTTP status for the Huawei dialect (APIG answers 401 to every IAM-authentication failure).
    pub fn huawei_http_status(&self) -> u16 {
        401
    }

    /// Huawei APIG error message (`error_msg`), worded as APIG words it.
    pub fn huawei_message(&self) -> String {
        let detail: String = match self {
            Self::SignatureDoesNotMatch { .. } | Self::ContentSha256Mismatch => "verify aksk signature fail".into(),
            Self::AccessKeyNotFound { access_key_id } => format!("ak {access_key_id} not exist"),
            // APIG's text for a request that carries no credentials at all.
            Self::MissingSignature => "x-auth-token not found".into(),
            Self::MissingAccessKeyId => "ak not found in Authorization header".into(),
            Self::MissingTimestamp => "x-sdk-date not found".into(),
            Self::InvalidTimestampFormat => "x-sdk-date is not in the format YYYYMMDDTHHMMSSZ".into(),
            Self::TimestampExpired { timestamp } => {
                format!("x-sdk-date {timestamp} differs from the server time by more than 15 minutes")
            }
            Self::InvalidSignatureMethod | Self::InvalidSignatureVersion => "unsupported signing algorithm".into(),
            Self::IncompleteSignature { reason } => {
                format!("malformed Authorization header: {reason}")
            }
            Self::MissingSignatureMethod | Self::MissingSignatureVersion | Self::MissingSignatureNonce => {
                "incomplete signature".into()
            }
            Self::SignatureNonceUsed => "request was replayed".into(),
            Self::MalformedParameters => "request parameters are not valid UTF-8".into(),
        };
        format!("{HUAWEI_PREFIX}{detail}")
    }
}

fn mandatory(name: &str) -> String {
    format!("{name} is mandatory for this action.")
}
