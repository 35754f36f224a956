//! How Alibaba spells the neutral model: algorithms, states, enums. Parsing is case-insensitive, as the service is.

use openvgw_core::crypto::{DhGroup, Encryption, IkeVersion, Integrity, NegotiationMode, SslCipher, Transport};
use openvgw_core::model::{CryptoSuite, GatewayStatus, TunnelState};

/// A two-way table between a neutral enum and its Alibaba spellings (the first spelling is the one rendered).
macro_rules! spelling {
    ($name:ident, $t:ty { $($v:expr => [$($wire:literal),+]),+ $(,)? }) => {
        pub mod $name {
            use super::*;
            pub const ALL: &[($t, &str)] = &[$($(($v, $wire)),+),+];
            pub fn render(v: $t) -> &'static str {
                ALL.iter().find(|(x, _)| *x == v).map(|(_, w)| *w).unwrap_or("")
            }
            // Not every table is parsed from requests (states are only rendered).
            #[allow(dead_code)]
            pub fn parse(s: &str) -> Option<$t> {
                ALL.iter().find(|(_, w)| w.eq_ignore_ascii_case(s)).map(|(x, _)| *x)
            }
        }
    };
}

spelling!(ike_version, IkeVersion { IkeVersion::V1 => ["ikev1"], IkeVersion::V2 => ["ikev2"] });
spelling!(ike_mode, NegotiationMode { NegotiationMode::Main => ["main"], NegotiationMode::Aggressive => ["aggressive"] });
spelling!(encryption, Encryption {
    // `aes` is AES-128, as Alibaba documents it.
    Encryption::Aes128 => ["aes"],
    Encryption::Aes192 => ["aes192"],
    Encryption::Aes256 => ["aes256"],
    Encryption::Des => ["des"],
    Encryption::TripleDes => ["3des"],
    Encryption::Sm4 => ["sm4"],
    Encryption::Aes128Gcm16 => ["aes128gcm16"],
    Encryption::Aes256Gcm16 => ["aes256gcm16"],
});
spelling!(integrity, Integrity {
    Integrity::Md5 => ["md5"],
    // The seed's own example spells SHA-1 `sha` once.
    Integrity::Sha1 => ["sha1", "sha"],
    Integrity::Sha256 => ["sha256"],
    Integrity::Sha384 => ["sha384"],
    Integrity::Sha512 => ["sha512"],
    Integrity::Sm3 => ["sm3"],
});
spelling!(dh_group, DhGroup {
    DhGroup::Group1 => ["group1"],
    DhGroup::Group2 => ["group2"],
    DhGroup::Group5 => ["group5"],
    DhGroup::Group14 => ["group14"],
    DhGroup::Group15 => ["group15"],
    DhGroup::Group16 => ["group16"],
    DhGroup::Group19 => ["group19"],
    DhGroup::Group20 => ["group20"],
    DhGroup::Group21 => ["group21"],
    DhGroup::Group24 => ["group24"],
});
spelling!(transport, Transport { Transport::Udp => ["UDP"], Transport::Tcp => ["TCP"] });
spelling!(cipher, SslCipher {
    SslCipher::Aes128Cbc => ["AES-128-CBC"],
    SslCipher::Aes192Cbc => ["AES-192-CBC"],
    SslCipher::Aes256Cbc => ["AES-256-CBC"],
    SslCipher::None => ["none"],
});
spelling!(crypto_suite, CryptoSuite { CryptoSuite::Standard => ["Normal"], CryptoSuite::NationalStandard => ["NationalStandard"] });
spelling!(gateway_status, GatewayStatus {
    GatewayStatus::Init => ["init"],
    GatewayStatus::Provisioning => ["provisioning"],
    GatewayStatus::Active => ["active"],
    GatewayStatus::Updating => ["updating"],
    GatewayStatus::Deleting => ["deleting"],
});
spelling!(tunnel_state, TunnelState {
    TunnelState::IkeSaNotEstablished => ["ike_sa_not_established"],
    TunnelState::IkeSaEstablished => ["ike_sa_established"],
    TunnelState::IpsecSaNotEstablished => ["ipsec_sa_not_established"],
    TunnelState::IpsecSaEstablished => ["ipsec_sa_established"],
});

/// PFS: a group, or `disabled`.
pub fn pfs(v: Option<DhGroup>) -> &'static str {
    v.map(dh_group::render).unwrap_or("disabled")
}

pub fn parse_pfs(s: &str) -> Option<Option<DhGroup>> {
    if s.eq_ignore_ascii_case("disabled") {
        Some(None)
    } else {
        dh_group::parse(s).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_strict_and_renders_the_first_spelling() {
        assert_eq!(encryption::parse("AES256"), Some(Encryption::Aes256));
        assert_eq!(encryption::parse("aes512"), None);
        assert_eq!(dh_group::parse("Group14"), Some(DhGroup::Group14));
        assert_eq!(integrity::parse("sha"), Some(Integrity::Sha1));
        assert_eq!(integrity::render(Integrity::Sha1), "sha1");
        assert_eq!(encryption::render(Encryption::Aes128), "aes");
        assert_eq!(parse_pfs("disabled"), Some(None));
        assert_eq!(pfs(Some(DhGroup::Group2)), "group2");
    }
}
