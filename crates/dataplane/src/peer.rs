//! Customer-side (peer) configuration for a connection: what the on-premises device needs to talk to the gateway,
//! rendered for strongSwan (swanctl.conf) and libreswan (ipsec.conf + ipsec.secrets).
//!
//! The input is the connection as the customer downloads it, seen from the peer: its own address
//! and subnets are the download's `Remote…` fields, the gateway's are the `Local…` fields.

use std::fmt::Write;

use openvgw_core::crypto::{IkeConfig, IkeVersion, IpsecConfig, NegotiationMode};

use crate::proposals;
use crate::DataplaneError;

#[derive(Debug, Clone)]
pub struct PeerSide<'a> {
    /// Connection name in the rendered config (the connection id).
    pub name: &'a str,
    /// The peer's own public address (customer gateway IP).
    pub local_address: &'a str,
    /// The VPN gateway's public address.
    pub remote_address: &'a str,
    pub local_id: &'a str,
    pub remote_id: &'a str,
    pub local_subnets: Vec<String>,
    pub remote_subnets: Vec<String>,
    pub psk: &'a str,
    pub ike: &'a IkeConfig,
    pub ipsec: &'a IpsecConfig,
    pub dpd: bool,
    /// Start the tunnel when the config is loaded (otherwise on traffic).
    pub initiate: bool,
    /// Always wrap ESP in UDP 4500 (the gateway runs userspace ESP, which only speaks ESP-in-UDP).
    pub force_udp_encap: bool,
    /// A BGP connection: the tunnel selects everything (routes and BGP decide what enters it) and carries a BGP
    /// session between the inside addresses.
    pub bgp: Option<PeerBgp>,
}

/// The customer's half of a BGP session over the tunnel.
#[derive(Debug, Clone)]
pub struct PeerBgp {
    /// The customer's inside address with the tunnel's prefix length (`169.254.11.2/30`).
    pub tunnel_address: String,
    /// The gateway's inside address and ASN.
    pub neighbor: String,
    pub neighbor_asn: u64,
    /// The customer's own ASN as the customer gateway records it.
    pub asn: Option<u64>,
}

impl PeerBgp {
    /// What the customer sets up beside the IPsec configuration, as comment lines.
    fn instructions(&self) -> String {
        let asn = self.asn.map_or_else(|| "<your ASN>".to_string(), |a| a.to_string());
        format!(
            "# BGP over this tunnel: the tunnel selects 0.0.0.0/0 both ways, so keep the IPsec daemon from routing into\n\
             # it (strongSwan: charon.install_routes = no; with kernel IPsec give the CHILD_SA if_id_in/if_id_out and\n\
             # create an XFRM interface with that if_id). Put {} on the tunnel device and peer with\n\
             # neighbor {} as {} from local {} as {asn} (hold time 30 s).\n",
            self.tunnel_address,
            self.neighbor,
            self.neighbor_asn,
            self.tunnel_address.split('/').next().unwrap_or_default(),
        )
    }
}

const ANY: &str = "0.0.0.0/0";

impl PeerSide<'_> {
    /// The selectors: everything both ways for BGP.
    fn subnets(&self) -> (Vec<String>, Vec<String>) {
        if self.bgp.is_some() {
            (vec![ANY.into()], vec![ANY.into()])
        } else {
            (self.local_subnets.clone(), self.remote_subnets.clone())
        }
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A PSK as both daemons' secrets files read it back byte for byte: quoted as written, or as `0x…` hex when it starts
/// like an encoded secret (`0x`, `0s`), which strongSwan and libreswan would decode even inside quotes.
fn psk_value(psk: &str) -> String {
    if openvgw_core::ids::is_encoded_secret(psk) {
        format!("0x{}", hex::encode(psk.as_bytes()))
    } else {
        quote(psk)
    }
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// `swanctl.conf` with the connection and its PSK; `Unsupported` for an algorithm strongSwan does not have.
pub fn strongswan(p: &PeerSide) -> Result<String, DataplaneError> {
    strongswan_all(std::slice::from_ref(p))
}

/// One `swanctl.conf` for several connections (a dual-tunnel connection's two tunnels), with one `connections` and
/// one `secrets` section.
pub fn strongswan_all(sides: &[PeerSide]) -> Result<String, DataplaneError> {
    let (mut head, mut conns, mut secrets) = (String::new(), String::new(), String::new());
    for p in sides {
        let _ = writeln!(head, "# openvgw: customer side of {}", p.name);
        if let Some(b) = &p.bgp {
            head.push_str(&b.instructions());
        }
        conns.push_str(&strongswan_connection(p)?);
        let _ = writeln!(secrets, "  ike-{} {{", p.name);
        let _ = writeln!(secrets, "    id-local = {}", p.local_id);
        let _ = writeln!(secrets, "    id-remote = {}", p.remote_id);
        let _ = writeln!(secrets, "    secret = {}", psk_value(p.psk));
        let _ = writeln!(secrets, "  }}");
    }
    Ok(format!("{head}connections {{\n{conns}}}\nsecrets {{\n{secrets}}}\n"))
}

/// One connection's entry of `connections { … }`.
fn strongswan_connection(p: &PeerSide) -> Result<String, DataplaneError> {
    let ike = proposals::strongswan::ike_proposal(p.ike)?;
    let esp = proposals::strongswan::esp_proposal(p.ipsec)?;
    let version = if p.ike.version == IkeVersion::V1 { 1 } else { 2 };
    let mut out = String::new();
    let (local_ts, remote_ts) = p.subnets();
    let _ = writeln!(out, "  {} {{", p.name);
    let _ = writeln!(out, "    version = {version}");
    let _ = writeln!(out, "    local_addrs = {}", p.local_address);
    let _ = writeln!(out, "    remote_addrs = {}", p.remote_address);
    let _ = writeln!(out, "    proposals = {ike}");
    if p.ike.version == IkeVersion::V1 && p.ike.mode == NegotiationMode::Aggressive {
        let _ = writeln!(out, "    aggressive = yes");
    }
    if p.ike.lifetime_s > 0 {
        let _ = writeln!(out, "    rekey_time = {}s", p.ike.lifetime_s);
    }
    if p.dpd {
        // The gateway's own timers: both ends notice a silent peer at about the same time.
        let _ = writeln!(out, "    dpd_delay = {}s", p.ike.dpd.idle_s());
        if p.ike.version == IkeVersion::V1 {
            let _ = writeln!(out, "    dpd_timeout = {}s", p.ike.dpd.dead_after_s());
        }
    }
    if p.force_udp_encap {
        let _ = writeln!(out, "    encap = yes");
    }
    let _ = writeln!(out, "    local {{\n      auth = psk\n      id = {}\n    }}", p.local_id);
    let _ = writeln!(out, "    remote {{\n      auth = psk\n      id = {}\n    }}", p.remote_id);
    let _ = writeln!(out, "    children {{");
    let _ = writeln!(out, "      {} {{", p.name);
    let _ = writeln!(out, "        local_ts = {}", local_ts.join(","));
    let _ = writeln!(out, "        remote_ts = {}", remote_ts.join(","));
    let _ = writeln!(out, "        esp_proposals = {esp}");
    if p.ipsec.lifetime_s > 0 {
        let _ = writeln!(out, "        life_time = {}s", p.ipsec.lifetime_s);
        let _ = writeln!(out, "        rekey_time = {}s", p.ipsec.lifetime_s * 9 / 10);
    }
    if p.dpd {
        let _ = writeln!(out, "        dpd_action = restart");
    }
    let _ = writeln!(out, "        start_action = {}", if p.initiate { "start" } else { "trap" });
    let _ = writeln!(out, "      }}\n    }}\n  }}");
    Ok(out)
}

/// libreswan's config files for the connection.
#[derive(Debug, Clone)]
pub struct LibreswanConfig {
    pub ipsec_conf: String,
    pub ipsec_secrets: String,
}

/// libreswan writes FQDN identities with a leading `@`.
fn lsw_id(id: &str) -> String {
    if is_ip(id) || id.starts_with('@') {
        id.to_string()
    } else {
        format!("@{id}")
    }
}

fn lsw_subnets(key: &str, nets: &[String]) -> String {
    if nets.len() == 1 {
        format!("\t{key}subnet={}\n", nets[0])
    } else {
        format!("\t{key}subnets={{{}}}\n", nets.join(","))
    }
}

/// ipsec.conf and ipsec.secrets; `Unsupported` for an algorithm libreswan does not have.
pub fn libreswan(p: &PeerSide) -> Result<LibreswanConfig, DataplaneError> {
    libreswan_all(std::slice::from_ref(p))
}

/// One `ipsec.conf` (one `config setup`) and one `ipsec.secrets` for several connections (a dual-tunnel
/// connection's two tunnels).
pub fn libreswan_all(sides: &[PeerSide]) -> Result<LibreswanConfig, DataplaneError> {
    let mut out =
        LibreswanConfig { ipsec_conf: String::from("config setup\n\tlogappend=no\n"), ipsec_secrets: String::new() };
    if sides.iter().any(|p| p.ike.version == IkeVersion::V1) {
        // libreswan 4.x refuses IKEv1 unless told to accept it.
        out.ipsec_conf.push_str("\tikev1-policy=accept\n");
    }
    for p in sides {
        let (conn, secret) = libreswan_connection(p)?;
        out.ipsec_conf.push('\n');
        out.ipsec_conf.push_str(&conn);
        out.ipsec_secrets.push_str(&secret);
    }
    Ok(out)
}

/// One connection's `conn` section and its line of the secrets file.
fn libreswan_connection(p: &PeerSide) -> Result<(String, String), DataplaneError> {
    let ike = proposals::libreswan::ike(p.ike)?;
    let esp = proposals::libreswan::esp(p.ipsec)?;
    let mut c = String::new();
    let _ = writeln!(c, "# openvgw: customer side of {}", p.name);
    if let Some(b) = &p.bgp {
        c.push_str(&b.instructions());
    }
    let (left, right) = p.subnets();
    let lacks = proposals::libreswan::lacks_dh_group;
    if lacks(p.ike.dh_group) || p.ipsec.pfs.is_some_and(lacks) {
        // Rendered as configured all the same: the gateway insists on the connection's groups, so only changing them
        // on the connection helps.
        c.push_str(
            "# NOTE: libreswan 4.x (e.g. Debian 12's 4.10) is built without modp768/modp1024/dh24 (DH groups 1, 2, 24)\n\
             # and refuses this connection. Give the connection DH group 5, 14 or an ECP group (19-21) for IKE\n\
             # and for PFS, and render this file again.\n",
        );
    }
    let _ = writeln!(c, "conn {}", p.name);
    let _ = writeln!(c, "\tauthby=secret");
    let _ = writeln!(c, "\tikev2={}", if p.ike.version == IkeVersion::V2 { "yes" } else { "no" });
    if p.ike.version == IkeVersion::V1 && p.ike.mode == NegotiationMode::Aggressive {
        let _ = writeln!(c, "\taggressive=yes");
    }
    let _ = writeln!(c, "\tleft={}", p.local_address);
    let _ = writeln!(c, "\tleftid={}", lsw_id(p.local_id));
    c.push_str(&lsw_subnets("left", &left));
    let _ = writeln!(c, "\tright={}", p.remote_address);
    let _ = writeln!(c, "\trightid={}", lsw_id(p.remote_id));
    c.push_str(&lsw_subnets("right", &right));
    let _ = writeln!(c, "\tike={ike}");
    let _ = writeln!(c, "\tesp={esp}");
    if p.ipsec.pfs.is_none() {
        let _ = writeln!(c, "\tpfs=no");
    }
    if p.ike.lifetime_s > 0 {
        let _ = writeln!(c, "\tikelifetime={}s", p.ike.lifetime_s);
    }
    if p.ipsec.lifetime_s > 0 {
        let _ = writeln!(c, "\tsalifetime={}s", p.ipsec.lifetime_s);
    }
    if p.dpd {
        let _ = writeln!(
            c,
            "\tdpddelay={}\n\tdpdtimeout={}\n\tdpdaction=restart",
            p.ike.dpd.idle_s(),
            p.ike.dpd.dead_after_s()
        );
    }
    let _ = writeln!(c, "\tencapsulation={}", if p.force_udp_encap { "yes" } else { "auto" });
    // The default "ipsec _updown" may resolve to strongSwan's ipsec script where both are present.
    let _ = writeln!(c, "\tleftupdown=/usr/libexec/ipsec/_updown");
    let _ = writeln!(c, "\tauto={}", if p.initiate { "start" } else { "add" });
    let secret = format!("{} {} : PSK {}\n", lsw_id(p.local_id), lsw_id(p.remote_id), psk_value(p.psk));
    Ok((c, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvgw_core::crypto::{
        AuthMethod, DhGroup, Dpd, EncapsulationMode, Encryption, IdentityType, Integrity, TransformProtocol,
    };

    fn side<'a>(ike: &'a IkeConfig, ipsec: &'a IpsecConfig) -> PeerSide<'a> {
        PeerSide {
            name: "vco-1",
            local_address: "198.51.100.2",
            remote_address: "203.0.113.10",
            local_id: "198.51.100.2",
            remote_id: "gw.example",
            local_subnets: vec!["192.168.1.0/24".into()],
            remote_subnets: vec!["10.0.0.0/8".into(), "172.16.0.0/16".into()],
            psk: "s3cr\"et",
            ike,
            ipsec,
            dpd: true,
            initiate: true,
            force_udp_encap: false,
            bgp: None,
        }
    }

    fn proposals() -> (IkeConfig, IpsecConfig) {
        (
            IkeConfig {
                version: IkeVersion::V1,
                mode: NegotiationMode::Aggressive,
                encryption: Encryption::Aes256,
                integrity: Integrity::Sha256,
                dh_group: DhGroup::Group14,
                auth_method: AuthMethod::PreSharedKey,
                lifetime_s: 28800,
                local_id_type: IdentityType::Ip,
                local_id: String::new(),
                remote_id_type: IdentityType::Ip,
                remote_id: String::new(),
                dpd: Dpd::default(),
            },
            IpsecConfig {
                encryption: Encryption::Aes128,
                integrity: Integrity::Sha1,
                pfs: None,
                lifetime_s: 3600,
                transform: TransformProtocol::Esp,
                encapsulation: EncapsulationMode::Tunnel,
            },
        )
    }

    #[test]
    fn strongswan_side() {
        let (ike, ipsec) = proposals();
        let conf = strongswan(&side(&ike, &ipsec)).expect("renders");
        assert!(conf.contains("version = 1\n"));
        assert!(conf.contains("aggressive = yes"));
        assert!(conf.contains("proposals = aes256-sha256-modp2048"));
        assert!(conf.contains("esp_proposals = aes128-sha1\n"));
        assert!(conf.contains("local_ts = 192.168.1.0/24"));
        assert!(conf.contains("remote_ts = 10.0.0.0/8,172.16.0.0/16"));
        assert!(conf.contains("secret = \"s3cr\\\"et\""));
        assert!(conf.contains("start_action = start"));
    }

    #[test]
    fn a_bgp_connection_selects_everything_and_says_how_to_peer() {
        let (ike, ipsec) = proposals();
        let bgp = PeerBgp {
            tunnel_address: "169.254.11.2/30".into(),
            neighbor: "169.254.11.1".into(),
            neighbor_asn: 45104,
            asn: Some(65010),
        };
        let p = PeerSide { bgp: Some(bgp), ..side(&ike, &ipsec) };
        let sw = strongswan(&p).expect("renders");
        assert!(sw.contains("local_ts = 0.0.0.0/0\n") && sw.contains("remote_ts = 0.0.0.0/0\n"), "{sw}");
        let lsw = libreswan(&p).expect("renders").ipsec_conf;
        assert!(lsw.contains("leftsubnet=0.0.0.0/0\n") && lsw.contains("rightsubnet=0.0.0.0/0\n"), "{lsw}");
        for text in [&sw, &lsw] {
            assert!(text.contains("Put 169.254.11.2/30 on the tunnel device"), "{text}");
            assert!(text.contains("neighbor 169.254.11.1 as 45104 from local 169.254.11.2 as 65010"), "{text}");
            assert!(text.contains("install_routes = no"), "{text}");
        }
    }

    /// A dual-tunnel connection's two tunnels: one file with both connections and both secrets, sections once.
    #[test]
    fn two_tunnels_render_into_one_file_each() {
        let (v1, ipsec) = proposals();
        let v2 = IkeConfig { version: IkeVersion::V2, mode: NegotiationMode::Main, ..v1.clone() };
        let first = PeerSide { name: "tun-1", ..side(&v2, &ipsec) };
        let second = PeerSide { name: "tun-2", remote_address: "203.0.113.11", psk: "other", ..side(&v1, &ipsec) };
        let conf = strongswan_all(&[first.clone(), second.clone()]).expect("renders");
        assert_eq!(conf.matches("connections {").count(), 1, "{conf}");
        assert_eq!(conf.matches("secrets {").count(), 1, "{conf}");
        assert!(conf.contains("  tun-1 {") && conf.contains("  tun-2 {") && conf.contains("ike-tun-2 {"), "{conf}");
        assert!(conf.contains("remote_addrs = 203.0.113.10") && conf.contains("remote_addrs = 203.0.113.11"));
        assert!(conf.contains("secret = \"other\""));
        assert_eq!(strongswan(&first).expect("one"), strongswan_all(std::slice::from_ref(&first)).expect("one"));
        let l = libreswan_all(&[first, second]).expect("renders");
        assert_eq!(l.ipsec_conf.matches("config setup").count(), 1, "{}", l.ipsec_conf);
        assert_eq!(l.ipsec_conf.matches("ikev1-policy=accept").count(), 1, "one tunnel is IKEv1");
        assert!(l.ipsec_conf.contains("conn tun-1") && l.ipsec_conf.contains("conn tun-2"));
        assert_eq!(l.ipsec_secrets.lines().count(), 2, "{}", l.ipsec_secrets);
    }

    #[test]
    fn libreswan_side() {
        let (ike, ipsec) = proposals();
        let c = libreswan(&side(&ike, &ipsec)).expect("renders");
        assert!(c.ipsec_conf.contains("ikev2=no"));
        assert!(c.ipsec_conf.contains("ikev1-policy=accept"));
        assert!(c.ipsec_conf.contains("rightid=@gw.example"));
        assert!(c.ipsec_conf.contains("rightsubnets={10.0.0.0/8,172.16.0.0/16}"));
        assert!(c.ipsec_conf.contains("leftsubnet=192.168.1.0/24"));
        assert!(c.ipsec_conf.contains("ike=aes256-sha2_256;modp2048"));
        assert!(c.ipsec_conf.contains("esp=aes128-sha1\n\tpfs=no"));
        assert_eq!(c.ipsec_secrets, "198.51.100.2 @gw.example : PSK \"s3cr\\\"et\"\n");
        assert!(!c.ipsec_conf.contains("NOTE"), "group14 needs no warning");
    }

    #[test]
    fn a_psk_the_daemons_would_decode_is_written_as_hex_of_its_bytes() {
        let (ike, ipsec) = proposals();
        for (psk, written) in [("0xM6jA", "0x30784d366a41"), ("0S00", "0x30533030"), ("x0", "\"x0\"")] {
            let mut p = side(&ike, &ipsec);
            p.psk = psk;
            let conf = strongswan(&p).expect("renders");
            assert!(conf.contains(&format!("secret = {written}\n")), "{psk}: {conf}");
            let c = libreswan(&p).expect("renders");
            assert!(c.ipsec_secrets.ends_with(&format!(": PSK {written}\n")), "{psk}: {}", c.ipsec_secrets);
        }
    }

    #[test]
    fn libreswan_side_warns_about_groups_it_lacks() {
        let (mut ike, mut ipsec) = proposals();
        ike.dh_group = DhGroup::Group2;
        let c = libreswan(&side(&ike, &ipsec)).expect("renders");
        assert!(c.ipsec_conf.contains("ike=aes256-sha2_256;modp1024"), "rendered as configured");
        assert!(c.ipsec_conf.contains("# NOTE: libreswan 4.x"));
        ike.dh_group = DhGroup::Group14;
        ipsec.pfs = Some(DhGroup::Group24);
        let c = libreswan(&side(&ike, &ipsec)).expect("renders");
        assert!(c.ipsec_conf.contains("esp=aes128-sha1;dh24\n") && !c.ipsec_conf.contains("pfs=no"));
        assert!(c.ipsec_conf.contains("# NOTE: libreswan 4.x"));
    }

    #[test]
    fn algorithms_a_daemon_lacks_are_refused() {
        let (mut ike, ipsec) = proposals();
        ike.encryption = Encryption::Sm4;
        assert!(matches!(strongswan(&side(&ike, &ipsec)), Err(DataplaneError::Unsupported { .. })));
        assert!(matches!(libreswan(&side(&ike, &ipsec)), Err(DataplaneError::Unsupported { .. })));
    }
}
