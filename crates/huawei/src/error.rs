//! Huawei's wire errors: `{"error_code","error_msg","request_id"}` with the codes and HTTP statuses of the
//! reference's appendix. Every core and authentication error maps here and nowhere else; field names become
//! Huawei's request field names here too.

use openvgw_auth::AuthError;
use openvgw_core::model::GatewayStatus;
use openvgw_core::{Error, Field, Kind, Pool, Precondition, Quota, Rule};

use crate::ops::Family;

#[derive(Debug, Clone)]
pub struct HwError {
    pub status: u16,
    pub code: String,
    pub msg: String,
    /// What went wrong inside, for the log only (never sent).
    pub cause: Option<String>,
    /// A throttled request may be retried after this many seconds (`Retry-After`).
    pub retry_after_s: Option<u64>,
}

impl openvgw_api::ApiError for HwError {
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

impl HwError {
    pub fn new(status: u16, code: &str, msg: impl Into<String>) -> Self {
        HwError { status, code: code.to_string(), msg: msg.into(), cause: None, retry_after_s: None }
    }

    /// 400 `VPN.0001`, the code for any request the reference has no dedicated code for.
    pub fn invalid(detail: impl std::fmt::Display) -> Self {
        HwError::new(400, "VPN.0001", format!("invalid request: {detail}"))
    }

    pub fn internal() -> Self {
        HwError::new(500, "VPN.0002", "server error: internal error")
    }

    pub fn forbidden(detail: impl std::fmt::Display) -> Self {
        HwError::new(403, "VPN.0003", format!("Authentication failed: {detail}"))
    }

    pub fn not_found() -> Self {
        HwError::new(404, "VPN.0004", "resource not found")
    }

    /// APIG's answer to a path it does not know.
    pub fn no_such_api() -> Self {
        HwError::new(404, "APIGW.0101", "The API does not exist or has not been published in the environment")
    }

    pub fn method_not_allowed() -> Self {
        HwError::new(405, "APIGW.0101", "The API does not exist or has not been published in the environment")
    }
}

/// The request field a domain field is.
pub fn field_name(f: Field) -> &'static str {
    match f {
        Field::Name => "name",
        Field::Description => "description",
        Field::VpcId => "vpc_id",
        Field::SubnetId => "connect_subnet",
        Field::Bandwidth => "bandwidth_size",
        Field::CryptoSuite => "flavor",
        Field::SslMaxConnections => "max_connection_number",
        Field::HaMode => "ha_role",
        Field::GatewayAddress => "vgw_ip",
        Field::LocalSubnets => "local_subnets",
        Field::PeerAddress | Field::PeerIdentity => "id_value",
        Field::Asn => "bgp_asn",
        Field::BgpAuthKey => "auth_key",
        Field::RemoteSubnets => "peer_subnets",
        Field::PolicyRules => "policy_rules",
        Field::ConnectionMode => "style",
        Field::Psk => "psk",
        Field::IkeVersion => "ikepolicy.ike_version",
        Field::IkeMode => "ikepolicy.phase1_negotiation_mode",
        Field::IkeEncryption => "ikepolicy.encryption_algorithm",
        Field::IkeIntegrity => "ikepolicy.authentication_algorithm",
        Field::IkeDhGroup => "ikepolicy.dh_group",
        Field::IkeLifetime => "ikepolicy.lifetime_seconds",
        Field::LocalId => "ikepolicy.local_id",
        Field::RemoteId => "ikepolicy.peer_id",
        Field::Dpd => "ikepolicy.dpd",
        Field::IpsecEncryption => "ipsecpolicy.encryption_algorithm",
        Field::IpsecIntegrity => "ipsecpolicy.authentication_algorithm",
        Field::IpsecPfs => "ipsecpolicy.pfs",
        Field::IpsecLifetime => "ipsecpolicy.lifetime_seconds",
        Field::HealthCheck => "enable_nqa",
        Field::TunnelCidr | Field::TunnelLocalAddress => "tunnel_local_address",
        Field::RemoteCaCertificate => "ca_certificate",
        Field::ClientIpPool => "client_cidr",
        Field::Port => "ssl_options.port",
        Field::Transport => "ssl_options.protocol",
        Field::Cipher => "ssl_options.encryption_algorithm",
        Field::MultiFactorAuth => "idp_name",
        Field::RouteDest | Field::RouteSource => "destination",
        Field::NextHop => "nexthop",
        Field::Weight | Field::Priority => "priority",
        Field::TagKey => "tags.key",
        Field::TagValue => "tags.value",
        Field::ResourceType => "resource_type",
        Field::ResourceId => "resource_id",
        Field::CertificateId => "certificate_id",
        Field::CertificateType => "certificate",
        Field::TimeRange => "time",
        Field::PageNumber => "offset",
        Field::PageSize => "limit",
        Field::PageToken => "marker",
        Field::ClientToken => "X-Client-Token",
        Field::UserName => "name",
        Field::Password => "password",
        Field::StaticIp => "static_ip",
        Field::UserGroup => "user_group_id",
        Field::ClientCa => "client_ca_certificates",
        Field::DestinationCidrs => "dest_ip_cidrs",
        Field::ClientAuth => "client_auth_type",
        Field::DnsServers => "dns_servers",
    }
}

fn state_word(s: GatewayStatus) -> &'static str {
    match s {
        GatewayStatus::Init | GatewayStatus::Provisioning => "CREATING",
        GatewayStatus::Updating => "UPDATING",
        GatewayStatus::Deleting => "DELETING",
        GatewayStatus::Active => "ACTIVE",
    }
}

fn invalid(field: Field, rule: &Rule, family: Family) -> HwError {
    if family == Family::P2c {
        let code = match (field, rule) {
            (Field::ClientIpPool, Rule::PrefixLength { .. }) => Some((
                "VPN.1107".to_string(),
                "The mask length of the client CIDR block must in the range of 16 to 26.".to_string(),
            )),
            (Field::ClientIpPool, Rule::Overlaps(other)) => {
                Some(("VPN.1119".into(), format!("The client CIDR block conflicts with the local CIDR block {other}.")))
            }
            (Field::ClientIpPool, _) => Some(("VPN.1103".into(), "CIDR block client_cidr is invalid.".into())),
            (Field::LocalSubnets, Rule::Required) => {
                Some(("VPN.1118".into(), "The local CIDR block cannot be empty.".into()))
            }
            (Field::LocalSubnets, Rule::Duplicate) => Some(("VPN.1106".into(), "Duplicate local subnet.".into())),
            (Field::LocalSubnets, _) => Some(("VPN.1103".into(), "CIDR block local_subnets is invalid.".into())),
            (Field::DestinationCidrs, Rule::Duplicate) => {
                Some(("VPN.1404".into(), "Duplicate destination CIDR block".into()))
            }
            (Field::DestinationCidrs, _) => {
                Some(("VPN.1403".into(), "The destination CIDR block dest_ip_cidrs is invalid.".into()))
            }
            (Field::ClientCa, Rule::Required) => {
                Some(("VPN.1101".into(), "At least one client CA certificate is required.".into()))
            }
            (Field::UserGroup, Rule::NotApplicable) => {
                Some(("VPN.1305".into(), "The user is not in the current user group.".into()))
            }
            _ => None,
        };
        if let Some((code, msg)) = code {
            return HwError { status: 400, code, msg, cause: None, retry_after_s: None };
        }
    }
    HwError::invalid(format!("{} {rule}", field_name(field)))
}

fn not_found(kind: Kind, id: &str, family: Family) -> HwError {
    match (kind, family) {
        (Kind::VpnGateway, Family::P2c) => HwError::new(404, "VPN.0509", "The gateway does not exist."),
        (Kind::SslVpnServer, _) => HwError::new(404, "VPN.1116", "The server does not exist."),
        (Kind::ClientCa, _) => HwError::new(404, "VPN.1115", format!("Client CA certificate {id} does not exist.")),
        (Kind::VpnUser, _) => HwError::new(404, "VPN.1303", "The user does not exist."),
        (Kind::UserGroup, _) => HwError::new(404, "VPN.1301", "The user group does not exist."),
        // The reference lists this one with 400.
        (Kind::AccessPolicy, _) => HwError::new(400, "VPN.1401", "The access policy does not exist."),
        (Kind::ClientSession, _) => HwError::new(404, "VPN.0563", "The connection does not exists."),
        _ => HwError::not_found(),
    }
}

/// The one mapping from core errors to Huawei codes; `family` tells site-to-cloud and client-to-site operations
/// apart where the reference gives them different codes.
pub fn from_core(e: &Error, family: Family) -> HwError {
    match e {
        Error::Invalid { field, rule } => invalid(*field, rule, family),
        Error::NotFound { kind, id } => not_found(*kind, id, family),
        Error::AlreadyExists { kind, what } => match kind {
            Kind::SslVpnServer => HwError::new(400, "VPN.1102", "The number of servers exceeds the upper limit."),
            Kind::VpnUser => HwError::new(400, "VPN.1302", "The username already exists."),
            Kind::UserGroup => HwError::new(400, "VPN.1300", "The user group name already exists."),
            Kind::ClientCa => HwError::new(400, "VPN.0077", format!("Duplicate certificate: {what}.")),
            Kind::CustomerGateway => HwError::invalid(format!("customer gateway {what} already exists")),
            Kind::VpnConnection => HwError::invalid(format!("a connection from {what} already exists")),
            Kind::ConnectionMonitor => HwError::invalid(format!("connection {what} already has a monitor")),
            Kind::GatewayCertificate => HwError::invalid(format!("gateway {what} already has a certificate")),
            _ => HwError::invalid(format!("{what} already exists")),
        },
        Error::QuotaFull { quota, limit } => match quota {
            Quota::VpnGateways => HwError::new(400, "VPN.0513", "Insufficient gateway quota."),
            Quota::SslVpnServers => HwError::new(400, "VPN.1102", "The number of servers exceeds the upper limit."),
            Quota::VpnUsers => HwError::new(400, "VPN.1307", "The number of users exceeds the upper limit."),
            Quota::UserGroups => {
                HwError::new(400, "VPN.1306", "The number of user groups exceeds the upper limit (50).")
            }
            Quota::AccessPolicies => {
                HwError::new(400, "VPN.1400", "The number of access policies exceeds the upper limit (100).")
            }
            Quota::ClientCas => {
                HwError::new(400, "VPN.1111", "The number of client CA certificates exceeds the upper limit.")
            }
            Quota::Connections => HwError::new(
                400,
                "VPN.0504",
                "The number of connections exceeds the upper limit defined by the specification.",
            ),
            other => HwError::invalid(format!("the {other:?} quota ({limit}) is used up")),
        },
        Error::PoolExhausted(pool) => match pool {
            Pool::PublicIps => HwError::new(400, "VPN.0560", "EIP quota not enough."),
            Pool::VpcAddresses => {
                HwError::new(400, "VPN.0502", "Interconnection subnet has insufficient available IP addresses.")
            }
            Pool::VpcBlocks => HwError::new(400, "VPN.0505", "Gateway resources are insufficient."),
        },
        Error::GatewayBusy { id, status } => match family {
            Family::P2c => match status {
                GatewayStatus::Init | GatewayStatus::Provisioning => {
                    HwError::new(400, "VPN.0506", "The gateway is being created, please try again later.")
                }
                GatewayStatus::Deleting => HwError::new(400, "VPN.0508", "The gateway is being deleted."),
                _ => HwError::new(400, "VPN.0507", "The gateway is being updated, please try again later."),
            },
            // The reference's examples answer a change to a gateway that is still busy this way (appendix: 403).
            _ => HwError::new(
                403,
                "VPN.0003",
                format!("resource (type=GATEWAY, ID={id}) is not ready, currently {}", state_word(*status)),
            ),
        },
        Error::InUse { kind, id, by } => match (kind, by) {
            (Kind::CustomerGateway, _) => HwError::invalid(format!("customer gateway {id} has connection")),
            (Kind::UserGroup, Kind::AccessPolicy) => HwError::new(
                400,
                "VPN.1313",
                "The user group has been associated with an access policy. Delete the access policy first.",
            ),
            (Kind::SslVpnServer, Kind::VpnUser) => {
                HwError::new(400, "VPN.1122", "There are users on the server. Delete them first.")
            }
            (Kind::SslVpnServer, Kind::UserGroup) => {
                HwError::new(400, "VPN.1123", "There are user groups on the server. Delete them first.")
            }
            (Kind::SslVpnServer, Kind::AccessPolicy) => {
                HwError::new(400, "VPN.1124", "There are access policies on the server. Delete them first.")
            }
            (Kind::SslVpnServer, Kind::ClientCa) => {
                HwError::new(400, "VPN.1125", "There are client CA certificates on the server. Delete them first.")
            }
            (Kind::VpnUser, Kind::UserGroup) => {
                HwError::new(400, "VPN.1304", format!("The user {id} has been added to another user group."))
            }
            _ => HwError::invalid(format!("{kind:?} {id} is in use")),
        },
        Error::Precondition(p) => match p {
            Precondition::BuiltinGroup => {
                HwError::new(400, "VPN.1316", "Operations on the default user group are not allowed.")
            }
            Precondition::WrongPassword => HwError::new(400, "VPN.1312", "The old password is incorrect."),
            Precondition::PasswordReused => {
                HwError::new(400, "VPN.1311", "The new password cannot be the same as the old one.")
            }
            Precondition::WrongClientAuth => {
                HwError::invalid("the VPN server's client_auth_type does not allow this operation")
            }
            Precondition::NotNationalStandard => HwError::invalid("only GM gateways take certificates"),
            Precondition::ServiceDisabled => HwError::invalid("the gateway does not serve this"),
            Precondition::BgpConnectionsExist => HwError::invalid("BGP connections exist"),
            Precondition::AsnRequiredForAuthKey => HwError::invalid("bgp_asn is required"),
        },
        Error::IdempotentParameterMismatch => HwError::new(400, "VPN.0031", "Repeated operation."),
        Error::DryRunOperation => HwError::invalid("dry run"),
        Error::Internal(cause) => HwError { cause: Some(cause.clone()), ..HwError::internal() },
    }
}

/// Authentication failures as Huawei's API gateway words them: 401 `APIGW.0301` for every IAM failure; an
/// over-long nonce is an invalid request, and a key over its replay-cache limit is throttled (APIG's 429).
pub fn from_auth(e: &AuthError) -> HwError {
    let detail: String = match e {
        AuthError::SignatureNonceTooLong { max } => {
            return HwError::invalid(format!("the request's nonce is longer than {max} bytes"));
        }
        AuthError::ReplayCacheFull => {
            return HwError::new(429, "APIGW.0308", "The throttling threshold has been reached: too many requests");
        }
        AuthError::SignatureDoesNotMatch { .. } | AuthError::ContentSha256Mismatch => {
            "verify aksk signature fail".into()
        }
        AuthError::AccessKeyNotFound { access_key_id } => format!("ak {access_key_id} not exist"),
        AuthError::AccessKeyDisabled { access_key_id } => format!("ak {access_key_id} is disabled"),
        // APIG's text for a request that carries no credentials at all.
        AuthError::MissingSignature => "x-auth-token not found".into(),
        AuthError::MissingAccessKeyId => "ak not found in Authorization header".into(),
        AuthError::MissingTimestamp => "x-sdk-date not found".into(),
        AuthError::InvalidTimestampFormat => "x-sdk-date is not in the format YYYYMMDDTHHMMSSZ".into(),
        AuthError::TimestampExpired { timestamp } => {
            format!("x-sdk-date {timestamp} differs from the server time by more than the allowed skew")
        }
        AuthError::InvalidSignatureMethod | AuthError::InvalidSignatureVersion => {
            "unsupported signing algorithm".into()
        }
        AuthError::IncompleteSignature { reason } => format!("malformed Authorization header: {reason}"),
        AuthError::MissingSignatureMethod | AuthError::MissingSignatureVersion | AuthError::MissingSignatureNonce => {
            "incomplete signature".into()
        }
        AuthError::SignatureNonceUsed => "request was replayed".into(),
        AuthError::TokenInvalid => "decrypt token fail".into(),
        AuthError::MalformedParameters => "request parameters are not valid UTF-8".into(),
    };
    HwError::new(401, "APIGW.0301", format!("Incorrect IAM authentication information: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes() {
        let e = from_core(&Error::not_found(Kind::VpnGateway, "g"), Family::S2c);
        assert_eq!((e.status, e.code.as_str()), (404, "VPN.0004"));
        let e = from_core(&Error::not_found(Kind::VpnGateway, "g"), Family::P2c);
        assert_eq!((e.status, e.code.as_str()), (404, "VPN.0509"));
        let e = from_core(&Error::not_found(Kind::AccessPolicy, "p"), Family::P2c);
        assert_eq!((e.status, e.code.as_str()), (400, "VPN.1401"));
        let e = from_core(&Error::GatewayBusy { id: "g1".into(), status: GatewayStatus::Provisioning }, Family::S2c);
        assert_eq!(e.code, "VPN.0003");
        assert!(e.msg.contains("ID=g1") && e.msg.contains("CREATING"), "{}", e.msg);
        let e = from_core(&Error::GatewayBusy { id: "g1".into(), status: GatewayStatus::Deleting }, Family::P2c);
        assert_eq!(e.code, "VPN.0508");
        let e = from_core(&Error::invalid(Field::ClientIpPool, Rule::PrefixLength { min: 16, max: 26 }), Family::P2c);
        assert_eq!(e.code, "VPN.1107");
        let e = from_core(&Error::invalid(Field::Name, Rule::NameFormat), Family::S2c);
        assert_eq!((e.status, e.code.as_str()), (400, "VPN.0001"));
        assert!(e.msg.starts_with("invalid request: name "), "{}", e.msg);
        let e = from_core(&Error::PoolExhausted(Pool::VpcAddresses), Family::S2c);
        assert_ne!(e.code, "VPN.0513", "running out of addresses is not a gateway quota");
        assert_eq!(from_core(&Error::Internal("x".into()), Family::S2c).status, 500);
    }

    #[test]
    fn auth_failures_are_apigw_0301() {
        for e in [
            AuthError::SignatureDoesNotMatch { string_to_sign: "s".into() },
            AuthError::AccessKeyNotFound { access_key_id: "AK".into() },
            AuthError::AccessKeyDisabled { access_key_id: "AK".into() },
            AuthError::TokenInvalid,
            AuthError::SignatureNonceUsed,
        ] {
            let w = from_auth(&e);
            assert_eq!((w.status, w.code.as_str()), (401, "APIGW.0301"));
            assert!(w.msg.starts_with("Incorrect IAM authentication information: "));
        }
        assert!(!from_auth(&AuthError::SignatureDoesNotMatch { string_to_sign: "SECRET-STS".into() })
            .msg
            .contains("SECRET-STS"));
        let w = from_auth(&AuthError::SignatureNonceTooLong { max: 128 });
        assert_eq!((w.status, w.code.as_str()), (400, "VPN.0001"));
        let w = from_auth(&AuthError::ReplayCacheFull);
        assert_eq!((w.status, w.code.as_str()), (429, "APIGW.0308"));
    }
}
