"""Dual-tunnel connections (`TunnelOptionsSpecification`, `EnableTunnelsBgp`; in the SDKs, not in the seed) on gateways
with a disaster recovery address (`DisasterRecoveryVSwitchId`): each tunnel with its own peer, address, keys,
algorithms, BGP and role, as the SDKs send, read and download them."""
from __future__ import annotations

import pytest

from vgwlib import check_connection, check_fields, create_cgw, create_gateway, unique_name, wait_gateway_status, \
    wrapped_list

TUNNEL_TYPES = {"TunnelId": str, "TunnelIndex": int, "CustomerGatewayId": str, "InternetIp": str, "Role": str,
                "State": str, "Status": str, "EnableDpd": str, "EnableNatTraversal": str,
                "TunnelIkeConfig": dict, "TunnelIpsecConfig": dict, "TunnelBgpConfig": dict}
TUNNEL_IKE_TYPES = {k: str for k in ("IkeVersion", "IkeMode", "IkeEncAlg", "IkeAuthAlg", "IkePfs", "IkeLifetime",
                                     "LocalId", "RemoteId", "Psk")}
TUNNEL_BGP_TYPES = {k: str for k in ("BgpStatus", "LocalAsn", "LocalBgpIp", "TunnelCidr", "PeerAsn", "PeerBgpIp")}


def dr_gateway(api):
    """A gateway with two addresses."""
    return create_gateway(api, VSwitchId="vsw-zone-a", DisasterRecoveryVSwitchId="vsw-zone-b")


def two_tunnels(cgw1: str, cgw2: str, **first):
    t1 = {"CustomerGatewayId": cgw1, "Role": "master",
          "TunnelIkeConfig": {"IkeVersion": "ikev2", "Psk": "tunnel-one-key", "IkeLifetime": 3600},
          "TunnelIpsecConfig": {"IpsecEncAlg": "aes256", "IpsecAuthAlg": "sha256", "IpsecPfs": "group14"},
          "TunnelBgpConfig": {"TunnelCidr": "169.254.10.0/30", "LocalBgpIp": "169.254.10.1", "LocalAsn": 65010}}
    t1.update(first)
    t2 = {"CustomerGatewayId": cgw2, "Role": "slave", "EnableDpd": False,
          "TunnelBgpConfig": {"TunnelCidr": "169.254.20.0/30", "LocalBgpIp": "169.254.20.1"}}
    return [t1, t2]


def tunnels_of(d):
    options = wrapped_list(d, "TunnelOptionsSpecification", "TunnelOptions", "TunnelOptionsSpecification")
    for t in options:
        check_fields(t, TUNNEL_TYPES, None, "TunnelOptions")
        check_fields(t["TunnelIkeConfig"], TUNNEL_IKE_TYPES, None, "TunnelIkeConfig")
        check_fields(t["TunnelBgpConfig"], TUNNEL_BGP_TYPES, None, "TunnelBgpConfig")
    return sorted(options, key=lambda t: t["TunnelIndex"])


def test_a_dual_tunnel_connection_lives_on_both_addresses(tea):
    gw, gwd = dr_gateway(tea)
    check_fields(gwd, {"DisasterRecoveryInternetIp": str, "DisasterRecoveryVSwitchId": str}, None, "DescribeVpnGateway")
    addresses = (gwd["InternetIp"], gwd["DisasterRecoveryInternetIp"])
    assert addresses[0] != addresses[1] and gwd["DisasterRecoveryVSwitchId"] == "vsw-zone-b", gwd
    cgw1, ip1 = create_cgw(tea, Asn=65101)
    cgw2, ip2 = create_cgw(tea, Asn=65102)
    r = tea.call("CreateVpnConnection", {"VpnGatewayId": gw, "LocalSubnet": "10.1.0.0/16",
                                         "RemoteSubnet": "192.168.30.0/24", "Name": unique_name("dual"),
                                         "EnableTunnelsBgp": True,
                                         "TunnelOptionsSpecification": two_tunnels(cgw1, cgw2)})
    vco = r["VpnConnectionId"]
    wait_gateway_status(tea, gw, "active")

    d = tea.call("DescribeVpnConnection", {"VpnConnectionId": vco})
    check_connection(d, "DescribeVpnConnection")
    assert d["EnableTunnelsBgp"] is True
    t1, t2 = tunnels_of(d)
    assert (t1["TunnelIndex"], t2["TunnelIndex"]) == (1, 2)
    assert t1["TunnelId"].startswith("tun-") and t2["TunnelId"].startswith("tun-") and t1["TunnelId"] != t2["TunnelId"]
    assert (t1["InternetIp"], t2["InternetIp"]) == addresses, "each tunnel on its own address"
    assert (t1["CustomerGatewayId"], t2["CustomerGatewayId"]) == (cgw1, cgw2)
    assert (t1["Role"], t2["Role"]) == ("master", "slave")
    assert (t1["EnableDpd"], t2["EnableDpd"]) == ("true", "false")
    assert t1["TunnelIkeConfig"]["Psk"] == "tunnel-one-key"
    assert len(t2["TunnelIkeConfig"]["Psk"]) == 16, "a tunnel without a key gets a generated one"
    assert (t1["TunnelIkeConfig"]["IkeVersion"], t2["TunnelIkeConfig"]["IkeVersion"]) == ("ikev2", "ikev1")
    assert t1["TunnelIkeConfig"]["IkeLifetime"] == "3600"
    assert (t1["TunnelIkeConfig"]["LocalId"], t2["TunnelIkeConfig"]["LocalId"]) == addresses
    assert (t1["TunnelIkeConfig"]["RemoteId"], t2["TunnelIkeConfig"]["RemoteId"]) == (ip1, ip2)
    assert t1["TunnelIpsecConfig"]["IpsecEncAlg"] == "aes256" and t2["TunnelIpsecConfig"]["IpsecEncAlg"] == "aes"
    b1, b2 = t1["TunnelBgpConfig"], t2["TunnelBgpConfig"]
    assert (b1["TunnelCidr"], b1["LocalBgpIp"], b1["PeerBgpIp"]) == ("169.254.10.0/30", "169.254.10.1", "169.254.10.2")
    assert (b2["TunnelCidr"], b2["PeerBgpIp"]) == ("169.254.20.0/30", "169.254.20.2")
    assert (b1["LocalAsn"], b2["LocalAsn"], b1["PeerAsn"], b2["PeerAsn"]) == ("65010", "45104", "65101", "65102")
    assert t1["Status"] == t2["Status"] == "ike_sa_not_established", "the simulated data plane never claims an SA"

    listed = tea.call("DescribeVpnConnections", {"VpnGatewayId": gw})
    [item] = wrapped_list(listed, "VpnConnections", "VpnConnection", "DescribeVpnConnections")
    assert [t["TunnelId"] for t in tunnels_of(item)] == [t1["TunnelId"], t2["TunnelId"]]
    by_peer = tea.call("DescribeVpnConnections", {"CustomerGatewayId": cgw2})
    assert [c["VpnConnectionId"] for c in wrapped_list(by_peer, "VpnConnections", "VpnConnection")] == [vco], \
        "the second tunnel's customer gateway finds it too"

    cfg = tea.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
    tc = wrapped_list(cfg, "TunnelsConfig", "TunnelConfig", "VpnConnectionConfig.TunnelsConfig")
    assert [(t["TunnelId"], t["Local"], t["Remote"]) for t in tc] == \
        [(t1["TunnelId"], addresses[0], ip1), (t2["TunnelId"], addresses[1], ip2)]
    assert [t["IkeConfig"]["Psk"] for t in tc] == ["tunnel-one-key", t2["TunnelIkeConfig"]["Psk"]]
    bgp = wrapped_list(cfg, "BgpConfigs", "BgpConfig", "VpnConnectionConfig.BgpConfigs")
    assert [(b["TunnelId"], b["TunnelCidr"], b["PeerAsn"]) for b in bgp] == \
        [(t1["TunnelId"], "169.254.10.0/30", "65101"), (t2["TunnelId"], "169.254.20.0/30", "65102")]

    # One tunnel changes; the other keeps what it had. Roles swap in one request.
    tea.call("ModifyVpnConnectionAttribute", {
        "VpnConnectionId": vco,
        "TunnelOptionsSpecification": [
            {"TunnelId": t2["TunnelId"], "TunnelIkeConfig": {"Psk": "tunnel-two-key", "IkeVersion": "ikev2"},
             "Role": "master"},
            {"TunnelId": t1["TunnelId"], "Role": "slave"}]})
    wait_gateway_status(tea, gw, "active")
    n1, n2 = tunnels_of(tea.call("DescribeVpnConnection", {"VpnConnectionId": vco}))
    assert (n1["Role"], n2["Role"]) == ("slave", "master")
    assert (n1["TunnelIkeConfig"]["Psk"], n2["TunnelIkeConfig"]["Psk"]) == ("tunnel-one-key", "tunnel-two-key")
    assert n2["TunnelIkeConfig"]["IkeVersion"] == "ikev2" and n2["EnableDpd"] == "false"

    tea.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    wait_gateway_status(tea, gw, "active")
    tea.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw2})


@pytest.mark.parametrize("fmt,files", [("strongswan", ["swanctl.conf"]), ("libreswan", ["ipsec.conf", "ipsec.secrets"])])
def test_peer_config_renders_both_tunnels_of_a_dual_tunnel_connection(server, tea_v3, tmp_path, fmt, files):
    gw, gwd = dr_gateway(tea_v3)
    cgw, ip = create_cgw(tea_v3)
    tunnels = two_tunnels(cgw, cgw)
    for t in tunnels:
        t.pop("TunnelBgpConfig")
    vco = tea_v3.call("CreateVpnConnection", {"VpnGatewayId": gw, "LocalSubnet": "10.1.0.0/16",
                                              "RemoteSubnet": "192.168.33.0/24",
                                              "TunnelOptionsSpecification": tunnels})["VpnConnectionId"]
    t1, t2 = tunnels_of(tea_v3.call("DescribeVpnConnection", {"VpnConnectionId": vco}))
    r = server.run_cli("peer-config", "--connection", vco, "--format", fmt, "--output-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    text = "".join((tmp_path / f).read_text() for f in files)
    for t, address in ((t1, gwd["InternetIp"]), (t2, gwd["DisasterRecoveryInternetIp"])):
        assert t["TunnelId"] in text and address in text and t["TunnelIkeConfig"]["Psk"] in text, (t, text)
    main = (tmp_path / files[0]).read_text()
    assert main.count("connections {" if fmt == "strongswan" else "config setup") == 1, main


def test_dual_tunnel_requests_that_cannot_be_met_are_refused_clearly(tea_v3):
    api = tea_v3
    gw, _ = dr_gateway(api)
    single, _ = create_gateway(api)
    cgw1, _ = create_cgw(api)
    cgw2, _ = create_cgw(api)
    base = {"VpnGatewayId": gw, "LocalSubnet": "10.1.0.0/16", "RemoteSubnet": "192.168.31.0/24"}
    tunnels = two_tunnels(cgw1, cgw2)
    for t in tunnels:
        t.pop("TunnelBgpConfig")
    cases = [
        ("a gateway with one address", dict(base, VpnGatewayId=single, TunnelOptionsSpecification=tunnels),
         "InvalidVpnGatewayId"),
        ("one tunnel", dict(base, TunnelOptionsSpecification=tunnels[:1]), "InvalidTunnelOptionsSpecification"),
        ("two masters", dict(base, TunnelOptionsSpecification=[tunnels[0], dict(tunnels[1], Role="master")]),
         "InvalidTunnelOptionsSpecificationRole"),
        ("a role that is neither", dict(base, TunnelOptionsSpecification=[dict(tunnels[0], Role="primary"),
                                                                          tunnels[1]]),
         "InvalidTunnelOptionsSpecification"),
        ("a tunnel without its customer gateway",
         dict(base, TunnelOptionsSpecification=[tunnels[0], {"Role": "slave"}]),
         "MissingTunnelOptionsSpecificationNCustomerGatewayId"),
        ("a single-tunnel setting beside the tunnels",
         dict(base, TunnelOptionsSpecification=tunnels, IkeConfig='{"IkeVersion": "ikev2"}'), "InvalidIkeConfig"),
        ("tunnel BGP without its addresses", dict(base, TunnelOptionsSpecification=tunnels, EnableTunnelsBgp=True),
         "InvalidTunnelOptionsSpecification"),
        ("tunnel BGP on a single-tunnel connection", dict(base, CustomerGatewayId=cgw1, EnableTunnelsBgp=True),
         "InvalidEnableTunnelsBgp"),
        ("an unknown customer gateway",
         dict(base, TunnelOptionsSpecification=[tunnels[0], dict(tunnels[1], CustomerGatewayId="cgw-nope")]),
         "InvalidCustomerGatewayInstanceId.NotFound"),
    ]
    for what, params, code in cases:
        e = api.error("CreateVpnConnection", params, code=code)
        assert e.message, what
    vco = api.call("CreateVpnConnection", dict(base, TunnelOptionsSpecification=tunnels))["VpnConnectionId"]
    wait_gateway_status(api, gw, "active")
    api.error("CreateVpnConnection", dict(base, TunnelOptionsSpecification=tunnels), code="InvalidVpnConnection.AlreadyExists")
    api.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "TunnelOptionsSpecification": [
        {"TunnelId": "tun-unknown", "EnableDpd": False}]}, code="InvalidTunnelId.NotFound")
    api.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "IkeConfig": '{"IkeVersion": "ikev2"}',
                                               "TunnelOptionsSpecification": [{"TunnelId": "tun-x"}]},
              code="InvalidIkeConfig")
    api.error("DeleteCustomerGateway", {"CustomerGatewayId": cgw2}, code="DependencyViolation.VpnConnection")
    plain = api.call("CreateVpnConnection", dict(base, VpnGatewayId=single, CustomerGatewayId=cgw1))["VpnConnectionId"]
    wait_gateway_status(api, single, "active")
    api.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": plain, "TunnelOptionsSpecification": [
        {"TunnelId": "tun-any", "EnableDpd": False}]}, code="InvalidTunnelId.NotFound")
    api.error("CreateVpnGateway", {"VpcId": "vpc-dual", "Bandwidth": 5, "VSwitchId": "vsw-a",
                                   "DisasterRecoveryVSwitchId": "vsw-a"}, code="InvalidDisasterRecoveryVSwitchId")
    api.error("CreateVpnGateway", {"VpcId": "vpc-dual", "Bandwidth": 5, "DisasterRecoveryVSwitchId": "vsw-b"},
              code="MissingVSwitchId")


def test_the_legacy_sdk_creates_and_reads_a_dual_tunnel_connection(legacy, tea_v3):
    """aliyun-python-sdk-vpc flattens the tunnels into the form body itself (`TunnelOptionsSpecification.1.…`)."""
    from aliyunsdkvpc.request.v20160428 import CreateVpnConnectionRequest, DescribeVpnConnectionRequest

    gw, gwd = dr_gateway(tea_v3)
    cgw1, _ = create_cgw(tea_v3)
    cgw2, _ = create_cgw(tea_v3)
    req = CreateVpnConnectionRequest.CreateVpnConnectionRequest()
    req.set_VpnGatewayId(gw)
    req.set_LocalSubnet("10.1.0.0/16")
    req.set_RemoteSubnet("192.168.32.0/24")
    tunnels = two_tunnels(cgw1, cgw2)
    for t in tunnels:
        t.pop("TunnelBgpConfig")
    req.set_TunnelOptionsSpecification(tunnels)
    vco = legacy.do(req)["VpnConnectionId"]
    wait_gateway_status(tea_v3, gw, "active")
    d = DescribeVpnConnectionRequest.DescribeVpnConnectionRequest()
    d.set_VpnConnectionId(vco)
    t1, t2 = tunnels_of(legacy.do(d))
    assert (t1["InternetIp"], t2["InternetIp"]) == (gwd["InternetIp"], gwd["DisasterRecoveryInternetIp"])
    assert (t1["TunnelIkeConfig"]["Psk"], t1["TunnelIkeConfig"]["IkeVersion"]) == ("tunnel-one-key", "ikev2")
    assert (t1["Role"], t2["Role"], t2["EnableDpd"]) == ("master", "slave", "false")

