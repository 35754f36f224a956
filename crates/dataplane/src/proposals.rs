//! How each daemon spells the neutral algorithms of [`openvgw_core::crypto`]: strongSwan's proposal keywords
//! (charon over VICI, swanctl.conf), libreswan's `ike=` / `esp=` syntax and OpenVPN's cipher and protocol names.
//! The core model knows none of them on purpose; what a daemon cannot do is an [`DataplaneError::Unsupported`]
//! naming the algorithm, never a guess.

use openvgw_core::crypto::{DhGroup, Encryption, IkeConfig, IkeVersion, Integrity, IpsecConfig, SslCipher, Transport};

use crate::DataplaneError;

fn unsupported(daemon: &'static str, what: impl Into<String>) -> DataplaneError {
    DataplaneError::Unsupported { backend: daemon, what: what.into() }
}

/// IKEv1 defines no AEAD transform for phase 1 (RFC 5282 is IKEv2 only); ESP may still use one.
fn check_ike_aead(daemon: &'static str, ike: &IkeConfig) -> Result<(), DataplaneError> {
    if ike.version == IkeVersion::V1 && ike.encryption.is_aead() {
        return Err(unsupported(
            daemon,
            format!("{:?} for an IKEv1 SA (IKEv1 has no AEAD in phase 1)", ike.encryption),
        ));
    }
    Ok(())
}

/// strongSwan (charon 5.9, swanctl.conf) proposal keywords.
pub mod strongswan {
    use super::*;

    const DAEMON: &str = "strongSwan";

    pub fn encryption(e: Encryption) -> Result<&'static str, DataplaneError> {
        Ok(match e {
            Encryption::Aes128 => "aes128",
            Encryption::Aes192 => "aes192",
            Encryption::Aes256 => "aes256",
            Encryption::Aes128Gcm16 => "aes128gcm16",
            Encryption::Aes256Gcm16 => "aes256gcm16",
            Encryption::Des => "des",
            Encryption::TripleDes => "3des",
            // Upstream strongSwan has no SM4 keyword (only out-of-tree forks do).
            Encryption::Sm4 => return Err(unsupported(DAEMON, "SM4 encryption")),
        })
    }

    pub fn integrity(i: Integrity) -> Result<&'static str, DataplaneError> {
        Ok(match i {
            Integrity::Md5 => "md5",
            Integrity::Sha1 => "sha1",
            Integrity::Sha256 => "sha256",
            Integrity::Sha384 => "sha384",
            Integrity::Sha512 => "sha512",
            Integrity::Sm3 => return Err(unsupported(DAEMON, "SM3 integrity")),
        })
    }

    pub fn dh_group(g: DhGroup) -> &'static str {
        match g {
            DhGroup::Group1 => "modp768",
            DhGroup::Group2 => "modp1024",
            DhGroup::Group5 => "modp1536",
            DhGroup::Group14 => "modp2048",
            DhGroup::Group15 => "modp3072",
            DhGroup::Group16 => "modp4096",
            DhGroup::Group19 => "ecp256",
            DhGroup::Group20 => "ecp384",
            DhGroup::Group21 => "ecp521",
            DhGroup::Group24 => "modp2048s256",
        }
    }

    /// IKE proposal, e.g. `aes128-sha1-modp1024`; an AEAD cipher takes the integrity algorithm as its PRF
    /// (`aes128gcm16-prfsha256-modp2048`).
    pub fn ike_proposal(ike: &IkeConfig) -> Result<String, DataplaneError> {
        check_ike_aead(DAEMON, ike)?;
        let (enc, integ, dh) = (encryption(ike.encryption)?, integrity(ike.integrity)?, dh_group(ike.dh_group));
        Ok(if ike.encryption.is_aead() { format!("{enc}-prf{integ}-{dh}") } else { format!("{enc}-{integ}-{dh}") })
    }

    /// ESP proposal, e.g. `aes128-sha1-modp1024`: no integrity algorithm with an AEAD cipher, no DH group without
    /// PFS.
    pub fn esp_proposal(ipsec: &IpsecConfig) -> Result<String, DataplaneError> {
        let mut parts = vec![encryption(ipsec.encryption)?];
        if !ipsec.encryption.is_aead() {
            parts.push(integrity(ipsec.integrity)?);
        }
        if let Some(g) = ipsec.pfs {
            parts.push(dh_group(g));
        }
        Ok(parts.join("-"))
    }
}

/// libreswan (4.x) `ike=` / `esp=` spellings.
pub mod libreswan {
    use super::*;

    const DAEMON: &str = "libreswan";

    pub fn encryption(e: Encryption) -> Result<&'static str, DataplaneError> {
        Ok(match e {
            Encryption::Aes128 => "aes128",
            Encryption::Aes192 => "aes192",
            Encryption::Aes256 => "aes256",
            // `aes_gcm` is the 16-octet ICV variant (aes_gcm_c).
            Encryption::Aes128Gcm16 => "aes_gcm128",
            Encryption::Aes256Gcm16 => "aes_gcm256",
            Encryption::TripleDes => "3des",
            Encryption::Des => return Err(unsupported(DAEMON, "single DES encryption")),
            Encryption::Sm4 => return Err(unsupported(DAEMON, "SM4 encryption")),
        })
    }

    pub fn integrity(i: Integrity) -> Result<&'static str, DataplaneError> {
        Ok(match i {
            Integrity::Md5 => "md5",
            Integrity::Sha1 => "sha1",
            Integrity::Sha256 => "sha2_256",
            Integrity::Sha384 => "sha2_384",
            Integrity::Sha512 => "sha2_512",
            Integrity::Sm3 => return Err(unsupported(DAEMON, "SM3 integrity")),
        })
    }

    pub fn dh_group(g: DhGroup) -> &'static str {
        match g {
            DhGroup::Group1 => "modp768",
            DhGroup::Group2 => "modp1024",
            DhGroup::Group5 => "modp1536",
            DhGroup::Group14 => "modp2048",
            DhGroup::Group15 => "modp3072",
            DhGroup::Group16 => "modp4096",
            DhGroup::Group19 => "dh19",
            DhGroup::Group20 => "dh20",
            DhGroup::Group21 => "dh21",
            DhGroup::Group24 => "dh24",
        }
    }

    /// DH groups that libreswan 4.x as distributions build it (Debian 12: 4.10) does not have: pluto refuses the
    /// whole connection ("IKE DH algorithm 'modp1024' is not supported").
    pub fn lacks_dh_group(g: DhGroup) -> bool {
        matches!(g, DhGroup::Group1 | DhGroup::Group2 | DhGroup::Group24)
    }

    /// `ike=` value, e.g. `aes256-sha2_256;modp2048`; with an AEAD cipher the second field is the PRF.
    pub fn ike(ike: &IkeConfig) -> Result<String, DataplaneError> {
        check_ike_aead(DAEMON, ike)?;
        Ok(format!("{}-{};{}", encryption(ike.encryption)?, integrity(ike.integrity)?, dh_group(ike.dh_group)))
    }

    /// `esp=` value, e.g. `aes128-sha1` or `aes_gcm128-null;modp2048` (no `;group` without PFS).
    pub fn esp(ipsec: &IpsecConfig) -> Result<String, DataplaneError> {
        let enc = encryption(ipsec.encryption)?;
        let integ = if ipsec.encryption.is_aead() { "null" } else { integrity(ipsec.integrity)? };
        Ok(match ipsec.pfs {
            Some(g) => format!("{enc}-{integ};{}", dh_group(g)),
            None => format!("{enc}-{integ}"),
        })
    }
}

/// OpenVPN 2.6 names.
pub mod openvpn {
    use super::*;

    /// `data-ciphers` name; `none` is accepted by 2.6 for an unencrypted data channel.
    pub fn cipher(c: SslCipher) -> &'static str {
        match c {
            SslCipher::Aes128Cbc => "AES-128-CBC",
            SslCipher::Aes192Cbc => "AES-192-CBC",
            SslCipher::Aes256Cbc => "AES-256-CBC",
            SslCipher::Aes128Gcm => "AES-128-GCM",
            SslCipher::Aes256Gcm => "AES-256-GCM",
            SslCipher::None => "none",
        }
    }

    /// `udp` / `tcp`.
    pub fn transport(t: Transport) -> &'static str {
        match t {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvgw_core::crypto::{AuthMethod, Dpd, EncapsulationMode, IdentityType, NegotiationMode, TransformProtocol};

    fn ike(version: IkeVersion, encryption: Encryption, integrity: Integrity, dh_group: DhGroup) -> IkeConfig {
        IkeConfig {
            version,
            mode: NegotiationMode::Main,
            encryption,
            integrity,
            dh_group,
            auth_method: AuthMethod::PreSharedKey,
            lifetime_s: 86400,
            local_id_type: IdentityType::Ip,
            local_id: String::new(),
            remote_id_type: IdentityType::Ip,
            remote_id: String::new(),
            dpd: Dpd::default(),
        }
    }

    fn esp(encryption: Encryption, integrity: Integrity, pfs: Option<DhGroup>) -> IpsecConfig {
        IpsecConfig {
            encryption,
            integrity,
            pfs,
            lifetime_s: 3600,
            transform: TransformProtocol::Esp,
            encapsulation: EncapsulationMode::Tunnel,
        }
    }

    #[test]
    fn strongswan_classic_proposals_are_unchanged() {
        let p = strongswan::ike_proposal(&ike(IkeVersion::V2, Encryption::Aes128, Integrity::Sha1, DhGroup::Group2));
        assert_eq!(p.expect("spelled"), "aes128-sha1-modp1024");
        let e = esp(Encryption::Aes128, Integrity::Sha1, None);
        assert_eq!(strongswan::esp_proposal(&e).expect("spelled"), "aes128-sha1");
        let e = esp(Encryption::Aes128, Integrity::Sha1, Some(DhGroup::Group14));
        assert_eq!(strongswan::esp_proposal(&e).expect("spelled"), "aes128-sha1-modp2048");
        let e = esp(Encryption::TripleDes, Integrity::Md5, Some(DhGroup::Group24));
        assert_eq!(strongswan::esp_proposal(&e).expect("spelled"), "3des-md5-modp2048s256");
    }

    #[test]
    fn strongswan_aead_takes_no_integrity_in_esp_and_a_prf_in_ike() {
        let e = esp(Encryption::Aes128Gcm16, Integrity::Sha256, Some(DhGroup::Group14));
        assert_eq!(strongswan::esp_proposal(&e).expect("spelled"), "aes128gcm16-modp2048");
        let e = esp(Encryption::Aes256Gcm16, Integrity::Sm3, None);
        assert_eq!(strongswan::esp_proposal(&e).expect("integrity is not negotiated"), "aes256gcm16");
        let i = ike(IkeVersion::V2, Encryption::Aes128Gcm16, Integrity::Sha256, DhGroup::Group14);
        assert_eq!(strongswan::ike_proposal(&i).expect("spelled"), "aes128gcm16-prfsha256-modp2048");
        let i = ike(IkeVersion::V2, Encryption::Aes256Gcm16, Integrity::Sha384, DhGroup::Group20);
        assert_eq!(strongswan::ike_proposal(&i).expect("spelled"), "aes256gcm16-prfsha384-ecp384");
        let v1 = ike(IkeVersion::V1, Encryption::Aes128Gcm16, Integrity::Sha256, DhGroup::Group14);
        assert!(matches!(strongswan::ike_proposal(&v1), Err(DataplaneError::Unsupported { .. })));
    }

    #[test]
    fn strongswan_spells_every_dh_group() {
        let all = [
            (DhGroup::Group1, "modp768"),
            (DhGroup::Group2, "modp1024"),
            (DhGroup::Group5, "modp1536"),
            (DhGroup::Group14, "modp2048"),
            (DhGroup::Group15, "modp3072"),
            (DhGroup::Group16, "modp4096"),
            (DhGroup::Group19, "ecp256"),
            (DhGroup::Group20, "ecp384"),
            (DhGroup::Group21, "ecp521"),
            (DhGroup::Group24, "modp2048s256"),
        ];
        for (g, want) in all {
            assert_eq!(strongswan::dh_group(g), want);
        }
    }

    #[test]
    fn national_algorithms_are_unsupported_not_guessed() {
        let i = ike(IkeVersion::V2, Encryption::Sm4, Integrity::Sha256, DhGroup::Group14);
        let err = strongswan::ike_proposal(&i).expect_err("no SM4 in strongSwan");
        assert!(err.to_string().contains("SM4"), "{err}");
        let i = ike(IkeVersion::V2, Encryption::Aes128, Integrity::Sm3, DhGroup::Group14);
        assert!(matches!(strongswan::ike_proposal(&i), Err(DataplaneError::Unsupported { .. })));
        assert!(libreswan::ike(&i).is_err());
        assert!(libreswan::esp(&esp(Encryption::Des, Integrity::Sha1, None)).is_err());
    }

    #[test]
    fn libreswan_spellings() {
        let i = ike(IkeVersion::V2, Encryption::Aes256, Integrity::Sha256, DhGroup::Group14);
        assert_eq!(libreswan::ike(&i).expect("spelled"), "aes256-sha2_256;modp2048");
        let i = ike(IkeVersion::V2, Encryption::Aes256Gcm16, Integrity::Sha256, DhGroup::Group19);
        assert_eq!(libreswan::ike(&i).expect("spelled"), "aes_gcm256-sha2_256;dh19");
        let e = esp(Encryption::Aes128Gcm16, Integrity::Sha1, Some(DhGroup::Group14));
        assert_eq!(libreswan::esp(&e).expect("spelled"), "aes_gcm128-null;modp2048");
        let e = esp(Encryption::Aes128, Integrity::Sha512, None);
        assert_eq!(libreswan::esp(&e).expect("spelled"), "aes128-sha2_512");
    }

    #[test]
    fn openvpn_names() {
        assert_eq!(openvpn::cipher(SslCipher::Aes128Cbc), "AES-128-CBC");
        assert_eq!(openvpn::cipher(SslCipher::Aes256Gcm), "AES-256-GCM");
        assert_eq!(openvpn::cipher(SslCipher::None), "none");
        assert_eq!(openvpn::transport(Transport::Tcp), "tcp");
    }
}
