//! Huawei's words for the neutral enums, one table each (requests and responses use the same words unless noted).

use openvgw_core::crypto::{
    AuthMethod, DhGroup, DpdMessage, Encryption, IdentityType, IkeVersion, Integrity, NegotiationMode, SslCipher,
};
use openvgw_core::model::{ConnectionMode, GatewayStatus, HaMode, HaRole, JobKind, JobStatus};

pub const ENCRYPTION: &[(&str, Encryption)] = &[
    ("aes-256-gcm-16", Encryption::Aes256Gcm16),
    ("aes-128-gcm-16", Encryption::Aes128Gcm16),
    ("aes-256", Encryption::Aes256),
    ("aes-192", Encryption::Aes192),
    ("aes-128", Encryption::Aes128),
    ("3des", Encryption::TripleDes),
    ("sm4", Encryption::Sm4),
];

pub const INTEGRITY: &[(&str, Integrity)] = &[
    ("sha2-512", Integrity::Sha512),
    ("sha2-384", Integrity::Sha384),
    ("sha2-256", Integrity::Sha256),
    ("sha1", Integrity::Sha1),
    ("md5", Integrity::Md5),
    ("sm3", Integrity::Sm3),
];

pub const DH_GROUP: &[(&str, DhGroup)] = &[
    ("group1", DhGroup::Group1),
    ("group2", DhGroup::Group2),
    ("group5", DhGroup::Group5),
    ("group14", DhGroup::Group14),
    ("group15", DhGroup::Group15),
    ("group16", DhGroup::Group16),
    ("group19", DhGroup::Group19),
    ("group20", DhGroup::Group20),
    ("group21", DhGroup::Group21),
];

/// PFS (and the policy template's groups) also take `disable`.
pub const DISABLE: &str = "disable";

pub const IKE_VERSION: &[(&str, IkeVersion)] = &[("v1", IkeVersion::V1), ("v2", IkeVersion::V2)];

pub const NEGOTIATION_MODE: &[(&str, NegotiationMode)] =
    &[("main", NegotiationMode::Main), ("aggressive", NegotiationMode::Aggressive)];

pub const AUTH_METHOD: &[(&str, AuthMethod)] =
    &[("pre-share", AuthMethod::PreSharedKey), ("digital-envelope-v2", AuthMethod::Certificate)];

pub const ID_TYPE: &[(&str, IdentityType)] = &[("ip", IdentityType::Ip), ("fqdn", IdentityType::Fqdn)];

pub const DPD_MSG: &[(&str, DpdMessage)] =
    &[("seq-hash-notify", DpdMessage::SeqHashNotify), ("seq-notify-hash", DpdMessage::SeqNotifyHash)];

/// Requests spell connection styles in lower case…
pub const STYLE: &[(&str, ConnectionMode)] = &[
    ("static", ConnectionMode::Static),
    ("policy", ConnectionMode::Policy),
    ("bgp", ConnectionMode::Bgp),
    ("policy-template", ConnectionMode::PolicyTemplate),
];

/// …responses in upper case.
pub const STYLE_OUT: &[(&str, ConnectionMode)] = &[
    ("STATIC", ConnectionMode::Static),
    ("POLICY", ConnectionMode::Policy),
    ("BGP", ConnectionMode::Bgp),
    ("POLICY-TEMPLATE", ConnectionMode::PolicyTemplate),
];

pub const HA_MODE: &[(&str, HaMode)] =
    &[("active-active", HaMode::ActiveActive), ("active-standby", HaMode::ActiveStandby)];

pub const HA_ROLE: &[(&str, HaRole)] = &[("master", HaRole::Master), ("slave", HaRole::Slave)];

pub const SSL_CIPHER: &[(&str, SslCipher)] =
    &[("AES-128-GCM", SslCipher::Aes128Gcm), ("AES-256-GCM", SslCipher::Aes256Gcm)];

/// The digest an SSL-VPN server pairs with its cipher (`ssl_options.authentication_algorithm`).
pub fn ssl_auth(c: SslCipher) -> &'static str {
    match c {
        SslCipher::Aes256Gcm | SslCipher::Aes256Cbc => "SHA384",
        _ => "SHA256",
    }
}

/// A gateway's status; site-to-cloud gateways say `FREEZED`, client-to-site ones `FROZEN`, neither is ever
/// frozen here (openvgw does no billing).
pub fn gateway_status(s: GatewayStatus) -> &'static str {
    match s {
        GatewayStatus::Init | GatewayStatus::Provisioning => "PENDING_CREATE",
        GatewayStatus::Updating => "PENDING_UPDATE",
        GatewayStatus::Deleting => "PENDING_DELETE",
        GatewayStatus::Active => "ACTIVE",
    }
}

pub fn job_type(k: JobKind) -> &'static str {
    match k {
        JobKind::Upgrade => "upgrade",
        JobKind::Rollback => "rollback",
    }
}

pub fn job_status(kind: JobKind, s: JobStatus) -> &'static str {
    match (kind, s) {
        (JobKind::Upgrade, JobStatus::Running) => "upgrading",
        (JobKind::Rollback, JobStatus::Running) => "rolling_back",
        (_, JobStatus::AwaitingConfirmation) => "pending_upgrade_confirm",
        (JobKind::Upgrade, JobStatus::Succeeded) => "success",
        (JobKind::Rollback, JobStatus::Succeeded) => "rollback_success",
        (_, JobStatus::Failed) => "fail",
    }
}

pub fn step_status(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Running | JobStatus::AwaitingConfirmation => "upgrading",
        JobStatus::Succeeded => "success",
        JobStatus::Failed => "fail",
    }
}
