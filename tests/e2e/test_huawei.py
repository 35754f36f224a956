"""Packets through tunnels created with Huawei's SDK (huaweicloudsdkvpn):

* site-to-cloud: a strongSwan customer gateway configured from the connection's exported peer configuration, a
  static connection on the gateway's first EIP and a policy connection on its second; the SA counters, the
  negotiation log and a reset are read back through the API;
* client-to-site: stock OpenVPN clients sign in with user names and passwords from the exported client profile,
  get their fixed addresses, reach only what their group's access policy allows (changed live), are listed and
  disconnected through the API, and a deleted user is locked out.

Every ping is checked to fail before and after, not only to pass during."""
from __future__ import annotations

import ipaddress
import os
import re
import time
import uuid

import pytest

from conftest import (CGW_IP, HW_VPC, HW_VPC_BRIDGE, HW_VPC_CIDR, NS_PREFIX, ONPREM_HOST, ONPREM_NET, PUB_BRIDGE,
                      assert_reachable, preferred_device, vpc_router_ns, xfrm_if)
from lab import BgpCustomer, Lab, bird_conf, sh, unvanish, vanish, wait_until

try:
    import huaweicloudsdkvpn.v5 as sdk
except ImportError:
    # scripts/test installs the SDK; under CI its absence is a failure, not a skip.
    if os.environ.get("CI"):
        raise
    pytest.skip("huaweicloudsdkvpn is not installed (scripts/test installs it)", allow_module_level=True)
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402

REGION = "cn-north-4"
HOST_A, HOST_B = "192.168.20.50", "192.168.20.60"
CLIENT_POOL = "10.220.0.0/24"
PSK = "Openvgw-e2e-1"


@pytest.fixture(scope="module")
def hw(server):
    t = server.tenant("hw-e2e")
    cfg = HttpConfig.get_default_config()
    cfg.retry_times = 0
    creds = BasicCredentials(t["access_key_id"], t["access_key_secret"], t["projects"][REGION])
    return (sdk.VpnClient.new_builder().with_http_config(cfg).with_credentials(creds)
            .with_endpoints([f"http://127.0.0.1:{server.port}"]).build())


@pytest.fixture(scope="module")
def vpc(lab):
    """The VPC's hosts: two addresses, so access policies can allow one and not the other."""
    host = lab.netns("hwvpc")
    lab.attach(host, "eth0", HW_VPC_BRIDGE, f"{HOST_A}/24")
    sh("ip", "-n", host, "addr", "add", f"{HOST_B}/24", "dev", "eth0")
    return host


def inside_address(gateway_id: str) -> str:
    """The gateway's address in the VPC, read from its namespace (Huawei's API does not show it; the VPC's route
    table is what the test plays here)."""
    out = sh("ip", "-n", f"{NS_PREFIX}{gateway_id}", "-4", "-o", "addr", "show").stdout
    net = ipaddress.ip_network(HW_VPC_CIDR)
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if ipaddress.ip_address(addr) in net:
            return addr
    raise AssertionError(f"no VPC address in the gateway's namespace:\n{out}")


def wait_status(show, want: str, timeout: float = 60) -> None:
    got = wait_until(lambda: show().status == want, timeout)
    assert got, f"status {show().status}, wanted {want}"


def new_eip():
    return sdk.CreateRequestEip(type="5_bgp", charge_mode="bandwidth", bandwidth_size=10)


@pytest.fixture(scope="module")
def s2c_gateway(hw, vpc, lab):
    body = sdk.CreateVgwRequestBodyContent(vpc_id=HW_VPC, connect_subnet=str(uuid.uuid4()), local_subnets=[HW_VPC_CIDR],
                                           eip1=new_eip(), eip2=new_eip(), name="hw-e2e-s2c")
    gw = hw.create_vgw(sdk.CreateVgwRequest(body=sdk.CreateVgwRequestBody(vpn_gateway=body))).vpn_gateway
    show = lambda: hw.show_vgw(sdk.ShowVgwRequest(vgw_id=gw.id)).vpn_gateway
    wait_status(show, "ACTIVE")
    lab.route(vpc, ONPREM_NET, inside_address(gw.id))
    yield show()
    hw.delete_vgw(sdk.DeleteVgwRequest(vgw_id=gw.id))
    assert wait_until(lambda: not _exists(lambda: hw.show_vgw(sdk.ShowVgwRequest(vgw_id=gw.id))), 60)


def _exists(call) -> bool:
    try:
        call()
        return True
    except ClientRequestException as e:
        assert e.status_code == 404, e
        return False


def loaded_connection(server, name: str) -> str:
    """The connection as the gateway's charon has it loaded (VICI list-conns, raw)."""
    for sock in sorted((server.data / "dataplane" / "run").glob("*.vici")):
        for line in sh("swanctl", "--list-conns", "--raw", "--uri", f"unix://{sock}", check=False).stdout.splitlines():
            if name in line:
                return line
    raise AssertionError(f"no gateway's charon has {name} loaded")


def test_site_to_cloud_through_the_exported_peer_configuration(hw, server, site, vpc, s2c_gateway):
    gw = s2c_gateway
    cgw = hw.create_cgw(sdk.CreateCgwRequest(body=sdk.CreateCgwRequestBody(
        customer_gateway=sdk.CreateCgwRequestBodyContent(id_value=CGW_IP, name="hw-e2e-cgw")))).customer_gateway
    assert not Lab.ping(site.onprem, HOST_A), "reachable before any connection exists"
    conn = hw.create_vpn_connection(sdk.CreateVpnConnectionRequest(body=sdk.CreateVpnConnectionRequestBody(
        vpn_connection=sdk.CreateVpnConnectionRequestBodyContent(
            vgw_id=gw.id, vgw_ip=gw.eip1.id, cgw_id=cgw.id, peer_subnets=[ONPREM_NET], psk=PSK,
            name="hw-e2e-static")))).vpn_connection
    show_gw = lambda: hw.show_vgw(sdk.ShowVgwRequest(vgw_id=gw.id)).vpn_gateway
    show = lambda: hw.show_vpn_connection(sdk.ShowVpnConnectionRequest(vpn_connection_id=conn.id)).vpn_connection
    try:
        wait_status(show_gw, "ACTIVE")
        assert show().status == "DOWN", "ACTIVE before the peer exists"
        exported = hw.export_vpn_connection_peer_configuration(sdk.ExportVpnConnectionPeerConfigurationRequest(
            vpn_connection_id=conn.id, body=sdk.ExportPeerConfigurationRequestBody(
                vendor="strongSwan", type="software", model="swanctl", version="5.9"))).peer_config
        assert f"remote_addrs = {gw.eip1.ip_address}" in exported and f"local_addrs = {CGW_IP}" in exported
        if not site.kernel_esp:
            # This kernel has no ESP: the customer's charon runs userspace ESP, which needs UDP encapsulation.
            exported = exported.replace("    proposals =", "    encap = yes\n    proposals =", 1)
        site.charon.load(exported)
        site.charon.initiate(conn.id)
        assert Lab.wait_ping(site.onprem, HOST_A, 30), site.charon.log_tail()
        assert Lab.ping(vpc, ONPREM_HOST), "the VPC side cannot reach on-prem"
        wait_status(show, "ACTIVE", 20)
        # A static connection publishes its peer subnets: the VPC's router sends them to the gateway.
        router = sh("ip", "-n", vpc_router_ns(HW_VPC), "route", "show", "exact", ONPREM_NET).stdout
        assert f"via {inside_address(gw.id)}" in router, router
        sas = hw.list_connection_ipsec_sa(sdk.ListConnectionIpsecSaRequest(vpn_connection_id=conn.id)).sa_infos
        assert len(sas) == 1 and sas[0].traffic_recv > 0 and sas[0].packets_recv > 0, sas
        assert sas[0].source_ip_cidr == HW_VPC_CIDR and sas[0].dest_ip_cidr == ONPREM_NET, sas
        logs = hw.show_vpn_connection_log(sdk.ShowVpnConnectionLogRequest(vpn_connection_id=conn.id)).logs
        assert logs and any("established" in l.raw_message.lower() for l in logs), [l.raw_message for l in logs]
        assert all(abs(l.time - time.time()) < 86400 + 60 for l in logs)
        first_sa = sas[0].id
        hw.reset_vpn_connection(sdk.ResetVpnConnectionRequest(vpn_connection_id=conn.id))
        renewed = wait_until(lambda: [s for s in hw.list_connection_ipsec_sa(
            sdk.ListConnectionIpsecSaRequest(vpn_connection_id=conn.id)).sa_infos if s.id != first_sa], 30)
        assert renewed, "no new SA after the reset"
        assert Lab.wait_ping(site.onprem, HOST_A, 30), site.charon.log_tail()
    finally:
        hw.delete_vpn_connection(sdk.DeleteVpnConnectionRequest(vpn_connection_id=conn.id))
        wait_status(show_gw, "ACTIVE")
        site.charon.swanctl("--terminate", "--ike", conn.id, "--force", check=False)
        site.charon.load("")
    assert wait_until(lambda: not Lab.ping(site.onprem, HOST_A), 15), "still reachable after the connection is gone"

    # A policy connection bound to the second EIP, IKEv1 with DPD timers of its own: the gateway's charon and the
    # exported customer configuration both use them (idle 15 s; IKEv1: dead after 15 + 2 x 5 s).
    conn = hw.create_vpn_connection(sdk.CreateVpnConnectionRequest(body=sdk.CreateVpnConnectionRequestBody(
        vpn_connection=sdk.CreateVpnConnectionRequestBodyContent(
            vgw_id=gw.id, vgw_ip=gw.eip2.id, cgw_id=cgw.id, style="policy", peer_subnets=[ONPREM_NET], psk=PSK,
            policy_rules=[sdk.PolicyRule(source=HW_VPC_CIDR, destination=[ONPREM_NET])],
            ikepolicy=sdk.IkePolicy(ike_version="v1", dpd=sdk.Dpd(interval=15, timeout=5)))))).vpn_connection
    try:
        assert conn.style == "POLICY" and conn.vgw_ip == gw.eip2.id
        assert (conn.ikepolicy.dpd.interval, conn.ikepolicy.dpd.timeout) == (15, 5), conn.ikepolicy.dpd
        wait_status(show_gw, "ACTIVE")
        loaded = loaded_connection(server, conn.id)
        assert "dpd_delay=15 " in loaded and "dpd_timeout=25 " in loaded and "version=IKEv1" in loaded, loaded
        exported = hw.export_vpn_connection_peer_configuration(sdk.ExportVpnConnectionPeerConfigurationRequest(
            vpn_connection_id=conn.id, body=sdk.ExportPeerConfigurationRequestBody(
                vendor="strongSwan", type="software", model="swanctl", version="5.9"))).peer_config
        assert f"remote_addrs = {gw.eip2.ip_address}" in exported, exported
        assert "dpd_delay = 15s" in exported and "dpd_timeout = 25s" in exported, exported
        if not site.kernel_esp:
            exported = exported.replace("    proposals =", "    encap = yes\n    proposals =", 1)
        site.charon.load(exported)
        site.charon.initiate(conn.id)
        assert Lab.wait_ping(site.onprem, HOST_A, 30), site.charon.log_tail()
        show = lambda: hw.show_vpn_connection(sdk.ShowVpnConnectionRequest(vpn_connection_id=conn.id)).vpn_connection
        wait_status(show, "ACTIVE", 20)
    finally:
        hw.delete_vpn_connection(sdk.DeleteVpnConnectionRequest(vpn_connection_id=conn.id))
        wait_status(show_gw, "ACTIVE")
        site.charon.swanctl("--terminate", "--ike", conn.id, "--force", check=False)
        site.charon.load("")
    assert wait_until(lambda: not Lab.ping(site.onprem, HOST_A), 15), "still reachable after the connection is gone"
    hw.delete_cgw(sdk.DeleteCgwRequest(customer_gateway_id=cgw.id))


@pytest.mark.kernel_ipsec
@pytest.mark.parametrize("ha_mode", ["active-active", "active-standby"])
def test_two_eip_gateway_keeps_the_customer_reachable_when_one_tunnel_is_cut(hw, site, vpc, s2c_gateway, ha_mode):
    """A gateway with two EIPs and a static connection to the same customer on each (active-standby: the first one
    `master`, the second `slave`): traffic from the VPC (through the VPC's router, to which static connections
    publish their peer subnets) takes the preferred tunnel; when that one stops carrying (cut between the customer
    and its EIP, noticed by DPD) it moves to the other by itself, and back when the first carries again. The
    interruption is measured."""
    if not site.kernel_esp:
        pytest.skip("two route-based tunnels on one gateway need XFRM interfaces (kernel-libipsec has a single tunnel "
                    "device); this runs in the VM step, on a kernel with ESP")
    body = sdk.CreateVgwRequestBodyContent(vpc_id=HW_VPC, connect_subnet=str(uuid.uuid4()), local_subnets=[HW_VPC_CIDR],
                                           eip1=new_eip(), eip2=new_eip(), ha_mode=ha_mode, name=f"hw-e2e-{ha_mode}")
    gw = hw.create_vgw(sdk.CreateVgwRequest(body=sdk.CreateVgwRequestBody(vpn_gateway=body))).vpn_gateway
    show_gw = lambda: hw.show_vgw(sdk.ShowVgwRequest(vgw_id=gw.id)).vpn_gateway
    wait_status(show_gw, "ACTIVE")
    gw = show_gw()
    router = sh("ip", "-n", vpc_router_ns(HW_VPC), "-4", "-o", "addr", "show", "dev", "vpc0").stdout.split()[3]
    sh("ip", "-n", vpc, "route", "replace", ONPREM_NET, "via", router.split("/")[0])
    cgw = hw.create_cgw(sdk.CreateCgwRequest(body=sdk.CreateCgwRequestBody(
        customer_gateway=sdk.CreateCgwRequestBodyContent(id_value=CGW_IP, name=f"hw-e2e-{ha_mode}")))).customer_gateway
    conns, eips = [], [gw.eip1, gw.eip2]
    roles = ["master", "slave"] if ha_mode == "active-standby" else [None, None]
    customer_ifs = (("ha", 81), ("hb", 82))
    try:
        for eip, role in zip(eips, roles):
            conns.append(hw.create_vpn_connection(sdk.CreateVpnConnectionRequest(body=sdk.CreateVpnConnectionRequestBody(
                vpn_connection=sdk.CreateVpnConnectionRequestBodyContent(
                    vgw_id=gw.id, vgw_ip=eip.id, cgw_id=cgw.id, peer_subnets=[ONPREM_NET], psk=PSK, ha_role=role,
                    name=f"hw-e2e-{ha_mode}-{eip.ip_address}")))).vpn_connection)
        wait_status(show_gw, "ACTIVE")
        confs = []
        for (name, if_id), conn in zip(customer_ifs, conns):
            sh("ip", "-n", site.cgw, "link", "add", f"x{name}", "type", "xfrm", "dev", "pub0", "if_id", str(if_id))
            sh("ip", "-n", site.cgw, "link", "set", f"x{name}", "up")
            exported = hw.export_vpn_connection_peer_configuration(sdk.ExportVpnConnectionPeerConfigurationRequest(
                vpn_connection_id=conn.id, body=sdk.ExportPeerConfigurationRequestBody(
                    vendor="strongSwan", type="software", model="swanctl", version="5.9"))).peer_config
            # The customer only answers here: the gateway's connections initiate (and keep trying), and when both
            # ends initiate at once the crossed exchanges have left a tunnel without traffic although both reported
            # ACTIVE (twice in CI, not reproduced on demand). What this test is about is the failover.
            confs.append(exported.replace("start_action = start", f"start_action = none\n        "
                                          f"if_id_in = {if_id}\n        if_id_out = {if_id}"))
        # The customer answers through the second tunnel all along (its own choice): what moves is the gateway's
        # path towards it.
        sh("ip", "-n", site.cgw, "route", "replace", HW_VPC_CIDR, "dev", "xhb")
        site.charon.load("\n".join(confs))
        for conn in conns:
            wait_status(lambda c=conn: hw.show_vpn_connection(sdk.ShowVpnConnectionRequest(
                vpn_connection_id=c.id)).vpn_connection, "ACTIVE", 90)
        path = [vpc, vpc_router_ns(HW_VPC), f"{NS_PREFIX}{gw.id}", site.cgw, site.onprem]
        assert_reachable(vpc, ONPREM_HOST, 30, path, site.charon.log_tail)
        devices = {xfrm_if(c.id): eip for c, eip in zip(conns, eips)}
        assert wait_until(lambda: preferred_device(gw.id, ONPREM_NET) in devices, 30), \
            preferred_device(gw.id, ONPREM_NET)
        first = preferred_device(gw.id, ONPREM_NET)
        if ha_mode == "active-standby":
            assert first == xfrm_if(conns[0].id), "the master's tunnel is the preferred one"
        other = next(d for d in devices if d != first)

        cut = devices[first].ip_address
        vanish(site.cgw, f"ip saddr {cut}", f"ip daddr {cut}")
        cut_at = time.monotonic()
        assert wait_until(lambda: preferred_device(gw.id, ONPREM_NET) == other, 90, every=0.5), \
            preferred_device(gw.id, ONPREM_NET)
        assert_reachable(vpc, ONPREM_HOST, 60, path, site.charon.log_tail)
        interruption = time.monotonic() - cut_at

        unvanish(site.cgw)
        back_at = time.monotonic()
        assert wait_until(lambda: preferred_device(gw.id, ONPREM_NET) == first, 120, every=1), \
            preferred_device(gw.id, ONPREM_NET)
        returned = time.monotonic() - back_at
        assert_reachable(vpc, ONPREM_HOST, 30, path, site.charon.log_tail)
        print(f"TIMING {ha_mode}: traffic flowed again {interruption:.1f} s after one tunnel was cut; back on it "
              f"{returned:.1f} s after it returned")
    finally:
        unvanish(site.cgw)
        for conn in conns:
            hw.delete_vpn_connection(sdk.DeleteVpnConnectionRequest(vpn_connection_id=conn.id))
            site.charon.swanctl("--terminate", "--ike", conn.id, "--force", check=False)
        site.charon.load("")
        for name, _ in customer_ifs:
            sh("ip", "-n", site.cgw, "link", "del", f"x{name}", check=False)
        sh("ip", "-n", vpc, "route", "replace", ONPREM_NET, "via", inside_address(s2c_gateway.id))
        wait_status(show_gw, "ACTIVE")
        hw.delete_cgw(sdk.DeleteCgwRequest(customer_gateway_id=cgw.id))
        hw.delete_vgw(sdk.DeleteVgwRequest(vgw_id=gw.id))
        assert wait_until(lambda: not _exists(lambda: hw.show_vgw(sdk.ShowVgwRequest(vgw_id=gw.id))), 60)


HW_BGP_CGW_IP, HW_BGP_ASN = "203.0.113.31", 65020
HW_BGP_NET, HW_BGP_HOST = "172.16.70.0/24", "172.16.70.1"
HW_TUNNEL_LOCAL, HW_TUNNEL_PEER = "169.254.12.1", "169.254.12.2"


@pytest.mark.kernel_ipsec
@pytest.mark.parametrize("ike_version", ["v2", "v1"])
def test_bgp_connection_learns_the_customers_network_and_shows_the_session(hw, lab, vpc, s2c_gateway, kernel_esp,
                                                                          ike_version):
    """A `style=bgp` connection (IKEv2, and IKEv1 main mode): the customer (strongSwan from the exported peer configuration, which selects
    everything and says how to peer; BIRD with no static route) and the gateway learn each other's networks;
    `bgp_peer` shows the session (state, duration, routes received) and the routing table the learned route with its
    AS path; deleting the connection withdraws it."""
    gw = s2c_gateway
    # A customer gateway of its own per case: its namespace stays until the session ends.
    cgw_ip = HW_BGP_CGW_IP if ike_version == "v2" else "203.0.113.32"
    customer = BgpCustomer(lab, f"cgwbgphw{ike_version}", f"{cgw_ip}/24", PUB_BRIDGE, f"{HW_BGP_HOST}/24",
                           kernel_esp)
    lab.route(vpc, HW_BGP_NET, inside_address(gw.id))
    cgw = hw.create_cgw(sdk.CreateCgwRequest(body=sdk.CreateCgwRequestBody(customer_gateway=sdk.CreateCgwRequestBodyContent(
        id_value=cgw_ip, bgp_asn=HW_BGP_ASN, name="hw-e2e-bgp")))).customer_gateway
    conn = hw.create_vpn_connection(sdk.CreateVpnConnectionRequest(body=sdk.CreateVpnConnectionRequestBody(
        vpn_connection=sdk.CreateVpnConnectionRequestBodyContent(
            vgw_id=gw.id, vgw_ip=gw.eip1.id, cgw_id=cgw.id, style="bgp", peer_subnets=[HW_BGP_NET], psk=PSK,
            tunnel_local_address=f"{HW_TUNNEL_LOCAL}/30", tunnel_peer_address=f"{HW_TUNNEL_PEER}/30",
            ikepolicy=sdk.IkePolicy(ike_version=ike_version), name="hw-e2e-bgp")))).vpn_connection
    show_gw = lambda: hw.show_vgw(sdk.ShowVgwRequest(vgw_id=gw.id)).vpn_gateway
    show = lambda: hw.show_vpn_connection(sdk.ShowVpnConnectionRequest(vpn_connection_id=conn.id)).vpn_connection
    routing = lambda: hw.show_vpn_gateway_routing_table(sdk.ShowVpnGatewayRoutingTableRequest(
        vgw_id=gw.id, is_include_nexthop_resource=True)).routing_table
    try:
        assert conn.style == "BGP" and conn.ikepolicy.ike_version == ike_version, (conn.style, conn.ikepolicy)
        wait_status(show_gw, "ACTIVE")
        assert show().bgp_peer.state != "established"
        exported = hw.export_vpn_connection_peer_configuration(sdk.ExportVpnConnectionPeerConfigurationRequest(
            vpn_connection_id=conn.id, body=sdk.ExportPeerConfigurationRequestBody(
                vendor="strongSwan", type="software", model="swanctl", version="5.9"))).peer_config
        gw_asn = show_gw().bgp_asn
        assert f"neighbor {HW_TUNNEL_LOCAL} as {gw_asn} from local {HW_TUNNEL_PEER} as {HW_BGP_ASN}" in exported, exported
        if not kernel_esp:
            exported = exported.replace("    proposals =", "    encap = yes\n    proposals =", 1)
        customer.up(exported, conn.id, f"{HW_TUNNEL_PEER}/30",
                    bird_conf(HW_TUNNEL_PEER, HW_BGP_ASN, HW_TUNNEL_LOCAL, gw_asn, cgw_ip, [HW_BGP_NET]))
        assert wait_until(lambda: show().bgp_peer.state == "established", 60), (show().bgp_peer,
                                                                                 customer.bird.log_tail())
        assert wait_until(lambda: customer.learned() == [HW_VPC_CIDR], 30), customer.learned()
        assert Lab.wait_ping(vpc, HW_BGP_HOST, 30), customer.charon.log_tail()
        assert wait_until(lambda: show().bgp_peer.num_received_routes == 1, 30), show().bgp_peer
        peer = show().bgp_peer
        assert (peer.peer_ip_address, peer.peer_asn) == (HW_TUNNEL_PEER, HW_BGP_ASN), peer
        assert re.fullmatch(r"(\d+d)?\d\dh\d\dm\d\ds", peer.state_duration), peer.state_duration
        learned = [r for r in routing() if r.destination == HW_BGP_NET]
        assert len(learned) == 1, routing()
        r = learned[0]
        assert (r.nexthop, r.outbound_interface_ip, r.as_path, r.origin) == (
            HW_TUNNEL_PEER, HW_TUNNEL_LOCAL, str(HW_BGP_ASN), "egp"), r
        assert r.nexthop_resource.id == conn.id, r
        wait_status(show, "ACTIVE", 20)
    finally:
        hw.delete_vpn_connection(sdk.DeleteVpnConnectionRequest(vpn_connection_id=conn.id))
        wait_status(show_gw, "ACTIVE")
        customer.down(conn.id)
    assert not [r for r in routing() if r.destination == HW_BGP_NET], routing()
    assert wait_until(lambda: not Lab.ping(vpc, HW_BGP_HOST), 15), "still reachable after the connection is gone"
    hw.delete_cgw(sdk.DeleteCgwRequest(customer_gateway_id=cgw.id))


@pytest.fixture(scope="module")
def p2c(hw, vpc, lab):
    body = sdk.CreateP2cVgwRequestBodyContent(vpc_id=HW_VPC, connect_subnet=str(uuid.uuid4()), name="hw-e2e-p2c",
                                              eip=sdk.CreateP2cRequestEip(type="5_bgp", bandwidth_size=10,
                                                                                        charge_mode="bandwidth"))
    gid = hw.create_p2c_vgw(sdk.CreateP2cVgwRequest(body=sdk.CreateP2cVgwRequestBody(p2c_vpn_gateway=body))
                            ).p2c_vpn_gateway.id
    show = lambda: hw.show_p2c_vgw(sdk.ShowP2cVgwRequest(p2c_vgw_id=gid)).p2c_vpn_gateway
    wait_status(show, "ACTIVE")
    server = sdk.CreateServerRequestBody(vpn_server=sdk.CreateServerRequest(
        client_cidr=CLIENT_POOL, local_subnets=[HW_VPC_CIDR],
        server_certificate=sdk.CreateServerRequestServerCertificate(source="SERVICE_SIGN")))
    sid = hw.create_vpn_server(sdk.CreateVpnServerRequest(p2c_vgw_id=gid, body=server)).vpn_server.id
    wait_status(show, "ACTIVE")
    lab.route(vpc, CLIENT_POOL, inside_address(gid))
    road = lab.netns("hwroad")
    lab.attach(road, "pub0", PUB_BRIDGE, "203.0.113.41/24")
    yield {"gateway": gid, "server": sid, "show": show, "road": road, "eip": show().eip.ip_address}
    hw.delete_p2c_vgw(sdk.DeleteP2cVgwRequest(p2c_vgw_id=gid))
    assert wait_until(lambda: not _exists(lambda: hw.show_p2c_vgw(sdk.ShowP2cVgwRequest(p2c_vgw_id=gid))), 60)


def _client(lab: Lab, ns: str, workdir, profile: str, name: str, password: str):
    """Stock OpenVPN with exactly the exported profile; the user name and password come from a file given on the
    command line (what a user types at the prompt the profile's `auth-user-pass` asks for)."""
    creds = workdir / f"{name}.creds"
    creds.write_text(f"{name}\n{password}\n")
    creds.chmod(0o600)
    conf = workdir / f"{name}.ovpn"
    conf.write_text(profile)
    log = workdir / f"{name}.log"
    log.write_text("")
    p = lab.spawn(ns, ["openvpn", "--config", str(conf), "--auth-user-pass", str(creds), "--verb", "3"], log)
    return p, log


def _sessions(hw, gid: str):
    return hw.list_p2c_vgw_connections(sdk.ListP2cVgwConnectionsRequest(p2c_vgw_id=gid)).connections or []


def test_client_to_site_users_passwords_and_access_policies(hw, lab, vpc, p2c, workdir):
    gid, sid, road = p2c["gateway"], p2c["server"], p2c["road"]
    groups = hw.list_vpn_user_groups(sdk.ListVpnUserGroupsRequest(vpn_server_id=sid)).user_groups
    assert [g.type for g in groups] == ["Default"], groups
    sales = hw.create_vpn_user_group(sdk.CreateVpnUserGroupRequest(vpn_server_id=sid, body=sdk.CreateVpnUserGroupRequestBody(
        user_group=sdk.CreateVpnUserGroupRequestBodyContent(name="sales")))).user_group.id
    policy = hw.create_vpn_access_policy(sdk.CreateVpnAccessPolicyRequest(vpn_server_id=sid, body=sdk.CreateVpnAccessPolicyRequestBody(
        access_policy=sdk.CreateVpnAccessPolicyRequestBodyContent(name="to-a", user_group_id=sales,
                                                                  dest_ip_cidrs=[f"{HOST_A}/32"])))).access_policy.id
    password = "Alice-pass-1"
    alice = hw.create_vpn_user(sdk.CreateVpnUserRequest(vpn_server_id=sid, body=sdk.CreateVpnUserRequestBody(
        user=sdk.CreateVpnUserRequestBodyContent(name="alice", password=password, user_group_id=sales,
                                                 static_ip="10.220.0.9")))).user.id
    wait_status(p2c["show"], "ACTIVE")
    profile = hw.export_client_config(sdk.ExportClientConfigRequest(
        vpn_server_id=sid, body=sdk.ExportClientConfigRequestBody(os_type="Linux"))).client_config
    assert f"remote {p2c['eip']} 443" in profile and "auth-user-pass\n" in profile and "<ca>" in profile

    wrong, wrong_log = _client(lab, road, workdir, profile, "alice", "Wrong-pass-1")
    try:
        assert wait_until(lambda: "AUTH_FAILED" in wrong_log.read_text(), 30), wrong_log.read_text()[-2000:]
    finally:
        Lab.stop(wrong)
    client, log = _client(lab, road, workdir, profile, "alice", password)
    try:
        assert Lab.wait_ping(road, HOST_A, 30), log.read_text()[-3000:]
        assert not Lab.ping(road, HOST_B), "the policy allows only host A"
        listed = wait_until(lambda: _sessions(hw, gid), 15)
        assert [(s.client_user_name, s.client_virtual_ip) for s in listed] == [("alice", "10.220.0.9")], listed
        assert listed[0].client_ip == "203.0.113.41" and listed[0].inbound_bytes > 0, listed
        assert wait_until(lambda: p2c["show"]().current_connection_number == 1, 15)

        # Widening the group's policy reaches host B without reconnecting.
        hw.update_vpn_access_policy(sdk.UpdateVpnAccessPolicyRequest(vpn_server_id=sid, policy_id=policy,
            body=sdk.UpdateVpnAccessPolicyRequestBody(access_policy=sdk.UpdateVpnAccessPolicyRequestBodyContent(
                dest_ip_cidrs=[f"{HOST_A}/32", f"{HOST_B}/32"]))))
        assert Lab.wait_ping(road, HOST_B, 30), log.read_text()[-3000:]

        # A disconnect ends the session (the client is told to stop); it is no ban: signing in again works.
        first = listed[0].connection_id
        hw.delete_p2c_vgw_connection(sdk.DeleteP2cVgwConnectionRequest(p2c_vgw_id=gid, connection_id=first))
        assert wait_until(lambda: first not in [s.connection_id for s in _sessions(hw, gid)], 15)
        time.sleep(1.1)  # the same signed change again within a second would be refused as a replay
        with pytest.raises(ClientRequestException) as e:
            hw.delete_p2c_vgw_connection(sdk.DeleteP2cVgwConnectionRequest(p2c_vgw_id=gid, connection_id=first))
        assert (e.value.status_code, e.value.error_code) == (404, "VPN.0563")

        assert wait_until(lambda: client.poll() is not None, 15), "the client kept running after the disconnect"
        client, log = _client(lab, road, workdir, profile, "alice", password)
        assert Lab.wait_ping(road, HOST_A, 30), log.read_text()[-3000:]
        # A deleted user is cut off and cannot sign in again.
        hw.delete_vpn_user(sdk.DeleteVpnUserRequest(vpn_server_id=sid, user_id=alice))
        assert wait_until(lambda: not Lab.ping(road, HOST_A), 30), "a deleted user still reaches the VPC"
        assert wait_until(lambda: _sessions(hw, gid) == [], 15), _sessions(hw, gid)
    finally:
        Lab.stop(client)
    again, again_log = _client(lab, road, workdir, profile, "alice", password)
    try:
        assert wait_until(lambda: "AUTH_FAILED" in again_log.read_text(), 30), again_log.read_text()[-2000:]
        assert not Lab.ping(road, HOST_A)
    finally:
        Lab.stop(again)


def _client_pki(tmp) -> dict:
    """A client CA with one client certificate, and a client certificate of a CA the server does not trust."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()
    kpem = lambda k: k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()

    def ca(cn):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                .sign(key, hashes.SHA256()))
        return cert, key

    def client(cn, issuer):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(issuer[0].subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(issuer[1], hashes.SHA256()))
        return pem(cert), kpem(key)

    trusted, stranger = ca("e2e client CA"), ca("e2e stranger CA")
    return {"ca": pem(trusted[0]), "carol": client("carol", trusted), "mallory": client("mallory", stranger)}


def test_client_to_site_certificates_of_the_imported_ca(hw, lab, vpc, workdir):
    """A CERT server admits clients of its imported CA (named by their certificate) and no one else's."""
    pki = _client_pki(workdir)
    body = sdk.CreateP2cVgwRequestBodyContent(vpc_id=HW_VPC, connect_subnet=str(uuid.uuid4()), name="hw-e2e-cert",
                                              eip=sdk.CreateP2cRequestEip(type="5_bgp", bandwidth_size=10,
                                                                          charge_mode="bandwidth"))
    gid = hw.create_p2c_vgw(sdk.CreateP2cVgwRequest(body=sdk.CreateP2cVgwRequestBody(p2c_vpn_gateway=body))
                            ).p2c_vpn_gateway.id
    show = lambda: hw.show_p2c_vgw(sdk.ShowP2cVgwRequest(p2c_vgw_id=gid)).p2c_vpn_gateway
    try:
        wait_status(show, "ACTIVE")
        server = sdk.CreateServerRequestBody(vpn_server=sdk.CreateServerRequest(
            client_cidr="10.221.0.0/24", local_subnets=[HW_VPC_CIDR], client_auth_type="CERT",
            server_certificate=sdk.CreateServerRequestServerCertificate(source="SERVICE_SIGN"),
            client_ca_certificates=[sdk.CreateServerRequestClientCaCertificates(name="e2e-ca", content=pki["ca"])]))
        sid = hw.create_vpn_server(sdk.CreateVpnServerRequest(p2c_vgw_id=gid, body=server)).vpn_server.id
        wait_status(show, "ACTIVE")
        lab.route(vpc, "10.221.0.0/24", inside_address(gid))
        road = lab.netns("hwroad2")
        lab.attach(road, "pub0", PUB_BRIDGE, "203.0.113.42/24")
        profile = hw.export_client_config(sdk.ExportClientConfigRequest(
            vpn_server_id=sid, body=sdk.ExportClientConfigRequestBody(os_type="Linux"))).client_config
        assert "auth-user-pass" not in profile and "<ca>" in profile, profile

        def start(name):
            cert, key = pki[name]
            conf = workdir / f"{name}.ovpn"
            # The profile as exported, with the user's own certificate and key added where the reference says.
            conf.write_text(profile + f"<cert>\n{cert}</cert>\n<key>\n{key}</key>\n")
            conf.chmod(0o600)
            log = workdir / f"{name}.log"
            log.write_text("")
            return lab.spawn(road, ["openvpn", "--config", str(conf), "--verb", "3"], log), log

        stranger, stranger_log = start("mallory")
        try:
            # The server ends the TLS handshake (over TCP the client sees the connection reset) and retries.
            assert wait_until(lambda: "SIGUSR1[soft," in stranger_log.read_text(), 60), stranger_log.read_text()[-2000:]
            assert "Initialization Sequence Completed" not in stranger_log.read_text()
            assert _sessions(hw, gid) == [] and not Lab.ping(road, HOST_A)
        finally:
            Lab.stop(stranger)
        client, log = start("carol")
        try:
            assert Lab.wait_ping(road, HOST_A, 30), log.read_text()[-3000:]
            listed = wait_until(lambda: _sessions(hw, gid), 15)
            assert [s.client_user_name for s in listed] == ["carol"], listed
        finally:
            Lab.stop(client)
    finally:
        hw.delete_p2c_vgw(sdk.DeleteP2cVgwRequest(p2c_vgw_id=gid))
        assert wait_until(lambda: not _exists(lambda: hw.show_p2c_vgw(sdk.ShowP2cVgwRequest(p2c_vgw_id=gid))), 60)
