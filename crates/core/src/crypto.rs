//! IKE / IPsec proposal types and their strongSwan / libreswan spellings.

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The API spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            /// Case-insensitive parse of the API spelling.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }
    };
}

wire_enum!(IkeVersion { V1 => "ikev1", V2 => "ikev2" });
wire_enum!(IkeMode { Main => "main", Aggressive => "aggressive" });
wire_enum!(
    /// Encryption algorithms (`aes` is AES-128, as Alibaba documents it).
    EncAlg { Aes => "aes", Aes192 => "aes192", Aes256 => "aes256", Des => "des", TripleDes => "3des" }
);
wire_enum!(AuthAlg { Md5 => "md5", Sha1 => "sha1", Sha256 => "sha256", Sha384 => "sha384", Sha512 => "sha512" });
wire_enum!(
    /// Diffie-Hellman groups; `disabled` means no PFS (phase 2 only).
    DhGroup { Group1 => "group1", Group2 => "group2", Group5 => "group5", Group14 => "group14", Group24 => "group24", Disabled => "disabled" }
);

impl EncAlg {
    pub fn strongswan(self) -> &'static str {
        match self {
            EncAlg::Aes => "aes128",
            EncAlg::Aes192 => "aes192",
            EncAlg::Aes256 => "aes256",
            EncAlg::Des => "des",
            EncAlg::TripleDes => "3des",
        }
    }
}

impl AuthAlg {
    pub fn strongswan(self) -> &'static str {
        match self {
            AuthAlg::Md5 => "md5",
            AuthAlg::Sha1 => "sha1",
            AuthAlg::Sha256 => "sha256",
            AuthAlg::Sha384 => "sha384",
            AuthAlg::Sha512 => "sha512",
        }
    }
}

impl DhGroup {
    /// strongSwan DH keyword; `None` for no PFS.
    pub fn strongswan(self) -> Option<&'static str> {
        match self {
            DhGroup::Group1 => Some("modp768"),
            DhGroup::Group2 => Some("modp1024"),
            DhGroup::Group5 => Some("modp1536"),
            DhGroup::Group14 => Some("modp2048"),
            DhGroup::Group24 => Some("modp2048s256"),
            DhGroup::Disabled => None,
        }
    }
}

/// Phase 1 settings of a connection (Alibaba `IkeConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeConfig {
    pub version: IkeVersion,
    pub mode: IkeMode,
    pub enc: EncAlg,
    pub auth: AuthAlg,
    pub pfs: DhGroup,
    pub lifetime: u32,
    pub local_id: String,
    pub remote_id: String,
}

/// Phase 2 settings of a connection (Alibaba `IpsecConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecConfig {
    pub enc: EncAlg,
    pub auth: AuthAlg,
    pub pfs: DhGroup,
    pub lifetime: u32,
}

impl IkeConfig {
    /// strongSwan IKE proposal, e.g. `aes128-sha1-modp1024`.
    pub fn strongswan_proposal(&self) -> String {
        let dh = self.pfs.strongswan().unwrap_or("modp1024");
        format!("{}-{}-{}", self.enc.strongswan(), self.auth.strongswan(), dh)
    }
}

impl IpsecConfig {
    /// strongSwan ESP proposal, e.g. `aes128-sha1-modp1024` (no DH group when PFS is disabled).
    pub fn strongswan_proposal(&self) -> String {
        match self.pfs.strongswan() {
            Some(dh) => format!("{}-{}-{}", self.enc.strongswan(), self.auth.strongswan(), dh),
            None => format!("{}-{}", self.enc.strongswan(), self.auth.strongswan()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_and_strict() {
        assert_eq!(EncAlg::parse("AES256"), Some(EncAlg::Aes256));
        assert_eq!(EncAlg::parse("aes512"), None);
        assert_eq!(DhGroup::parse("Group14"), Some(DhGroup::Group14));
    }

    #[test]
    fn strongswan_proposals() {
        let esp = IpsecConfig { enc: EncAlg::Aes, auth: AuthAlg::Sha1, pfs: DhGroup::Disabled, lifetime: 3600 };
        assert_eq!(esp.strongswan_proposal(), "aes128-sha1");
        let esp = IpsecConfig { pfs: DhGroup::Group14, ..esp };
        assert_eq!(esp.strongswan_proposal(), "aes128-sha1-modp2048");
    }
}
