"""IPsec connections (seed 7.1-7.6)."""
from __future__ import annotations

import json

import pytest

import vgwlib
from vgwlib import (BGP_TYPES, HEALTH_TYPES, assert_recent_ms, check_connection, check_fields, check_paging,
                    code_prefix, create_cgw, create_connection, create_gateway, tag_map, unique_name,
                    wait_gateway_status, wrapped_list)

SEED_IKE_DEFAULTS = {"IkeVersion": "ikev1", "IkeMode": "main", "IkeEncAlg": "aes", "IkeAuthAlg": "md5",
                     "IkePfs": "group2", "IkeLifetime": 86400}
SEED_IPSEC_DEFAULTS = {"IpsecEncAlg": "aes", "IpsecAuthAlg": "md5", "IpsecPfs": "group2", "IpsecLifetime": 86400}


@pytest.fixture
def env(tea):
    gw, gwd = create_gateway(tea)
    cgw, ip = create_cgw(tea)
    return {"gw": gw, "gw_ip": gwd["InternetIp"], "cgw": cgw, "cgw_ip": ip}


def test_create_with_seed_defaults_and_download_config(tea, env):
    # the seed's request example: only the required parameters
    r = tea.call("CreateVpnConnection", {"VpnGatewayId": env["gw"], "CustomerGatewayId": env["cgw"],
                                         "LocalSubnet": "10.1.0.0/16,10.2.0.0/16",
                                         "RemoteSubnet": "192.168.10.0/24"})
    check_fields(r, {"VpnConnectionId": str, "CreateTime": int}, {"Name": str}, "CreateVpnConnection")
    vco = r["VpnConnectionId"]
    assert vco.startswith("vco-")
    assert_recent_ms(r["CreateTime"], "CreateTime")
    wait_gateway_status(tea, env["gw"], "active")

    d = tea.call("DescribeVpnConnection", {"VpnConnectionId": vco})
    check_connection(d, "DescribeVpnConnection")
    assert (d["VpnConnectionId"], d["VpnGatewayId"], d["CustomerGatewayId"]) == (vco, env["gw"], env["cgw"])
    assert (d["LocalSubnet"], d["RemoteSubnet"]) == ("10.1.0.0/16,10.2.0.0/16", "192.168.10.0/24")
    assert d["Status"] == "ike_sa_not_established", "the simulated data plane never claims an SA"
    ike, ipsec = d["IkeConfig"], d["IpsecConfig"]
    assert {k: ike[k] for k in SEED_IKE_DEFAULTS} == SEED_IKE_DEFAULTS
    assert {k: ipsec[k] for k in SEED_IPSEC_DEFAULTS} == SEED_IPSEC_DEFAULTS
    assert isinstance(ike.get("Psk"), str) and len(ike["Psk"]) == 16, f"generated PSK must be 16 chars: {ike}"
    assert ike["LocalId"] == env["gw_ip"], "LocalId defaults to the gateway's public IP"
    assert ike["RemoteId"] == env["cgw_ip"], "RemoteId defaults to the customer gateway's IP"
    assert d["EnableDpd"] is True and d["EnableNatTraversal"] is True
    assert d["EffectImmediately"] is False

    cfg = tea.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})
    check_fields(cfg, {"VpnConnectionConfig": dict}, None, "DownloadVpnConnectionConfig")
    c = cfg["VpnConnectionConfig"]
    check_fields(c, {"Local": str, "Remote": str, "LocalSubnet": str, "RemoteSubnet": str,
                     "IkeConfig": dict, "IpsecConfig": dict}, None, "VpnConnectionConfig")
    # seed 7.5 table: Local = IPsec-VPN gateway, Remote = customer gateway; subnets as on the connection
    assert (c["Local"], c["Remote"]) == (env["gw_ip"], env["cgw_ip"])
    assert (c["LocalSubnet"], c["RemoteSubnet"]) == (d["LocalSubnet"], d["RemoteSubnet"])
    check_fields(c["IkeConfig"], vgwlib.IKE_TYPES, {"Psk": str}, "VpnConnectionConfig.IkeConfig")
    check_fields(c["IpsecConfig"], vgwlib.IPSEC_TYPES, None, "VpnConnectionConfig.IpsecConfig")
    for k in ("IkeVersion", "IkeMode", "IkeEncAlg", "IkeAuthAlg", "IkePfs", "IkeLifetime", "LocalId", "RemoteId", "Psk"):
        assert c["IkeConfig"][k] == ike[k], f"DownloadVpnConnectionConfig IkeConfig.{k}"
    for k in SEED_IPSEC_DEFAULTS:
        assert c["IpsecConfig"][k] == ipsec[k], f"DownloadVpnConnectionConfig IpsecConfig.{k}"


def test_create_with_explicit_configs(tea, env):
    ike = {"IkeVersion": "ikev2", "IkeMode": "main", "IkeEncAlg": "aes256", "IkeAuthAlg": "sha1",
           "IkePfs": "group14", "IkeLifetime": "3600", "Psk": "Interop-psk-1", "LocalId": "left.example.com",
           "RemoteId": "right.example.com"}
    ipsec = {"IpsecEncAlg": "aes192", "IpsecAuthAlg": "sha1", "IpsecPfs": "group5", "IpsecLifetime": 7200}
    health = {"enable": "true", "dip": "10.1.0.1", "sip": "192.168.10.1", "interval": "3", "retry": "4"}
    name = unique_name("conn")
    vco = create_connection(tea, env["gw"], env["cgw"], Name=name, IkeConfig=json.dumps(ike),
                            IpsecConfig=json.dumps(ipsec), HealthCheckConfig=json.dumps(health),
                            EnableDpd=False, EnableNatTraversal=False, EffectImmediately=True,
                            AutoConfigRoute=False, ClientToken=vgwlib.unique_token())
    d = tea.call("DescribeVpnConnection", {"VpnConnectionId": vco})
    check_connection(d, "DescribeVpnConnection")
    assert d["Name"] == name
    got = d["IkeConfig"]
    assert got["IkeLifetime"] == 3600, "numbers given as JSON strings are stored as integers"
    for k in ("IkeVersion", "IkeMode", "IkeEncAlg", "IkeAuthAlg", "IkePfs", "Psk", "LocalId", "RemoteId"):
        assert got[k] == ike[k], f"IkeConfig.{k}"
    for k, v in ipsec.items():
        assert d["IpsecConfig"][k] == v, f"IpsecConfig.{k}"
    assert (d["EnableDpd"], d["EnableNatTraversal"], d["EffectImmediately"]) == (False, False, True)
    hc = d.get("VcoHealthCheck")
    assert isinstance(hc, dict), f"VcoHealthCheck missing: {d}"
    check_fields(hc, HEALTH_TYPES, None, "VcoHealthCheck")
    assert (hc["Enable"], hc["Dip"], hc["Sip"], hc["Interval"], hc["Retry"]) == ("true", "10.1.0.1", "192.168.10.1", 3, 4)
    assert hc["Status"] == "failed", "no probe can pass without a tunnel (behaviour doc)"


def test_bgp_config(tea):
    gw, _ = create_gateway(tea)
    cgw1, _ = create_cgw(tea, Asn="65010", AuthKey="bgp-Key1")
    cgw2, _ = create_cgw(tea, Asn="65011")
    v1 = create_connection(tea, gw, cgw1, BgpConfig=json.dumps(
        {"EnableBgp": "true", "LocalAsn": "65001", "TunnelCidr": "169.254.11.0/30", "LocalBgpIp": "169.254.11.1"}))
    v2 = create_connection(tea, gw, cgw2, local="10.5.0.0/16", remote="192.168.50.0/24", BgpConfig=json.dumps(
        {"EnableBgp": "true", "TunnelCidr": "169.254.12.0/30", "LocalBgpIp": "169.254.12.1"}))
    d1 = tea.call("DescribeVpnConnection", {"VpnConnectionId": v1})
    bgp = d1.get("VpnBgpConfig")
    assert isinstance(bgp, dict), f"VpnBgpConfig missing: {d1}"
    check_fields(bgp, {"EnableBgp": str, "LocalAsn": int, "PeerAsn": int, "TunnelCidr": str, "LocalBgpIp": str},
                 BGP_TYPES, "VpnBgpConfig")
    assert bgp["EnableBgp"] == "true", "VpnBgpConfig.EnableBgp is a String"
    assert (bgp["LocalAsn"], bgp["PeerAsn"]) == (65001, 65010)
    assert (bgp["TunnelCidr"], bgp["LocalBgpIp"]) == ("169.254.11.0/30", "169.254.11.1")
    d2 = tea.call("DescribeVpnConnection", {"VpnConnectionId": v2})
    assert d2["VpnBgpConfig"]["LocalAsn"] == 45104, "BgpConfig.LocalAsn defaults to 45104"
    assert d2["VpnBgpConfig"]["PeerAsn"] == 65011
    lst = tea.call("DescribeVpnConnections", {"VpnGatewayId": gw})
    for item in wrapped_list(lst, "VpnConnections", "VpnConnection"):
        check_fields(item["VpnBgpConfig"], {"LocalAsn": int, "PeerAsn": int}, BGP_TYPES, "list VpnBgpConfig")


def test_download_config_includes_bgp(tea):
    gw, _ = create_gateway(tea)
    cgw, _ = create_cgw(tea, Asn="65020")
    vco = create_connection(tea, gw, cgw, BgpConfig=json.dumps(
        {"EnableBgp": "true", "TunnelCidr": "169.254.13.0/30", "LocalBgpIp": "169.254.13.1"}))
    c = tea.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
    bgps = wrapped_list(c, "BgpConfigs", "BgpConfig", "VpnConnectionConfig")
    assert len(bgps) == 1, bgps
    # Strings here (numbers in VpnBgpConfig): the SDKs' model of this answer declares them so.
    check_fields(bgps[0], {"LocalAsn": str, "PeerAsn": str, "TunnelCidr": str, "LocalBgpIp": str},
                 {"PeerBgpIp": str}, "VpnConnectionConfig.BgpConfigs.BgpConfig[0]")
    assert (bgps[0]["LocalAsn"], bgps[0]["PeerAsn"]) == ("45104", "65020")
    assert (bgps[0]["TunnelCidr"], bgps[0]["LocalBgpIp"]) == ("169.254.13.0/30", "169.254.13.1")


def test_modify_connection(tea, env):
    vco = create_connection(tea, env["gw"], env["cgw"])
    before = tea.call("DescribeVpnConnection", {"VpnConnectionId": vco})
    name = unique_name("mod")
    m = tea.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": name})
    check_connection(m, "ModifyVpnConnectionAttribute", status=False)
    assert m["Name"] == name and m["VpnConnectionId"] == vco
    assert m["IkeConfig"]["Psk"] == before["IkeConfig"]["Psk"], "a name-only modify keeps the PSK"
    assert m["IkeConfig"]["IkeAuthAlg"] == before["IkeConfig"]["IkeAuthAlg"]
    wait_gateway_status(tea, env["gw"], "active")

    m2 = tea.call("ModifyVpnConnectionAttribute", {
        "VpnConnectionId": vco, "LocalSubnet": "10.7.0.0/16", "RemoteSubnet": "192.168.70.0/24,192.168.71.0/24",
        "IkeConfig": json.dumps({"IkeEncAlg": "aes256", "IkeLifetime": 28800}), "EnableDpd": False,
        "ClientToken": vgwlib.unique_token()})
    check_connection(m2, "ModifyVpnConnectionAttribute", status=False)
    assert (m2["LocalSubnet"], m2["RemoteSubnet"]) == ("10.7.0.0/16", "192.168.70.0/24,192.168.71.0/24")
    assert (m2["IkeConfig"]["IkeEncAlg"], m2["IkeConfig"]["IkeLifetime"]) == ("aes256", 28800)
    assert m2["EnableDpd"] is False
    wait_gateway_status(tea, env["gw"], "active")
    d = tea.call("DescribeVpnConnection", {"VpnConnectionId": vco})
    assert (d["Name"], d["LocalSubnet"], d["IkeConfig"]["IkeEncAlg"], d["EnableDpd"]) == (
        name, "10.7.0.0/16", "aes256", False)
    cfg = tea.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
    assert (cfg["LocalSubnet"], cfg["IkeConfig"]["IkeEncAlg"]) == ("10.7.0.0/16", "aes256")


def test_describe_connections_list_tags_and_paging(tea):
    gw, _ = create_gateway(tea)
    cgw1, _ = create_cgw(tea)
    cgw2, _ = create_cgw(tea)
    v1 = create_connection(tea, gw, cgw1, Tags=[{"Key": "env", "Value": "interop"}, {"Key": "owner", "Value": ""}])
    v2 = create_connection(tea, gw, cgw2, local="10.3.0.0/16", remote="192.168.30.0/24")

    body = tea.call("DescribeVpnConnections", {"VpnGatewayId": gw})
    check_paging(body, 1, 10, "DescribeVpnConnections")
    items = wrapped_list(body, "VpnConnections", "VpnConnection", "DescribeVpnConnections")
    assert body["TotalCount"] == 2 and {i["VpnConnectionId"] for i in items} == {v1, v2}
    for i, item in enumerate(items):
        check_connection(item, f"VpnConnections.VpnConnection[{i}]")
    tagged = next(i for i in items if i["VpnConnectionId"] == v1)
    # DescribeVpnConnections items carry tags under Tag.Tag[] (sic, aliyun-wire.md §5.4)
    assert tag_map(tagged, "Tag", "VpnConnection") == {"env": "interop", "owner": ""}
    single = tea.call("DescribeVpnConnection", {"VpnConnectionId": v1})
    assert tag_map(single, "Tags", "DescribeVpnConnection") == {"env": "interop", "owner": ""}

    by_cgw = tea.call("DescribeVpnConnections", {"CustomerGatewayId": cgw2})
    assert [i["VpnConnectionId"] for i in wrapped_list(by_cgw, "VpnConnections", "VpnConnection")] == [v2]
    by_id = tea.call("DescribeVpnConnections", {"VpnConnectionId": v1})
    assert [i["VpnConnectionId"] for i in wrapped_list(by_id, "VpnConnections", "VpnConnection")] == [v1]

    seen = []
    for page in (1, 2):
        p = tea.call("DescribeVpnConnections", {"VpnGatewayId": gw, "PageSize": 1, "PageNumber": page})
        check_paging(p, page, 1, f"page {page}")
        assert p["TotalCount"] == 2
        seen += [i["VpnConnectionId"] for i in wrapped_list(p, "VpnConnections", "VpnConnection")]
    assert sorted(seen) == sorted([v1, v2])
    tea.error("DescribeVpnConnections", {"VpnGatewayId": gw, "PageSize": 51}, "InvalidPageSize", 400)


def test_delete_connection(tea, env):
    vco = create_connection(tea, env["gw"], env["cgw"])
    tea.call("DeleteVpnConnection", {"VpnConnectionId": vco, "ClientToken": vgwlib.unique_token()})
    wait_gateway_status(tea, env["gw"], "active")
    tea.error("DescribeVpnConnection", {"VpnConnectionId": vco}, "InvalidVpnConnectionInstanceId.NotFound", 404)
    tea.error("DeleteVpnConnection", {"VpnConnectionId": vco}, "InvalidVpnConnectionInstanceId.NotFound", 404)
    tea.error("DownloadVpnConnectionConfig", {"VpnConnectionId": vco}, "InvalidVpnConnectionInstanceId.NotFound", 404)
    tea.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": "abc"},
              "InvalidVpnConnectionInstanceId.NotFound", 404)
    assert tea.call("DescribeVpnConnections", {"VpnGatewayId": env["gw"]})["TotalCount"] == 0
    # the pair is free again
    create_connection(tea, env["gw"], env["cgw"])


def test_second_connection_same_pair_already_exists(tea, env):
    create_connection(tea, env["gw"], env["cgw"])
    tea.error("CreateVpnConnection", {"VpnGatewayId": env["gw"], "CustomerGatewayId": env["cgw"],
                                      "LocalSubnet": "10.8.0.0/16", "RemoteSubnet": "192.168.80.0/24"},
              "InvalidVpnConnection.AlreadyExists", 400)


# ---- validation: one gateway + customer gateway per signing mode, no state is changed ----
@pytest.fixture(scope="module")
def shared_env(tea):
    gw, _ = create_gateway(tea)
    cgw, _ = create_cgw(tea)
    return {"gw": gw, "cgw": cgw}


CREATE_CASES = [
    ({"LocalSubnet": "10.0.0.0/33"}, "IllegalParam.LocalSubnet"),
    ({"LocalSubnet": "garbage"}, "IllegalParam.LocalSubnet"),
    ({"LocalSubnet": "10.0.0.0/16,300.0.0.0/8"}, "IllegalParam.LocalSubnet"),
    ({"RemoteSubnet": "192.168.1.0/40"}, "IllegalParam.RemoteSubnet"),
    ({"LocalSubnet": None}, "MissingLocalSubnet"),
    ({"RemoteSubnet": None}, "MissingRemoteSubnet"),
    ({"CustomerGatewayId": None}, "MissingCustomerGatewayId"),
    ({"VpnGatewayId": None}, "MissingVpnGatewayId"),
    ({"CustomerGatewayId": "cgw-doesnotexist000"}, "InvalidCustomerGatewayInstanceId.NotFound"),
    ({"VpnGatewayId": "vpn-doesnotexist000"}, "InvalidVpnGatewayInstanceId.NotFound"),
    ({"Name": "1conn"}, "InvalidName"),
    ({"Name": "http://conn"}, "InvalidName"),
    ({"IkeConfig": json.dumps({"IkeVersion": "ikev9"})}, code_prefix("InvalidIkeConfig", "IkeVersion")),
    ({"IkeConfig": json.dumps({"IkeLifetime": 86401})}, code_prefix("InvalidIkeConfig", "IkeLifetime")),
    ({"IkeConfig": json.dumps({"IkeEncAlg": "rot13"})}, code_prefix("InvalidIkeConfig", "IkeEncAlg")),
    ({"IkeConfig": "{not json"}, code_prefix("InvalidIkeConfig")),
    ({"IkeConfig": json.dumps({"IkeMode": "sideways"})}, code_prefix("InvalidIkeConfig", "IkeMode")),
    ({"IkeConfig": json.dumps({"Psk": "p" * 101})}, code_prefix("InvalidIkeConfig", "Psk")),
    ({"IpsecConfig": json.dumps({"IpsecPfs": "group99"})}, code_prefix("InvalidIpsecConfig", "IpsecPfs")),
    ({"IpsecConfig": json.dumps({"IpsecLifetime": -1})}, code_prefix("InvalidIpsecConfig", "IpsecLifetime")),
    ({"BgpConfig": json.dumps({"EnableBgp": "true", "TunnelCidr": "10.0.0.0/30", "LocalBgpIp": "10.0.0.1"})},
     code_prefix("InvalidBgpConfig")),
    ({"BgpConfig": json.dumps({"EnableBgp": "true", "TunnelCidr": "169.254.20.0/29", "LocalBgpIp": "169.254.20.1"})},
     code_prefix("InvalidBgpConfig")),
    ({"BgpConfig": json.dumps({"EnableBgp": "true", "LocalAsn": "4294967296", "TunnelCidr": "169.254.21.0/30",
                               "LocalBgpIp": "169.254.21.1"})}, code_prefix("InvalidBgpConfig")),
    ({"HealthCheckConfig": json.dumps({"enable": "true", "dip": "not-an-ip", "sip": "10.1.0.1",
                                       "interval": "3", "retry": "3"})}, code_prefix("InvalidHealthCheckConfig")),
    ({"EnableDpd": "perhaps"}, "InvalidEnableDpd"),
]


@pytest.mark.parametrize("params,code", CREATE_CASES,
                         ids=lambda v: getattr(v, "__name__", None) or (v if isinstance(v, str) else
                                       ",".join(f"{k}={str(x)[:16]}" for k, x in v.items())))
def test_create_validation(tea, shared_env, params, code):
    wait_gateway_status(tea, shared_env["gw"], "active")
    base = {"VpnGatewayId": shared_env["gw"], "CustomerGatewayId": shared_env["cgw"],
            "LocalSubnet": "10.1.0.0/16", "RemoteSubnet": "192.168.10.0/24"}
    base.update(params)
    status = 404 if isinstance(code, str) and code.endswith(".NotFound") else 400
    tea.error("CreateVpnConnection", base, code, status)
    assert tea.call("DescribeVpnConnections", {"VpnGatewayId": shared_env["gw"]})["TotalCount"] == 0


def test_modify_validation(tea, env):
    vco = create_connection(tea, env["gw"], env["cgw"])
    tea.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "LocalSubnet": "10.0.0.0/99"},
              "IllegalParam.LocalSubnet", 400)
    tea.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "RemoteSubnet": "nope"},
              "IllegalParam.RemoteSubnet", 400)
    tea.error("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": "-x"}, "InvalidName", 400)
    d = tea.call("DescribeVpnConnection", {"VpnConnectionId": vco})
    assert d["LocalSubnet"] == "10.1.0.0/16", "a rejected modify changed the connection"
