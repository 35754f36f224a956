"""IPsec servers (seed 9.1-9.4). ListIpsecServers returns a *plain* array (aliyun-wire.md §3)."""
from __future__ import annotations

import json

import pytest

import vgwlib
from vgwlib import (DRY_RUN_MESSAGE, ISO_Z, check_fields, create_gateway, plain_list, unique_name,
                    wait_gateway_status)

ITEM_TYPES = {"IpsecServerId": str, "IpsecServerName": str, "VpnGatewayId": str, "RegionId": str,
              "LocalSubnet": str, "ClientIpPool": str, "CreationTime": str, "InternetIp": str, "Psk": str,
              "PskEnabled": bool, "EffectImmediately": bool, "OnlineClientCount": int, "MaxConnections": int,
              "MultiFactorAuthEnabled": bool, "IkeConfig": dict, "IpsecConfig": dict}
SEED_IKE = {"IkeVersion": "ikev2", "IkeMode": "main", "IkeEncAlg": "aes", "IkeAuthAlg": "sha1", "IkePfs": "group2",
            "IkeLifetime": 86400}
SEED_IPSEC = {"IpsecEncAlg": "aes", "IpsecAuthAlg": "sha1", "IpsecPfs": "group2", "IpsecLifetime": 86400}


def list_servers(api, **params):
    body = api.call("ListIpsecServers", params)
    check_fields(body, {"TotalCount": int, "MaxResults": int}, {"NextToken": str}, "ListIpsecServers")
    return body, plain_list(body, "IpsecServers", "ListIpsecServers")


def create_server(api, gw, **extra):
    params = {"VpnGatewayId": gw, "LocalSubnet": "10.4.0.0/16", "ClientIpPool": "10.44.0.0/24",
              "IpSecServerName": unique_name("iss")}
    params.update(extra)
    r = api.call("CreateIpsecServer", params)
    wait_gateway_status(api, gw, "active")
    return r


@pytest.fixture
def ssl_gw(tea):
    gw, d = create_gateway(tea, ssl=True, SslConnections=5)
    return {"gw": gw, "ip": d["InternetIp"]}


def test_create_list_update_delete(tea, ssl_gw):
    gw = ssl_gw["gw"]
    name = unique_name("iss")
    r = create_server(tea, gw, IpSecServerName=name, ClientToken=vgwlib.unique_token())
    check_fields(r, {"IpsecServerId": str, "IpsecServerName": str, "VpnGatewayId": str, "RegionId": str,
                     "CreationTime": str}, None, "CreateIpsecServer")
    iss = r["IpsecServerId"]
    assert iss.startswith("iss-")
    assert (r["IpsecServerName"], r["VpnGatewayId"], r["RegionId"]) == (name, gw, vgwlib.DEFAULT_REGION)
    assert ISO_Z.match(r["CreationTime"]), r["CreationTime"]

    body, items = list_servers(tea, VpnGatewayId=gw)
    assert body["TotalCount"] == 1 and len(items) == 1
    assert body["MaxResults"] == 10, "MaxResults defaults to 10"
    assert not body.get("NextToken"), "no next page"
    s = items[0]
    check_fields(s, ITEM_TYPES, {"IDaaSInstanceId": str}, "IpsecServers[0]")
    assert (s["IpsecServerId"], s["IpsecServerName"], s["VpnGatewayId"]) == (iss, name, gw)
    assert (s["LocalSubnet"], s["ClientIpPool"]) == ("10.4.0.0/16", "10.44.0.0/24")
    assert s["InternetIp"] == ssl_gw["ip"]
    assert s["CreationTime"] == r["CreationTime"]
    assert len(s["Psk"]) == 16, "generated PSK is a 16-character string (seed 9.1)"
    assert s["EffectImmediately"] is False and s["OnlineClientCount"] == 0 and s["MultiFactorAuthEnabled"] is False
    assert s["MaxConnections"] == 5, "IPsec and SSL share the gateway's SSL connection spec"
    check_fields(s["IkeConfig"], {k: v for k, v in vgwlib.IKE_TYPES.items() if k != "RemoteId"},
                 {"RemoteId": str}, "IpsecServers[0].IkeConfig")
    assert {k: s["IkeConfig"][k] for k in SEED_IKE} == SEED_IKE
    assert s["IkeConfig"]["LocalId"] == ssl_gw["ip"], "LocalId defaults to the gateway's public IP"
    assert s["IkeConfig"].get("RemoteId", "") == "", "RemoteId defaults to empty"
    check_fields(s["IpsecConfig"], vgwlib.IPSEC_TYPES, None, "IpsecServers[0].IpsecConfig")
    assert {k: s["IpsecConfig"].get(k) for k in SEED_IPSEC} == SEED_IPSEC

    by_name = list_servers(tea, IpsecServerName=name)[1]
    assert [x["IpsecServerId"] for x in by_name] == [iss]

    new_name = unique_name("iss-upd")
    u = tea.call("UpdateIpsecServer", {
        "IpsecServerId": iss, "IpsecServerName": new_name, "LocalSubnet": "10.4.0.0/16,172.31.0.0/16",
        "ClientIpPool": "10.45.0.0/24", "Psk": "Updated-psk-9", "PskEnabled": True, "EffectImmediately": True,
        "IkeConfig": json.dumps({"IkeVersion": "ikev1", "IkeEncAlg": "aes256", "IkeLifetime": "3600"}),
        "IpsecConfig": json.dumps({"IpsecPfs": "group14"}), "ClientToken": vgwlib.unique_token()})
    assert set(u) >= {"RequestId"}
    wait_gateway_status(tea, gw, "active")
    s = list_servers(tea, VpnGatewayId=gw)[1][0]
    assert (s["IpsecServerName"], s["LocalSubnet"], s["ClientIpPool"], s["Psk"]) == (
        new_name, "10.4.0.0/16,172.31.0.0/16", "10.45.0.0/24", "Updated-psk-9")
    assert s["EffectImmediately"] is True
    assert (s["IkeConfig"]["IkeVersion"], s["IkeConfig"]["IkeEncAlg"], s["IkeConfig"]["IkeLifetime"]) == (
        "ikev1", "aes256", 3600)
    assert s["IpsecConfig"]["IpsecPfs"] == "group14"

    # DryRun is a String parameter on Update/Delete (aliyun-wire.md §2)
    e = tea.error("UpdateIpsecServer", {"IpsecServerId": iss, "IpsecServerName": "dry-run-name", "DryRun": "true"},
                  "DryRunOperation", 400)
    assert (e.data or {}).get("Message") == DRY_RUN_MESSAGE
    assert list_servers(tea, VpnGatewayId=gw)[1][0]["IpsecServerName"] == new_name
    tea.error("DeleteIpsecServer", {"IpsecServerId": iss, "DryRun": "true"}, "DryRunOperation", 400)
    assert list_servers(tea, VpnGatewayId=gw)[0]["TotalCount"] == 1

    tea.call("DeleteIpsecServer", {"IpsecServerId": iss, "DryRun": "false", "ClientToken": vgwlib.unique_token()})
    wait_gateway_status(tea, gw, "active")
    assert list_servers(tea, VpnGatewayId=gw)[0]["TotalCount"] == 0
    tea.error("DeleteIpsecServer", {"IpsecServerId": iss}, "InvalidIpsecServerId.NotFound", 404)
    tea.error("UpdateIpsecServer", {"IpsecServerId": iss, "IpsecServerName": "abc"}, "InvalidIpsecServerId.NotFound", 404)


def test_create_with_explicit_psk_and_dry_run(tea, ssl_gw):
    gw = ssl_gw["gw"]
    e = tea.error("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.4.0.0/16", "ClientIpPool": "10.44.0.0/24",
                                        "DryRun": "true"}, "DryRunOperation", 400)
    assert (e.data or {}).get("Message") == DRY_RUN_MESSAGE
    assert list_servers(tea, VpnGatewayId=gw)[0]["TotalCount"] == 0
    create_server(tea, gw, Psk="My-psk-123", PskEnabled=True, DryRun="false")
    s = list_servers(tea, VpnGatewayId=gw)[1][0]
    assert s["Psk"] == "My-psk-123" and s["PskEnabled"] is True


def test_ipsec_server_rules(tea, ssl_gw):
    plain, _ = create_gateway(tea)  # no SSL
    tea.error("CreateIpsecServer", {"VpnGatewayId": plain, "LocalSubnet": "10.4.0.0/16",
                                    "ClientIpPool": "10.44.0.0/24"}, "VpnGateway.SslVpnDisabled", 400)
    gw = ssl_gw["gw"]
    tea.error("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.4.0.0/40",
                                    "ClientIpPool": "10.44.0.0/24"}, "IllegalParam.LocalSubnet", 400)
    tea.error("CreateIpsecServer", {"VpnGatewayId": gw, "ClientIpPool": "10.44.0.0/24"}, "MissingLocalSubnet", 400)
    tea.error("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.4.0.0/16"}, "MissingClientIpPool", 400)
    tea.error("CreateIpsecServer", {"VpnGatewayId": "vpn-doesnotexist000", "LocalSubnet": "10.4.0.0/16",
                                    "ClientIpPool": "10.44.0.0/24"}, "InvalidVpnGatewayInstanceId.NotFound", 404)
    tea.error("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.4.0.0/16", "ClientIpPool": "10.44.0.0/24",
                                    "IpSecServerName": "1iss"}, "InvalidName", 400)
    iss = create_server(tea, gw)["IpsecServerId"]
    tea.error("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.6.0.0/16",
                                    "ClientIpPool": "10.46.0.0/24"}, "OperationFailed.IPsecServerExist", 400)
    tea.error("UpdateIpsecServer", {"IpsecServerId": iss, "LocalSubnet": "bogus"}, "IllegalParam.LocalSubnet", 400)
    assert list_servers(tea, VpnGatewayId=gw)[0]["TotalCount"] == 1
    tea.error("ListIpsecServers", {"MaxResults": 21}, "InvalidMaxResults", 400)


def test_next_token_walk(fresh_api):
    api = fresh_api()
    ids = set()
    for _ in range(3):
        gw, _ = create_gateway(api, ssl=True)
        ids.add(create_server(api, gw)["IpsecServerId"])
    body, first = list_servers(api, MaxResults=2)
    assert (body["TotalCount"], body["MaxResults"], len(first)) == (3, 2, 2)
    token = body.get("NextToken")
    assert token, "a second page exists, NextToken must be set"
    body2, second = list_servers(api, MaxResults=2, NextToken=token)
    assert len(second) == 1 and body2["TotalCount"] == 3
    assert not body2.get("NextToken"), "last page: NextToken empty"
    got = [s["IpsecServerId"] for s in first + second]
    assert len(set(got)) == 3 and set(got) == ids
    all_ = list_servers(api, MaxResults=20)[1]
    assert {s["IpsecServerId"] for s in all_} == ids
