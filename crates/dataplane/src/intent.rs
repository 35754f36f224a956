//! The neutral description of one gateway's desired data plane.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use openvgw_core::crypto::{IkeConfig, IpsecConfig, SslCipher, Transport};
/// A tunnel's state as observed (for drivers that report for others: the agents' hub).
pub use openvgw_core::model::TunnelState;
use openvgw_core::model::{BgpSessionState, HealthCheck};
pub use openvgw_core::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayIntent {
    pub gateway_id: String,
    pub tenant_id: String,
    /// The control plane's generation this intent was compiled from.
    pub generation: u64,
    /// The gateway's public addresses: one, or two for an HA pair. Tunnels name the one they use.
    pub public_ips: Vec<Ipv4Addr>,
    pub vpc_id: String,
    /// The VPC's address block, when openvgw knows it.
    pub vpc_cidr: Option<Ipv4Net>,
    pub private_ip: Ipv4Addr,
    /// An HA pair's second inside address, for a driver that runs its halves on two hosts ([`GatewayIntent::halves`]).
    #[serde(default)]
    pub second_private_ip: Option<Ipv4Addr>,
    pub bandwidth_mbps: u32,
    pub tunnels: Vec<TunnelIntent>,
    pub ssl_servers: Vec<SslServerIntent>,
    pub ipsec_server: Option<IpsecServerIntent>,
    /// Destination routes (route-based mode): prefix -> tunnel.
    pub routes: Vec<RouteIntent>,
    pub policy_routes: Vec<PolicyRouteIntent>,
    /// What the gateway learns over BGP is published into the VPC as well (Alibaba's `AutoPropagate`).
    #[serde(default)]
    pub propagate_learned: bool,
    /// Where the VPC's router runs, for a driver that spreads one VPC's gateways over several hosts.
    #[serde(default)]
    pub vpc_router: VpcRouter,
}

/// What the id of an HA gateway's second half ends with ([`GatewayIntent::halves`]); no gateway id contains a dot.
const SECOND_HALF: &str = ".2";

/// The id of the second half of the HA gateway `gateway_id` run apart.
pub fn second_half_id(gateway_id: &str) -> String {
    format!("{gateway_id}{SECOND_HALF}")
}

/// The gateway a half belongs to; a whole gateway's id is its own.
pub fn whole_id(id: &str) -> &str {
    id.strip_suffix(SECOND_HALF).unwrap_or(id)
}

impl GatewayIntent {
    /// An HA gateway as two gateways of one public address each, for a driver that runs them on two hosts: the
    /// first keeps the gateway's id, inside address, SSL-VPN and IPsec servers and the tunnels bound to the first
    /// address; the second ([`second_half_id`]) takes the second public address, the second inside address and the
    /// tunnels bound to it. Each keeps the routes of its own tunnels, so each publishes into the VPC what it carries,
    /// towards its own inside address. `None`: one public address, or no second inside address (a gateway created
    /// before they were given): it stays whole.
    pub fn halves(&self) -> Option<(GatewayIntent, GatewayIntent)> {
        let (&[first, second], Some(inside)) = (self.public_ips.as_slice(), self.second_private_ip) else {
            return None;
        };
        let on_second: BTreeSet<String> =
            self.tunnels.iter().filter(|t| t.local_ip == second).map(|t| t.id.clone()).collect();
        let keep = |half: &mut GatewayIntent, second_half: bool| {
            let ours = |tunnel: &str| on_second.contains(tunnel) == second_half;
            half.tunnels.retain(|t| ours(&t.id));
            half.routes.retain(|r| ours(&r.tunnel_id));
            half.policy_routes.retain(|r| ours(&r.tunnel_id));
            half.second_private_ip = None;
        };
        let mut a = self.clone();
        a.public_ips = vec![first];
        keep(&mut a, false);
        let mut b = self.clone();
        b.gateway_id = second_half_id(&self.gateway_id);
        b.public_ips = vec![second];
        b.private_ip = inside;
        b.ssl_servers.clear();
        b.ipsec_server = None;
        keep(&mut b, true);
        // A health check probing from the gateway's inside address probes from the half's own.
        for hc in b.tunnels.iter_mut().filter_map(|t| t.health_check.as_mut()) {
            if hc.sip == Some(self.private_ip) {
                hc.sip = Some(inside);
            }
        }
        Some((a, b))
    }
}

/// The VPC's router: the VPC hosts' gateway at the block's first address, routing what the VPC's gateways publish.
/// One per VPC, so when a VPC's gateways are on several hosts the control plane names one gateway whose host runs
/// it, and hands it what the others publish (each reports that in [`GatewayObservation::published`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VpcRouter {
    /// Beside the gateway, routing what the gateways of the VPC on this host publish (every one of them is here).
    #[default]
    Local,
    /// Beside the gateway, routing what it publishes and these routes of the VPC's other gateways.
    Here { others: Vec<VpcRoute> },
    /// On another host: the gateway publishes, and leaves routing to that host.
    Elsewhere,
}

/// One route of a VPC's router: a destination towards a gateway's inside address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VpcRoute {
    pub dest: Ipv4Net,
    pub via: Ipv4Addr,
    pub metric: u32,
}

/// One traffic-selector pair of a policy-based tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub local: Vec<Ipv4Net>,
    pub remote: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelIntent {
    pub id: String,
    /// One of the gateway's `public_ips`.
    pub local_ip: Ipv4Addr,
    /// The peer's address; `None` for a peer known only by name, which must initiate.
    pub remote_ip: Option<Ipv4Addr>,
    pub psk: Secret,
    /// Phase 1, including the IKE identities.
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub local_subnets: Vec<Ipv4Net>,
    pub remote_subnets: Vec<Ipv4Net>,
    /// Explicit selector pairs of a policy-based tunnel; empty: one pair, `local_subnets` × `remote_subnets`.
    pub selectors: Vec<Selector>,
    /// Initiate and keep retrying; otherwise respond and start on traffic.
    pub initiate: bool,
    pub dpd: bool,
    pub nat_traversal: bool,
    /// Traffic selectors 0/0 and routes choose what enters (destination-route mode).
    pub route_based: bool,
    pub health_check: Option<HealthCheck>,
    /// BGP over this (route-based) tunnel.
    #[serde(default)]
    pub bgp: Option<BgpIntent>,
}

/// A BGP session across a tunnel between its two inside addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgpIntent {
    pub local_asn: u32,
    pub peer_asn: u32,
    /// This end's inside address; the tunnel device gets it with `prefix_len`.
    pub local_ip: Ipv4Addr,
    pub peer_ip: Ipv4Addr,
    pub prefix_len: u8,
    /// TCP MD5 key of the session.
    pub auth_key: Option<Secret>,
    /// What the gateway announces to the peer.
    pub advertise: Vec<Ipv4Net>,
    /// Never accepted from the peer (the VPC's own block): a customer cannot take over the VPC's addresses.
    pub refuse: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SslServerIntent {
    pub id: String,
    pub port: u16,
    pub transport: Transport,
    pub cipher: SslCipher,
    pub compress: bool,
    pub client_ip_pool: Ipv4Net,
    pub local_subnets: Vec<Ipv4Net>,
    pub max_connections: u32,
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: Secret,
    pub crl_pem: String,
    /// Pushed to clients (`dhcp-option DNS`).
    pub dns_servers: Vec<Ipv4Addr>,
    pub clients: ClientAuthIntent,
}

/// How clients of an SSL-VPN server prove who they are, and what they may reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientAuthIntent {
    /// A client certificate issued by the server's own CA (`ca_cert_pem`, revocations in `crl_pem`) or, when `cas` is
    /// not empty, by one of these imported CAs. Every client may reach the server's `local_subnets`; addresses come
    /// from the client pool. `revoked`: the common names of revoked certificates of the own CA, whose live sessions
    /// are ended (the CRL only refuses a client at its next handshake).
    Certificate {
        cas: Vec<String>,
        #[serde(default)]
        revoked: Vec<String>,
    },
    /// A user name and a password, checked by openvgw against these users (never written to disk in clear). Each
    /// user always gets its own address and may reach only its `allowed` networks; a user not listed is refused,
    /// and a live session of a user who is no longer listed (or whose address or networks changed) is ended.
    Password { users: Vec<UserIntent> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserIntent {
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: Secret,
    /// The tunnel address the user gets, inside the client pool.
    pub address: Ipv4Addr,
    /// What the user may reach (the union of its group's access policies); empty: nothing.
    pub allowed: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpsecServerIntent {
    pub id: String,
    pub client_ip_pool: Ipv4Net,
    pub local_subnets: Vec<Ipv4Net>,
    pub psk: Secret,
    /// Phase 1, including the server's and the clients' identities.
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteIntent {
    pub dest: Ipv4Net,
    pub tunnel_id: String,
    pub weight: u32,
    /// Also routed in the VPC (towards the gateway's inside address).
    pub published: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRouteIntent {
    pub source: Ipv4Net,
    pub dest: Ipv4Net,
    pub tunnel_id: String,
    pub weight: u32,
    pub priority: u32,
    pub published: bool,
}

/// What a driver observed of one gateway. Observing changes nothing: repairs are the reconciler's decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayObservation {
    /// Namespace and daemons are up with the last applied intent.
    pub ready: bool,
    /// The gateway's routes no longer match which of its tunnels carry (one went down or came back): applying again
    /// moves traffic to the best tunnel that carries.
    #[serde(default)]
    pub reroute: bool,
    pub tunnels: BTreeMap<String, TunnelObservation>,
    /// Connected clients per SSL-VPN server.
    pub ssl_sessions: BTreeMap<String, u32>,
    pub ipsec_server_clients: u32,
    /// What the gateway publishes into its VPC now (what BGP learned included), sorted.
    #[serde(default)]
    pub published: Vec<VpcRoute>,
    /// Where the intent it applied runs the VPC's router ([`GatewayIntent::vpc_router`]).
    #[serde(default)]
    pub vpc_router: VpcRouter,
}

/// A live client session of an SSL-VPN server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSession {
    pub server_id: String,
    /// The driver's id of the session (stable while it lives), used to disconnect it.
    pub id: String,
    /// The user name (password auth) or the certificate's common name.
    pub user: String,
    pub virtual_ip: Option<Ipv4Addr>,
    /// The client's public address and port as the server sees it.
    pub real_address: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Unix seconds.
    pub connected_since: i64,
}

/// Traffic of one negotiated CHILD SA pair of a tunnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaStats {
    /// The driver's id of the SA (its unique id in the daemon).
    pub id: String,
    pub local_ts: String,
    pub remote_ts: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelObservation {
    pub state: TunnelState,
    /// Health-check verdict when a health check is configured.
    pub health_ok: Option<bool>,
    /// The BGP session of a BGP tunnel.
    #[serde(default)]
    pub bgp: Option<BgpObservation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpObservation {
    pub state: BgpSessionState,
    /// What the peer announces and the gateway accepted (empty while the session is down).
    pub learned: Vec<LearnedRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LearnedRoute {
    pub dest: Ipv4Net,
    /// Nearest AS first.
    pub as_path: Vec<u32>,
}
