//! Alibaba's documented defaults, and its vendor-only attributes stored beside the neutral model.

use openvgw_core::crypto::{
    AuthMethod, DhGroup, Dpd, EncapsulationMode, Encryption, IdentityType, IkeConfig, IkeVersion, Integrity,
    IpsecConfig, NegotiationMode, SslCipher, TransformProtocol, Transport,
};
use openvgw_core::model::{Extension, HealthCheck};
use serde::{Deserialize, Serialize};

/// Phase 1 of a new connection (seed 7.1: ikev1, main, aes, md5, group2, 86400 s).
pub fn connection_ike() -> IkeConfig {
    IkeConfig {
        version: IkeVersion::V1,
        mode: NegotiationMode::Main,
        encryption: Encryption::Aes128,
        integrity: Integrity::Md5,
        dh_group: DhGroup::Group2,
        auth_method: AuthMethod::PreSharedKey,
        lifetime_s: 86_400,
        local_id_type: IdentityType::Ip,
        local_id: String::new(),
        remote_id_type: IdentityType::Ip,
        remote_id: String::new(),
        dpd: dpd(),
    }
}

/// Alibaba publishes no DPD timers (only `EnableDpd`): a check after 10 s idle, re-sent every 10 s — the peer is
/// noticed gone about half a minute after it went quiet.
fn dpd() -> Dpd {
    Dpd { interval_s: 10, timeout_s: 10, ..Dpd::default() }
}

/// Phase 2 of a new connection (aes, md5, group2, 86400 s).
pub fn connection_ipsec() -> IpsecConfig {
    IpsecConfig {
        encryption: Encryption::Aes128,
        integrity: Integrity::Md5,
        pfs: Some(DhGroup::Group2),
        lifetime_s: 86_400,
        transform: TransformProtocol::Esp,
        encapsulation: EncapsulationMode::Tunnel,
    }
}

pub fn health_check() -> HealthCheck {
    HealthCheck { enable: false, dip: None, sip: None, interval_s: 3, retry: 3 }
}

/// The local BGP ASN of a connection unless given (Alibaba's own).
pub const LOCAL_ASN: u64 = 45104;

/// IPsec servers: ikev2, aes, sha1, group2.
pub fn ipsec_server_ike() -> IkeConfig {
    IkeConfig { version: IkeVersion::V2, integrity: Integrity::Sha1, ..connection_ike() }
}

pub fn ipsec_server_ipsec() -> IpsecConfig {
    IpsecConfig { integrity: Integrity::Sha1, ..connection_ipsec() }
}

pub const SSL_TRANSPORT: Transport = Transport::Udp;
pub const SSL_CIPHER: SslCipher = SslCipher::Aes128Cbc;
pub const SSL_PORT: u16 = 1194;
pub const SSL_CONNECTIONS: u32 = 5;

/// A gateway's billing attributes, which only Alibaba has.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GatewayBilling {
    /// `PREPAY` or `POSTPAY`.
    pub charge_type: String,
    pub period_months: Option<u32>,
    pub end_time: i64,
    pub auto_pay: bool,
    pub order_id: i64,
    /// The second zone's vSwitch of a gateway with a disaster recovery address (for dual-tunnel connections).
    #[serde(default)]
    pub disaster_recovery_vswitch_id: String,
}

impl Extension for GatewayBilling {
    const KEY: &'static str = "aliyun";
}

/// Multi-factor authentication through IDaaS, which only Alibaba's SSL-VPN servers have.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SslServerMfa {
    pub enable_multi_factor_auth: bool,
    pub idaas_instance_id: String,
    pub idaas_region_id: String,
}

impl Extension for SslServerMfa {
    const KEY: &'static str = "aliyun";
}
