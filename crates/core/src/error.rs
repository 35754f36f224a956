//! Typed domain errors. Each dialect maps them to its wire codes in exactly one table.

use crate::ids::Kind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A domain field a validation error refers to; dialects translate it to their parameter names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Description,
    VpcId,
    VSwitchId,
    Bandwidth,
    Period,
    ChargeType,
    SslConnections,
    VpnType,
    IpAddress,
    Asn,
    AuthKey,
    LocalSubnet,
    RemoteSubnet,
    ClientIpPool,
    Port,
    Proto,
    Cipher,
    Psk,
    IkeConfig,
    IpsecConfig,
    HealthCheckConfig,
    BgpConfig,
    RouteDest,
    RouteSource,
    NextHop,
    Weight,
    NewWeight,
    OverlayMode,
    RouteType,
    TagKey,
    TagValue,
    ResourceType,
    ResourceId,
    CertificateId,
    CertificateType,
    RemoteCaCertificate,
    TimeRange,
    PageNumber,
    PageSize,
    MaxResults,
    NextToken,
    ClientToken,
}

/// Quotas a tenant can exhaust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    VpnGateways,
    CustomerGateways,
    Connections,
    RouteEntries,
    Tags,
    SslVpnServers,
    SslClientCerts,
    PublicIps,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("the value of {field:?} is invalid: {reason}")]
    Invalid { field: Field, reason: String },
    #[error("{kind:?} {id} does not exist")]
    NotFound { kind: Kind, id: String },
    #[error("{kind:?} already exists: {what}")]
    AlreadyExists { kind: Kind, what: String },
    #[error("quota {quota:?} is full (limit {limit})")]
    QuotaFull { quota: Quota, limit: u64 },
    #[error("the VPN gateway is being configured")]
    GatewayConfiguring,
    #[error("SSL-VPN is not enabled on the VPN gateway")]
    SslVpnDisabled,
    #[error("an IPsec server already exists on the VPN gateway")]
    IpsecServerExists,
    #[error("the route entry conflicts with an existing one")]
    RouteConflict,
    #[error("{kind:?} {id} is still used by a {by:?}")]
    InUse { kind: Kind, id: String, by: Kind },
    #[error("route auto-propagation cannot be turned off while connections run BGP")]
    BgpConnectionsExist,
    #[error("an ASN is mandatory when a BGP authentication key is given")]
    MissingAsn,
    #[error("the request repeats a client token with different parameters")]
    IdempotentParameterMismatch,
    #[error("request validation has been passed with DryRun flag set")]
    DryRunOperation,
    #[error("region {0} is not served here")]
    UnknownRegion(String),
    #[error("operation not supported: {0}")]
    Unsupported(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: Field, reason: impl Into<String>) -> Self {
        Error::Invalid { field, reason: reason.into() }
    }
    pub fn not_found(kind: Kind, id: impl Into<String>) -> Self {
        Error::NotFound { kind, id: id.into() }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}
