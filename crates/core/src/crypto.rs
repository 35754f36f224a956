//! IKE / IPsec / SSL-VPN proposals in neutral terms.
//!
//! Nothing here is spelled the way a vendor or a daemon spells it: each dialect keeps its own table from its wire
//! names to these variants (Alibaba's `aes` is [`Encryption::Aes128`], Huawei's `sha2-256` is
//! [`Integrity::Sha256`]), and each driver its own table to the daemon's keywords (strongSwan's `modp2048` is
//! [`DhGroup::Group14`]). The serde names below are only the storage format.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IkeVersion {
    V1,
    V2,
}

/// IKEv1 phase-1 exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegotiationMode {
    Main,
    Aggressive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    Aes128,
    Aes192,
    Aes256,
    /// AES-GCM with a 16-octet ICV (an AEAD: no separate integrity algorithm is negotiated).
    Aes128Gcm16,
    Aes256Gcm16,
    Des,
    TripleDes,
    /// SM4-CBC (Chinese national standard).
    Sm4,
}

impl Encryption {
    pub fn is_aead(self) -> bool {
        matches!(self, Encryption::Aes128Gcm16 | Encryption::Aes256Gcm16)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    /// SM3 (Chinese national standard).
    Sm3,
}

/// Diffie-Hellman groups by their IANA number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DhGroup {
    Group1,
    Group2,
    Group5,
    Group14,
    Group15,
    Group16,
    Group19,
    Group20,
    Group21,
    Group24,
}

/// Dead-peer detection timers (seconds) and the message kind (`seq-hash-notify` / `seq-notify-hash`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dpd {
    pub interval_s: u32,
    pub timeout_s: u32,
    pub msg: DpdMessage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpdMessage {
    SeqHashNotify,
    SeqNotifyHash,
}

impl Dpd {
    /// The idle time before a liveness check, in whole seconds (at least 1).
    pub fn idle_s(&self) -> u32 {
        self.interval_s.max(1)
    }

    /// How long a peer may stay silent before it counts as dead: the idle time plus two retransmission intervals
    /// (where a daemon takes one overall timeout rather than a retransmission interval: IKEv1 in strongSwan,
    /// libreswan).
    pub fn dead_after_s(&self) -> u32 {
        self.idle_s().saturating_add(self.timeout_s.saturating_mul(2))
    }
}

impl Default for Dpd {
    fn default() -> Self {
        Dpd { interval_s: 30, timeout_s: 15, msg: DpdMessage::SeqHashNotify }
    }
}

/// How the peers prove who they are in phase 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    PreSharedKey,
    Certificate,
}

/// What an IKE identity is (`local_id` / `remote_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityType {
    Ip,
    Fqdn,
}

/// Phase-1 (IKE SA) settings of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeConfig {
    pub version: IkeVersion,
    pub mode: NegotiationMode,
    pub encryption: Encryption,
    pub integrity: Integrity,
    pub dh_group: DhGroup,
    pub auth_method: AuthMethod,
    /// Seconds; 0 means the daemon's default.
    pub lifetime_s: u32,
    pub local_id_type: IdentityType,
    pub local_id: String,
    pub remote_id_type: IdentityType,
    pub remote_id: String,
    pub dpd: Dpd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformProtocol {
    Esp,
    Ah,
    AhEsp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncapsulationMode {
    Tunnel,
    Transport,
}

/// Phase-2 (CHILD SA) settings of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecConfig {
    pub encryption: Encryption,
    pub integrity: Integrity,
    /// `None`: no perfect forward secrecy.
    pub pfs: Option<DhGroup>,
    /// Seconds; 0 means the daemon's default.
    pub lifetime_s: u32,
    pub transform: TransformProtocol,
    pub encapsulation: EncapsulationMode,
}

/// Transport of an SSL-VPN (OpenVPN) server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
}

/// Data-channel cipher of an SSL-VPN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslCipher {
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
    Aes128Gcm,
    Aes256Gcm,
    /// No encryption (Alibaba offers it; OpenVPN 2.6 still accepts `cipher none`).
    None,
}
