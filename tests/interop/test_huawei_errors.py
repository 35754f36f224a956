"""Huawei VPN v5 error codes, table-driven: one row per documented code the dialect produces (crates/huawei/src/
error.rs and the handlers), each asserting HTTP status, error_code, the error_msg text and the SDK exception's
request_id (read from X-Request-Id). Codes the dialect cannot produce are listed in UNREACHABLE with the reason, and
`test_every_code_has_a_row` fails when error.rs or a handler gains a code without a row here.

References: the reference/8 (appendix A.3), the reference, the reference
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import hwlib
from hwlib import (CERTS, USER_PW, create_cgw, create_conn, create_group, create_p2c, create_policy, create_server,
                   create_user, create_vgw, conn_body, eip, p2c_body, uid, uname, vgw_body, wait_p2c, wait_vgw)

SRC = Path(__file__).resolve().parents[2] / "crates" / "huawei" / "src"


@pytest.fixture(scope="module")
def w(server):
    hw = hwlib.Hw(server.create_tenant(uname("hwerr")), server.port)
    gw = create_vgw(hw)
    cgw = create_cgw(hw)
    conn = create_conn(hw, gw, cgw)
    wait_vgw(hw, gw["id"])
    p2c = create_p2c(hw)
    srv = create_server(hw, p2c["id"], client_cidr="192.168.200.0/24", local_subnets=["10.200.0.0/16"])
    p2c20 = create_p2c(hw, max_connection_number=20)
    user = create_user(hw, srv["id"], name="erruser1")
    user2 = create_user(hw, srv["id"], name="erruser2")
    grp = create_group(hw, srv["id"], name="errgroup")
    grp2 = create_group(hw, srv["id"], name="errgroup2")
    hw.call("add_vpn_users_to_group", {"users": [{"id": user2["id"]}]}, vpn_server_id=srv["id"], group_id=grp2["id"])
    pol = create_policy(hw, srv["id"], grp["id"])
    groups = hw.call("list_vpn_user_groups", vpn_server_id=srv["id"]).json["user_groups"]
    default = [g for g in groups if g["type"] == "Default"][0]
    return dict(hw=hw, gw=gw, cgw=cgw, conn=conn, p2c=p2c, srv=srv["id"], p2c20=p2c20, user=user, user2=user2,
                grp=grp, grp2=grp2, pol=pol, default=default)


def S(**kv):
    return hwlib.server_body(**kv)


def U(name=None, password=USER_PW, **kv):
    return {"user": dict({"name": name or uname("u").replace("-", "_"), "password": password}, **kv)}


def many_cidrs(n, second=0):
    return [f"10.{second}.{i}.0/24" for i in range(n)]


# (id, op, body(w) or None, params(w), status, code, message fragment)
ROWS = [
    # ---- VPN.0001: bad input ----------------------------------------------------------------------------------
    ("0001-name-charset", "create_vgw", lambda w: vgw_body(name="bad name!"), lambda w: {}, 400, "VPN.0001",
     "invalid request: name"),
    ("0001-name-length", "create_cgw", lambda w: hwlib.cgw_body(name="x" * 65), lambda w: {}, 400, "VPN.0001",
     "invalid request:"),
    ("0001-bad-cidr", "create_vgw", lambda w: vgw_body(local_subnets=["10.0.0.0/33"]), lambda w: {}, 400, "VPN.0001",
     "local_subnets"),
    ("0001-bad-flavor", "create_vgw", lambda w: vgw_body(flavor="Huge"), lambda w: {}, 400, "VPN.0001", "flavor"),
    ("0001-bad-ha-mode", "create_vgw", lambda w: vgw_body(ha_mode="solo"), lambda w: {}, 400, "VPN.0001", "ha_mode"),
    ("0001-bad-vpc-id", "create_vgw", lambda w: vgw_body(vpc_id="vpc-1"), lambda w: {}, 400, "VPN.0001", "vpc_id"),
    ("0001-bad-id-type", "create_cgw", lambda w: hwlib.cgw_body(id_type="mac"), lambda w: {}, 400, "VPN.0001",
     "id_type"),
    ("0001-bad-peer-ip", "create_cgw", lambda w: hwlib.cgw_body(ip="300.1.1.1"), lambda w: {}, 400, "VPN.0001",
     "id_value"),
    ("0001-bad-style", "create_vpn_connection",
     lambda w: {"vpn_connection": conn_body(w["gw"], w["cgw"], style="weird")}, lambda w: {}, 400, "VPN.0001", "style"),
    ("0001-weak-psk", "create_vpn_connection",
     lambda w: {"vpn_connection": conn_body(w["gw"], w["cgw"], psk="abcdefgh")}, lambda w: {}, 400, "VPN.0001", "psk"),
    ("0001-tunnel-address", "create_vpn_connection",
     lambda w: {"vpn_connection": conn_body(w["gw"], w["cgw"], style="bgp", tunnel_local_address="10.0.0.1/30",
                                            tunnel_peer_address="10.0.0.2/30")}, lambda w: {}, 400, "VPN.0001",
     "tunnel_local_address"),
    ("0001-ike-enum", "update_vpn_connection", lambda w: {"vpn_connection": {"ikepolicy": {"dh_group": "group99"}}},
     lambda w: {"vpn_connection_id": w["conn"]["id"]}, 400, "VPN.0001", "ikepolicy.dh_group"),
    ("0001-ipsec-lifetime", "update_vpn_connection",
     lambda w: {"vpn_connection": {"ipsecpolicy": {"lifetime_seconds": 10}}},
     lambda w: {"vpn_connection_id": w["conn"]["id"]}, 400, "VPN.0001", "ipsecpolicy.lifetime_seconds"),
    ("0001-tag-key", "batch_create_resource_tags", lambda w: {"tags": [{"key": "bad#key", "value": "v"}]},
     lambda w: {"resource_type": "vpn-gateway", "resource_id": w["gw"]["id"]}, 400, "VPN.0001", "tags.key"),
    ("0001-tag-resource-type", "show_resource_tags", None,
     lambda w: {"resource_type": "vpc", "resource_id": w["gw"]["id"]}, 400, "VPN.0001", "resource_type"),
    ("0001-upgrade-action", "upgrade_vpn_gateway", lambda w: {"action": "jump"}, lambda w: {"vgw_id": w["gw"]["id"]},
     400, "VPN.0001", "action"),
    ("0001-same-flavor", "update_postpaid_vgw_specification", lambda w: {"vpn_gateway": {"flavor": "Professional1"}},
     lambda w: {"vgw_id": w["gw"]["id"]}, 400, "VPN.0001", "flavor"),
    ("0001-p2c-flavor", "create_p2c_vgw", lambda w: p2c_body(flavor="Professional2"), lambda w: {}, 400, "VPN.0001",
     "flavor"),
    ("0001-limit", "list_cgws", None, lambda w: {"limit": 5000}, 400, "VPN.0001", "limit"),
    ("0001-dns-servers", "create_vpn_server", lambda w: S(dns_servers=["1.1.1.1", "8.8.8.8", "9.9.9.9"]),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.0001", "dns_servers"),
    ("0001-ssl-port", "create_vpn_server", lambda w: S(ssl_options={"port": 8443}),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.0001", "port"),
    ("0001-os-type", "export_client_config", lambda w: {"os_type": "Plan9"}, lambda w: {"vpn_server_id": w["srv"]},
     400, "VPN.0001", "os_type"),
    ("0001-static-ip", "create_vpn_user", lambda w: U(static_ip="192.168.200.6"), lambda w: {"vpn_server_id": w["srv"]},
     400, "VPN.0001", "static_ip"),
    ("0001-monitor-twice", "create_connection_monitor", None, None, 400, "VPN.0001", None),  # see test below
    # ---- VPN.0004: not found -----------------------------------------------------------------------------------
    ("0004-vgw", "show_vgw", None, lambda w: {"vgw_id": uid()}, 404, "VPN.0004", "resource not found"),
    ("0004-p2c-as-vgw", "show_vgw", None, lambda w: {"vgw_id": w["p2c"]["id"]}, 404, "VPN.0004", "resource not found"),
    ("0004-cgw", "update_cgw", lambda w: {"customer_gateway": {"name": "x1"}},
     lambda w: {"customer_gateway_id": uid()}, 404, "VPN.0004", "resource not found"),
    ("0004-connection", "show_vpn_connection", None, lambda w: {"vpn_connection_id": uid()}, 404, "VPN.0004",
     "resource not found"),
    ("0004-connection-cgw", "create_vpn_connection",
     lambda w: {"vpn_connection": conn_body(w["gw"], {"id": uid()})}, lambda w: {}, 404, "VPN.0004", None),
    ("0004-monitor", "delete_connection_monitor", None, lambda w: {"connection_monitor_id": uid()}, 404, "VPN.0004",
     "resource not found"),
    ("0004-job", "delete_vpn_gateway_job", None, lambda w: {"job_id": uid()}, 404, "VPN.0004", "resource not found"),
    ("0004-tags", "show_resource_tags", None, lambda w: {"resource_type": "customer-gateway", "resource_id": uid()},
     404, "VPN.0004", "resource not found"),
    ("0004-routing-table", "show_vpn_gateway_routing_table", None, lambda w: {"vgw_id": uid()}, 404, "VPN.0004", None),
    ("0004-gw-certificate", "show_vpn_gateway_certificate", None, lambda w: {"vgw_id": w["gw"]["id"]}, 404,
     "VPN.0004", None),
    # ---- gateways and EIPs ---------------------------------------------------------------------------------------
    ("0504-p2c-connections", "create_p2c_vgw", lambda w: p2c_body(max_connection_number=501), lambda w: {}, 400,
     "VPN.0504", "exceeds the upper limit"),
    ("0509-p2c", "show_p2c_vgw", None, lambda w: {"p2c_vgw_id": uid()}, 404, "VPN.0509", "The gateway does not exist."),
    ("0509-s2c-as-p2c", "list_vpn_servers_by_vgw", None, lambda w: {"p2c_vgw_id": w["gw"]["id"]}, 404, "VPN.0509",
     None),
    ("0512-vgw-eip", "update_vgw", lambda w: {"vpn_gateway": {"eip_id_1": uid()}}, lambda w: {"vgw_id": w["gw"]["id"]},
     400, "VPN.0512", "already has an EIP bound"),
    ("0512-p2c-eip", "update_p2c_vgw", lambda w: {"p2c_vpn_gateway": {"eip_id": uid()}},
     lambda w: {"p2c_vgw_id": w["p2c"]["id"]}, 400, "VPN.0512", None),
    ("0514-one-az", "create_vgw", lambda w: vgw_body(availability_zone_ids=["cn-north-4a"]), lambda w: {}, 400,
     "VPN.0514", "Two AZs must be specified."),
    ("0515-dup-az", "create_vgw", lambda w: vgw_body(availability_zone_ids=["cn-north-4a", "cn-north-4a"]),
     lambda w: {}, 400, "VPN.0515", "Duplicate AZs."),
    ("0515-p2c-dup-az", "create_p2c_vgw", lambda w: p2c_body(availability_zone_ids=["cn-north-4b", "cn-north-4b"]),
     lambda w: {}, 400, "VPN.0515", None),
    ("0550-bandwidth", "create_vgw", lambda w: vgw_body(eip1=eip(301), eip2=eip(100)), lambda w: {}, 400, "VPN.0550",
     "exceeds the upper limit defined by the specification"),
    ("0550-basic", "create_vgw", lambda w: vgw_body(flavor="Basic", eip1=eip(100), eip2=eip(101)), lambda w: {}, 400,
     "VPN.0550", None),
    ("0550-p2c", "create_p2c_vgw", lambda w: p2c_body(eip=eip(301)), lambda w: {}, 400, "VPN.0550", None),
    ("0550-respec", "update_postpaid_vgw_specification", lambda w: {"vpn_gateway": {"flavor": "Basic"}},
     lambda w: {"vgw_id": w["big"]["id"]}, 400, "VPN.0550", None),
    ("0551-eip-id", "create_vgw", lambda w: vgw_body(eip1={"id": "0f6d1415-0000-4000-8000-000000000001"}),
     lambda w: {}, 400, "VPN.0551", "EIP 0f6d1415-0000-4000-8000-000000000001 is not found."),
    ("0551-p2c-eip-id", "create_p2c_vgw", lambda w: p2c_body(eip={"id": uid()}), lambda w: {}, 400, "VPN.0551", None),
    ("0556-eip-type", "create_vgw", lambda w: vgw_body(eip2=eip(100, type="9_bgp")), lambda w: {}, 400, "VPN.0556",
     "EIP type 9_bgp is invalid."),
    ("0558-no-eip2", "create_vgw", lambda w: vgw_body(eip2=None), lambda w: {}, 400, "VPN.0558",
     "Incomplete EIP parameters."),
    ("0558-no-type", "create_p2c_vgw", lambda w: p2c_body(eip={"bandwidth_size": 10}), lambda w: {}, 400, "VPN.0558",
     None),
    ("0559-conflict", "create_vgw", lambda w: vgw_body(eip1={"id": uid(), "type": "5_bgp"}), lambda w: {}, 400,
     "VPN.0559", "EIP parameter conflict."),
    ("0563-session", "delete_p2c_vgw_connection", None, lambda w: {"p2c_vgw_id": w["p2c"]["id"], "connection_id": uid()},
     404, "VPN.0563", "The connection does not exists."),
    ("0031-upgrade-twice", "upgrade_vpn_gateway", None, None, 400, "VPN.0031", None),  # see test below
    # ---- VPN servers -------------------------------------------------------------------------------------------
    ("1100-no-server-cert", "create_vpn_server", lambda w: S(server_certificate=None),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1100", "The server certificate cannot be empty."),
    ("1101-cert-no-ca", "create_vpn_server", lambda w: S(client_auth_type="CERT"),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1101", "At least one client CA certificate is required."),
    ("1102-second-server", "create_vpn_server", lambda w: S(), lambda w: {"p2c_vgw_id": w["p2c"]["id"]}, 400,
     "VPN.1102", None),
    ("1103-client-cidr", "create_vpn_server", lambda w: S(client_cidr="nope"),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1103", "is invalid"),
    ("1103-local-subnet", "create_vpn_server", lambda w: S(local_subnets=["10.1.0.0/40"]),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1103", None),
    ("1104-client-cidr", "create_vpn_server", lambda w: S(client_cidr="127.0.0.0/24"),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1104", "is unavailable"),
    ("1104-local-subnet", "create_vpn_server", lambda w: S(local_subnets=["224.0.0.0/24"]),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1104", None),
    ("1105-too-many-locals", "create_vpn_server", lambda w: S(local_subnets=many_cidrs(21)),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1105", None),
    ("1106-dup-local", "create_vpn_server", lambda w: S(local_subnets=["10.5.0.0/16", "10.5.0.0/16"]),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1106", "Duplicate local subnet"),
    ("1107-mask", "create_vpn_server", lambda w: S(client_cidr="192.168.0.0/27"),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1107", "16 to 26"),
    ("1108-pool-small", "create_vpn_server", lambda w: S(client_cidr="192.168.0.0/26"),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1108", None),
    ("1111-too-many-cas", "create_vpn_server",
     lambda w: S(client_auth_type="CERT", client_ca_certificates=[{"content": CERTS.get("ca")}] * 11),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1111", None),
    ("1112-ccm-cert", "create_vpn_server", lambda w: S(server_certificate={"id": "scs1717051012106", "source": "CCM"}),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1112", "Server certificate scs1717051012106 is not found."),
    ("1115-client-ca", "show_client_ca", None, lambda w: {"vpn_server_id": w["srv"], "client_ca_certificate_id": uid()},
     404, "VPN.1115", "does not exist"),
    ("1116-server", "update_vpn_server", lambda w: {"vpn_server": {"dns_servers": []}},
     lambda w: {"vpn_server_id": uid()}, 404, "VPN.1116", "The server does not exist."),
    ("1116-server-users", "list_vpn_users", None, lambda w: {"vpn_server_id": uid()}, 404, "VPN.1116", None),
    ("1118-no-locals", "create_vpn_server", lambda w: S(local_subnets=[]),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1118", "cannot be empty"),
    ("1119-overlap", "create_vpn_server", lambda w: S(client_cidr="10.9.0.0/24", local_subnets=["10.9.0.0/16"]),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.1119", "conflicts with the local CIDR block"),
    ("1122-users-on-switch", "update_vpn_server", lambda w: {"vpn_server": {"client_auth_type": "CERT"}},
     lambda w: {"vpn_server_id": w["srv"]}, 400, "VPN.1122", "There are users on the server"),
    # ---- users, groups ------------------------------------------------------------------------------------------
    ("1300-dup-group", "create_vpn_user_group", lambda w: {"user_group": {"name": "errgroup"}},
     lambda w: {"vpn_server_id": w["srv"]}, 400, "VPN.1300", "The user group name already exists."),
    ("1301-group", "show_vpn_user_group", None, lambda w: {"vpn_server_id": w["srv"], "group_id": uid()}, 404,
     "VPN.1301", "The user group does not exist."),
    ("1301-user-group-id", "create_vpn_user", lambda w: U(user_group_id=uid()), lambda w: {"vpn_server_id": w["srv"]},
     404, "VPN.1301", None),
    ("1301-policy-group", "create_vpn_access_policy",
     lambda w: {"access_policy": {"name": "p1", "user_group_id": uid(), "dest_ip_cidrs": ["10.1.0.0/16"]}},
     lambda w: {"vpn_server_id": w["srv"]}, 404, "VPN.1301", None),
    ("1302-dup-user", "create_vpn_user", lambda w: U(name="erruser1"), lambda w: {"vpn_server_id": w["srv"]}, 400,
     "VPN.1302", "The username already exists."),
    ("1303-user", "show_vpn_user", None, lambda w: {"vpn_server_id": w["srv"], "user_id": uid()}, 404, "VPN.1303",
     "The user does not exist."),
    ("1303-add-unknown", "add_vpn_users_to_group", lambda w: {"users": [{"id": uid()}]},
     lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]["id"]}, 404, "VPN.1303", None),
    ("1304-other-group", "add_vpn_users_to_group", lambda w: {"users": [{"id": w["user2"]["id"]}]},
     lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]["id"]}, 400, "VPN.1304", "erruser2"),
    ("1305-not-member", "remove_vpn_users_from_group", lambda w: {"users": [{"id": w["user"]["id"]}]},
     lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]["id"]}, 400, "VPN.1305",
     "is not in the current user group"),
    ("1308-complexity", "create_vpn_user", lambda w: U(password="qwerasdf"), lambda w: {"vpn_server_id": w["srv"]},
     400, "VPN.1308", "complexity"),
    ("1308-length", "create_vpn_user", lambda w: U(password="Qw1"), lambda w: {"vpn_server_id": w["srv"]}, 400,
     "VPN.1308", None),
    ("1309-is-name", "create_vpn_user", lambda w: U(name="Alice123", password="321ecilA"),
     lambda w: {"vpn_server_id": w["srv"]}, 400, "VPN.1309", "reverse of the username"),
    ("1310-chars", "create_vpn_user", lambda w: U(password="Qwerasdf\u00e9"), lambda w: {"vpn_server_id": w["srv"]},
     400, "VPN.1310", "invalid characters"),
    ("1311-reused", "reset_vpn_user_password", lambda w: {"new_password": USER_PW},
     lambda w: {"vpn_server_id": w["srv"], "user_id": w["user"]["id"]}, 400, "VPN.1311", "cannot be the same"),
    ("1312-old-password", "update_vpn_user_password", lambda w: {"old_password": "Wrong-Pass1",
                                                                 "new_password": "Brand-New1"},
     lambda w: {"vpn_server_id": w["srv"], "user_id": w["user"]["id"]}, 400, "VPN.1312",
     "The old password is incorrect."),
    ("1313-group-in-policy", "delete_vpn_user_group", None,
     lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]["id"]}, 400, "VPN.1313", "access policy"),
    ("1315-dup-ids", "batch_delete_vpn_users", lambda w: {"users": [{"id": w["user"]["id"]}, {"id": w["user"]["id"]}]},
     lambda w: {"vpn_server_id": w["srv"]}, 400, "VPN.1315", "Duplicate user"),
    ("1316-default-update", "update_vpn_user_group", lambda w: {"user_group": {"name": "notdefault"}},
     lambda w: {"vpn_server_id": w["srv"], "group_id": w["default"]["id"]}, 400, "VPN.1316",
     "default user group"),
    ("1317-reserved", "create_vpn_user", lambda w: U(name="Administrator"), lambda w: {"vpn_server_id": w["srv"]},
     400, "VPN.1317", "The username is unavailable."),
    ("1317-l3sw", "create_vpn_user", lambda w: U(name="L3SW_x1"), lambda w: {"vpn_server_id": w["srv"]}, 400,
     "VPN.1317", None),
    ("1318-empty-batch", "batch_create_vpn_users", lambda w: {"users": []}, lambda w: {"vpn_server_id": w["srv"]},
     400, "VPN.1318", "User list is empty."),
    ("1318-empty-add", "add_vpn_users_to_group", lambda w: {"users": []},
     lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]["id"]}, 400, "VPN.1318", None),
    # ---- access policies ---------------------------------------------------------------------------------------
    ("1401-policy", "show_vpn_access_policy", None, lambda w: {"vpn_server_id": w["srv"], "policy_id": uid()}, 400,
     "VPN.1401", "The access policy does not exist."),
    ("1402-too-many", "create_vpn_access_policy",
     lambda w: {"access_policy": {"name": "p2", "user_group_id": w["grp"]["id"], "dest_ip_cidrs": many_cidrs(11, 3)}},
     lambda w: {"vpn_server_id": w["srv"]}, 400, "VPN.1402", None),
    ("1403-invalid", "create_vpn_access_policy",
     lambda w: {"access_policy": {"name": "p3", "user_group_id": w["grp"]["id"], "dest_ip_cidrs": ["10.1.1.1/99"]}},
     lambda w: {"vpn_server_id": w["srv"]}, 400, "VPN.1403", "is invalid"),
    ("1404-dup", "update_vpn_access_policy",
     lambda w: {"access_policy": {"dest_ip_cidrs": ["10.8.0.0/16", "10.8.0.0/16"]}},
     lambda w: {"vpn_server_id": w["srv"], "policy_id": w["pol"]["id"]}, 400, "VPN.1404",
     "Duplicate destination CIDR block"),
    ("1405-unavailable", "create_vpn_access_policy",
     lambda w: {"access_policy": {"name": "p4", "user_group_id": w["grp"]["id"], "dest_ip_cidrs": ["127.0.0.0/8"]}},
     lambda w: {"vpn_server_id": w["srv"]}, 400, "VPN.1405", "is unavailable"),
    # ---- certificates (client CA check) -------------------------------------------------------------------------
    ("0070-rsa1024", "check_client_ca_certificate", lambda w: {"client_ca_certificate": {"content": CERTS.get("rsa1024")}},
     lambda w: {}, 400, "VPN.0070", "key algorithm"),
    ("0071-sha1", "check_client_ca_certificate", lambda w: {"client_ca_certificate": {"content": CERTS.get("sha1")}},
     lambda w: {}, 400, "VPN.0071", "signature algorithm"),
    ("0072-expired", "check_client_ca_certificate",
     lambda w: {"client_ca_certificate": {"name": "old", "content": CERTS.get("expired")}}, lambda w: {}, 400,
     "VPN.0072", "Certificate old has expired."),
    ("0073-future", "check_client_ca_certificate", lambda w: {"client_ca_certificate": {"content": CERTS.get("future")}},
     lambda w: {}, 400, "VPN.0073", "has not taken effect"),
    ("0074-format", "check_client_ca_certificate", lambda w: {"client_ca_certificate": {"content": "not a pem"}},
     lambda w: {}, 400, "VPN.0074", "format of the certificate"),
    ("0075-content", "check_client_ca_certificate",
     lambda w: {"client_ca_certificate": {"content": "-----BEGIN CERTIFICATE-----\nTUlJQm9ndXM=\n"
                                                    "-----END CERTIFICATE-----\n"}}, lambda w: {}, 400, "VPN.0075",
     "content of the certificate"),
    ("0076-not-ca", "check_client_ca_certificate", lambda w: {"client_ca_certificate": {"content": CERTS.get("leaf")}},
     lambda w: {}, 400, "VPN.0076", "is not a CA certificate"),
    ("0076-cgw-ca", "create_cgw", lambda w: hwlib.cgw_body(ca_certificate={"content": CERTS.get("leaf")}),
     lambda w: {}, 400, "VPN.0076", None),
    ("0077-dup-ca", "create_vpn_server",
     lambda w: S(client_auth_type="CERT", client_ca_certificates=[{"name": "a", "content": CERTS.get("ca")},
                                                                  {"name": "b", "content": CERTS.get("ca")}]),
     lambda w: {"p2c_vgw_id": w["p2c20"]["id"]}, 400, "VPN.0077", "Duplicate certificate"),
]

TABLE = [r for r in ROWS if r[2] is not None or r[3] is not None]

#: Codes in the dialect's sources that no request can produce here, and why.
UNREACHABLE = {
    "VPN.0002": "internal error: no request produces one on purpose",
    "VPN.0502": "the simulated VPC never runs out of addresses",
    "VPN.0505": "the simulated VPC never runs out of address blocks",
    "VPN.1121": "every gateway keeps its EIP for life (no unbind API)",
    "VPN.1406": "no Default access policy exists (none is auto-created)",
}


def source_codes():
    text = "".join(p.read_text() for p in list(SRC.glob("*.rs")) + list(SRC.glob("handlers/*.rs")))
    return set(re.findall(r'"(VPN\.\d{4})"', text))


#: codes exercised by dedicated tests elsewhere (idempotency, lifecycle, quota, auth; VPN.0560: test_races.py)
ELSEWHERE = {"VPN.0003", "VPN.0031", "VPN.0506", "VPN.0507", "VPN.0508", "VPN.0513", "VPN.0560", "VPN.1113",
             "VPN.1114", "VPN.1123", "VPN.1124", "VPN.1125", "VPN.1306", "VPN.1307", "VPN.1400"}


def test_every_code_has_a_row():
    covered = {r[5] for r in ROWS} | set(UNREACHABLE) | ELSEWHERE
    missing = sorted(source_codes() - covered)
    assert not missing, f"codes in crates/huawei/src without a row: {missing}"


@pytest.fixture(scope="module")
def big(w):
    w["big"] = create_vgw(w["hw"], eip1=eip(300), eip2=eip(300))
    return w


@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_error_code(big, row):
    rid, op, body, params, status, code, msg = row
    w = big
    e = w["hw"].expect(op, code, status, body(w) if body else None, msg=msg, **params(w))
    assert re.fullmatch(r"[0-9a-f]{32}", e.request_id), e.request_id


def test_0001_monitor_twice(w):
    hw = w["hw"]
    hw.call("create_connection_monitor", {"connection_monitor": {"vpn_connection_id": w["conn"]["id"]}})
    hw.expect("create_connection_monitor", "VPN.0001", 400, {"connection_monitor": {"vpn_connection_id":
                                                                                   w["conn"]["id"]}})


def test_0031_upgrade_started_twice(w):
    g = create_vgw(w["hw"])
    w["hw"].call("upgrade_vpn_gateway", {"action": "start"}, vgw_id=g["id"])
    w["hw"].expect("upgrade_vpn_gateway", "VPN.0031", 400, {"action": "start"}, msg="Repeated operation.", vgw_id=g["id"])


def test_1306_group_limit(server):
    hw = hwlib.Hw(server.create_tenant(uname("hwgl")), server.port)
    s = create_server(hw, create_p2c(hw)["id"])
    for i in range(50):
        hw.call("create_vpn_user_group", {"user_group": {"name": f"g{i}"}}, vpn_server_id=s["id"])
    hw.expect("create_vpn_user_group", "VPN.1306", 400, {"user_group": {"name": "g50"}}, msg="(50)",
              vpn_server_id=s["id"])


def test_1400_policy_limit(server):
    hw = hwlib.Hw(server.create_tenant(uname("hwpl")), server.port)
    s = create_server(hw, create_p2c(hw)["id"])
    g = create_group(hw, s["id"])
    for i in range(100):
        hw.call("create_vpn_access_policy", {"access_policy": {"name": f"p{i}", "user_group_id": g["id"],
                                                               "dest_ip_cidrs": ["10.1.0.0/16"]}},
                vpn_server_id=s["id"])
    hw.expect("create_vpn_access_policy", "VPN.1400", 400, {"access_policy": {"name": "p100", "user_group_id": g["id"],
                                                                              "dest_ip_cidrs": ["10.1.0.0/16"]}},
              msg="(100)", vpn_server_id=s["id"])


def test_1123_1124_1125_auth_switch(server):
    hw = hwlib.Hw(server.create_tenant(uname("hwsw")), server.port)
    p = create_p2c(hw)
    s = create_server(hw, p["id"])
    g = create_group(hw, s["id"])
    hwlib.wait_server(hw, p["id"], s["id"])
    wait_p2c(hw, p["id"])
    hw.expect("update_vpn_server", "VPN.1123", 400, {"vpn_server": {"client_auth_type": "CERT"}},
              msg="There are user groups on the server", vpn_server_id=s["id"])
    hw.call("delete_vpn_user_group", vpn_server_id=s["id"], group_id=g["id"])
    hwlib.wait_server(hw, p["id"], s["id"])
    wait_p2c(hw, p["id"])
    default = hw.call("list_vpn_user_groups", vpn_server_id=s["id"]).json["user_groups"][0]
    pol = create_policy(hw, s["id"], default["id"])
    hwlib.wait_server(hw, p["id"], s["id"])
    wait_p2c(hw, p["id"])
    hw.expect("update_vpn_server", "VPN.1124", 400, {"vpn_server": {"client_auth_type": "CERT"}},
              msg="There are access policies on the server", vpn_server_id=s["id"])
    hw.call("delete_vpn_access_policy", vpn_server_id=s["id"], policy_id=pol["id"])
    p2 = create_p2c(hw)
    s2 = create_server(hw, p2["id"], client_auth_type="CERT", client_ca_certificates=[{"content": CERTS.get("ca")}])
    hw.expect("update_vpn_server", "VPN.1125", 400, {"vpn_server": {"client_auth_type": "LOCAL_PASSWORD"}},
              msg="There are client CA certificates on the server", vpn_server_id=s2["id"])


def test_cert_server_can_switch_back_to_password(server):
    """Digest C 6.4 (a): VPN.1125 blocks CERT→LOCAL_PASSWORD while CAs exist, "then deleting the last CA of a CERT
    server must be allowed" — otherwise a CERT server can never become a password server."""
    hw = hwlib.Hw(server.create_tenant(uname("hwsb")), server.port)
    p = create_p2c(hw)
    s = create_server(hw, p["id"], client_auth_type="CERT", client_ca_certificates=[{"content": CERTS.get("ca")}])
    ca = hwlib.wait_server(hw, p["id"], s["id"])["client_ca_certificates"][0]
    hw.call("delete_client_ca", vpn_server_id=s["id"], client_ca_certificate_id=ca["id"])
    wait_p2c(hw, p["id"])
    hw.call("update_vpn_server", {"vpn_server": {"client_auth_type": "LOCAL_PASSWORD"}}, vpn_server_id=s["id"])


# ------------------------------------------------------------------------------------------------------------------
# states (aux server: slow data plane, 2 gateways per region)
# ------------------------------------------------------------------------------------------------------------------
def err_or_ok(hw, op, body=None, **params):
    """(status, code, msg) of one call, success or not."""
    req = hw.request(op, body, **params)
    try:
        r = getattr(hw.client, op)(req)
        return (r.status_code, None, None)
    except hwlib.sdk_exc.ServiceResponseException as e:
        return (e.status_code, e.error_code, e.error_msg)


def test_0003_gateway_not_ready_while_creating(hw_aux):
    hw = hw_aux()
    gid = hw.call("create_vgw", vgw_body()).json["vpn_gateway"]["id"]
    assert hw.call("show_vgw", vgw_id=gid).json["vpn_gateway"]["status"] == "PENDING_CREATE"
    msg = f"resource (type=GATEWAY, ID={gid}) is not ready, currently CREATING"
    got = {
        "update_vgw": err_or_ok(hw, "update_vgw", {"vpn_gateway": {"name": "later"}}, vgw_id=gid),
        "update_postpaid_vgw_specification": err_or_ok(hw, "update_postpaid_vgw_specification",
                                                       {"vpn_gateway": {"flavor": "Professional2"}}, vgw_id=gid),
        "delete_vgw": err_or_ok(hw, "delete_vgw", vgw_id=gid),
    }
    assert hw.call("show_vgw", vgw_id=gid).json["vpn_gateway"]["status"] == "PENDING_CREATE", "still creating"
    want = {k: (403, "VPN.0003", msg) for k in got}
    assert got == want
    wait_vgw(hw, gid)


def test_0513_gateway_quota(hw_aux):
    hw = hw_aux()
    create_vgw(hw, wait=False)
    create_p2c(hw, wait=False)
    hw.expect("create_vgw", "VPN.0513", 400, vgw_body(), msg="Insufficient gateway quota.")
    hw.expect("create_p2c_vgw", "VPN.0513", 400, p2c_body())


def test_0506_0507_0508_p2c_busy(hw_aux):
    hw = hw_aux()
    gid = hw.call("create_p2c_vgw", p2c_body()).json["p2c_vpn_gateway"]["id"]
    creating = {
        "update_p2c_vgw": err_or_ok(hw, "update_p2c_vgw", {"p2c_vpn_gateway": {"name": "x1"}}, p2c_vgw_id=gid),
        "delete_p2c_vgw": err_or_ok(hw, "delete_p2c_vgw", p2c_vgw_id=gid),
    }
    wait_p2c(hw, gid)
    hw.call("create_vpn_server", S(), p2c_vgw_id=gid)
    assert hw.call("show_p2c_vgw", p2c_vgw_id=gid).json["p2c_vpn_gateway"]["status"] == "PENDING_UPDATE"
    updating = err_or_ok(hw, "update_p2c_vgw", {"p2c_vpn_gateway": {"name": "x2"}}, p2c_vgw_id=gid)
    wait_p2c(hw, gid)
    hw.call("delete_p2c_vgw", p2c_vgw_id=gid)
    deleting = err_or_ok(hw, "update_p2c_vgw", {"p2c_vpn_gateway": {"name": "x3"}}, p2c_vgw_id=gid)
    busy = "The gateway is being created, please try again later."
    assert (creating, updating, deleting) == (
        {"update_p2c_vgw": (400, "VPN.0506", busy), "delete_p2c_vgw": (400, "VPN.0506", busy)},
        (400, "VPN.0507", "The gateway is being updated, please try again later."),
        (400, "VPN.0508", "The gateway is being deleted."))


def test_1113_1114_server_busy(hw_aux):
    hw = hw_aux()
    g = create_p2c(hw)
    sid = hw.call("create_vpn_server", S(), p2c_vgw_id=g["id"]).json["vpn_server"]["id"]
    hw.expect("update_vpn_server", "VPN.1113", 400, {"vpn_server": {"dns_servers": ["10.0.0.2"]}},
              msg="The server is being created", vpn_server_id=sid)
    hwlib.wait_server(hw, g["id"], sid)
    wait_p2c(hw, g["id"])
    hw.call("update_vpn_server", {"vpn_server": {"dns_servers": ["10.0.0.2"]}}, vpn_server_id=sid)
    hw.expect("update_vpn_server", "VPN.1114", 400, {"vpn_server": {"dns_servers": ["10.0.0.3"]}},
              msg="The server is being updated", vpn_server_id=sid)
