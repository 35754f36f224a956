"""Huawei VPN v5 client-to-site side through huaweicloudsdkvpn: P2C gateways, VPN servers, client CAs, users, groups,
access policies, log config, upgrades, and X-Client-Token idempotency on the seven P2C creates.

References: Huawei's VPN v5 API reference (behaviour) and the SDK's models (field names and wrappers); where the
reference is silent, docs/huawei-behaviour.md.
"""
from __future__ import annotations

import re
import uuid

import pytest

import hwlib
from hwlib import (CERTS, USER_PW, create_group, create_p2c, create_policy, create_server, create_user, eip,
                   p2c_body, poll, uid, uname, wait_p2c, wait_server)

from test_huawei_s2c import upgrade_cycle


@pytest.fixture(scope="module")
def p2c(hw_a):
    return create_p2c(hw_a)


@pytest.fixture(scope="module")
def srv(hw_a, p2c):
    return create_server(hw_a, p2c["id"], client_cidr="192.168.240.0/24", local_subnets=["10.240.0.0/16"])


# ------------------------------------------------------------------------------------------------------------------
# P2C gateways
# ------------------------------------------------------------------------------------------------------------------
def test_p2c_gateway_crud(hw_a):
    body = p2c_body(name="p2c_gw-1", max_connection_number=20, tags=[{"key": "k", "value": "v"}])
    r = hw_a.call("create_p2c_vgw", body)
    assert r.status == 201 and r.json["request_id"]
    assert set(r.json["p2c_vpn_gateway"]) == {"id"}, "create answers only the id (ResponseP2cVgw)"
    gid = r.json["p2c_vpn_gateway"]["id"]
    g = wait_p2c(hw_a, gid)
    src = body["p2c_vpn_gateway"]
    assert (g["name"], g["vpc_id"], g["connect_subnet"], g["flavor"]) == \
        ("p2c_gw-1", src["vpc_id"], src["connect_subnet"], "Professional1")
    assert (g["max_connection_number"], g["current_connection_number"]) == (20, 0)
    assert g["availability_zone_ids"] == ["cn-north-4a", "cn-north-4b"]
    e = g["eip"]
    assert e["ip_address"].startswith("198.18.") and (e["type"], e["bandwidth_size"], e["ip_version"]) == \
        ("5_bgp", 100, 4)
    assert re.match(r"^p2c-vpngw-bandwidth-[0-9a-f]{4}$", e["bandwidth_name"]), e
    assert (g["enterprise_project_id"], g["admin_state_up"], g["frozen_effect"]) == ("0", True, 0)
    assert g["tags"] == [{"key": "k", "value": "v"}] and g["order_id"]
    shown = hw_a.call("show_p2c_vgw", p2c_vgw_id=gid)
    assert shown.status == 200 and shown.model.p2c_vpn_gateway.eip.ip_address == e["ip_address"]
    lst = hw_a.call("list_p2c_vgws")
    assert lst.status == 200 and gid in [x["id"] for x in lst.json["p2c_vpn_gateways"]]
    assert lst.json["total_count"] == len(lst.json["p2c_vpn_gateways"])
    s2c = [x["id"] for x in hw_a.call("list_vgws").json["vpn_gateways"]]
    assert gid not in s2c, "a P2C gateway is not listed among S2C gateways"
    up = hw_a.call("update_p2c_vgw", {"p2c_vpn_gateway": {"name": "p2c_renamed"}}, p2c_vgw_id=gid)
    assert up.status == 200 and up.json["p2c_vpn_gateway"] == {"id": gid}
    assert wait_p2c(hw_a, gid)["name"] == "p2c_renamed"
    d = hw_a.call("delete_p2c_vgw", p2c_vgw_id=gid)
    assert d.status == 204
    poll(lambda: gid not in [x["id"] for x in hw_a.call("list_p2c_vgws").json["p2c_vpn_gateways"]], "p2c gone")
    hw_a.expect("show_p2c_vgw", "VPN.0509", 404, p2c_vgw_id=gid)


def test_p2c_defaults(hw_a):
    r = hw_a.call("create_p2c_vgw", {"p2c_vpn_gateway": {"vpc_id": uid(), "connect_subnet": uid(),
                                                          "eip": {"type": "5_bgp", "bandwidth_size": 5}}})
    g = wait_p2c(hw_a, r.json["p2c_vpn_gateway"]["id"])
    assert re.match(r"^p2c-vpngw-[0-9a-f]{4}$", g["name"]), g["name"]
    assert (g["flavor"], g["max_connection_number"], g["eip"]["charge_mode"]) == ("Professional1", 10, "bandwidth")


def test_p2c_availability_zones(hw_a, hw_a2):
    r = hw_a.call("list_p2c_vgw_availability_zones")
    assert r.status == 200 and r.json["availability_zones"] == ["cn-north-4a", "cn-north-4b"]
    assert hw_a.call("list_p2c_vgw_availability_zones", flavor="Professional1").json["availability_zones"] == \
        ["cn-north-4a", "cn-north-4b"]
    assert hw_a2.call("list_p2c_vgw_availability_zones").json["availability_zones"] == ["cn-south-1a", "cn-south-1b"]


def test_p2c_connections_and_disconnect(hw_a, p2c, srv):
    r = hw_a.call("list_p2c_vgw_connections", p2c_vgw_id=p2c["id"])
    assert r.status == 200 and r.json["connections"] == [] and r.json["total_count"] == 0
    assert "page_info" not in r.json
    paged = hw_a.call("list_p2c_vgw_connections", p2c_vgw_id=p2c["id"], limit=10, offset=0).json
    assert paged["connections"] == [] and paged["total_count"] == 0
    hw_a.expect("delete_p2c_vgw_connection", "VPN.0563", 404, p2c_vgw_id=p2c["id"], connection_id=uid())


def test_p2c_log_config(hw_a, p2c):
    lg, ls = uid(), uid()
    put = hw_a.call("update_vpn_connections_log_config", {"log_config": {"log_group_id": lg, "log_stream_id": ls}},
                    p2c_vgw_id=p2c["id"])
    assert put.status == 200 and put.json["log_config"] == {"log_group_id": lg, "log_stream_id": ls}
    got = hw_a.call("show_vpn_connections_log_config", p2c_vgw_id=p2c["id"])
    assert got.status == 200 and got.json["log_config"] == {"log_group_id": lg, "log_stream_id": ls}
    wait_p2c(hw_a, p2c["id"])
    d = hw_a.call("delete_vpn_connections_log_config", p2c_vgw_id=p2c["id"])
    assert d.status == 204
    after = hw_a.call("show_vpn_connections_log_config", p2c_vgw_id=p2c["id"]).json
    assert after["log_config"].get("log_group_id") in (None, "") and after["log_config"].get("log_stream_id") in \
        (None, "")
    wait_p2c(hw_a, p2c["id"])


def test_p2c_upgrade_and_jobs(hw_a):
    g = create_p2c(hw_a)
    show = lambda gid: hw_a.call("show_p2c_vgw", p2c_vgw_id=gid).json["p2c_vpn_gateway"]  # noqa: E731
    job = upgrade_cycle(hw_a, g["id"], "upgrade_p2c_vpn_gateway", "list_p2c_vpn_gateway_jobs",
                        "delete_p2c_vpn_gateway_job", "p2c_vgw_id", show)
    assert job not in [x["id"] for x in hw_a.call("list_vpn_gateway_jobs").json["jobs"]], \
        "a P2C job is not listed among S2C jobs"
    hw_a.expect("delete_vpn_gateway_job", "VPN.0004", 404, job_id=job)


# ------------------------------------------------------------------------------------------------------------------
# VPN servers
# ------------------------------------------------------------------------------------------------------------------
def test_server_create_defaults_and_list(hw_a):
    g = create_p2c(hw_a)
    body = hwlib.server_body(client_cidr="192.168.100.0/24", local_subnets=["10.100.0.0/16", "10.101.0.0/16"],
                             dns_servers=["10.100.0.2"])
    del body["vpn_server"]["client_auth_type"]
    r = hw_a.call("create_vpn_server", body, p2c_vgw_id=g["id"])
    assert r.status == 201 and set(r.json["vpn_server"]) == {"id"}
    sid = r.json["vpn_server"]["id"]
    s = wait_server(hw_a, g["id"], sid)
    assert (s["p2c_vgw_id"], s["client_cidr"], s["local_subnets"]) == \
        (g["id"], "192.168.100.0/24", ["10.100.0.0/16", "10.101.0.0/16"])
    assert (s["client_auth_type"], s["tunnel_protocol"], s["client_ca_certificates"]) == \
        ("LOCAL_PASSWORD", "SSL", [])
    assert s["ssl_options"] == {"protocol": "TCP", "port": 443, "encryption_algorithm": "AES-128-GCM",
                                "authentication_algorithm": "SHA256", "is_compressed": False}
    assert s["dns_servers"] == ["10.100.0.2"] and s["server_certificate"]["source"] == "SERVICE_SIGN"
    sc = s["server_certificate"]
    assert sc["serial_number"].isdigit() and sc["subject"] and sc["issuer"] and sc["expiration_time"]
    lst = hw_a.call("list_vpn_servers_by_vgw", p2c_vgw_id=g["id"])
    assert lst.status == 200 and [x["id"] for x in lst.json["vpn_servers"]] == [sid]
    assert lst.json["total_count"] == 1 and lst.json["page_info"]["current_count"] == 1
    proj = hw_a.call("list_vpn_servers_by_project")
    assert proj.status == 200 and sid in [x["id"] for x in proj.json["vpn_servers"]]
    # the default user group exists
    groups = hw_a.call("list_vpn_user_groups", vpn_server_id=sid).json["user_groups"]
    assert [(x["name"], x["type"], x["description"], x["user_number"]) for x in groups] == \
        [("default", "Default", "Default user group", 0)]
    # a gateway has one server
    wait_p2c(hw_a, g["id"])
    hw_a.expect("create_vpn_server", "VPN.1102", 400, hwlib.server_body(), p2c_vgw_id=g["id"])


def test_server_update(hw_a):
    g = create_p2c(hw_a)
    srv_ = create_server(hw_a, g["id"], client_cidr="192.168.101.0/24", local_subnets=["10.102.0.0/16"])
    r = hw_a.call("update_vpn_server", {"vpn_server": {
        "client_cidr": "192.168.102.0/24", "local_subnets": ["10.103.0.0/16"], "dns_servers": ["10.103.0.2", "10.103.0.3"],
        "ssl_options": {"port": 1194, "encryption_algorithm": "AES-256-GCM"}}}, vpn_server_id=srv_["id"])
    assert r.status == 200 and set(r.json) == {"request_id"}
    s = poll(lambda: [x for x in hw_a.call("list_vpn_servers_by_vgw", p2c_vgw_id=g["id"]).json["vpn_servers"]
                      if x["status"] == "ACTIVE" and x["client_cidr"] == "192.168.102.0/24"], "server updated")[0]
    assert s["local_subnets"] == ["10.103.0.0/16"] and s["dns_servers"] == ["10.103.0.2", "10.103.0.3"]
    assert (s["ssl_options"]["port"], s["ssl_options"]["encryption_algorithm"],
            s["ssl_options"]["authentication_algorithm"]) == (1194, "AES-256-GCM", "SHA384")
    cfg = hw_a.call("export_client_config", {"os_type": "Linux"}, vpn_server_id=srv_["id"]).json["client_config"]
    assert f"remote {g['eip']['ip_address']} 1194" in cfg and "data-ciphers AES-256-GCM" in cfg and "auth SHA384" in cfg


def test_server_update_to_cert_needs_client_ca(hw_a):
    """Switching to CERT while the server has no client CA ⇒ VPN.1101 (reference 4.2.2)."""
    g = create_p2c(hw_a)
    srv_ = create_server(hw_a, g["id"])
    hw_a.expect("update_vpn_server", "VPN.1101", 400, {"vpn_server": {"client_auth_type": "CERT"}},
                vpn_server_id=srv_["id"])


def test_export_client_config_password(hw_a, p2c, srv):
    r = hw_a.call("export_client_config", {"os_type": "Windows"}, vpn_server_id=srv["id"])
    assert r.status == 200
    cfg = r.json["client_config"]
    lines = cfg.splitlines()
    assert lines[0] == "client" and "dev tun" in lines and "proto tcp" in lines
    assert f"remote {p2c['eip']['ip_address']} 443" in lines
    assert "auth-user-pass" in lines and "remote-cert-tls server" in lines
    assert "data-ciphers AES-128-GCM" in lines and "auth SHA256" in lines
    ca = cfg[cfg.index("<ca>") + 4:cfg.index("</ca>")].strip()
    assert ca.startswith("-----BEGIN CERTIFICATE-----") and ca.endswith("-----END CERTIFICATE-----")
    assert "disable-dco" in lines
    # no body: os_type is optional
    assert "proto tcp" in hw_a.call("export_client_config", vpn_server_id=srv["id"]).json["client_config"]


def test_server_cert_auth_and_client_cas(hw_a):
    g = create_p2c(hw_a)
    ca1 = CERTS.get("ca")
    body = hwlib.server_body(client_auth_type="CERT", client_ca_certificates=[{"name": "ca_one", "content": ca1}])
    sid = hw_a.call("create_vpn_server", body, p2c_vgw_id=g["id"]).json["vpn_server"]["id"]
    s = wait_server(hw_a, g["id"], sid)
    wait_p2c(hw_a, g["id"])
    assert s["client_auth_type"] == "CERT"
    assert [c["name"] for c in s["client_ca_certificates"]] == ["ca_one"]
    cfg = hw_a.call("export_client_config", {"os_type": "Linux"}, vpn_server_id=sid).json["client_config"]
    assert "auth-user-pass" not in cfg and f"remote {g['eip']['ip_address']} 443" in cfg and "<ca>" in cfg

    # check (no server), import, show, update, delete
    ca2 = CERTS.get("ca2")
    chk = hw_a.call("check_client_ca_certificate", {"client_ca_certificate": {"name": "ca_two", "content": ca2}})
    assert chk.status == 200
    assert chk.json["name"] == "ca_two" and "hw-ca-2" in chk.json["subject"] and chk.json["serial_number"].isdigit()
    assert chk.json["signature_algorithm"] == "SHA256WITHRSA" and chk.json["expiration_time"].endswith("Z")
    imp = hw_a.call("import_client_ca", {"client_ca_certificate": {"name": "ca_two", "content": ca2}},
                    vpn_server_id=sid)
    assert imp.status == 201
    cid = imp.json["client_ca_certificate"]["id"]
    sh = hw_a.call("show_client_ca", vpn_server_id=sid, client_ca_certificate_id=cid)
    assert sh.status == 200
    c = sh.json["client_ca_certificate"]
    assert (c["id"], c["name"], c["serial_number"]) == (cid, "ca_two", chk.json["serial_number"])
    assert c["issuer"] == chk.json["issuer"] and c["created_at"] and c["updated_at"]
    up = hw_a.call("update_client_ca", {"client_ca_certificate": {"name": "ca_renamed"}}, vpn_server_id=sid,
                   client_ca_certificate_id=cid)
    assert up.status == 200 and up.json["request_id"]
    assert hw_a.call("show_client_ca", vpn_server_id=sid, client_ca_certificate_id=cid).json[
        "client_ca_certificate"]["name"] == "ca_renamed"
    listed = wait_server(hw_a, g["id"], sid)["client_ca_certificates"]
    assert sorted(x["name"] for x in listed) == ["ca_one", "ca_renamed"]
    hw_a.expect("import_client_ca", "VPN.0077", 400, {"client_ca_certificate": {"name": "dup", "content": ca2}},
                vpn_server_id=sid)
    d = hw_a.call("delete_client_ca", vpn_server_id=sid, client_ca_certificate_id=cid)
    assert d.status == 204
    hw_a.expect("show_client_ca", "VPN.1115", 404, vpn_server_id=sid, client_ca_certificate_id=cid)


# ------------------------------------------------------------------------------------------------------------------
# users
# ------------------------------------------------------------------------------------------------------------------
def test_user_crud_and_passwords(hw_a, srv):
    sid = srv["id"]
    grp = create_group(hw_a, sid)
    r = hw_a.call("create_vpn_user", {"user": {"name": "alice.b-1", "password": "Qwerasdf", "description": "first_user",
                                               "user_group_id": grp["id"], "static_ip": "192.168.240.5"}},
                  vpn_server_id=sid)
    assert r.status == 201 and set(r.json["user"]) == {"id"}
    uid_ = r.json["user"]["id"]
    s = hw_a.call("show_vpn_user", vpn_server_id=sid, user_id=uid_)
    assert s.status == 200
    u = s.json["user"]
    assert (u["name"], u["description"], u["user_group_id"], u["user_group_name"], u["static_ip"]) == \
        ("alice.b-1", "first_user", grp["id"], grp["name"], "192.168.240.5")
    assert "password" not in u and u["created_at"] and u["updated_at"]
    up = hw_a.call("update_vpn_user", {"user": {"description": "changed", "static_ip": "disable"}},
                   vpn_server_id=sid, user_id=uid_)
    assert up.status == 200
    assert (up.json["user"]["description"], up.json["user"]["static_ip"], up.json["user"]["user_group_id"]) == \
        ("changed", "disable", grp["id"]), "fields not in the patch are kept"
    ch = hw_a.call("update_vpn_user_password", {"old_password": "Qwerasdf", "new_password": "N3w-Passw0rd"},
                   vpn_server_id=sid, user_id=uid_)
    assert ch.status == 200 and ch.json["request_id"]
    hw_a.expect("update_vpn_user_password", "VPN.1312", 400, {"old_password": "Qwerasdf", "new_password": "Other-Pass1"},
                vpn_server_id=sid, user_id=uid_)
    hw_a.expect("reset_vpn_user_password", "VPN.1311", 400, {"new_password": "Qwerasdf"}, vpn_server_id=sid,
                user_id=uid_)
    rs = hw_a.call("reset_vpn_user_password", {"new_password": "Reset-Pass9"}, vpn_server_id=sid, user_id=uid_)
    assert rs.status == 200
    ch2 = hw_a.call("update_vpn_user_password", {"old_password": "Reset-Pass9", "new_password": "After-Reset7"},
                    vpn_server_id=sid, user_id=uid_)
    assert ch2.status == 200, "the reset password is the current one"
    d = hw_a.call("delete_vpn_user", vpn_server_id=sid, user_id=uid_)
    assert d.status == 204
    hw_a.expect("show_vpn_user", "VPN.1303", 404, vpn_server_id=sid, user_id=uid_)
    assert hw_a.call("show_vpn_user_group", vpn_server_id=sid, group_id=grp["id"]).json["user_group"][
        "user_number"] == 0


def test_user_batch_create_and_delete(hw_a, srv):
    sid = srv["id"]
    base = uname("b").replace("-", "_")
    users = [{"name": f"{base}_1", "password": USER_PW, "user_group_name": "default"},
             {"name": f"{base}_2", "password": USER_PW, "description": "two", "static_ip": "192.168.240.9"}]
    r = hw_a.call("batch_create_vpn_users", {"users": users}, vpn_server_id=sid)
    assert r.status == 201 and r.json["invalid_users"] == []
    listed = {u["name"]: u for u in hw_a.call("list_vpn_users", vpn_server_id=sid, limit=200).json["users"]}
    assert listed[f"{base}_1"]["user_group_name"] == "default"
    assert listed[f"{base}_2"]["static_ip"] == "192.168.240.9" and listed[f"{base}_2"]["description"] == "two"
    # all-or-nothing: one bad row, nothing created
    before = hw_a.call("list_vpn_users", vpn_server_id=sid).json["total_count"]
    bad = [{"name": f"{base}_3", "password": USER_PW},
           {"name": f"{base}_1", "password": USER_PW},
           {"name": f"{base}_4", "password": "short"},
           {"name": f"{base}_5", "password": USER_PW, "user_group_name": "no-such-group"},
           {"name": f"{base}_6", "password": USER_PW, "static_ip": "192.168.240.9"}]
    r2 = hw_a.call("batch_create_vpn_users", {"users": bad}, vpn_server_id=sid)
    assert r2.status == 201
    causes = {u["name"]: u["cause"] for u in r2.json["invalid_users"]}
    assert causes == {f"{base}_1": "Duplicate user name.", f"{base}_4": "Password length invalid.",
                      f"{base}_5": "User group does not exist.", f"{base}_6": "Duplicate static IP."}, causes
    inv = {u["name"]: u for u in r2.json["invalid_users"]}
    assert inv[f"{base}_5"]["user_group_name"] == "no-such-group" and "password" not in inv[f"{base}_5"]
    assert hw_a.call("list_vpn_users", vpn_server_id=sid).json["total_count"] == before, "nothing created"
    ids = [listed[f"{base}_1"]["id"], listed[f"{base}_2"]["id"]]
    bd = hw_a.call("batch_delete_vpn_users", {"users": [{"id": i} for i in ids]}, vpn_server_id=sid)
    assert bd.status == 200 and bd.json["request_id"]
    names = [u["name"] for u in hw_a.call("list_vpn_users", vpn_server_id=sid, limit=200).json["users"]]
    assert f"{base}_1" not in names and f"{base}_2" not in names


def test_user_static_ip_must_be_inside_client_cidr(hw_a, srv):
    """static_ip must lie inside client_cidr and not be its gateway address (reference 4.2.3)."""
    e1 = hw_a.error("create_vpn_user", {"user": {"name": uname("sip").replace("-", "_"), "password": USER_PW,
                                                 "static_ip": "10.77.0.5"}}, vpn_server_id=srv["id"])
    e2 = hw_a.error("create_vpn_user", {"user": {"name": uname("sip").replace("-", "_"), "password": USER_PW,
                                                 "static_ip": "192.168.240.1"}}, vpn_server_id=srv["id"])
    assert (e1.status_code, e2.status_code) == (400, 400)


def test_users_limited_by_max_connection_number(hw_a):
    """Users per server ≤ the gateway's max_connection_number (VPN.1307, reference 4.2.3)."""
    g = create_p2c(hw_a, max_connection_number=2)
    s = create_server(hw_a, g["id"], client_cidr="192.168.230.0/26")
    create_user(hw_a, s["id"])
    create_user(hw_a, s["id"])
    hw_a.expect("create_vpn_user", "VPN.1307", 400, {"user": {"name": uname("x").replace("-", "_"),
                                                              "password": USER_PW}}, vpn_server_id=s["id"])


# ------------------------------------------------------------------------------------------------------------------
# groups and policies
# ------------------------------------------------------------------------------------------------------------------
def test_groups_membership(hw_a, srv):
    sid = srv["id"]
    r = hw_a.call("create_vpn_user_group", {"user_group": {"name": uname("grp"), "description": "d1"}},
                  vpn_server_id=sid)
    assert r.status == 201 and set(r.json["user_group"]) == {"id"}
    gid = r.json["user_group"]["id"]
    g = hw_a.call("show_vpn_user_group", vpn_server_id=sid, group_id=gid)
    assert g.status == 200
    assert (g.json["user_group"]["type"], g.json["user_group"]["user_number"], g.json["user_group"]["description"]) \
        == ("Custom", 0, "d1")
    u1, u2 = create_user(hw_a, sid), create_user(hw_a, sid)
    add = hw_a.call("add_vpn_users_to_group", {"users": [{"id": u1["id"]}, {"id": u2["id"]}]}, vpn_server_id=sid,
                    group_id=gid)
    assert add.status == 201 and add.json["request_id"]
    members = hw_a.call("list_vpn_users_in_group", vpn_server_id=sid, group_id=gid)
    assert members.status == 200
    assert sorted(m["id"] for m in members.json["users"]) == sorted([u1["id"], u2["id"]])
    assert set(members.json["users"][0]) == {"id", "name", "description"}
    assert members.json["total_count"] == 2
    assert hw_a.call("show_vpn_user_group", vpn_server_id=sid, group_id=gid).json["user_group"]["user_number"] == 2
    assert hw_a.call("show_vpn_user", vpn_server_id=sid, user_id=u1["id"]).json["user"]["user_group_id"] == gid
    rm = hw_a.call("remove_vpn_users_from_group", {"users": [{"id": u1["id"]}]}, vpn_server_id=sid, group_id=gid)
    assert rm.status == 201
    assert [m["id"] for m in hw_a.call("list_vpn_users_in_group", vpn_server_id=sid, group_id=gid).json["users"]] \
        == [u2["id"]]
    assert hw_a.call("show_vpn_user", vpn_server_id=sid, user_id=u1["id"]).json["user"]["user_group_id"] == ""
    up = hw_a.call("update_vpn_user_group", {"user_group": {"name": "renamed_grp", "description": "d2"}},
                   vpn_server_id=sid, group_id=gid)
    assert up.status == 200
    assert (up.json["user_group"]["name"], up.json["user_group"]["description"], up.json["user_group"]["user_number"]) \
        == ("renamed_grp", "d2", 1)
    assert hw_a.call("show_vpn_user", vpn_server_id=sid, user_id=u2["id"]).json["user"]["user_group_name"] == \
        "renamed_grp"
    # deleting a group with members is allowed; members become ungrouped (reference 4.2.3)
    d = hw_a.call("delete_vpn_user_group", vpn_server_id=sid, group_id=gid)
    assert d.status == 204
    hw_a.expect("show_vpn_user_group", "VPN.1301", 404, vpn_server_id=sid, group_id=gid)
    u2s = hw_a.call("show_vpn_user", vpn_server_id=sid, user_id=u2["id"]).json["user"]
    assert (u2s["user_group_id"], u2s["user_group_name"]) == ("", "")


def test_default_group_is_immutable(hw_a, srv):
    sid = srv["id"]
    groups = hw_a.call("list_vpn_user_groups", vpn_server_id=sid, limit=200).json["user_groups"]
    default = [x for x in groups if x["type"] == "Default"]
    assert len(default) == 1 and default[0]["name"] == "default"
    did = default[0]["id"]
    hw_a.expect("update_vpn_user_group", "VPN.1316", 400, {"user_group": {"description": "x"}}, vpn_server_id=sid,
                group_id=did)
    hw_a.expect("delete_vpn_user_group", "VPN.1316", 400, vpn_server_id=sid, group_id=did)
    # users can be put in it
    u = create_user(hw_a, sid)
    hw_a.call("add_vpn_users_to_group", {"users": [{"id": u["id"]}]}, vpn_server_id=sid, group_id=did)
    assert hw_a.call("show_vpn_user", vpn_server_id=sid, user_id=u["id"]).json["user"]["user_group_name"] == "default"


def test_access_policy_crud(hw_a, srv):
    sid = srv["id"]
    grp = create_group(hw_a, sid)
    grp2 = create_group(hw_a, sid)
    r = hw_a.call("create_vpn_access_policy", {"access_policy": {"name": "pol.one", "user_group_id": grp["id"],
                                                                 "description": "p", "dest_ip_cidrs":
                                                                     ["10.240.1.0/24", "10.240.2.0/24"]}},
                  vpn_server_id=sid)
    assert r.status == 201 and set(r.json["access_policy"]) == {"id"}
    pid = r.json["access_policy"]["id"]
    s = hw_a.call("show_vpn_access_policy", vpn_server_id=sid, policy_id=pid)
    assert s.status == 200
    p = s.json["access_policy"]
    assert (p["name"], p["type"], p["user_group_id"], p["user_group_name"], p["description"], p["dest_ip_cidrs"]) == \
        ("pol.one", "Custom", grp["id"], grp["name"], "p", ["10.240.1.0/24", "10.240.2.0/24"])
    lst = hw_a.call("list_vpn_access_policies", vpn_server_id=sid)
    assert lst.status == 200 and pid in [x["id"] for x in lst.json["access_policies"]]
    hw_a.expect("delete_vpn_user_group", "VPN.1313", 400, vpn_server_id=sid, group_id=grp["id"])
    up = hw_a.call("update_vpn_access_policy", {"access_policy": {"user_group_id": grp2["id"],
                                                                  "dest_ip_cidrs": ["10.240.3.0/24"]}},
                   vpn_server_id=sid, policy_id=pid)
    assert up.status == 200
    q = up.json["access_policy"]
    assert (q["name"], q["user_group_id"], q["user_group_name"], q["dest_ip_cidrs"], q["description"]) == \
        ("pol.one", grp2["id"], grp2["name"], ["10.240.3.0/24"], "p")
    d = hw_a.call("delete_vpn_access_policy", vpn_server_id=sid, policy_id=pid)
    assert d.status == 204
    hw_a.expect("show_vpn_access_policy", "VPN.1401", 400, vpn_server_id=sid, policy_id=pid)
    assert hw_a.call("delete_vpn_user_group", vpn_server_id=sid, group_id=grp["id"]).status == 204


# ------------------------------------------------------------------------------------------------------------------
# X-Client-Token idempotency on the seven P2C creates
# ------------------------------------------------------------------------------------------------------------------
def _count(hw, op, key, **params):
    return hw.call(op, limit=200, **params).json["total_count"]


@pytest.fixture(scope="module")
def idem_world(server):
    hw = hwlib.Hw(server.create_tenant(uname("hwidem")), server.port)
    g = create_p2c(hw)
    s = create_server(hw, g["id"], client_cidr="192.168.250.0/24", local_subnets=["10.250.0.0/16"])
    g2 = create_p2c(hw)
    s_cert = create_server(hw, g2["id"], client_auth_type="CERT",
                           client_ca_certificates=[{"name": "first", "content": CERTS.get("ca")}])
    grp = create_group(hw, s["id"])
    return hw, g, s, s_cert, grp


def idem_cases(hw, g, s, s_cert, grp):
    sid = s["id"]
    n = uname("idem").replace("-", "_")
    return {
        "create_p2c_vgw": (p2c_body(), {}, lambda: _count(hw, "list_p2c_vgws", "p2c_vpn_gateways"),
                           lambda j: j["p2c_vpn_gateway"]["id"]),
        "create_vpn_server": (hwlib.server_body(client_cidr="192.168.251.0/24"), None, None,
                              lambda j: j["vpn_server"]["id"]),
        "import_client_ca": ({"client_ca_certificate": {"name": "second", "content": CERTS.get("ca3")}},
                             {"vpn_server_id": s_cert["id"]},
                             lambda: len(wait_server(hw, s_cert["p2c_vgw_id"], s_cert["id"])["client_ca_certificates"]),
                             lambda j: j["client_ca_certificate"]["id"]),
        "create_vpn_user": ({"user": {"name": n + "_u", "password": USER_PW}}, {"vpn_server_id": sid},
                            lambda: _count(hw, "list_vpn_users", "users", vpn_server_id=sid),
                            lambda j: j["user"]["id"]),
        "batch_create_vpn_users": ({"users": [{"name": n + "_b1", "password": USER_PW},
                                              {"name": n + "_b2", "password": USER_PW}]}, {"vpn_server_id": sid},
                                   lambda: _count(hw, "list_vpn_users", "users", vpn_server_id=sid),
                                   lambda j: j["invalid_users"]),
        "create_vpn_user_group": ({"user_group": {"name": n + "_g"}}, {"vpn_server_id": sid},
                                  lambda: _count(hw, "list_vpn_user_groups", "user_groups", vpn_server_id=sid),
                                  lambda j: j["user_group"]["id"]),
        "create_vpn_access_policy": ({"access_policy": {"name": n + "_p", "user_group_id": grp["id"],
                                                        "dest_ip_cidrs": ["10.250.9.0/24"]}}, {"vpn_server_id": sid},
                                     lambda: _count(hw, "list_vpn_access_policies", "access_policies",
                                                    vpn_server_id=sid),
                                     lambda j: j["access_policy"]["id"]),
    }


IDEM_OPS = ["create_p2c_vgw", "create_vpn_server", "import_client_ca", "create_vpn_user", "batch_create_vpn_users",
            "create_vpn_user_group", "create_vpn_access_policy"]


def test_idempotency_table_covers_every_x_client_token_operation():
    import huaweicloudsdkvpn.v5 as vpn
    with_token = sorted(name for name, _m, _p in hwlib.dialect_ops()
                        if hasattr(vpn, hwlib.camel(name) + "Request")
                        and "x_client_token" in getattr(vpn, hwlib.camel(name) + "Request").openapi_types)
    assert with_token == sorted(IDEM_OPS)


@pytest.mark.parametrize("op", IDEM_OPS)
def test_x_client_token_idempotency(idem_world, op):
    hw, g, s, s_cert, grp = idem_world
    if op == "create_vpn_server":
        gw = create_p2c(hw)
        body, params = hwlib.server_body(client_cidr="192.168.252.0/24"), {"p2c_vgw_id": gw["id"]}
        count = lambda: hw.call("list_vpn_servers_by_vgw", p2c_vgw_id=gw["id"]).json["total_count"]  # noqa: E731
        ident = lambda j: j["vpn_server"]["id"]  # noqa: E731
    else:
        body, params, count, ident = idem_cases(hw, g, s, s_cert, grp)[op]
    token = str(uuid.uuid4())
    before = count()
    first = hw.call(op, body, x_client_token=token, **params)
    assert first.status == 201
    if op in ("create_vpn_server", "import_client_ca"):
        wait_p2c(hw, params.get("p2c_vgw_id") or s_cert["p2c_vgw_id"])
    second = hw.call(op, body, x_client_token=token, **params)
    assert second.status == 201
    assert ident(second.json) == ident(first.json), "same token + same body ⇒ the same answer"
    assert count() == before + (2 if op == "batch_create_vpn_users" else 1), "nothing created twice"
    # same token, different body ⇒ VPN.0031
    other = {**body}
    key = next(iter(other))
    changed = other[key]
    if isinstance(changed, dict):
        changed = dict(changed, name=(changed.get("name") or "x") + "z")
    else:
        changed = [dict(changed[0], name=changed[0]["name"] + "z")] + changed[1:]
    other[key] = changed
    hw.expect(op, "VPN.0031", 400, other, x_client_token=token, **params)
    assert count() == before + (2 if op == "batch_create_vpn_users" else 1)
