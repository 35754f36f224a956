"""Packets through tunnels created with Alibaba's SDK: every ping fails before, passes after, fails again after
the resource is deleted."""
from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

import vgwlib
from conftest import (CGW_IP, NS_PREFIX, ONPREM_HOST, ONPREM_HOST2, ONPREM_NET, ONPREM_NET2, PUB_BRIDGE, VPC, VPC_BRIDGE,
                      VPC_CIDR, VPC_HOST, assert_reachable, preferred_device, vpc_router_ns, xfrm_if)
from lab import (BgpCustomer, Charon, Lab, bird_from_download, sh, swanctl_from_download, unvanish, vanish,
                 wait_until)

SSL_POOL = "10.200.0.0/24"
IPSEC_POOL = "10.210.0.0/24"


@pytest.fixture(scope="module")
def gateway(api, site):
    body = api.call("CreateVpnGateway", {"VpcId": VPC, "Bandwidth": 10, "EnableSsl": True, "Name": "e2e-gw"})
    gw = body["VpnGatewayId"]
    d = vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
    # Only ModifyVpnGatewayAttribute's answer carries the gateway's inside address (IntranetIp).
    d["IntranetIp"] = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "e2e-gw"})["IntranetIp"]
    site.route_vpc_to_gateway(d["IntranetIp"], ONPREM_NET, ONPREM_NET2, SSL_POOL, IPSEC_POOL)
    yield d
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    vgwlib.wait_gateway_gone(api, gw, timeout=60)


def wait_active(api, gw: str) -> None:
    vgwlib.wait_gateway_status(api, gw, "active", timeout=60)


def conn_status(api, vco: str) -> str:
    return api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["Status"]


def health_status(api, vco: str):
    return api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["VcoHealthCheck"].get("Status")


def probe_onprem(gateway) -> str:
    """HealthCheckConfig: probe the on-prem host from the gateway's inside address every 2 s."""
    return json.dumps({"enable": "true", "sip": gateway["IntranetIp"], "dip": ONPREM_HOST, "interval": "2",
                       "retry": "2"})


def create_connection(api, gw: str, cgw: str, local: str, remote: str, **extra) -> str:
    params = {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": local, "RemoteSubnet": remote}
    params.update(extra)
    vco = api.call("CreateVpnConnection", params)["VpnConnectionId"]
    wait_active(api, gw)
    return vco


def peer_up(site, api, vco: str, name: str) -> dict:
    cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
    site.charon.load(swanctl_from_download(cfg, name, encap=not site.kernel_esp))
    site.charon.initiate(name)
    return cfg


def peer_down(site, name: str) -> None:
    """Unloads the customer side's configuration (so nothing new is started or accepted), then ends every IKE_SA of
    `name`, by id: after a recovery there can be more than one (the customer's own and one the gateway initiated),
    and a survivor's policies would capture later tests' traffic."""
    site.charon.load("")
    for _ in range(10):
        listing = site.charon.swanctl("--list-sas", "--ike", name, check=False).stdout
        ids = re.findall(rf"^{re.escape(name)}: #(\d+),", listing, flags=re.M)
        if not ids:
            return
        for ike_id in ids:
            site.charon.swanctl("--terminate", "--ike-id", ike_id, "--force", "--timeout", "5", check=False)
    raise AssertionError(f"IKE_SAs of {name} survive: {listing}")


def delete_connection(api, gw: str, vco: str) -> None:
    api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    wait_active(api, gw)


@pytest.mark.kernel_ipsec
@pytest.mark.parametrize("ike,ipsec", [
    ({"IkeVersion": "ikev2"}, {}),
    ({"IkeVersion": "ikev1", "IkeMode": "main", "IkeEncAlg": "aes256", "IkeAuthAlg": "sha256", "IkePfs": "group14",
      "IkeLifetime": 28800}, {"IpsecEncAlg": "aes256", "IpsecAuthAlg": "sha256", "IpsecPfs": "group14",
                              "IpsecLifetime": 3600}),
], ids=["ikev2-defaults", "ikev1-main-aes256-sha256-modp2048"])
def test_site_to_site_policy_based(api, server, site, gateway, customer_gateway, ike, ipsec):
    gw = gateway["VpnGatewayId"]
    assert not Lab.ping(site.onprem, VPC_HOST), "reachable before any connection exists"
    extra = {"IkeConfig": json.dumps(ike)}
    if ipsec:
        extra["IpsecConfig"] = json.dumps(ipsec)
    vco = create_connection(api, gw, customer_gateway, VPC_CIDR, ONPREM_NET, **extra)
    try:
        cfg = peer_up(site, api, vco, "s2s")
        assert cfg["Local"] == gateway["InternetIp"] and cfg["Remote"] == CGW_IP
        assert cfg["IkeConfig"]["LocalId"] == gateway["InternetIp"] and cfg["IkeConfig"]["RemoteId"] == CGW_IP
        assert Lab.wait_ping(site.onprem, VPC_HOST, 30), site.charon.log_tail()
        assert Lab.ping(site.vpc_host, ONPREM_HOST), "the VPC side cannot reach on-prem"
        assert wait_until(lambda: conn_status(api, vco) == "ipsec_sa_established", 15), conn_status(api, vco)
        # The operator's view: the store's record next to what the data plane has (another process, beside serve).
        admin = [str(server.bin), "admin", "gateway", "--id", gw, "--data-dir", str(server.data), "--config",
                 str(server.config)]
        view = json.loads(subprocess.run(admin + ["--json"], check=True, capture_output=True, text=True).stdout)
        assert view["store"]["status"] == "active" and view["store"]["public_ips"] == [gateway["InternetIp"]], view
        dp = view["dataplane"]
        assert dp["namespace"] == f"{NS_PREFIX}{gw}" and dp["namespace_exists"] and dp["daemon_pids"], dp
        assert dp["error"] is None and dp["observed"]["ready"] is True, dp
        assert [(c["id"], c["observed"]["state"]) for c in view["connections"]] == [(vco, "IpsecSaEstablished")], view
        text = subprocess.run(admin, check=True, capture_output=True, text=True).stdout
        assert f"namespace:  {NS_PREFIX}{gw} (present)" in text and vco in text and "IpsecSaEstablished" in text, text
    finally:
        delete_connection(api, gw, vco)
    assert wait_until(lambda: not Lab.ping(site.onprem, VPC_HOST), 15), "still reachable after the connection is gone"
    peer_down(site, "s2s")


@pytest.mark.kernel_ipsec
def test_destination_route_mode(api, site, gateway, customer_gateway):
    gw = gateway["VpnGatewayId"]
    vco = create_connection(api, gw, customer_gateway, "0.0.0.0/0", "0.0.0.0/0", EffectImmediately=True,
                            IkeConfig=json.dumps({"IkeVersion": "ikev2"}))
    try:
        cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
        # The customer side selects its own networks; the gateway routes by destination.
        cfg = dict(cfg, LocalSubnet=VPC_CIDR, RemoteSubnet=f"{ONPREM_NET},{ONPREM_NET2}")
        site.charon.load(swanctl_from_download(cfg, "dbr", encap=not site.kernel_esp))
        site.charon.initiate("dbr")
        assert not Lab.ping(site.vpc_host, ONPREM_HOST2), "routed before the destination route exists"
        api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": ONPREM_NET2, "NextHop": vco,
                                         "Weight": 0, "PublishVpc": True})
        wait_active(api, gw)
        assert Lab.wait_ping(site.vpc_host, ONPREM_HOST2, 30), site.charon.log_tail()
        api.call("DeleteVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": ONPREM_NET2, "NextHop": vco, "Weight": 0})
        wait_active(api, gw)
        assert wait_until(lambda: not Lab.ping(site.vpc_host, ONPREM_HOST2), 15)
    finally:
        delete_connection(api, gw, vco)
        peer_down(site, "dbr")


VPC_ROUTER = "192.168.10.1"


def _router_route(dest: str) -> str:
    """The route the VPC's router has for `dest`."""
    return sh("ip", "-n", vpc_router_ns(VPC), "route", "show", "exact", dest).stdout.strip()


@pytest.fixture(scope="module")
def router_host(lab, gateway):
    """A VPC host whose only route is the VPC's router (its .1)."""
    host = lab.netns("vpchost3")
    lab.attach(host, "eth0", VPC_BRIDGE, "192.168.10.70/24")
    sh("ip", "-n", host, "route", "add", "default", "via", VPC_ROUTER)
    assert Lab.wait_ping(host, VPC_ROUTER, 10), "the VPC's router does not answer"
    return host


@pytest.mark.kernel_ipsec
def test_vpc_router_routes_only_what_is_published(api, site, gateway, customer_gateway, router_host):
    """A VPC host behind the VPC's router reaches a customer network exactly while its route entry is published
    (PublishVpc, PublishVpnRouteEntry); a host routed to the gateway directly reaches it all along, so the tunnel and
    the gateway's own route are not what changes."""
    gw = gateway["VpnGatewayId"]
    host = router_host
    vco = create_connection(api, gw, customer_gateway, "0.0.0.0/0", "0.0.0.0/0", EffectImmediately=True,
                            IkeConfig=json.dumps({"IkeVersion": "ikev2"}))
    key = {"VpnGatewayId": gw, "RouteDest": ONPREM_NET2, "NextHop": vco}
    publish = lambda on: api.call("PublishVpnRouteEntry", dict(key, RouteType="DBR", PublishVpc=on))
    try:
        cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
        cfg = dict(cfg, LocalSubnet=VPC_CIDR, RemoteSubnet=f"{ONPREM_NET},{ONPREM_NET2}")
        site.charon.load(swanctl_from_download(cfg, "vpcr", encap=not site.kernel_esp))
        site.charon.initiate("vpcr")
        api.call("CreateVpnRouteEntry", dict(key, Weight=100, PublishVpc=False))
        wait_active(api, gw)
        assert Lab.wait_ping(site.vpc_host, ONPREM_HOST2, 30), site.charon.log_tail()
        assert _router_route(ONPREM_NET2) == ""
        assert not Lab.ping(host, ONPREM_HOST2), "reached through the router before the route was published"

        publish(True)
        wait_active(api, gw)
        assert f"via {gateway['IntranetIp']}" in _router_route(ONPREM_NET2), _router_route(ONPREM_NET2)
        assert Lab.wait_ping(host, ONPREM_HOST2, 15), "published, yet not reachable through the router"

        publish(False)
        wait_active(api, gw)
        assert _router_route(ONPREM_NET2) == ""
        assert wait_until(lambda: not Lab.ping(host, ONPREM_HOST2), 15), "still routed after unpublishing"
        assert Lab.ping(site.vpc_host, ONPREM_HOST2), "the tunnel itself went down"
    finally:
        delete_connection(api, gw, vco)
        peer_down(site, "vpcr")


@pytest.mark.kernel_ipsec
def test_health_check_probes_through_the_tunnel(api, site, gateway, customer_gateway):
    gw = gateway["VpnGatewayId"]
    vco = create_connection(api, gw, customer_gateway, VPC_CIDR, ONPREM_NET, HealthCheckConfig=probe_onprem(gateway),
                            IkeConfig=json.dumps({"IkeVersion": "ikev2"}))
    health = lambda: health_status(api, vco)
    try:
        assert wait_until(lambda: health() == "failed", 20), "health check passed without a tunnel"
        peer_up(site, api, vco, "hc")
        assert wait_until(lambda: health() == "success", 30), health()
        peer_down(site, "hc")
        assert wait_until(lambda: health() == "failed", 30), health()
    finally:
        delete_connection(api, gw, vco)


def _openvpn_client(lab: Lab, ns: str, workdir, config: str, name: str):
    path = workdir / f"{name}.ovpn"
    path.write_text(config)
    log = workdir / f"{name}.log"
    log.write_text("")
    p = lab.spawn(ns, ["openvpn", "--config", str(path), "--disable-dco", "--verb", "3"], log)
    return p, log


def test_ssl_vpn_client_reaches_the_vpc_and_revocation_ends_its_session(api, site, gateway, lab, workdir):
    gw = gateway["VpnGatewayId"]
    road = lab.netns("road1")
    lab.attach(road, "pub0", "ovgwt-pub", "203.0.113.30/24")
    srv = api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": SSL_POOL, "LocalSubnet": VPC_CIDR,
                                          "Name": "e2e-ssl"})["SslVpnServerId"]
    wait_active(api, gw)
    try:
        cert = api.call("CreateSslVpnClientCert", {"SslVpnServerId": srv, "Name": "alice"})["SslVpnClientCertId"]
        wait_active(api, gw)
        bundle = api.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": cert})
        assert not Lab.ping(road, VPC_HOST)
        p, log = _openvpn_client(lab, road, workdir, bundle["ClientConfig"], "alice")
        try:
            assert Lab.wait_ping(road, VPC_HOST, 30), log.read_text()[-3000:]
            sessions = lambda: api.call("DescribeSslVpnServers", {"SslVpnServerId": srv})["SslVpnServers"]["SslVpnServer"][0]["Connections"]
            assert wait_until(lambda: sessions() == 1, 15)
            logs = api.call("DescribeVpnSslServerLogs", {"VpnSslServerId": srv, "MinutePeriod": 10, "PageSize": 50})
            assert logs["Count"] > 0 and any("alice" in l or cert in l for l in logs["Data"]["Logs"]), logs
            # Deleting the certificate ends the live session at once (not at the client's next handshake).
            api.call("DeleteSslVpnClientCert", {"SslVpnClientCertId": cert})
            assert wait_until(lambda: p.poll() is not None, 15), "the revoked client is still connected"
            assert not Lab.ping(road, VPC_HOST)
            assert wait_until(lambda: sessions() == 0, 15), sessions()
        finally:
            Lab.stop(p)
        wait_active(api, gw)
        p, log = _openvpn_client(lab, road, workdir, bundle["ClientConfig"], "alice-revoked")
        try:
            assert not Lab.wait_ping(road, VPC_HOST, 12), "a revoked certificate still connects"
        finally:
            Lab.stop(p)
    finally:
        api.call("DeleteSslVpnServer", {"SslVpnServerId": srv})
        wait_active(api, gw)


@pytest.mark.kernel_ipsec
def test_ipsec_server_road_warrior(api, site, gateway, lab, workdir, kernel_esp):
    gw = gateway["VpnGatewayId"]
    road = lab.netns("road2")
    lab.attach(road, "pub0", "ovgwt-pub", "203.0.113.31/24")
    psk = "RoadWarrior" + vgwlib.uid()
    srv = api.call("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": VPC_CIDR, "ClientIpPool": IPSEC_POOL,
                                         "Psk": psk, "IpSecServerName": "e2e-iss"})["IpsecServerId"]
    wait_active(api, gw)
    try:
        assert not Lab.ping(road, VPC_HOST)
        client = Charon(lab, road, "road2-charon", kernel_esp)
        client.load(f"""connections {{
  rw {{
    version = 2
    remote_addrs = {gateway['InternetIp']}
    vips = 0.0.0.0
    proposals = aes128-sha1-modp1024
    encap = {'no' if kernel_esp else 'yes'}
    local {{
      auth = psk
      id = road2.example
    }}
    remote {{
      auth = psk
      id = {gateway['InternetIp']}
    }}
    children {{
      rw {{
        remote_ts = {VPC_CIDR}
        esp_proposals = aes128-sha1-modp1024
      }}
    }}
  }}
}}
secrets {{
  ike-rw {{
    secret = "{psk}"
  }}
}}
""")
        r = client.initiate("rw")
        assert r.returncode == 0, client.log_tail()
        vip = re.search(r"10\.210\.0\.\d+", client.sas())
        assert vip, client.sas()
        assert Lab.wait_ping(road, VPC_HOST, 20, src=vip.group(0)), client.log_tail()
        online = lambda: api.call("ListIpsecServers", {"VpnGatewayId": gw})["IpsecServers"][0]["OnlineClientCount"]
        assert wait_until(lambda: online() == 1, 15)
        client.stop()
    finally:
        api.call("DeleteIpsecServer", {"IpsecServerId": srv})
        wait_active(api, gw)


def test_peer_config_export_brings_a_tunnel_up(api, server, site, gateway, customer_gateway, workdir):
    gw = gateway["VpnGatewayId"]
    vco = create_connection(api, gw, customer_gateway, VPC_CIDR, ONPREM_NET,
                            IkeConfig=json.dumps({"IkeVersion": "ikev2", "IkeAuthAlg": "sha1"}))
    try:
        out = workdir / "export"
        cmd = [str(server.bin), "peer-config", "--connection", vco, "--format", "strongswan", "--output-dir", str(out),
               "--data-dir", str(server.data), "--config", str(server.config)]
        if not site.kernel_esp:
            cmd.append("--udp-encap")
        subprocess.run(cmd, check=True, capture_output=True)
        site.charon.load((out / "swanctl.conf").read_text())
        site.charon.initiate(vco)
        assert Lab.wait_ping(site.onprem, VPC_HOST, 30), site.charon.log_tail()
    finally:
        delete_connection(api, gw, vco)
        peer_down(site, vco)



def test_console_shows_a_tunnel_come_up_against_a_real_peer(api, server, site, gateway, customer_gateway, tmp_path):
    """The web console over the netns data plane (on the host: the browser does not run in the VM). A connection's
    page shows its tunnel down, then up once a strongSwan customer configured from the API's download connects,
    with the traffic that crossed it counted, the topology drawn with the tunnel up, and the tunnel's log."""
    import browser as b

    b.require()
    from selenium.webdriver.common.by import By

    gw = gateway["VpnGatewayId"]
    vco = create_connection(api, gw, customer_gateway, VPC_CIDR, ONPREM_NET,
                            IkeConfig=json.dumps({"IkeVersion": "ikev2"}))
    base = f"http://127.0.0.1:{server.port}"
    try:
        with b.chromium(tmp_path) as d:
            b.sign_in(d, base, "key", api.tenant["access_key_id"], api.tenant["access_key_secret"])
            d.get(f"{base}/console/gateways/{gw}")
            state = lambda: [r.get_attribute("data-tunnel-state")
                             for r in d.find_elements(By.CSS_SELECTOR, f"tr[data-connection='{vco}']")]
            # Read within b.until: the rows are in a live region that is swapped while read.
            assert b.until(state, 10) == ["down"]
            b.shot(d, "e2e-01-tunnel-down")
            peer_up(site, api, vco, "console")
            assert Lab.wait_ping(site.onprem, VPC_HOST, 30), site.charon.log_tail()
            # The page refreshes by itself: the reconciler observes the tunnel, the page shows it.
            b.until(lambda: state() == ["up"], 60, every=0.5)
            traffic = lambda: d.find_element(By.CSS_SELECTOR, f"tr[data-connection='{vco}'] td:nth-child(7)").text
            b.until(lambda: not traffic().startswith("0 B"), 30, every=0.5)
            assert d.find_elements(By.CSS_SELECTOR, "svg.topology line.tunnel.up"), "the topology shows the tunnel up"
            assert d.find_elements(By.CSS_SELECTOR, "details.log"), "the tunnel's log lines"
            b.shot(d, "e2e-02-tunnel-up")
            print(f"TIMING console: tunnel up, traffic {traffic()}")
    finally:
        delete_connection(api, gw, vco)
        peer_down(site, "console")

# -- the network customers meet: dead peers, NAT --------------------------------------------------------------------

def _cut(ns: str, ifname: str) -> None:
    """The customer vanishes without saying so: nothing enters or leaves `ifname` (its addresses and routes stay)."""
    vanish(ns, f"iifname {ifname}", f"oifname {ifname}")


_restore = unvanish


NAT_PUBLIC = "203.0.113.20"
NAT_INSIDE, NATTED_CGW = "10.77.0.1", "10.77.0.2"
NATTED_NET, NATTED_HOST = "172.16.40.0/24", "172.16.40.1"


@pytest.fixture(scope="module")
def natted(api, lab, site, gateway, kernel_esp):
    """A customer gateway behind a NAT (a namespace masquerading it to 203.0.113.20) with its own network."""
    nat = lab.netns("nat")
    lab.attach(nat, "pub0", PUB_BRIDGE, f"{NAT_PUBLIC}/24")
    cgw = lab.netns("cgwnat")
    lab.wire(nat, "in0", f"{NAT_INSIDE}/24", cgw, "out0", f"{NATTED_CGW}/24")
    lab.forward(nat)
    sh("nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority srcnat; }; "
              "add rule ip nat post oifname pub0 masquerade", ns=nat)
    sh("ip", "-n", cgw, "route", "add", "default", "via", NAT_INSIDE)
    sh("ip", "-n", cgw, "addr", "add", f"{NATTED_HOST}/32", "dev", "lo")
    site.route_vpc_to_gateway(gateway["IntranetIp"], NATTED_NET)
    charon = Charon(lab, cgw, "natcgw-charon", kernel_esp)
    cgw_id = api.call("CreateCustomerGateway", {"IpAddress": NAT_PUBLIC, "Name": "behind-nat"})["CustomerGatewayId"]
    return {"ns": cgw, "charon": charon, "cgw": cgw_id, "kernel_esp": kernel_esp}


def _natted_up(api, natted, vco: str, name: str) -> None:
    cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
    assert cfg["Remote"] == NAT_PUBLIC
    # The customer's own address is behind the NAT; everything else is the download as it is.
    natted["charon"].load(swanctl_from_download(dict(cfg, Remote=NATTED_CGW), name, encap=not natted["kernel_esp"]))
    natted["charon"].initiate(name)


@pytest.mark.kernel_ipsec
def test_customer_behind_nat_connects_with_nat_traversal(api, gateway, natted):
    gw = gateway["VpnGatewayId"]
    vco = create_connection(api, gw, natted["cgw"], VPC_CIDR, NATTED_NET, EnableNatTraversal=True,
                            IkeConfig=json.dumps({"IkeVersion": "ikev2"}))
    try:
        _natted_up(api, natted, vco, "nat")
        assert Lab.wait_ping(natted["ns"], VPC_HOST, 30, src=NATTED_HOST), natted["charon"].log_tail()
        assert wait_until(lambda: conn_status(api, vco) == "ipsec_sa_established", 15), conn_status(api, vco)
        # IKE and ESP moved to NAT-T's port: the NAT was detected and traversed (UDP-encapsulated ESP).
        sas = natted["charon"].sas()
        assert f"{NATTED_CGW}[4500]" in sas and f"{gateway['InternetIp']}[4500]" in sas, sas
    finally:
        delete_connection(api, gw, vco)
        natted["charon"].swanctl("--terminate", "--ike", "nat", "--force", check=False)
        natted["charon"].load("")


@pytest.mark.kernel_ipsec
def test_nat_traversal_off_refuses_a_customer_behind_nat(api, site, gateway, customer_gateway, natted):
    """`EnableNatTraversal=false`: the gateway takes no UDP-encapsulated ESP from the peer, so the traffic of a
    customer behind a NAT cannot cross (IKE itself may complete); a customer without NAT connects as before (plain
    ESP, even though IKE floats to port 4500 with MOBIKE)."""
    if not natted["kernel_esp"]:
        pytest.skip("NAT traversal cannot be turned off under kernel-libipsec (every tunnel is UDP-encapsulated); "
                    "this runs in the VM step, on a kernel with ESP")
    gw = gateway["VpnGatewayId"]
    ike = json.dumps({"IkeVersion": "ikev2"})
    vco = create_connection(api, gw, natted["cgw"], VPC_CIDR, NATTED_NET, EnableNatTraversal=False, IkeConfig=ike)
    try:
        _natted_up(api, natted, vco, "nonat")
        assert not Lab.wait_ping(natted["ns"], VPC_HOST, 12, src=NATTED_HOST), "traffic crossed the NAT"
    finally:
        delete_connection(api, gw, vco)
        natted["charon"].swanctl("--terminate", "--ike", "nonat", "--force", check=False)
        natted["charon"].load("")
    vco = create_connection(api, gw, customer_gateway, VPC_CIDR, ONPREM_NET, EnableNatTraversal=False, IkeConfig=ike)
    try:
        peer_up(site, api, vco, "direct")
        assert Lab.wait_ping(site.onprem, VPC_HOST, 30), site.charon.log_tail()
        sas = site.charon.sas()
        # Plain ESP, whatever state the CHILD_SA is in at this moment (INSTALLED, REKEYING...).
        assert re.search(r", TUNNEL, ESP:", sas) and "TUNNEL-in-UDP" not in sas, sas
    finally:
        delete_connection(api, gw, vco)
        peer_down(site, "direct")


# -- BGP over IPsec ---------------------------------------------------------------------------------------------------

BGP_CGW_IP, BGP_ASN, BGP_KEY = "203.0.113.30", 65010, "e2e-bgp-md5-key"
BGP_NET, BGP_HOST = "172.16.50.0/24", "172.16.50.1"
BGP_TUNNEL, BGP_GATEWAY_END = "169.254.11.0/30", "169.254.11.1"


@pytest.fixture(scope="module")
def bgp_customer(api, lab, site, gateway, kernel_esp):
    """A BGP-speaking customer with the network 172.16.50.0/24 and an MD5 key on its sessions."""
    customer = BgpCustomer(lab, "cgwbgp", f"{BGP_CGW_IP}/24", PUB_BRIDGE, f"{BGP_HOST}/24", kernel_esp)
    # The VPC's route table (there is no VPC router yet): the customer's network via the gateway.
    site.route_vpc_to_gateway(gateway["IntranetIp"], BGP_NET)
    cgw = api.call("CreateCustomerGateway", {"IpAddress": BGP_CGW_IP, "Asn": BGP_ASN, "AuthKey": BGP_KEY,
                                             "Name": "bgp"})["CustomerGatewayId"]
    return customer, cgw


def _bgp_status(api, vco: str) -> str:
    return api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["VpnBgpConfig"]["Status"]


def _system_routes(api, gw: str) -> list:
    body = api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw, "RouteEntryType": "System"})
    return body["VpnRouteEntries"]["VpnRouteEntry"]


def _gateway_route(gw: str, dest: str) -> str:
    return sh("ip", "-n", f"{NS_PREFIX}{gw}", "route", "show", "exact", dest, check=False).stdout.strip()


@pytest.mark.kernel_ipsec
def test_bgp_over_ipsec_learns_both_ways_and_withdraws_when_the_tunnel_goes(api, site, gateway, bgp_customer,
                                                                          router_host):
    """A customer configured only from the API's download, with its own BGP daemon and no static route: it learns
    the VPC's block and the gateway learns the customer's network (both installed towards the tunnel, the gateway's
    shown by DescribeVpnRouteEntries with its AS path, the session by VpnBgpConfig.Status, and propagated to the
    VPC's router: AutoPropagate is on by default); traffic flows both ways. When the tunnel stops carrying, both
    sides withdraw within the hold time (30 s); when it carries again, the session and the routes come back by
    themselves."""
    customer, cgw = bgp_customer
    gw = gateway["VpnGatewayId"]
    bgp_conf = json.dumps({"EnableBgp": "true", "TunnelCidr": BGP_TUNNEL, "LocalBgpIp": BGP_GATEWAY_END})
    vco = create_connection(api, gw, cgw, "0.0.0.0/0", "0.0.0.0/0", BgpConfig=bgp_conf,
                            IkeConfig=json.dumps({"IkeVersion": "ikev2"}))
    try:
        cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
        peer = cfg["BgpConfigs"]["BgpConfig"][0]
        assert (peer["TunnelCidr"], peer["LocalBgpIp"], peer["PeerAsn"]) == (BGP_TUNNEL, BGP_GATEWAY_END, str(BGP_ASN)), peer
        customer.up(swanctl_from_download(cfg, "bgp", encap=not customer.kernel_esp), "bgp",
                    f"{peer['PeerBgpIp']}/30", bird_from_download(peer, BGP_CGW_IP, [BGP_NET], BGP_KEY))

        assert wait_until(lambda: _bgp_status(api, vco) == "success", 60), (_bgp_status(api, vco),
                                                                            customer.bird.log_tail())
        assert customer.bird.established("uplink")
        # Each side learned the other's network and routes it into the tunnel. What the gateway announces is the
        # VPC's block and nothing else, and the customer has no other route to it.
        assert wait_until(lambda: customer.learned() == [VPC_CIDR], 30), customer.learned()
        assert f"dev {customer.device}" in customer.route(VPC_CIDR)
        assert not sh("ip", "-n", customer.ns, "route", "show", "proto", "static").stdout.strip()
        assert wait_until(lambda: "proto bird" in _gateway_route(gw, BGP_NET), 30), _gateway_route(gw, BGP_NET)
        assert Lab.wait_ping(site.vpc_host, BGP_HOST, 30), customer.charon.log_tail()
        assert Lab.ping(customer.ns, VPC_HOST, src=BGP_HOST)
        assert wait_until(lambda: any(r["RouteDest"] == BGP_NET for r in _system_routes(api, gw)), 30)
        learned = _system_routes(api, gw)
        assert len(learned) == 1 and learned[0]["NextHop"] == vco, learned
        assert learned[0]["AsPath"] == str(BGP_ASN) and learned[0]["RouteEntryType"] == "System", learned
        assert learned[0]["State"] == "published", learned
        assert wait_until(lambda: f"via {gateway['IntranetIp']}" in _router_route(BGP_NET), 15), \
            _router_route(BGP_NET)
        assert Lab.wait_ping(router_host, BGP_HOST, 15), "the propagated route does not carry"

        _cut(customer.ns, "pub0")
        cut_at = time.monotonic()
        assert wait_until(lambda: _gateway_route(gw, BGP_NET) == "", 45, every=0.5), _gateway_route(gw, BGP_NET)
        gateway_withdrew = time.monotonic() - cut_at
        assert wait_until(lambda: customer.route(VPC_CIDR) == "", 45, every=0.5), customer.route(VPC_CIDR)
        customer_withdrew = time.monotonic() - cut_at
        assert wait_until(lambda: _bgp_status(api, vco) == "false" and not _system_routes(api, gw), 30)
        assert wait_until(lambda: _router_route(BGP_NET) == "", 15), "the VPC's router kept a withdrawn route"
        assert max(gateway_withdrew, customer_withdrew) <= 30 + 5, (gateway_withdrew, customer_withdrew)
        assert not Lab.ping(site.vpc_host, BGP_HOST)

        _restore(customer.ns)
        back_at = time.monotonic()
        assert wait_until(lambda: _bgp_status(api, vco) == "success", 90, every=1), customer.bird.log_tail()
        assert Lab.wait_ping(site.vpc_host, BGP_HOST, 30)
        recovered = time.monotonic() - back_at
        assert wait_until(lambda: any(r["RouteDest"] == BGP_NET for r in _system_routes(api, gw)), 30)
        print(f"TIMING BGP: gateway withdrew {gateway_withdrew:.1f} s and customer {customer_withdrew:.1f} s after "
              f"the tunnel stopped carrying (hold time 30 s); traffic {recovered:.1f} s after it carried again")
    finally:
        _restore(customer.ns)
        delete_connection(api, gw, vco)
        customer.down("bgp")
    assert wait_until(lambda: _gateway_route(gw, BGP_NET) == "", 15), "learned route outlived the connection"
    assert not _system_routes(api, gw)

# -- two tunnels: active and standby --------------------------------------------------------------------------------

CGW2_IP = "203.0.113.12"


@pytest.mark.kernel_ipsec
def test_active_and_standby_tunnels_fail_over_and_back(api, site, gateway, customer_gateway):
    """Two connections to one customer (two public addresses) and a destination route over each: weight 100 (active)
    and 0 (standby). Traffic takes the active tunnel; when it stops carrying (cut, noticed by DPD) the gateway moves
    the route to the standby by itself, and back when the active tunnel carries again. The interruption is measured.
    """
    if not site.kernel_esp:
        pytest.skip("two route-based tunnels on one gateway need XFRM interfaces (kernel-libipsec has a single tunnel "
                    "device); this runs in the VM step, on a kernel with ESP")
    gw = gateway["VpnGatewayId"]
    sh("ip", "-n", site.cgw, "addr", "add", f"{CGW2_IP}/24", "dev", "pub0")
    cgw2 = api.call("CreateCustomerGateway", {"IpAddress": CGW2_IP, "Name": "onprem-second"})["CustomerGatewayId"]
    ike = json.dumps({"IkeVersion": "ikev2"})
    active = create_connection(api, gw, customer_gateway, "0.0.0.0/0", "0.0.0.0/0", EffectImmediately=True,
                               IkeConfig=ike, EnableDpd=True)
    standby = create_connection(api, gw, cgw2, "0.0.0.0/0", "0.0.0.0/0", EffectImmediately=True, IkeConfig=ike,
                                EnableDpd=True)
    # The customer's side is route-based as well: an XFRM interface per tunnel. It answers through the standby
    # tunnel all along (its own choice, out of the gateway's hands), so what changes is the gateway's own path.
    customer_ifs = (("fa", 71), ("fb", 72))
    try:
        confs = []
        for (name, if_id), vco in zip(customer_ifs, (active, standby)):
            sh("ip", "-n", site.cgw, "link", "add", f"x{name}", "type", "xfrm", "dev", "pub0", "if_id", str(if_id))
            sh("ip", "-n", site.cgw, "link", "set", f"x{name}", "up")
            cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
            conf = swanctl_from_download(cfg, name, encap=False)
            assert "local_ts = 0.0.0.0/0" in conf, conf
            confs.append(conf.replace("start_action = start",
                                      f"start_action = start\n        if_id_in = {if_id}\n        if_id_out = {if_id}"))
        sh("ip", "-n", site.cgw, "route", "replace", VPC_CIDR, "dev", "xfb")
        site.charon.load("\n".join(confs))
        for name, _ in customer_ifs:
            site.charon.initiate(name)
        for vco, weight in ((active, 100), (standby, 0)):
            api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": ONPREM_NET2, "NextHop": vco,
                                             "Weight": weight, "PublishVpc": False})
            wait_active(api, gw)
        assert Lab.wait_ping(site.vpc_host, ONPREM_HOST2, 30), site.charon.log_tail()
        assert wait_until(lambda: preferred_device(gw, ONPREM_NET2) == xfrm_if(active), 30), \
            preferred_device(gw, ONPREM_NET2)

        vanish(site.cgw, f"ip daddr {CGW_IP}", f"ip saddr {CGW_IP}")
        cut_at = time.monotonic()
        assert wait_until(lambda: preferred_device(gw, ONPREM_NET2) == xfrm_if(standby), 90, every=0.5), \
            preferred_device(gw, ONPREM_NET2)
        moved = time.monotonic() - cut_at
        assert Lab.wait_ping(site.vpc_host, ONPREM_HOST2, 60), site.charon.log_tail()
        interruption = time.monotonic() - cut_at
        assert wait_until(lambda: conn_status(api, active) != "ipsec_sa_established", 30)

        _restore(site.cgw)
        back_at = time.monotonic()
        assert wait_until(lambda: preferred_device(gw, ONPREM_NET2) == xfrm_if(active), 120, every=1), \
            preferred_device(gw, ONPREM_NET2)
        returned = time.monotonic() - back_at
        assert Lab.wait_ping(site.vpc_host, ONPREM_HOST2, 30)
        print(f"TIMING failover: the route moved to the standby {moved:.1f} s after the active tunnel was cut; "
              f"traffic flowed again after {interruption:.1f} s; back on the active tunnel {returned:.1f} s after "
              f"it returned")
    finally:
        _restore(site.cgw)
        for vco in (active, standby):
            delete_connection(api, gw, vco)
        for name, _ in customer_ifs:
            peer_down(site, name)
            sh("ip", "-n", site.cgw, "link", "del", f"x{name}", check=False)
        api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw2})
        sh("ip", "-n", site.cgw, "addr", "del", f"{CGW2_IP}/24", "dev", "pub0", check=False)


@pytest.mark.kernel_ipsec
def test_dual_tunnel_connection_fails_over_between_its_tunnels_and_back(api, site, gateway, customer_gateway):
    """One connection with two tunnels (`TunnelOptionsSpecification`) on a gateway with two addresses
    (`DisasterRecoveryVSwitchId`), both to the same customer: its remote network is routed over the master tunnel
    with the slave standing by. When the master stops carrying (the customer loses the path to the gateway's first
    address; DPD notices) traffic takes the slave by itself, and returns to the master when it carries again. The
    customer is configured from DownloadVpnConnectionConfig's `TunnelsConfig` alone."""
    if not site.kernel_esp:
        pytest.skip("two route-based tunnels on one gateway need XFRM interfaces (kernel-libipsec has a single tunnel "
                    "device); this runs in the VM step, on a kernel with ESP")
    body = api.call("CreateVpnGateway", {"VpcId": VPC, "Bandwidth": 10, "Name": "e2e-dual", "VSwitchId": "vsw-a",
                                         "DisasterRecoveryVSwitchId": "vsw-b"})
    gw = body["VpnGatewayId"]
    d = vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
    intranet = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "e2e-dual"})["IntranetIp"]
    addresses = (d["InternetIp"], d["DisasterRecoveryInternetIp"])
    sh("ip", "-n", site.vpc_host, "route", "replace", ONPREM_NET2, "via", intranet)
    tunnel = {"CustomerGatewayId": customer_gateway, "TunnelIkeConfig": {"IkeVersion": "ikev2"}}
    vco = None
    customer_ifs = (("da", 91), ("db", 92))
    try:
        vco = api.call("CreateVpnConnection", {
            "VpnGatewayId": gw, "LocalSubnet": VPC_CIDR, "RemoteSubnet": ONPREM_NET2, "EffectImmediately": True,
            "TunnelOptionsSpecification": [dict(tunnel, Role="master"), dict(tunnel, Role="slave")]})["VpnConnectionId"]
        wait_active(api, gw)
        cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
        tunnels = cfg["TunnelsConfig"]["TunnelConfig"]
        assert [t["Local"] for t in tunnels] == list(addresses), tunnels
        confs = []
        for (name, if_id), t in zip(customer_ifs, tunnels):
            sh("ip", "-n", site.cgw, "link", "add", f"x{name}", "type", "xfrm", "dev", "pub0", "if_id", str(if_id))
            sh("ip", "-n", site.cgw, "link", "set", f"x{name}", "up")
            conf = swanctl_from_download(dict(cfg, Local=t["Local"], Remote=t["Remote"], IkeConfig=t["IkeConfig"],
                                              IpsecConfig=t["IpsecConfig"]), name, encap=False)
            # The customer answers; the gateway initiates both tunnels (EffectImmediately) and keeps trying.
            confs.append(conf.replace("start_action = start",
                                      f"start_action = none\n        if_id_in = {if_id}\n        if_id_out = {if_id}"))
        # The customer answers through the second tunnel all along: what moves is the gateway's path.
        sh("ip", "-n", site.cgw, "route", "replace", VPC_CIDR, "dev", "xdb")
        site.charon.load("\n".join(confs))
        options = lambda: api.call("DescribeVpnConnection", {"VpnConnectionId": vco})[
            "TunnelOptionsSpecification"]["TunnelOptions"]
        both_up = lambda: [o["Status"] for o in options()] == ["ipsec_sa_established"] * 2
        assert wait_until(both_up, 90), options()
        master, slave = (o["TunnelId"] for o in options())
        path = [site.vpc_host, f"{NS_PREFIX}{gw}", site.cgw, site.onprem]
        assert_reachable(site.vpc_host, ONPREM_HOST2, 30, path, site.charon.log_tail)
        # The first tunnel is the connection to the data plane (its routes name the connection).
        assert wait_until(lambda: preferred_device(gw, ONPREM_NET2) == xfrm_if(vco), 30), \
            preferred_device(gw, ONPREM_NET2)

        vanish(site.cgw, f"ip saddr {addresses[0]}", f"ip daddr {addresses[0]}")
        cut_at = time.monotonic()
        assert wait_until(lambda: preferred_device(gw, ONPREM_NET2) == xfrm_if(slave), 90, every=0.5), \
            preferred_device(gw, ONPREM_NET2)
        assert_reachable(site.vpc_host, ONPREM_HOST2, 60, path, site.charon.log_tail)
        interruption = time.monotonic() - cut_at
        assert wait_until(lambda: options()[0]["Status"] != "ipsec_sa_established", 60), options()
        assert conn_status(api, vco) == "ipsec_sa_established", "the connection carries while either tunnel does"

        _restore(site.cgw)
        back_at = time.monotonic()
        assert wait_until(lambda: preferred_device(gw, ONPREM_NET2) == xfrm_if(vco), 120, every=1), \
            preferred_device(gw, ONPREM_NET2)
        returned = time.monotonic() - back_at
        assert_reachable(site.vpc_host, ONPREM_HOST2, 30, path, site.charon.log_tail)
        assert master != slave
        print(f"TIMING dual tunnel: traffic flowed again {interruption:.1f} s after the master tunnel was cut; back "
              f"on it {returned:.1f} s after it returned")
    finally:
        _restore(site.cgw)
        if vco:
            delete_connection(api, gw, vco)
        for name, _ in customer_ifs:
            peer_down(site, name)
            sh("ip", "-n", site.cgw, "link", "del", f"x{name}", check=False)
        sh("ip", "-n", site.vpc_host, "route", "replace", ONPREM_NET2, "via", gateway["IntranetIp"])
        api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
        vgwlib.wait_gateway_gone(api, gw, timeout=60)


@pytest.mark.kernel_ipsec
def test_dead_peer_is_detected_and_the_tunnel_recovers_by_itself(api, site, gateway, customer_gateway):
    """DPD: a customer that disappears is reported down (connection and health check) within the DPD timeout, and
    both recover when it returns, with no call to the API and nothing done on the customer side."""
    gw = gateway["VpnGatewayId"]
    vco = create_connection(api, gw, customer_gateway, VPC_CIDR, ONPREM_NET, HealthCheckConfig=probe_onprem(gateway),
                            IkeConfig=json.dumps({"IkeVersion": "ikev2"}), EnableDpd=True)
    health = lambda: health_status(api, vco)
    try:
        peer_up(site, api, vco, "dpd")
        assert Lab.wait_ping(site.onprem, VPC_HOST, 30), site.charon.log_tail()
        assert wait_until(lambda: conn_status(api, vco) == "ipsec_sa_established", 15), conn_status(api, vco)
        assert wait_until(lambda: health() == "success", 30), health()

        _cut(site.cgw, "pub0")
        cut_at = time.monotonic()
        # DPD every 10 s; IKEv2 gives up after charon's retransmissions (~22 s): well within 75 s.
        assert wait_until(lambda: conn_status(api, vco) != "ipsec_sa_established", 75, every=1), conn_status(api, vco)
        detected = time.monotonic() - cut_at
        assert wait_until(lambda: health() == "failed", 30), health()
        assert not Lab.ping(site.onprem, VPC_HOST)

        _restore(site.cgw)
        back_at = time.monotonic()
        assert Lab.wait_ping(site.onprem, VPC_HOST, 90), site.charon.log_tail()
        recovered = time.monotonic() - back_at
        assert wait_until(lambda: conn_status(api, vco) == "ipsec_sa_established", 30), conn_status(api, vco)
        assert wait_until(lambda: health() == "success", 30), health()
        print(f"TIMING dead peer: reported down {detected:.1f} s after it vanished; "
              f"traffic {recovered:.1f} s after it returned")
    finally:
        _restore(site.cgw)
        delete_connection(api, gw, vco)
        peer_down(site, "dpd")
    assert "dpd" not in site.charon.sas(), site.charon.sas()
