//! Alibaba's wire errors. Every core error maps to a code and HTTP status here and nowhere else.

use openvgw_auth::AuthError;
use openvgw_core::{Error, Field, Kind};

#[derive(Debug, Clone)]
pub struct WireError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl WireError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        WireError { status, code: code.into(), message: message.into() }
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
}

fn param_name(f: Field) -> &'static str {
    match f {
        Field::Name => "Name",
        Field::Description => "Description",
        Field::VpcId => "VpcId",
        Field::VSwitchId => "VSwitchId",
        Field::Bandwidth => "Bandwidth",
        Field::Period => "Period",
        Field::ChargeType => "InstanceChargeType",
        Field::SslConnections => "SslConnections",
        Field::VpnType => "VpnType",
        Field::IpAddress => "IpAddress",
        Field::Asn => "Asn",
        Field::AuthKey => "AuthKey",
        Field::LocalSubnet => "LocalSubnet",
        Field::RemoteSubnet => "RemoteSubnet",
        Field::ClientIpPool => "ClientIpPool",
        Field::Port => "Port",
        Field::Proto => "Proto",
        Field::Cipher => "Cipher",
        Field::Psk => "Psk",
        Field::IkeConfig => "IkeConfig",
        Field::IpsecConfig => "IpsecConfig",
        Field::HealthCheckConfig => "HealthCheckConfig",
        Field::BgpConfig => "BgpConfig",
        Field::RouteDest => "RouteDest",
        Field::RouteSource => "RouteSource",
        Field::NextHop => "NextHop",
        Field::Weight => "Weight",
        Field::NewWeight => "NewWeight",
        Field::OverlayMode => "OverlayMode",
        Field::RouteType => "RouteType",
        Field::TagKey => "TagKey",
        Field::TagValue => "TagValue",
        Field::ResourceType => "ResourceType",
        Field::ResourceId => "ResourceId",
        Field::CertificateId => "CertificateId",
        Field::CertificateType => "CertificateType",
        Field::RemoteCaCertificate => "RemoteCaCertificate",
        Field::TimeRange => "From",
        Field::PageNumber => "PageNumber",
        Field::PageSize => "PageSize",
        Field::MaxResults => "MaxResults",
        Field::NextToken => "NextToken",
        Field::ClientToken => "ClientToken",
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
        Kind::RouteEntry | Kind::PbrRouteEntry => {
            ("InvalidVpnRouteEntry.NotFound", "The specified route entry does not exist.")
        }
        _ => ("InvalidResourceId.NotFound", "The specified resource does not exist."),
    }
}

/// The one mapping from core errors to Alibaba codes. `action` covers the seed's per-action exceptions.
pub fn from_core(e: &Error, action: &str) -> WireError {
    match e {
        Error::Invalid { field, reason } => match field {
            Field::Name => WireError::new(400, "InvalidName", "The name is not valid"),
            Field::Description => WireError::new(400, "InvalidDescription", "The description is not valid"),
            Field::IpAddress => WireError::new(400, "InvalidIpAddress.WrongFormat", "Specified IpAddress is invalid."),
            Field::AuthKey => WireError::new(400, "InvalidAuthkey.Malformed", "The specified BGP authentication key is malformed."),
            Field::LocalSubnet | Field::RemoteSubnet | Field::ClientIpPool | Field::Port => {
                let p = param_name(*field);
                WireError::new(400, format!("IllegalParam.{p}"), format!("The specified \"{p}\" {reason}"))
            }
            Field::NextHop => WireError::new(404, "InvalidNextHop.NotFound", format!("The specified next hop does not exist: {reason}")),
            Field::ResourceId => WireError::new(404, "InvalidResourceId.NotFound", format!("The specified resource {reason}.")),
            Field::CertificateId => WireError::new(404, "InvalidCertificateId.NotFound", format!("The specified certificate {reason}.")),
            other => WireError::invalid(param_name(*other), reason),
        },
        Error::NotFound { kind, .. } => {
            let (code, msg) = not_found(*kind);
            // The seed's ModifyVpnGatewayAttribute table lists this one as 400.
            let status = if action == "ModifyVpnGatewayAttribute" && *kind == Kind::VpnGateway { 400 } else { 404 };
            WireError::new(status, code, msg)
        }
        Error::AlreadyExists { kind: Kind::CustomerGateway, .. } => {
            WireError::new(400, "InvalidIpAddress.AlreadyExist", "Specified IpAddress is already exist.")
        }
        Error::AlreadyExists { kind: Kind::VpnConnection, .. } => {
            WireError::new(400, "InvalidVpnConnection.AlreadyExists", "Vpn connection already exists.")
        }
        Error::AlreadyExists { what, .. } => WireError::new(400, "ResourceAlreadyExists", format!("{what} already exists.")),
        Error::QuotaFull { .. } => WireError::new(400, "Resource.QuotaFull", "The quota of resource is full"),
        Error::GatewayConfiguring => WireError::new(400, "VpnGateway.Configuring", "The specified service is configuring."),
        Error::SslVpnDisabled => WireError::new(400, "VpnGateway.SslVpnDisabled", "The VPN gateway has not enabled SSL VPN."),
        Error::IpsecServerExists => {
            WireError::new(400, "OperationFailed.IPsecServerExist", "An IPsec server already exists in the VPN gateway.")
        }
        Error::RouteConflict => WireError::new(400, "VpnRouteEntry.Conflict", "The specified route entry has conflict."),
        Error::InUse { by, .. } => WireError::new(
            400,
            format!("DependencyViolation.{}", if *by == Kind::VpnConnection { "VpnConnection" } else { "Resource" }),
            "The specified resource is still in use.",
        ),
        Error::BgpConnectionsExist => WireError::new(
            400,
            "OperationFailed.VpnConnectionExist",
            "Auto propagate cannot be closed when VPN connections with BGP enabled exist.",
        ),
        Error::MissingAsn => WireError::new(
            400,
            "OperationDenied.MissingAsn",
            "The autonomous system number of the customer gateway is mandatory when BGP authentication key is specified.",
        ),
        Error::IdempotentParameterMismatch => WireError::new(
            400,
            "IdempotentParameterMismatch",
            "The request uses the same client token as a previous, but non-identical request.",
        ),
        Error::DryRunOperation => WireError::new(400, "DryRunOperation", "Request validation has been passed with DryRun flag set."),
        Error::UnknownRegion(r) => WireError::new(404, "InvalidRegionId.NotFound", format!("The specified region {r} does not exist.")),
        Error::Unsupported(what) => WireError::new(400, "OperationUnsupported", format!("The operation is not supported: {what}.")),
        Error::Internal(_) => WireError::new(500, "InternalError", "The request processing has failed due to some unknown error."),
    }
}

pub fn from_auth(e: &AuthError) -> WireError {
    WireError::new(e.http_status(), e.aliyun_code(), e.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes() {
        let e = from_core(&Error::invalid(Field::LocalSubnet, "(1.1.1.1/8) has host bits set"), "CreateVpnConnection");
        assert_eq!((e.status, e.code.as_str()), (400, "IllegalParam.LocalSubnet"));
        let e = from_core(&Error::not_found(Kind::VpnGateway, "vpn-x"), "DescribeVpnGateway");
        assert_eq!((e.status, e.code.as_str()), (404, "InvalidVpnGatewayInstanceId.NotFound"));
        let e = from_core(&Error::not_found(Kind::VpnGateway, "vpn-x"), "ModifyVpnGatewayAttribute");
        assert_eq!(e.status, 400);
        assert_eq!(from_core(&Error::invalid(Field::Bandwidth, "x"), "CreateVpnGateway").code, "InvalidBandwidth");
        assert_eq!(WireError::missing("VpcId").code, "MissingVpcId");
        assert_eq!(from_core(&Error::Internal("boom".into()), "X").status, 500);
    }
}
