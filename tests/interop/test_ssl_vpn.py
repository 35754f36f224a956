"""SSL-VPN servers, client certificates and logs (seed 8.1-8.9, SDK DescribeSslVpnClientCert)."""
from __future__ import annotations

import calendar
import re
import subprocess
import time

import pytest

import vgwlib
from vgwlib import (assert_recent_ms, check_fields, check_paging, create_gateway, unique_name,
                    wait_gateway_status, wrapped_list)

SERVER_TYPES = {"SslVpnServerId": str, "VpnGatewayId": str, "Name": str, "ClientIpPool": str, "LocalSubnet": str,
                "Proto": str, "Port": int, "Cipher": str, "Compress": bool, "Connections": int,
                "MaxConnections": int, "InternetIp": str, "RegionId": str, "CreateTime": int,
                "EnableMultiFactorAuth": bool}
SERVER_OPTIONAL = {"IDaaSInstanceId": str, "IDaaSRegionId": str}
CERT_TYPES = {"SslVpnClientCertId": str, "SslVpnServerId": str, "Name": str, "Status": str, "CreateTime": int,
              "EndTime": int, "RegionId": str}


@pytest.fixture
def ssl_gw(tea):
    gw, d = create_gateway(tea, ssl=True, SslConnections=10)
    return {"gw": gw, "ip": d["InternetIp"]}


def create_server(api, gw, pool="192.168.100.0/24", local="10.3.0.0/16", **extra):
    r = api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": pool, "LocalSubnet": local, **extra})
    wait_gateway_status(api, gw, "active")
    return r


def servers_of(api, gw):
    body = api.call("DescribeSslVpnServers", {"VpnGatewayId": gw})
    return body, wrapped_list(body, "SslVpnServers", "SslVpnServer", "DescribeSslVpnServers")


def create_cert(api, server_id, gw, **extra):
    r = api.call("CreateSslVpnClientCert", {"SslVpnServerId": server_id, "Name": unique_name("cert"), **extra})
    wait_gateway_status(api, gw, "active")
    return r


def test_server_defaults_and_describe(tea, ssl_gw):
    name = unique_name("ssl")
    r = create_server(tea, ssl_gw["gw"], Name=name, ClientToken=vgwlib.unique_token())
    check_fields(r, {"SslVpnServerId": str}, {"Name": str}, "CreateSslVpnServer")
    sid = r["SslVpnServerId"]
    assert sid.startswith("vss-")
    assert r.get("Name", name) == name

    body, items = servers_of(tea, ssl_gw["gw"])
    check_paging(body, 1, 10, "DescribeSslVpnServers")
    assert body["TotalCount"] == 1 and len(items) == 1
    s = items[0]
    check_fields(s, SERVER_TYPES, SERVER_OPTIONAL, "SslVpnServers.SslVpnServer[0]")
    assert (s["SslVpnServerId"], s["VpnGatewayId"], s["Name"]) == (sid, ssl_gw["gw"], name)
    assert (s["ClientIpPool"], s["LocalSubnet"]) == ("192.168.100.0/24", "10.3.0.0/16")
    # seed 8.1 defaults
    assert (s["Proto"], s["Port"], s["Cipher"], s["Compress"]) == ("UDP", 1194, "AES-128-CBC", False)
    assert s["EnableMultiFactorAuth"] is False
    assert s["Connections"] == 0
    assert s["MaxConnections"] == 10, "MaxConnections is the gateway's SslConnections"
    assert s["InternetIp"] == ssl_gw["ip"]
    assert s["RegionId"] == vgwlib.DEFAULT_REGION
    assert_recent_ms(s["CreateTime"], "CreateTime")

    by_id = tea.call("DescribeSslVpnServers", {"SslVpnServerId": sid})
    assert [x["SslVpnServerId"] for x in wrapped_list(by_id, "SslVpnServers", "SslVpnServer")] == [sid]
    by_name = tea.call("DescribeSslVpnServers", {"Name": name})
    assert [x["SslVpnServerId"] for x in wrapped_list(by_name, "SslVpnServers", "SslVpnServer")] == [sid]
    tea.error("DescribeSslVpnServers", {"PageSize": 51}, "InvalidPageSize", 400)


def test_modify_server(tea, ssl_gw):
    sid = create_server(tea, ssl_gw["gw"])["SslVpnServerId"]
    name = unique_name("ssl-mod")
    m = tea.call("ModifySslVpnServer", {"SslVpnServerId": sid, "Name": name, "Port": 1195, "Proto": "TCP",
                                        "Cipher": "AES-256-CBC", "Compress": True, "ClientIpPool": "192.168.101.0/24",
                                        "LocalSubnet": "10.4.0.0/16", "ClientToken": vgwlib.unique_token()})
    check_fields(m, SERVER_TYPES, SERVER_OPTIONAL, "ModifySslVpnServer")
    assert (m["SslVpnServerId"], m["Name"], m["Port"], m["Proto"], m["Cipher"], m["Compress"]) == (
        sid, name, 1195, "TCP", "AES-256-CBC", True)
    assert (m["ClientIpPool"], m["LocalSubnet"], m["InternetIp"]) == ("192.168.101.0/24", "10.4.0.0/16", ssl_gw["ip"])
    wait_gateway_status(tea, ssl_gw["gw"], "active")
    _, items = servers_of(tea, ssl_gw["gw"])
    s = items[0]
    assert (s["Name"], s["Port"], s["Proto"], s["Cipher"], s["Compress"]) == (name, 1195, "TCP", "AES-256-CBC", True)

    tea.error("ModifySslVpnServer", {"SslVpnServerId": sid, "Port": 22}, "IllegalParam.Port", 400)
    tea.error("ModifySslVpnServer", {"SslVpnServerId": sid, "ClientIpPool": "10.4.1.0/24"},
              "IllegalParam.ClientIpPool", 400)
    tea.error("ModifySslVpnServer", {"SslVpnServerId": sid, "Name": "1ssl"}, "InvalidName", 400)
    tea.error("ModifySslVpnServer", {"SslVpnServerId": "vss-doesnotexist000", "Port": 1196},
              "InvalidSslVpnServerId.NotFound", 404)
    _, items = servers_of(tea, ssl_gw["gw"])
    assert items[0]["Port"] == 1195, "a rejected modify changed the server"


@pytest.mark.parametrize("port", [22, 2222, 22222, 9000, 9001, 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500,
                                  4500])
def test_forbidden_ports(tea, shared_ssl_gw, port):
    gw = shared_ssl_gw
    tea.error("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.102.0/24",
                                     "LocalSubnet": "10.5.0.0/16", "Port": port}, "IllegalParam.Port", 400)


@pytest.fixture(scope="module")
def _ssl_gw_per_mode(tea):
    return create_gateway(tea, ssl=True)[0]


@pytest.fixture
def shared_ssl_gw(tea, _ssl_gw_per_mode):
    """One SSL gateway per signing mode for validation cases that must not change state."""
    wait_gateway_status(tea, _ssl_gw_per_mode, "active")
    return _ssl_gw_per_mode


@pytest.mark.parametrize("params,code,status", [
    ({"ClientIpPool": "10.5.3.0/24"}, "IllegalParam.ClientIpPool", 400),
    ({"ClientIpPool": None}, "MissingClientIpPool", 400),
    ({"LocalSubnet": None}, "MissingLocalSubnet", 400),
    ({"Proto": "SCTP"}, "InvalidProto", 400),
    ({"Cipher": "ROT13"}, "InvalidCipher", 400),
    ({"Name": "9ssl"}, "InvalidName", 400),
    ({"Port": "high"}, "InvalidPort", 400),
    ({"VpnGatewayId": "vpn-doesnotexist000"}, "InvalidVpnGatewayInstanceId.NotFound", 404),
], ids=lambda v: v if isinstance(v, (str, int)) else ",".join(f"{k}={x}" for k, x in v.items()))
def test_create_server_validation(tea, shared_ssl_gw, params, code, status):
    gw = shared_ssl_gw
    base = {"VpnGatewayId": gw, "ClientIpPool": "192.168.103.0/24", "LocalSubnet": "10.5.0.0/16"}
    base.update(params)
    tea.error("CreateSslVpnServer", base, code, status)
    assert servers_of(tea, gw)[0]["TotalCount"] == 0


def test_ssl_server_needs_ssl_enabled_gateway(tea):
    gw, _ = create_gateway(tea)  # EnableSsl defaults to false
    tea.error("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.104.0/24",
                                     "LocalSubnet": "10.6.0.0/16"}, "VpnGateway.SslVpnDisabled", 400)


def test_second_server_on_gateway_is_quota_full(tea, ssl_gw):
    create_server(tea, ssl_gw["gw"])
    tea.error("CreateSslVpnServer", {"VpnGatewayId": ssl_gw["gw"], "ClientIpPool": "192.168.105.0/24",
                                     "LocalSubnet": "10.7.0.0/16"}, "Resource.QuotaFull", 400)


def _openssl(*args, input_text=None):
    return subprocess.run(["openssl", *args], input=input_text, capture_output=True, text=True, timeout=30)


def test_client_cert_lifecycle_and_artefacts(tea, ssl_gw, tmp_path):
    gw = ssl_gw["gw"]
    sid = create_server(tea, gw)["SslVpnServerId"]
    name = unique_name("cert")
    c = create_cert(tea, sid, gw, Name=name, ClientToken=vgwlib.unique_token())
    check_fields(c, {"SslVpnClientCertId": str}, {"Name": str}, "CreateSslVpnClientCert")
    cid = c["SslVpnClientCertId"]
    assert cid.startswith("vsc-")

    lst = tea.call("DescribeSslVpnClientCerts", {"SslVpnServerId": sid})
    check_paging(lst, 1, 10, "DescribeSslVpnClientCerts")
    items = wrapped_list(lst, "SslVpnClientCertKeys", "SslVpnClientCertKey", "DescribeSslVpnClientCerts")
    assert lst["TotalCount"] == 1 and len(items) == 1
    item = items[0]
    check_fields(item, CERT_TYPES, None, "SslVpnClientCertKeys.SslVpnClientCertKey[0]")
    assert (item["SslVpnClientCertId"], item["SslVpnServerId"], item["Name"]) == (cid, sid, name)
    assert item["Status"] == "normal"
    assert item["RegionId"] == vgwlib.DEFAULT_REGION
    assert_recent_ms(item["CreateTime"], "CreateTime")
    assert item["EndTime"] > item["CreateTime"] + 7 * 86400 * 1000, "a fresh certificate is not expiring-soon"

    new_name = unique_name("cert-renamed")
    m = tea.call("ModifySslVpnClientCert", {"SslVpnClientCertId": cid, "Name": new_name})
    check_fields(m, {"SslVpnClientCertId": str, "Name": str}, None, "ModifySslVpnClientCert")
    assert (m["SslVpnClientCertId"], m["Name"]) == (cid, new_name)
    by_name = tea.call("DescribeSslVpnClientCerts", {"Name": new_name})
    assert [x["SslVpnClientCertId"] for x in wrapped_list(by_name, "SslVpnClientCertKeys", "SslVpnClientCertKey")] == [cid]
    by_id = tea.call("DescribeSslVpnClientCerts", {"SslVpnClientCertId": cid})
    assert by_id["TotalCount"] == 1
    tea.error("DescribeSslVpnClientCerts", {"SslVpnServerId": sid, "PageSize": 51}, "InvalidPageSize", 400)

    d = tea.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": cid})
    check_fields(d, {"CaCert": str, "ClientCert": str, "ClientKey": str, "ClientConfig": str, **CERT_TYPES}, None,
                 "DescribeSslVpnClientCert")
    assert (d["SslVpnClientCertId"], d["SslVpnServerId"], d["Name"], d["Status"]) == (cid, sid, new_name, "normal")
    assert d["EndTime"] == item["EndTime"]
    for field, marker in (("CaCert", "CERTIFICATE"), ("ClientCert", "CERTIFICATE"), ("ClientKey", "PRIVATE KEY")):
        assert re.search(rf"-----BEGIN [A-Z ]*{marker}-----", d[field]), f"{field} is not PEM: {d[field][:80]!r}"
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.write_text(d["CaCert"])
    cert.write_text(d["ClientCert"])
    key.write_text(d["ClientKey"])
    v = _openssl("verify", "-CAfile", str(ca), str(cert))
    assert v.returncode == 0 and ": OK" in v.stdout, f"ClientCert does not chain to CaCert: {v.stdout}{v.stderr}"
    pub_cert = _openssl("x509", "-in", str(cert), "-noout", "-pubkey")
    pub_key = _openssl("pkey", "-in", str(key), "-pubout")
    assert pub_cert.returncode == 0 and pub_key.returncode == 0, pub_cert.stderr + pub_key.stderr
    assert pub_cert.stdout.strip() == pub_key.stdout.strip(), "ClientKey does not belong to ClientCert"
    end = _openssl("x509", "-in", str(cert), "-noout", "-enddate")
    not_after = calendar.timegm(time.strptime(end.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z"))
    assert abs(not_after - d["EndTime"] / 1000) < 300, f"EndTime {d['EndTime']} != certificate notAfter {end.stdout}"

    cfg = d["ClientConfig"]
    assert re.search(rf"^\s*remote\s+{re.escape(ssl_gw['ip'])}\s+1194\b", cfg, re.M), f"no `remote IP 1194`: {cfg}"
    for tag in ("<ca>", "</ca>", "<cert>", "</cert>", "<key>", "</key>"):
        assert tag in cfg, f"ClientConfig lacks {tag}"
    assert d["CaCert"].strip().splitlines()[1] in cfg, "the inline <ca> is not the CaCert"

    # the config follows the server's port/protocol
    tea.call("ModifySslVpnServer", {"SslVpnServerId": sid, "Port": 1196, "Proto": "TCP"})
    wait_gateway_status(tea, gw, "active")
    cfg2 = tea.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": cid})["ClientConfig"]
    assert re.search(rf"^\s*remote\s+{re.escape(ssl_gw['ip'])}\s+1196\b", cfg2, re.M), cfg2
    assert re.search(r"^\s*proto\s+tcp", cfg2, re.M | re.I), f"TCP server but config has no `proto tcp`: {cfg2}"

    tea.call("DeleteSslVpnClientCert", {"SslVpnClientCertId": cid, "ClientToken": vgwlib.unique_token()})
    wait_gateway_status(tea, gw, "active")
    tea.error("DescribeSslVpnClientCert", {"SslVpnClientCertId": cid}, "InvalidSslVpnClientCertId.NotFound", 404)
    tea.error("DeleteSslVpnClientCert", {"SslVpnClientCertId": cid}, "InvalidSslVpnClientCertId.NotFound", 404)
    tea.error("ModifySslVpnClientCert", {"SslVpnClientCertId": cid, "Name": "abc"},
              "InvalidSslVpnClientCertId.NotFound", 404)
    assert tea.call("DescribeSslVpnClientCerts", {"SslVpnServerId": sid})["TotalCount"] == 0


def test_client_cert_validation(tea, ssl_gw):
    sid = create_server(tea, ssl_gw["gw"])["SslVpnServerId"]
    tea.error("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "1cert"}, "InvalidName", 400)
    tea.error("CreateSslVpnClientCert", {"SslVpnServerId": "vss-doesnotexist000", "Name": "cert-x"},
              "InvalidSslVpnServerId.NotFound", 404)
    tea.error("CreateSslVpnClientCert", {"Name": "cert-x"}, "MissingSslVpnServerId", 400)
    cid = create_cert(tea, sid, ssl_gw["gw"])["SslVpnClientCertId"]
    tea.error("ModifySslVpnClientCert", {"SslVpnClientCertId": cid, "Name": "http://x"}, "InvalidName", 400)


def test_server_logs(tea, ssl_gw):
    gw = ssl_gw["gw"]
    sid = create_server(tea, gw)["SslVpnServerId"]
    cid = create_cert(tea, sid, gw)["SslVpnClientCertId"]
    now = int(time.time())
    for params in ({"MinutePeriod": 10},
                   {"From": now - 600, "To": now, "SslVpnClientCertId": cid, "PageNumber": 1, "PageSize": 20}):
        body = tea.call("DescribeVpnSslServerLogs", {"VpnSslServerId": sid, **params})
        check_fields(body, {"Data": dict, "Count": int, "IsCompleted": bool, "PageNumber": int, "PageSize": int},
                     None, "DescribeVpnSslServerLogs")
        logs = body["Data"].get("Logs", [])
        assert isinstance(logs, list) and all(isinstance(x, str) for x in logs), body["Data"]
        assert body["PageNumber"] == params.get("PageNumber", 1)
        assert body["PageSize"] == params.get("PageSize", 10)
        assert body["Count"] >= len(logs)
    tea.error("DescribeVpnSslServerLogs", {"VpnSslServerId": "vss-doesnotexist000", "MinutePeriod": 10},
              "InvalidSslVpnServerId.NotFound", 404)
    tea.error("DescribeVpnSslServerLogs", {"VpnSslServerId": sid, "MinutePeriod": 10, "PageSize": 51},
              "InvalidPageSize", 400)


def test_delete_server(tea, ssl_gw):
    gw = ssl_gw["gw"]
    sid = create_server(tea, gw)["SslVpnServerId"]
    tea.call("DeleteSslVpnServer", {"SslVpnServerId": sid, "ClientToken": vgwlib.unique_token()})
    wait_gateway_status(tea, gw, "active")
    assert servers_of(tea, gw)[0]["TotalCount"] == 0
    tea.error("DeleteSslVpnServer", {"SslVpnServerId": sid}, "InvalidSslVpnServerId.NotFound", 404)
    tea.error("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "cert-x"}, "InvalidSslVpnServerId.NotFound", 404)
    # the slot is free again
    create_server(tea, gw)
