//! The gateway's packet filter, in nftables in the gateway's namespace: what may arrive on its public side, and what
//! the clients of password SSL-VPN servers may reach.
//!
//! One table (`ip openvgw`) per gateway namespace, always replaced whole in one `nft -f` transaction, and loaded
//! before the gateway's interfaces exist (rules match interface names), so no packet ever crosses unfiltered.
//!
//! Nothing is forwarded out of `pub0` except into an SA (`rt ipsec missing drop`): the gateway is not a router
//! between the VPC (or its VPN clients) and the public side.
//!
//! Public side (`pub0`): only what a VPN gateway answers may arrive — IKE (UDP 500), NAT-T (UDP 4500), ESP, each
//! SSL-VPN server's OpenVPN port, ICMP errors (path MTU discovery) and, under kernel IPsec, what an SA decrypted (it
//! re-enters on `pub0` carrying its SA; under libipsec it comes out of `ipsec0` instead). Everything else is dropped,
//! above all clear text addressed to the VPC: the gateway forwards between `pub0` and `vpc0`, so without this a host
//! on the public segment could reach the VPC by routing to the gateway's address. Stateless: no conntrack in every
//! gateway namespace.
//!
//! A tunnel with NAT traversal off (Alibaba `EnableNatTraversal=false`) gets UDP-encapsulated ESP refused from its
//! peer to its local address: behind a NAT its ESP cannot cross, as without NAT-T (IKE itself may complete: it
//! floats to port 4500 even without a NAT when MOBIKE is on, so the port alone says nothing). Under libipsec every
//! tunnel is UDP-encapsulated (userspace ESP has no other transport), so there the setting cannot be honoured and is
//! left out (see ARCHITECTURE.md).
//!
//! Password SSL-VPN servers: every packet from a pool (forwarded, or to the gateway itself) is checked, not only the
//! first of a flow: it passes only from a user's own address to that user's allowed networks; everything else from
//! the pool is dropped. Traffic towards the pool (the replies) is not touched. Checking every packet means a narrowed
//! user or a re-assigned address takes effect on flows that conntrack still remembers as established. Certificate
//! servers get no rules (their clients may reach what the server routes).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_core::crypto::Transport;
use sha2::{Digest, Sha256};

use super::backend::IpsecBackend;
use super::names::{self, NS_PUBLIC_IF};
use super::sys::{self, failed};
use super::{GatewayPaths, Inner};
use crate::{ClientAuthIntent, DataplaneError, GatewayIntent};

const TABLE: &str = "openvgw";

/// The gateway's ruleset and its fingerprint (carried in the table's comment, so a look tells whether the loaded
/// table is the wanted one).
pub(crate) fn ruleset(intent: &GatewayIntent, backend: IpsecBackend) -> (String, String) {
    let mut jumps = String::new();
    let mut chains = String::new();
    for s in &intent.ssl_servers {
        let ClientAuthIntent::Password { users } = &s.clients else {
            continue;
        };
        let chain = format!("pool_{}", names::short_hash(&s.id, 8));
        let _ = writeln!(jumps, "\t\tip saddr {} jump {chain}", s.client_ip_pool.trunc());
        let _ = writeln!(chains, "\tchain {chain} {{");
        let mut users: Vec<_> = users.iter().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        for u in users {
            // nft refuses overlapping intervals in one set: merge them first.
            let allowed = Ipv4Net::aggregate(&u.allowed.iter().map(Ipv4Net::trunc).collect());
            if allowed.is_empty() {
                continue;
            }
            let set: Vec<String> = allowed.iter().map(ToString::to_string).collect();
            let _ = writeln!(chains, "\t\tip saddr {} ip daddr {{ {} }} accept", u.address, set.join(", "));
        }
        chains.push_str("\t\tdrop\n\t}\n");
    }
    chains.push_str(&public_chains(intent, backend));
    let mut body = String::new();
    for (hook, public) in [("forward", "public_forward"), ("input", "public_input")] {
        let _ = writeln!(body, "\tchain {hook} {{\n\t\ttype filter hook {hook} priority filter; policy accept;");
        let _ = writeln!(body, "\t\tiifname \"{NS_PUBLIC_IF}\" jump {public}");
        if hook == "forward" {
            // Out of `pub0` only into an SA (kernel IPsec, policy-based: the route carries the SA's bundle); a VPC
            // host or a client routing other traffic to the gateway gets nothing onto the public side in clear,
            // neither does a prefix whose BGP route was just withdrawn.
            let _ = writeln!(body, "\t\toifname \"{NS_PUBLIC_IF}\" rt ipsec missing drop");
        }
        body.push_str(&jumps);
        body.push_str("\t}\n");
    }
    body.push_str(&chains);
    let fp = hex::encode(&Sha256::digest(body.as_bytes())[..8]);
    // Declaring the table first makes the delete succeed when it does not exist yet: one atomic replacement.
    let text = format!(
        "# Generated by openvgw; do not edit.\ntable ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n\tcomment \"openvgw {fp}\"\n{body}}}\n"
    );
    (text, fp)
}

/// What may arrive on `pub0`: for the gateway itself (`public_input`) and through it (`public_forward`).
fn public_chains(intent: &GatewayIntent, backend: IpsecBackend) -> String {
    let mut c = String::from("\tchain public_input {\n\t\tmeta ipsec exists accept\n");
    if !backend.is_libipsec() {
        for (local, remote) in nat_t_refused(intent) {
            // ESP in UDP only (its first word is an SPI, never 0): IKE floats to 4500 with or without a NAT
            // (MOBIKE), marked by four zero bytes; keepalives are one byte and match nothing here.
            let _ = writeln!(c, "\t\tip saddr {remote} ip daddr {local} udp dport 4500 @th,64,32 != 0 drop");
        }
    }
    // ICMP errors (path MTU discovery among others); stateless, so no replies to anything else.
    c.push_str("\t\ticmp type { destination-unreachable, time-exceeded } accept\n");
    c.push_str("\t\tudp dport { 500, 4500 } accept\n");
    c.push_str("\t\tip protocol esp accept\n");
    let ports: BTreeSet<(&str, u16)> = intent
        .ssl_servers
        .iter()
        .map(|s| (if s.transport == Transport::Udp { "udp" } else { "tcp" }, s.port))
        .collect();
    for (proto, port) in ports {
        let _ = writeln!(c, "\t\t{proto} dport {port} accept");
    }
    c.push_str("\t\tdrop\n\t}\n");
    c.push_str("\tchain public_forward {\n\t\tmeta ipsec exists accept\n\t\tdrop\n\t}\n");
    c
}

/// (local, remote) address pairs whose every tunnel has NAT traversal off; a pair shared with a tunnel that keeps
/// it on stays open (the rule cannot tell the two apart).
fn nat_t_refused(intent: &GatewayIntent) -> BTreeSet<(Ipv4Addr, Ipv4Addr)> {
    let pair = |t: &crate::TunnelIntent| t.remote_ip.map(|r| (t.local_ip, r));
    let open: BTreeSet<_> = intent.tunnels.iter().filter(|t| t.nat_traversal).filter_map(pair).collect();
    intent.tunnels.iter().filter(|t| !t.nat_traversal).filter_map(pair).filter(|p| !open.contains(p)).collect()
}

async fn nft(ns: &str, args: &[&str]) -> Result<String, DataplaneError> {
    let mut full = vec!["netns", "exec", ns, "nft"];
    full.extend_from_slice(args);
    sys::run("ip", &full).await
}

/// Is the loaded table the one with fingerprint `fp`?
pub(crate) async fn in_place(ns: &str, fp: &str) -> bool {
    nft(ns, &["list", "table", "ip", TABLE]).await.is_ok_and(|out| out.contains(&format!("\"openvgw {fp}\"")))
}

impl Inner {
    /// Loads the gateway's table when it is missing or differs.
    pub(super) async fn sync_firewall(
        &self,
        ns: &str,
        paths: &GatewayPaths,
        intent: &GatewayIntent,
    ) -> Result<(), DataplaneError> {
        let file = paths.dir.join("firewall.nft");
        let (text, fp) = ruleset(intent, self.backend);
        sys::write_if_changed(&file, text.as_bytes(), 0o600)?;
        if !in_place(ns, &fp).await {
            let path = file.to_string_lossy();
            nft(ns, &["-f", &path]).await.map_err(|e| failed(format!("loading the gateway's packet filter: {e}")))?;
            if self.backend.is_libipsec() && intent.tunnels.iter().any(|t| !t.nat_traversal) {
                tracing::warn!(gateway = %intent.gateway_id,
                    "NAT traversal cannot be turned off under kernel-libipsec (every tunnel is UDP-encapsulated)");
            }
            tracing::info!(gateway = %intent.gateway_id, fingerprint = %fp, "loaded the packet filter");
        }
        Ok(())
    }
}

/// Client pools of the gateway's SSL-VPN servers must not overlap (each pool's rules end in a drop).
pub(crate) fn overlapping_pools(intent: &GatewayIntent) -> Option<(String, String)> {
    let mut seen: BTreeSet<(Ipv4Net, &str)> = BTreeSet::new();
    for s in &intent.ssl_servers {
        let pool = s.client_ip_pool.trunc();
        if let Some((_, other)) = seen.iter().find(|(p, _)| p.contains(&pool) || pool.contains(p)) {
            return Some((other.to_string(), s.id.clone()));
        }
        seen.insert((pool, &s.id));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::openvpn::tests::server;
    use crate::netns::testing::{intent, tunnel};
    use crate::{Secret, UserIntent};
    use openvgw_core::crypto::IkeVersion;

    const KERNEL: IpsecBackend = IpsecBackend::KernelNetlink { xfrm_interfaces: true };

    fn user(name: &str, address: &str, allowed: &[&str]) -> UserIntent {
        UserIntent {
            name: name.into(),
            password_hash: Secret::new("$argon2id$x"),
            address: address.parse().expect("ip"),
            allowed: allowed.iter().map(|n| n.parse().expect("net")).collect(),
        }
    }

    #[test]
    fn only_password_servers_get_pool_rules() {
        let mut gw = intent(Vec::new());
        gw.ssl_servers.push(server());
        assert!(!ruleset(&gw, KERNEL).0.contains("pool_"), "certificate servers' clients are not filtered");
        let mut pw = server();
        pw.id = "vss-pw".into();
        pw.client_ip_pool = "10.9.0.0/24".parse().expect("net");
        pw.clients = ClientAuthIntent::Password {
            users: vec![
                user("bob", "10.9.0.20", &["10.2.0.0/24"]),
                user("alice", "10.9.0.10", &["10.1.0.0/24", "10.1.0.128/25", "10.3.0.0/16"]),
                user("nobody", "10.9.0.30", &[]),
            ],
        };
        gw.ssl_servers.push(pw);
        let (text, fp) = ruleset(&gw, KERNEL);
        let chain = format!("pool_{}", names::short_hash("vss-pw", 8));
        assert!(text.starts_with("# Generated"));
        assert!(text.contains("table ip openvgw\ndelete table ip openvgw\n"), "atomic replacement:\n{text}");
        assert!(text.contains(&format!("comment \"openvgw {fp}\"")));
        assert_eq!(text.matches(&format!("ip saddr 10.9.0.0/24 jump {chain}")).count(), 2, "forward and input");
        let alice = text.find("ip saddr 10.9.0.10 ip daddr { 10.1.0.0/24, 10.3.0.0/16 } accept").expect("alice");
        let bob = text.find("ip saddr 10.9.0.20 ip daddr { 10.2.0.0/24 } accept").expect("bob");
        let drop = text.find("\t\tdrop\n").expect("drop");
        assert!(alice < bob && bob < drop, "{text}");
        assert!(!text.contains("10.9.0.30"), "a user without networks reaches nothing:\n{text}");
        assert!(!text.contains("10.8.0.0"), "the certificate server's pool is not filtered");
        // Same intent, same fingerprint; another user list, another one.
        assert_eq!(ruleset(&gw, KERNEL).1, fp);
        if let ClientAuthIntent::Password { users } = &mut gw.ssl_servers[1].clients {
            users.pop();
            users[0].allowed.clear();
        }
        assert_ne!(ruleset(&gw, KERNEL).1, fp);
    }

    /// The public side admits IKE, NAT-T, ESP, the SSL-VPN ports, ICMP errors and what an SA decrypted, and drops
    /// the rest, for the gateway and through it; ESP in UDP is refused per peer only where the tunnel turns NAT
    /// traversal off and the backend can honour that.
    #[test]
    fn public_side_admits_only_vpn_traffic() {
        let mut off = tunnel("vco-off", IkeVersion::V2);
        off.nat_traversal = false;
        let mut gw = intent(vec![tunnel("vco-on", IkeVersion::V2), off.clone()]);
        gw.tunnels[0].remote_ip = Some("198.51.100.9".parse().expect("ip"));
        let mut tcp = server();
        tcp.id = "vss-tcp".into();
        tcp.transport = Transport::Tcp;
        tcp.port = 443;
        gw.ssl_servers = vec![server(), tcp];
        let (text, _) = ruleset(&gw, KERNEL);
        for hook in ["forward", "input"] {
            let chain = text.split(&format!("chain {hook} {{")).nth(1).expect(hook);
            let first = chain.lines().nth(2).expect("first rule").trim();
            assert_eq!(first, format!("iifname \"pub0\" jump public_{hook}"), "{text}");
        }
        // Forwarded out of the public side only into an SA, before any client's rules can accept.
        let forward = text.split("chain forward {").nth(1).expect("forward");
        assert_eq!(forward.lines().nth(3).map(str::trim), Some("oifname \"pub0\" rt ipsec missing drop"), "{text}");
        let input = text.split("chain public_input {").nth(1).expect("input").split("\n\t}").next().expect("end");
        let rules: Vec<&str> = input.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let refused = format!(
            "ip saddr {} ip daddr {} udp dport 4500 @th,64,32 != 0 drop",
            off.remote_ip.expect("r"),
            off.local_ip
        );
        assert_eq!(
            rules,
            [
                "meta ipsec exists accept",
                refused.as_str(),
                "icmp type { destination-unreachable, time-exceeded } accept",
                "udp dport { 500, 4500 } accept",
                "ip protocol esp accept",
                "tcp dport 443 accept",
                "udp dport 1194 accept",
                "drop",
            ],
            "{text}"
        );
        let forward = text.split("chain public_forward {").nth(1).expect("forward").split("\n\t}").next().expect("end");
        assert_eq!(forward.split_whitespace().collect::<Vec<_>>().join(" "), "meta ipsec exists accept drop");

        // libipsec encapsulates every tunnel: nothing to refuse.
        assert!(!ruleset(&gw, IpsecBackend::KernelLibipsec).0.contains("dport 4500 @th"));
        // A peer and address shared with a tunnel that keeps NAT-T on stays open.
        gw.tunnels[0].remote_ip = off.remote_ip;
        assert!(!ruleset(&gw, KERNEL).0.contains("dport 4500 @th"), "{}", ruleset(&gw, KERNEL).0);
        // Without SSL-VPN servers, no OpenVPN port is open.
        gw.ssl_servers.clear();
        assert!(!ruleset(&gw, KERNEL).0.contains("1194"));
    }

    #[test]
    fn finds_overlapping_pools() {
        let mut gw = intent(Vec::new());
        gw.ssl_servers.push(server());
        let mut b = server();
        b.id = "vss-b".into();
        b.client_ip_pool = "10.8.0.0/16".parse().expect("net");
        gw.ssl_servers.push(b);
        assert_eq!(overlapping_pools(&gw), Some(("vss-test".into(), "vss-b".into())));
        gw.ssl_servers[1].client_ip_pool = "10.9.0.0/24".parse().expect("net");
        assert_eq!(overlapping_pools(&gw), None);
    }
}
