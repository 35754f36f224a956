"""libreswan (4.x, pluto) as the customer gateway of site-to-site connections created through Alibaba's SDK.

The libreswan side is configured from nothing but DownloadVpnConnectionConfig (ipsec.conf/ipsec.secrets rendered here,
as a customer would), or from `openvgw peer-config --format libreswan`. libreswan has no userspace ESP: its tunnels
need kernel ESP, so they are skipped natively here and run in tests/vm (tests/vm/dataplane-suite.sh).

Finding: libreswan 4.10 as Debian builds it has no modp1024 (DH group 2) — nor modp768 (group 1) — and refuses a
connection with Alibaba's default phase 1/2 groups (`test_libreswan_refuses_the_alibaba_default_dh_group`). The
"default" cases keep every other Alibaba default (IKEv1 main mode / IKEv2, aes, md5, lifetimes 86400 s) and use
group5 (modp1536), the closest group libreswan accepts.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

import vgwlib
from conftest import PUB_BRIDGE, VPC, VPC_CIDR, VPC_HOST
from lab import Lab, Libreswan, libreswan_from_download, libreswan_missing, sh
from test_dataplane import conn_status, create_connection, delete_connection, wait_until

# libreswan's data plane is the kernel's: every case runs again in the VM.
pytestmark = pytest.mark.kernel_ipsec

LSW_CGW_IP = "203.0.113.11"
LSW_NET, LSW_HOST, LSW_LAN_GW = "172.16.40.0/24", "172.16.40.10", "172.16.40.1"
CONN = "onprem"


class LswSite:
    """A second on-prem site: libreswan on the customer gateway `lswcgw`, a host behind it on `lswlan`."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.cgw = lab.netns("lswcgw")
        lab.attach(self.cgw, "pub0", PUB_BRIDGE, f"{LSW_CGW_IP}/24")
        self.lan = lab.netns("lswlan")
        lab.wire(self.cgw, "lan0", f"{LSW_LAN_GW}/24", self.lan, "eth0", f"{LSW_HOST}/24")
        sh("ip", "-n", self.lan, "route", "add", "default", "via", LSW_LAN_GW)
        lab.forward(self.cgw)
        self.routes: list = []

    def route_to_gateway(self, cfg: dict) -> None:
        """The customer's router sends the VPC's subnets to the VPN gateway (Linux policy-based IPsec needs a route
        before the XFRM lookup; pluto adds none without a next hop)."""
        for net in cfg["LocalSubnet"].split(","):
            sh("ip", "-n", self.cgw, "route", "replace", net.strip(), "via", cfg["Local"], "dev", "pub0")
            self.routes.append(net.strip())

    def unroute(self) -> None:
        while self.routes:
            sh("ip", "-n", self.cgw, "route", "del", self.routes.pop(), check=False)


@pytest.fixture(scope="module")
def lsw_ready():
    why = libreswan_missing()
    if why and os.environ.get("CI"):
        pytest.fail(f"{why} (CI: scripts/test unpacks libreswan before this suite)", pytrace=False)
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def kernel_esp_required(kernel_esp):
    if not kernel_esp:
        pytest.skip("this kernel has no ESP: libreswan cannot install IPsec SAs (runs in tests/vm)")


@pytest.fixture(scope="module")
def lsw_site(lsw_ready, lab, site):
    return LswSite(lab)


@pytest.fixture(scope="module")
def lsw_gateway(api, lsw_site, site):
    gw = api.call("CreateVpnGateway", {"VpcId": VPC, "Bandwidth": 10, "Name": "e2e-libreswan"})["VpnGatewayId"]
    d = vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
    d["IntranetIp"] = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "e2e-libreswan"})["IntranetIp"]
    site.route_vpc_to_gateway(d["IntranetIp"], LSW_NET)
    d["CustomerGatewayId"] = api.call("CreateCustomerGateway", {"IpAddress": LSW_CGW_IP,
                                                                "Name": "libreswan"})["CustomerGatewayId"]
    yield d
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    vgwlib.wait_gateway_gone(api, gw, timeout=60)


def start(peer: Libreswan, conf: str, secrets: str) -> None:
    """Writes the customer's files, starts pluto, loads and initiates the connection."""
    peer.write(conf, secrets)
    peer.start()
    r = peer.add(CONN)
    assert r.returncode == 0, f"addconn: {r.stdout}{r.stderr}\n{peer.log_tail()}"
    r = peer.up(CONN)
    assert r.returncode == 0, f"initiate: {r.stdout}{r.stderr}\n{peer.log_tail()}"


def download(api, vco: str) -> dict:
    return api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]


# (IkeConfig, IpsecConfig, ESP transform pluto must report)
DEFAULTS_BUT_GROUP5 = ({"IkePfs": "group5"}, {"IpsecPfs": "group5"}, "AES_CBC_128-HMAC_MD5_96")
AES256_SHA256_GROUP14 = (
    {"IkeEncAlg": "aes256", "IkeAuthAlg": "sha256", "IkePfs": "group14", "IkeLifetime": 28800,
     "LocalId": "gw.e2e.example", "RemoteId": "onprem.e2e.example"},
    {"IpsecEncAlg": "aes256", "IpsecAuthAlg": "sha256", "IpsecPfs": "group14", "IpsecLifetime": 3600},
    "AES_CBC_256-HMAC_SHA2_256_128",
)


@pytest.mark.parametrize("version,algs", [
    ({"IkeVersion": "ikev2"}, DEFAULTS_BUT_GROUP5),
    ({"IkeVersion": "ikev2"}, AES256_SHA256_GROUP14),
    ({"IkeVersion": "ikev1", "IkeMode": "main"}, DEFAULTS_BUT_GROUP5),
    ({"IkeVersion": "ikev1", "IkeMode": "main"}, AES256_SHA256_GROUP14),
], ids=["ikev2-defaults-group5", "ikev2-aes256-sha256-modp2048-fqdn", "ikev1-main-defaults-group5",
        "ikev1-main-aes256-sha256-modp2048-fqdn"])
def test_libreswan_site_to_site(kernel_esp_required, api, site, lsw_site, lsw_gateway, workdir, version, algs):
    ike, ipsec, esp_transform = algs
    gw = lsw_gateway["VpnGatewayId"]
    assert not Lab.ping(lsw_site.lan, VPC_HOST), "reachable before any connection exists"
    vco = create_connection(api, gw, lsw_gateway["CustomerGatewayId"], VPC_CIDR, LSW_NET,
                            IkeConfig=json.dumps({**version, **ike}), IpsecConfig=json.dumps(ipsec))
    peer = Libreswan(lsw_site.cgw, workdir / f"lsw-{vco}")
    try:
        cfg = download(api, vco)
        conf, secrets = libreswan_from_download(cfg, CONN)
        lsw_site.route_to_gateway(cfg)
        start(peer, conf, secrets)
        assert Lab.wait_ping(lsw_site.lan, VPC_HOST, 30), f"{peer.status()}\n{peer.log_tail()}"
        assert Lab.ping(site.vpc_host, LSW_HOST), "the VPC side cannot reach the libreswan site"
        assert peer.established(CONN), peer.status()
        assert esp_transform in peer.log(), f"expected ESP {esp_transform}: {peer.log_tail()}"
        if version["IkeVersion"] == "ikev1":
            assert "Main Mode" in peer.log() or "MAIN_I4" in peer.log(), peer.log_tail()
        assert wait_until(lambda: conn_status(api, vco) == "ipsec_sa_established", 20), conn_status(api, vco)
    finally:
        try:
            delete_connection(api, gw, vco)
            assert wait_until(lambda: not Lab.ping(lsw_site.lan, VPC_HOST), 15), \
                "still reachable after DeleteVpnConnection"
        finally:
            peer.stop()
            lsw_site.unroute()


def test_libreswan_refuses_the_alibaba_default_dh_group(lsw_site, api, server, lsw_gateway, workdir):
    """A connection with every Alibaba default (IKEv1 main mode, aes/md5/group2 for both phases): libreswan 4.10
    cannot load it, because it is built without modp1024; `peer-config --format libreswan` says so. Needs no ESP:
    the refusal happens at `addconn`."""
    vco = create_connection(api, lsw_gateway["VpnGatewayId"], lsw_gateway["CustomerGatewayId"], VPC_CIDR, LSW_NET)
    peer = Libreswan(lsw_site.cgw, workdir / f"lsw-{vco}")
    try:
        cfg = download(api, vco)
        assert (cfg["IkeConfig"]["IkeAuthAlg"], cfg["IkeConfig"]["IkePfs"]) == ("md5", "group2"), cfg["IkeConfig"]
        assert (cfg["IpsecConfig"]["IpsecAuthAlg"], cfg["IpsecConfig"]["IpsecPfs"]) == ("md5", "group2")
        peer.write(*libreswan_from_download(cfg, CONN))
        peer.start()
        r = peer.add(CONN)
        out = r.stdout + r.stderr + peer.log()
        assert r.returncode != 0 and "modp1024" in out and "not supported" in out, out[-3000:]
        export = subprocess.run([str(server.bin), "peer-config", "--connection", vco, "--format", "libreswan",
                                 "--data-dir", str(server.data), "--config", str(server.config)],
                                check=True, capture_output=True, text=True).stdout
        assert "modp1024" in export and "# NOTE: libreswan 4.x" in export, export
    finally:
        peer.stop()
        delete_connection(api, lsw_gateway["VpnGatewayId"], vco)


def test_libreswan_from_peer_config_export(kernel_esp_required, api, server, lsw_site, lsw_gateway, workdir):
    """`openvgw peer-config --format libreswan` output, used as is: pluto loads and starts it (auto=start)."""
    gw = lsw_gateway["VpnGatewayId"]
    vco = create_connection(api, gw, lsw_gateway["CustomerGatewayId"], VPC_CIDR, LSW_NET,
                            IkeConfig=json.dumps({"IkeVersion": "ikev2", "IkeAuthAlg": "sha256", "IkePfs": "group14",
                                                  "RemoteId": "onprem.e2e.example"}),
                            IpsecConfig=json.dumps({"IpsecAuthAlg": "sha256", "IpsecPfs": "group14"}))
    peer = Libreswan(lsw_site.cgw, workdir / f"lsw-export-{vco}")
    try:
        subprocess.run([str(server.bin), "peer-config", "--connection", vco, "--format", "libreswan",
                        "--output-dir", str(peer.dir), "--data-dir", str(server.data), "--config",
                        str(server.config)], check=True, capture_output=True)
        lsw_site.route_to_gateway(download(api, vco))
        assert not Lab.ping(lsw_site.lan, VPC_HOST)
        peer.start()
        assert Lab.wait_ping(lsw_site.lan, VPC_HOST, 40), f"{peer.status()}\n{peer.log_tail()}"
        assert peer.established(vco), peer.status()
    finally:
        try:
            delete_connection(api, gw, vco)
            assert wait_until(lambda: not Lab.ping(lsw_site.lan, VPC_HOST), 15)
        finally:
            peer.stop()
            lsw_site.unroute()


# -- route-based with BGP, and behind a NAT -----------------------------------------------------------------------

LSW_TUNNEL, LSW_GATEWAY_END, LSW_ASN = "169.254.13.0/30", "169.254.13.1", 65030
# The XFRM interface pluto creates for `ipsec-interface=7` (if_id 7).
LSW_IF = "ipsec7"
STRONG = {"IkeVersion": "ikev2", "IkeAuthAlg": "sha256", "IkePfs": "group14"}
STRONG_ESP = {"IpsecAuthAlg": "sha256", "IpsecPfs": "group14"}


def test_libreswan_bgp_over_a_route_based_tunnel(kernel_esp_required, api, site, lsw_site, lsw_gateway, workdir,
                                                 lab):
    """libreswan with an XFRM interface (`ipsec-interface`, selectors 0.0.0.0/0) and BIRD on the customer gateway,
    from the download: the session comes up, each side learns the other's network (the customer has no static route
    to the VPC), the LAN behind libreswan reaches the VPC, and the gateway shows the route it learned."""
    from lab import Bird, bird_from_download
    from test_dataplane import _gateway_route, _system_routes, _bgp_status
    gw = lsw_gateway["VpnGatewayId"]
    cgw = api.call("CreateCustomerGateway", {"IpAddress": "203.0.113.13", "Asn": LSW_ASN,
                                             "Name": "libreswan-bgp"})["CustomerGatewayId"]
    sh("ip", "-n", lsw_site.cgw, "addr", "add", "203.0.113.13/24", "dev", "pub0")
    bgp = json.dumps({"EnableBgp": "true", "TunnelCidr": LSW_TUNNEL, "LocalBgpIp": LSW_GATEWAY_END})
    vco = create_connection(api, gw, cgw, "0.0.0.0/0", "0.0.0.0/0", BgpConfig=bgp, IkeConfig=json.dumps(STRONG),
                            IpsecConfig=json.dumps(STRONG_ESP))
    peer = Libreswan(lsw_site.cgw, workdir / f"lsw-bgp-{vco}")
    bird = None
    try:
        cfg = download(api, vco)
        peer_bgp = cfg["BgpConfigs"]["BgpConfig"][0]
        conf, secrets = libreswan_from_download(cfg, CONN)
        assert "leftsubnet=0.0.0.0/0" in conf and "rightsubnet=0.0.0.0/0" in conf, conf
        # Route-based: an XFRM interface carries what is routed into it; no route of pluto's own.
        conf = conf.replace("\tauto=add", "\tipsec-interface=7\n\tleftupdown=/bin/true\n\tauto=add")
        start(peer, conf, secrets)
        assert wait_until(lambda: sh("ip", "-n", lsw_site.cgw, "link", "show", LSW_IF, check=False).returncode == 0, 10)
        sh("ip", "-n", lsw_site.cgw, "link", "set", LSW_IF, "up")
        sh("ip", "-n", lsw_site.cgw, "addr", "replace", f"{peer_bgp['PeerBgpIp']}/30", "dev", LSW_IF)
        bird = Bird(lab, lsw_site.cgw, "lsw-bird", bird_from_download(peer_bgp, "203.0.113.13", [LSW_NET]))
        assert wait_until(lambda: _bgp_status(api, vco) == "success", 60), (peer.status(), bird.log_tail())
        assert wait_until(lambda: "proto bird" in sh("ip", "-n", lsw_site.cgw, "route", "show", "exact", VPC_CIDR,
                                                     check=False).stdout, 30)
        assert Lab.wait_ping(lsw_site.lan, VPC_HOST, 30), f"{peer.status()}\n{peer.log_tail()}"
        assert Lab.ping(site.vpc_host, LSW_HOST)
        assert wait_until(lambda: "proto bird" in _gateway_route(gw, LSW_NET), 30)
        learned = [r for r in _system_routes(api, gw) if r["RouteDest"] == LSW_NET]
        assert len(learned) == 1 and learned[0]["AsPath"] == str(LSW_ASN), learned
    finally:
        try:
            delete_connection(api, gw, vco)
        finally:
            if bird:
                bird.stop()
            peer.stop()
            sh("ip", "-n", lsw_site.cgw, "link", "del", LSW_IF, check=False)
            sh("ip", "-n", lsw_site.cgw, "addr", "del", "203.0.113.13/24", "dev", "pub0", check=False)
            api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})


def test_libreswan_behind_a_nat(kernel_esp_required, api, site, lsw_gateway, workdir, lab):
    """libreswan behind a NAT (a namespace masquerading it to 203.0.113.21), configured from the download: it
    detects the NAT, encapsulates ESP in UDP and its network reaches the VPC."""
    nat = lab.netns("lswnat")
    lab.attach(nat, "pub0", PUB_BRIDGE, "203.0.113.21/24")
    cgw_ns = lab.netns("lswcgwnat")
    lab.wire(nat, "in0", "10.78.0.1/24", cgw_ns, "out0", "10.78.0.2/24")
    lab.forward(nat)
    sh("nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority srcnat; }; "
              "add rule ip nat post oifname pub0 masquerade", ns=nat)
    sh("ip", "-n", cgw_ns, "route", "add", "default", "via", "10.78.0.1")
    sh("ip", "-n", cgw_ns, "addr", "add", "172.16.45.1/32", "dev", "lo")
    site.route_vpc_to_gateway(lsw_gateway["IntranetIp"], "172.16.45.0/24")
    gw = lsw_gateway["VpnGatewayId"]
    cgw = api.call("CreateCustomerGateway", {"IpAddress": "203.0.113.21", "Name": "libreswan-nat"})["CustomerGatewayId"]
    vco = create_connection(api, gw, cgw, VPC_CIDR, "172.16.45.0/24", EnableNatTraversal=True,
                            IkeConfig=json.dumps(STRONG), IpsecConfig=json.dumps(STRONG_ESP))
    peer = Libreswan(cgw_ns, workdir / f"lsw-nat-{vco}")
    try:
        cfg = download(api, vco)
        assert cfg["Remote"] == "203.0.113.21"
        # Its own address is behind the NAT; its identity (RemoteId) stays the public one the gateway expects.
        conf, secrets = libreswan_from_download(dict(cfg, Remote="10.78.0.2"), CONN)
        assert "leftid=203.0.113.21" in conf, conf
        start(peer, conf, secrets)
        sh("ip", "-n", cgw_ns, "route", "replace", VPC_CIDR, "via", "10.78.0.1", "src", "172.16.45.1")
        assert Lab.wait_ping(cgw_ns, VPC_HOST, 30, src="172.16.45.1"), f"{peer.status()}\n{peer.log_tail()}"
        assert "NAT" in peer.log() and ("ESPinUDP" in peer.log() or "encap" in peer.status().lower()), \
            peer.log_tail()
        assert wait_until(lambda: conn_status(api, vco) == "ipsec_sa_established", 20), conn_status(api, vco)
    finally:
        try:
            delete_connection(api, gw, vco)
        finally:
            peer.stop()
            api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})
