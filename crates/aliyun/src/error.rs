//! Alibaba's wire errors. Every core and authentication error maps to a code, HTTP status and message here and
//! nowhere else; field names become Alibaba parameter names here too.

use openvgw_auth::AuthError;
use openvgw_core::{Error, Field, Kind, Pool, Precondition};

use crate::action::Action;

#[derive(Debug, Clone)]
pub struct WireError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// What went wrong inside, for the log only (never sent).
    pub cause: Option<String>,
    /// A throttled request may be retried after this many milliseconds (`x-acs-retry-after`).
    pub retry_after_ms: Option<u64>,
}

impl openvgw_api::ApiError for WireError {
    fn status(&self) -> u16 {
        self.status
    }
    fn code(&self) -> &str {
        &self.code
    }
    fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }
}

impl WireError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        WireError { status, code: code.into(), message: message.into(), cause: None, retry_after_ms: None }
    }

    /// An absent required parameter: `Missing<Param>`.
    pub fn missing(param: &str) -> Self {
        let name: String = param.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        WireError::new(400, format!("Missing{name}"), format!("{param} is mandatory for this action."))
    }

    /// A bad value: `Invalid<Param>`.
    pub fn invalid(param: &str, reason: impl std::fmt::Display) -> Self {
        let name: String = param.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        WireError::new(400, format!("Invalid{name}"), format!("The specified {param} is invalid: {reason}"))
    }

    pub fn unknown_action(action: &str) -> Self {
        WireError::new(
            404,
            "InvalidAction.NotFound",
            format!("Specified api {action} is not found, please check your url and method."),
        )
    }

    pub fn internal() -> Self {
        WireError::new(500, "InternalError", "The request processing has failed due to some unknown error.")
    }
}

/// The request parameter that carries a field.
pub fn param_name(f: Field) -> &'static str {
    match f {
        Field::Name => "Name",
        Field::Description => "Description",
        Field::VpcId => "VpcId",
        Field::SubnetId => "VSwitchId",
        Field::Bandwidth => "Bandwidth",
        Field::CryptoSuite => "VpnType",
        Field::SslMaxConnections => "SslConnections",
        // A dual-tunnel connection's tunnels have one master and one slave.
        Field::HaMode => "TunnelOptionsSpecification.Role",
        Field::GatewayAddress => "VpnGatewayId",
        Field::LocalSubnets => "LocalSubnet",
        Field::PeerAddress => "IpAddress",
        Field::PeerIdentity => "IpAddress",
        Field::Asn => "Asn",
        Field::BgpAuthKey => "AuthKey",
        Field::RemoteSubnets => "RemoteSubnet",
        Field::PolicyRules => "RemoteSubnet",
        Field::ConnectionMode => "BgpConfig",
        Field::Psk => "Psk",
        Field::IkeVersion
        | Field::IkeMode
        | Field::IkeEncryption
        | Field::IkeIntegrity
        | Field::IkeDhGroup
        | Field::IkeLifetime
        | Field::LocalId
        | Field::RemoteId
        | Field::Dpd => "IkeConfig",
        Field::IpsecEncryption | Field::IpsecIntegrity | Field::IpsecPfs | Field::IpsecLifetime => "IpsecConfig",
        Field::HealthCheck => "HealthCheckConfig",
        Field::TunnelCidr | Field::TunnelLocalAddress => "BgpConfig",
        Field::RemoteCaCertificate => "RemoteCaCertificate",
        Field::ClientIpPool => "ClientIpPool",
        Field::Port => "Port",
        Field::Transport => "Proto",
        Field::Cipher => "Cipher",
        Field::MultiFactorAuth => "IDaaSInstanceId",
        Field::RouteDest => "RouteDest",
        Field::RouteSource => "RouteSource",
        Field::NextHop => "NextHop",
        Field::Weight => "Weight",
        Field::Priority => "Priority",
        Field::TagKey => "TagKey",
        Field::TagValue => "TagValue",
        Field::ResourceType => "ResourceType",
        Field::ResourceId => "ResourceId",
        Field::CertificateId => "CertificateId",
        Field::CertificateType => "CertificateType",
        Field::TimeRange => "From",
        Field::PageNumber => "PageNumber",
        Field::PageSize => "PageSize",
        Field::PageToken => "NextToken",
        Field::ClientToken => "ClientToken",
        // Client-to-site users and groups have no Alibaba operation; named for completeness.
        Field::UserName => "UserName",
        Field::Password => "Password",
        Field::StaticIp => "StaticIp",
        Field::UserGroup => "UserGroup",
        Field::ClientCa => "ClientCa",
        Field::DestinationCidrs => "DestinationCidrs",
        Field::ClientAuth => "ClientAuth",
        Field::DnsServers => "DnsServers",
    }
}

fn not_found(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::VpnGateway => {
            ("InvalidVpnGatewayInstanceId.NotFound", "The specified vpn gateway instance id does not exist.")
        }
        Kind::CustomerGateway => {
            ("InvalidCustomerGatewayInstanceId.NotFound", "The specified customer gateway instance id does not exist.")
        }
        Kind::VpnConnection => {
            ("InvalidVpnConnectionInstanceId.NotFound", "The specified vpn connection instance id does not exist.")
        }
        Kind::SslVpnServer => ("InvalidSslVpnServerId.NotFound", "The specified SSL-VPN server does not exist."),
        Kind::SslVpnClientCert => {
            ("InvalidSslVpnClientCertId.NotFound", "The specified SSL-VPN client certificate does not exist.")
        }
        Kind::IpsecServer => ("InvalidIpsecServerId.NotFound", "The specified IPsec server does not exist."),
        Kind::RouteEntry => ("InvalidVpnRouteEntry.NotFound", "The specified route entry does not exist."),
        Kind::Tunnel => ("InvalidTunnelId.NotFound", "The specified tunnel is not one of this connection's."),
        _ => ("InvalidResourceId.NotFound", "The specified resource does not exist."),
    }
}

/// The one mapping from core errors to Alibaba codes. `action` covers the seed's per-action exceptions.
pub fn from_core(e: &Error, action: Action) -> WireError {
    match e {
        Error::Invalid { field, rule } => match field {
            Field::Name => WireError::new(400, "InvalidName", "The name is not valid"),
            Field::Description => WireError::new(400, "InvalidDescription", "The description is not valid"),
            Field::PeerAddress | Field::PeerIdentity => {
                WireError::new(400, "InvalidIpAddress.WrongFormat", "Specified IpAddress is invalid.")
            }
            Field::BgpAuthKey => {
                WireError::new(400, "InvalidAuthkey.Malformed", "The specified BGP authentication key is malformed.")
            }
            Field::LocalSubnets | Field::RemoteSubnets | Field::ClientIpPool | Field::Port => {
                let p = param_name(*field);
                WireError::new(400, format!("IllegalParam.{p}"), format!("The specified \"{p}\" {rule}."))
            }
            Field::NextHop => WireError::new(
                404,
                "InvalidNextHop.NotFound",
                "The specified next hop does not exist or is not a connection of this VPN gateway.",
            ),
            Field::ResourceId => WireError::new(404, "InvalidResourceId.NotFound", "The specified resource does not exist."),
            Field::CertificateId => {
                WireError::new(404, "InvalidCertificateId.NotFound", "The specified certificate is not associated.")
            }
            other => WireError::invalid(param_name(*other), rule),
        },
        Error::NotFound { .. } if action.is_tagging() => {
            WireError::new(404, "InvalidResourceId.NotFound", "The specified resource does not exist.")
        }
        Error::NotFound { kind, .. } => {
            let (code, msg) = not_found(*kind);
            // The seed's ModifyVpnGatewayAttribute table lists this one as 400.
            let status = if action == Action::ModifyVpnGatewayAttribute && *kind == Kind::VpnGateway { 400 } else { 404 };
            WireError::new(status, code, msg)
        }
        Error::AlreadyExists { kind, what } => match kind {
            Kind::CustomerGateway => {
                WireError::new(400, "InvalidIpAddress.AlreadyExist", "Specified IpAddress is already exist.")
            }
            Kind::VpnConnection => {
                WireError::new(400, "InvalidVpnConnection.AlreadyExists", "Vpn connection already exists.")
            }
            Kind::IpsecServer => WireError::new(
                400,
                "OperationFailed.IPsecServerExist",
                "An IPsec server already exists in the VPN gateway.",
            ),
            Kind::RouteEntry => {
                WireError::new(400, "VpnRouteEntry.Conflict", "The specified route entry has conflict.")
            }
            _ => WireError::new(400, "ResourceAlreadyExists", format!("{what} already exists.")),
        },
        Error::QuotaFull { .. } => WireError::new(400, "Resource.QuotaFull", "The quota of resource is full"),
        Error::PoolExhausted(pool) => match pool {
            Pool::PublicIps => WireError::new(
                400,
                "OperationFailed.NoAvailablePublicIp",
                "No public IP address is left in the address pool of this service.",
            ),
            Pool::VpcBlocks => WireError::new(
                400,
                "OperationFailed.NoAvailableVpcCidr",
                "No address block is left for a new VPC; declare the VPC in the service configuration.",
            ),
            Pool::VpcAddresses => WireError::new(
                400,
                "OperationFailed.NoAvailablePrivateIp",
                "No private IP address is left in the VPC for the VPN gateway.",
            ),
        },
        Error::GatewayBusy { .. } => WireError::new(400, "VpnGateway.Configuring", "The specified service is configuring."),
        Error::InUse { by, .. } => WireError::new(
            400,
            format!("DependencyViolation.{}", if *by == Kind::VpnConnection { "VpnConnection" } else { "Resource" }),
            "The specified resource is still in use.",
        ),
        Error::Precondition(p) => match p {
            Precondition::BgpConnectionsExist => WireError::new(
                400,
                "OperationFailed.VpnConnectionExist",
                "Auto propagate cannot be closed when VPN connections with BGP enabled exist.",
            ),
            Precondition::AsnRequiredForAuthKey => WireError::new(
                400,
                "OperationDenied.MissingAsn",
                "The autonomous system number of the customer gateway is mandatory when BGP authentication key is specified.",
            ),
            Precondition::ServiceDisabled => {
                WireError::new(400, "VpnGateway.SslVpnDisabled", "The VPN gateway has not enabled SSL VPN.")
            }
            Precondition::NotNationalStandard => WireError::new(
                400,
                "OperationUnsupported",
                "The operation is not supported: only NationalStandard VPN gateways take certificates.",
            ),
            // Preconditions of operations Alibaba does not have.
            Precondition::BuiltinGroup
            | Precondition::WrongPassword
            | Precondition::PasswordReused
            | Precondition::WrongClientAuth => {
                WireError::new(400, "OperationUnsupported", "The operation is not supported for this resource.")
            }
        },
        Error::IdempotentParameterMismatch => WireError::new(
            400,
            "IdempotentParameterMismatch",
            "The request uses the same client token as a previous, but non-identical request.",
        ),
        Error::DryRunOperation => {
            WireError::new(400, "DryRunOperation", "Request validation has been passed with DryRun flag set.")
        }
        Error::Internal(cause) => WireError { cause: Some(cause.clone()), ..WireError::internal() },
    }
}

fn mandatory(name: &str) -> String {
    format!("{name} is mandatory for this action.")
}

/// Authentication failures as Alibaba's gateway words them.
pub fn from_auth(e: &AuthError) -> WireError {
    let (status, code, message) = match e {
        AuthError::MissingAccessKeyId => (400, "MissingAccessKeyId", mandatory("AccessKeyId")),
        AuthError::MissingSignature => (400, "MissingSignature", mandatory("Signature")),
        AuthError::MissingSignatureMethod => (400, "MissingSignatureMethod", mandatory("SignatureMethod")),
        AuthError::MissingSignatureVersion => (400, "MissingSignatureVersion", mandatory("SignatureVersion")),
        AuthError::MissingSignatureNonce => (400, "MissingSignatureNonce", mandatory("SignatureNonce")),
        AuthError::MissingTimestamp => (400, "MissingTimestamp", mandatory("Timestamp")),
        AuthError::IncompleteSignature { reason } => (
            400,
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards. {reason}."),
        ),
        AuthError::InvalidSignatureMethod => {
            (400, "InvalidSignatureMethod", "Specified signature method is not valid.".into())
        }
        AuthError::InvalidSignatureVersion => {
            (400, "InvalidSignatureVersion", "Specified signature version is not valid.".into())
        }
        AuthError::InvalidTimestampFormat => {
            (400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.".into())
        }
        AuthError::TimestampExpired { .. } => {
            (400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.".into())
        }
        AuthError::SignatureNonceUsed => {
            (400, "SignatureNonceUsed", "Specified signature nonce was used already.".into())
        }
        AuthError::SignatureNonceTooLong { max } => (
            400,
            "InvalidParameter",
            format!("The specified parameter SignatureNonce is not valid: it is longer than {max} bytes."),
        ),
        AuthError::ReplayCacheFull => (400, "Throttling.User", "Request was denied due to user flow control.".into()),
        // The legacy Python SDK does `message.split(':')[1]`: keep exactly one ':' before the string.
        AuthError::SignatureDoesNotMatch { string_to_sign } => (
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
        ),
        AuthError::ContentSha256Mismatch => (
            400,
            "InvalidContentSha256",
            "The x-acs-content-sha256 header does not match the SHA-256 of the request body.".into(),
        ),
        AuthError::AccessKeyNotFound { .. } => {
            (404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.".into())
        }
        AuthError::AccessKeyDisabled { .. } => {
            (400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled.".into())
        }
        // Alibaba's API takes no tokens; a dialect that presents one never reaches this table.
        AuthError::TokenInvalid => (401, "InvalidSecurityToken", "The security token is not valid.".into()),
        AuthError::MalformedParameters => {
            (400, "InvalidParameter", "The request parameters are not valid percent-encoded UTF-8.".into())
        }
    };
    WireError::new(status, code, message)
}

#[cfg(test)]
mod tests {
    use openvgw_core::Rule;

    use super::*;

    #[test]
    fn documented_codes() {
        let e = from_core(&Error::invalid(Field::LocalSubnets, Rule::HostBitsSet), Action::CreateVpnConnection);
        assert_eq!((e.status, e.code.as_str()), (400, "IllegalParam.LocalSubnet"));
        let e = from_core(&Error::not_found(Kind::VpnGateway, "vpn-x"), Action::DescribeVpnGateway);
        assert_eq!((e.status, e.code.as_str()), (404, "InvalidVpnGatewayInstanceId.NotFound"));
        let e = from_core(&Error::not_found(Kind::VpnGateway, "vpn-x"), Action::ModifyVpnGatewayAttribute);
        assert_eq!(e.status, 400);
        let e = from_core(&Error::not_found(Kind::VpnGateway, "vpn-x"), Action::TagResources);
        assert_eq!((e.status, e.code.as_str()), (404, "InvalidResourceId.NotFound"));
        let e = from_core(&Error::invalid(Field::Bandwidth, Rule::OneOf(&[5, 10])), Action::CreateVpnGateway);
        assert_eq!(e.code, "InvalidBandwidth");
        let e = from_core(
            &Error::invalid(Field::IkeLifetime, Rule::Range { min: 0, max: 86400 }),
            Action::CreateVpnConnection,
        );
        assert_eq!(e.code, "InvalidIkeConfig");
        assert_eq!(WireError::missing("VpcId").code, "MissingVpcId");
        assert_eq!(from_core(&Error::Internal("boom".into()), Action::DescribeVpnGateways).status, 500);
        let e = from_core(&Error::PoolExhausted(Pool::VpcAddresses), Action::CreateVpnGateway);
        assert_ne!(e.code, "Resource.QuotaFull", "running out of addresses is not a quota");
    }

    #[test]
    fn auth_codes_statuses_and_messages() {
        let not_found = from_auth(&AuthError::AccessKeyNotFound { access_key_id: "LTAIxxxx".into() });
        assert_eq!((not_found.status, not_found.code.as_str()), (404, "InvalidAccessKeyId.NotFound"));
        assert_eq!(not_found.message, "Specified access key is not found.");
        let mismatch = from_auth(&AuthError::SignatureDoesNotMatch { string_to_sign: "POST&%2F&A%3D1".into() });
        assert_eq!(mismatch.status, 400);
        // What the legacy SDK does with the message: split(':')[1] must be the string to sign.
        assert_eq!(mismatch.message.split(':').nth(1), Some("POST&%2F&A%3D1"));
        for (err, code) in [
            (AuthError::MissingSignature, "MissingSignature"),
            (AuthError::MissingSignatureNonce, "MissingSignatureNonce"),
            (AuthError::MissingTimestamp, "MissingTimestamp"),
            (AuthError::InvalidSignatureVersion, "InvalidSignatureVersion"),
            (AuthError::ContentSha256Mismatch, "InvalidContentSha256"),
            (AuthError::TimestampExpired { timestamp: "x".into() }, "InvalidTimeStamp.Expired"),
            (AuthError::InvalidTimestampFormat, "InvalidTimeStamp.Format"),
            (AuthError::SignatureNonceUsed, "SignatureNonceUsed"),
            (AuthError::SignatureNonceTooLong { max: 128 }, "InvalidParameter"),
            (AuthError::AccessKeyDisabled { access_key_id: "LTAIxxxx".into() }, "InvalidAccessKeyId.Inactive"),
            (AuthError::ReplayCacheFull, "Throttling.User"),
            (AuthError::MissingAccessKeyId, "MissingAccessKeyId"),
            (AuthError::InvalidSignatureMethod, "InvalidSignatureMethod"),
            (AuthError::IncompleteSignature { reason: "x" }, "IncompleteSignature"),
        ] {
            let w = from_auth(&err);
            assert_eq!((w.status, w.code.as_str()), (400, code));
            assert!(!w.message.is_empty());
        }
        assert_eq!(
            from_auth(&AuthError::MissingSignatureNonce).message,
            "SignatureNonce is mandatory for this action."
        );
        assert_eq!(
            from_auth(&AuthError::TimestampExpired { timestamp: "x".into() }).message,
            "Specified time stamp or date value is expired."
        );
    }
}
