//! Typed domain errors. Nothing here is wire text: each dialect keeps one table from these to its codes, HTTP
//! statuses and messages, and names fields with its own parameter names.

use std::fmt;

use crate::ids::Kind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A domain field a validation error refers to. Dialects translate it to their parameter names (Alibaba folds the
/// `Ike*` fields into its `IkeConfig` parameter, Huawei spells them `ikepolicy.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Name,
    Description,
    VpcId,
    SubnetId,
    Bandwidth,
    /// National-standard (GM) vs standard cryptography.
    CryptoSuite,
    SslMaxConnections,
    HaMode,
    GatewayAddress,
    LocalSubnets,
    /// A peer's (customer gateway's) public address.
    PeerAddress,
    PeerIdentity,
    Asn,
    BgpAuthKey,
    RemoteSubnets,
    PolicyRules,
    ConnectionMode,
    Psk,
    IkeVersion,
    IkeMode,
    IkeEncryption,
    IkeIntegrity,
    IkeDhGroup,
    IkeLifetime,
    LocalId,
    RemoteId,
    Dpd,
    IpsecEncryption,
    IpsecIntegrity,
    IpsecPfs,
    IpsecLifetime,
    HealthCheck,
    /// The /30 (inside 169.254.0.0/16) a route-based or BGP tunnel numbers its ends from.
    TunnelCidr,
    TunnelLocalAddress,
    RemoteCaCertificate,
    ClientIpPool,
    Port,
    Transport,
    Cipher,
    MultiFactorAuth,
    RouteDest,
    RouteSource,
    NextHop,
    Weight,
    Priority,
    TagKey,
    TagValue,
    ResourceType,
    ResourceId,
    CertificateId,
    CertificateType,
    TimeRange,
    PageNumber,
    PageSize,
    PageToken,
    ClientToken,
    UserName,
    Password,
    StaticIp,
    UserGroup,
    ClientCa,
    DestinationCidrs,
    ClientAuth,
    DnsServers,
}

/// Why a value was refused. `Display` gives neutral English; dialects may word it their own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The value is needed here (e.g. a key that another setting depends on).
    Required,
    /// Length in characters out of `min..=max`.
    Length {
        min: usize,
        max: usize,
    },
    /// A number out of `min..=max`.
    Range {
        min: i64,
        max: i64,
    },
    /// A number not in the allowed set.
    OneOf(&'static [u32]),
    /// Not a value of the enumeration this field takes.
    NotInEnum,
    /// Names: start with a letter, then letters, digits and a few symbols; never a URL.
    NameFormat,
    /// Descriptions: start with a letter, no control characters, never a URL.
    DescriptionFormat,
    /// Ids: the shape this dialect issues (e.g. `vpc-…`, a UUID).
    IdFormat,
    /// Printable ASCII without spaces (keys, identities).
    Printable,
    /// Reserved words or prefixes (tag keys starting with a vendor prefix).
    Reserved,
    NotAnAddress,
    NotUnicast,
    NotACidr,
    /// A CIDR block with host bits set.
    HostBitsSet,
    /// The same value listed twice.
    Duplicate,
    /// Prefix length out of `min..=max`.
    PrefixLength {
        min: u8,
        max: u8,
    },
    /// Overlaps another block (given).
    Overlaps(String),
    /// Not inside the block (given).
    NotInside(String),
    /// An empty time range or one that ends before it starts.
    EmptyRange,
    /// A paging token this service did not issue.
    UnknownToken,
    /// Not allowed together with the given setting (a cross-field rule).
    Conflicts(&'static str),
    /// Not valid for this kind of resource (e.g. a setting only national-standard gateways take).
    NotApplicable,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Required => f.write_str("is required here"),
            Rule::Length { min, max } => write!(f, "must be {min}-{max} characters long"),
            Rule::Range { min, max } => write!(f, "must be between {min} and {max}"),
            Rule::OneOf(values) => {
                let list: Vec<String> = values.iter().map(ToString::to_string).collect();
                write!(f, "must be one of {}", list.join(", "))
            }
            Rule::NotInEnum => f.write_str("is not one of the accepted values"),
            Rule::NameFormat => f.write_str(
                "must start with a letter and contain only letters, digits, underscores, hyphens or periods",
            ),
            Rule::DescriptionFormat => f.write_str("must start with a letter and contain no control characters"),
            Rule::IdFormat => f.write_str("is not a well-formed id"),
            Rule::Printable => f.write_str("must be printable ASCII without spaces"),
            Rule::Reserved => f.write_str("uses a reserved prefix or value"),
            Rule::NotAnAddress => f.write_str("is not an IPv4 address"),
            Rule::NotUnicast => f.write_str("is not a usable unicast address"),
            Rule::NotACidr => f.write_str("is not a CIDR block"),
            Rule::HostBitsSet => f.write_str("has host bits set"),
            Rule::Duplicate => f.write_str("lists a value twice"),
            Rule::PrefixLength { min, max } => write!(f, "must have a prefix length between {min} and {max}"),
            Rule::Overlaps(other) => write!(f, "overlaps {other}"),
            Rule::NotInside(outer) => write!(f, "must lie inside {outer}"),
            Rule::EmptyRange => f.write_str("is an empty range"),
            Rule::UnknownToken => f.write_str("is not a token this service issued"),
            Rule::Conflicts(with) => write!(f, "cannot be combined with {with}"),
            Rule::NotApplicable => f.write_str("does not apply to this resource"),
        }
    }
}

/// Quotas a tenant can exhaust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    VpnGateways,
    CustomerGateways,
    /// Connections of one gateway.
    Connections,
    /// Connections of a tenant in one region.
    RegionConnections,
    RouteEntries,
    Tags,
    SslVpnServers,
    SslClientCerts,
    VpnUsers,
    UserGroups,
    AccessPolicies,
    ClientCas,
}

/// Address pools the service allocates from. Running one dry is not a tenant's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Public addresses (`[dataplane] eip_pool`).
    PublicIps,
    /// Address blocks for VPCs not declared in the config (`vpc_auto_cidr`).
    VpcBlocks,
    /// Inside addresses of gateways in one VPC.
    VpcAddresses,
}

/// A state rule that refuses an otherwise valid request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Route auto-propagation cannot be turned off while connections run BGP.
    BgpConnectionsExist,
    /// A BGP authentication key needs the peer's ASN.
    AsnRequiredForAuthKey,
    /// The gateway does not run the service the request is for (SSL-VPN on an IPsec-only gateway).
    ServiceDisabled,
    /// Certificates are for national-standard (GM) gateways only.
    NotNationalStandard,
    /// The built-in user group cannot be changed or deleted.
    BuiltinGroup,
    /// A password change needs the current password.
    WrongPassword,
    /// A new password may not repeat a recent one.
    PasswordReused,
    /// The operation does not fit how the server authenticates clients (users on a certificate server…).
    WrongClientAuth,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{field:?} {rule}")]
    Invalid { field: Field, rule: Rule },
    #[error("{kind:?} {id} does not exist")]
    NotFound { kind: Kind, id: String },
    #[error("{kind:?} already exists: {what}")]
    AlreadyExists { kind: Kind, what: String },
    #[error("quota {quota:?} is full (limit {limit})")]
    QuotaFull { quota: Quota, limit: u64 },
    #[error("address pool {0:?} is exhausted")]
    PoolExhausted(Pool),
    /// A change collides with one the gateway is still applying (or the gateway is being deleted).
    #[error("the VPN gateway {id} is {status:?}")]
    GatewayBusy { id: String, status: crate::model::GatewayStatus },
    #[error("{kind:?} {id} is still used by a {by:?}")]
    InUse { kind: Kind, id: String, by: Kind },
    #[error("precondition failed: {0:?}")]
    Precondition(Precondition),
    #[error("the request repeats a client token with different parameters")]
    IdempotentParameterMismatch,
    #[error("request validation has been passed with DryRun flag set")]
    DryRunOperation,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: Field, rule: Rule) -> Self {
        Error::Invalid { field, rule }
    }
    pub fn not_found(kind: Kind, id: impl Into<String>) -> Self {
        Error::NotFound { kind, id: id.into() }
    }
    pub fn internal(e: impl fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}
