"""Tenant isolation for the Huawei dialect, table-driven: every operation of crates/huawei/src/ops.rs, tried by tenant
B (same region) and by tenant A in its other project (cn-south-1) on tenant A's cn-north-4 resources, answers
not-found (or lists none of them), and A's resources are unchanged afterwards. An operation added to ops.rs without a
row here fails `test_every_operation_has_a_row`.

Also: a path project that is not the caller's ⇒ 403, X-Project-Id not matching the path ⇒ 403, a token scoped to
cn-north-4 used on the cn-south-1 project ⇒ 403.
"""
from __future__ import annotations

import subprocess

import pytest

import hwlib
from hwlib import (CERTS, USER_PW, assert_raw_error, create_cgw, create_conn, create_group, create_p2c,
                   create_policy, create_server, create_user, create_vgw, eip, uid, uname, wait_p2c, wait_vgw)


@pytest.fixture(scope="module")
def world(server):
    ta = server.create_tenant(uname("isoA"))
    tb = server.create_tenant(uname("isoB"))
    a = hwlib.Hw(ta, server.port)
    gw = create_vgw(a, name="iso-gw", tags=[{"key": "isokey", "value": "a"}])
    cgw = create_cgw(a, name="iso-cgw")
    conn = create_conn(a, gw, cgw, name="iso-conn")
    wait_vgw(a, gw["id"])
    mon = a.call("create_connection_monitor", {"connection_monitor": {"vpn_connection_id": conn["id"]}}).json[
        "connection_monitor"]
    job = a.call("upgrade_vpn_gateway", {"action": "start"}, vgw_id=gw["id"]).json["job_id"]
    gm = create_vgw(a, flavor="GM", eip1=eip(200), eip2=eip(200))
    try:
        bundle = hwlib.gm_bundle()
        cert = a.call("create_vgw_certificate", {"certificate": bundle}, vgw_id=gm["id"]).json["certificate"]["id"]
    except (subprocess.CalledProcessError, FileNotFoundError):
        cert = uid()
    p2c = create_p2c(a, name="iso-p2c")
    srv = create_server(a, p2c["id"])
    user = create_user(a, srv["id"], name="isouser")
    grp = create_group(a, srv["id"], name="isogroup")
    pol = create_policy(a, srv["id"], grp["id"], name="isopolicy")
    p2c_cert = create_p2c(a)
    srv_cert = create_server(a, p2c_cert["id"], client_auth_type="CERT",
                             client_ca_certificates=[{"name": "isoca", "content": CERTS.get("ca")}])
    ca = hwlib.wait_server(a, p2c_cert["id"], srv_cert["id"])["client_ca_certificates"][0]["id"]
    p2c_job = a.call("upgrade_p2c_vpn_gateway", {"action": "start"}, p2c_vgw_id=p2c_cert["id"]).json["job_id"]
    subprocess.run([str(server.bin), "user", "create", "--tenant", ta["tenant_id"], "--name", "isoiam", "--password",
                    "Iso-Pass123", "--data-dir", str(server.data_dir), "--config", str(server.config_path)], check=True, capture_output=True)
    w = dict(gw=gw["id"], eip=gw["eip1"]["id"], cgw=cgw["id"], cgw_ip=cgw["id_value"], conn=conn["id"], mon=mon["id"],
             job=job, gm=gm["id"], cert=cert, p2c=p2c["id"], srv=srv["id"], user=user["id"], grp=grp["id"],
             pol=pol["id"], p2c_cert=p2c_cert["id"], srv_cert=srv_cert["id"], ca=ca, p2c_job=p2c_job,
             tenant_a=ta, tenant_b=tb)
    w["snapshot"] = snapshot(a, w)
    return a, hwlib.Hw(tb, server.port), hwlib.Hw(ta, server.port, hwlib.OTHER), w


def snapshot(a, w):
    """What A's resources look like (compared before and after the matrix)."""
    def strip(d, *keys):
        return {k: v for k, v in d.items() if k not in keys}
    s = {
        "gw": strip(a.call("show_vgw", vgw_id=w["gw"]).json["vpn_gateway"], "updated_at"),
        "cgw": a.call("show_cgw", customer_gateway_id=w["cgw"]).json["customer_gateway"],
        "conn": strip(a.call("show_vpn_connection", vpn_connection_id=w["conn"]).json["vpn_connection"], "status"),
        "mon": a.call("show_connection_monitor", connection_monitor_id=w["mon"]).json["connection_monitor"],
        "p2c": strip(a.call("show_p2c_vgw", p2c_vgw_id=w["p2c"]).json["p2c_vpn_gateway"], "updated_at"),
        "srv": [strip(x, "updated_at") for x in a.call("list_vpn_servers_by_vgw", p2c_vgw_id=w["p2c"]).json["vpn_servers"]],
        "user": a.call("show_vpn_user", vpn_server_id=w["srv"], user_id=w["user"]).json["user"],
        "grp": a.call("show_vpn_user_group", vpn_server_id=w["srv"], group_id=w["grp"]).json["user_group"],
        "pol": a.call("show_vpn_access_policy", vpn_server_id=w["srv"], policy_id=w["pol"]).json["access_policy"],
        "ca": a.call("show_client_ca", vpn_server_id=w["srv_cert"], client_ca_certificate_id=w["ca"]).json[
            "client_ca_certificate"],
        "tags": a.call("show_resource_tags", resource_type="vpn-gateway", resource_id=w["gw"]).json["tags"],
        "jobs": sorted(j["id"] for j in a.call("list_vpn_gateway_jobs").json["jobs"]),
        "p2c_jobs": sorted(j["id"] for j in a.call("list_p2c_vpn_gateway_jobs").json["jobs"]),
        "log": a.call("show_vpn_connections_log_config", p2c_vgw_id=w["p2c"]).json["log_config"],
    }
    return s


GW, P2C, SRV = {"VPN.0004"}, {"VPN.0509"}, {"VPN.1116"}
USR, GRP, POL = {"VPN.1116", "VPN.1303"}, {"VPN.1116", "VPN.1301"}, {"VPN.1116", "VPN.1401"}
CA = {"VPN.1116", "VPN.1115"}
NB = lambda w: None  # noqa: E731


def gm_body(w):
    return {"certificate": {"name": "stolen", "certificate": CERTS.get("leaf"), "private_key": "-----BEGIN PRIVATE KEY"
                            "-----\nx\n-----END PRIVATE KEY-----", "certificate_chain": CERTS.get("ca"),
                            "enc_certificate": CERTS.get("leaf"), "enc_private_key": "-----BEGIN PRIVATE KEY-----\n"
                            "x\n-----END PRIVATE KEY-----"}}


# op -> ("nf", body(w), params(w), codes) | ("list", params(w), extractor(json) -> ids, key in w)
#       | ("own", reason, check(hw, w)) for operations that name no resource of A's
ROWS = {
    # S2C gateways
    "create_vgw": ("own", "creates in the caller's project", lambda hw, w: None),
    "show_vgw": ("nf", NB, lambda w: {"vgw_id": w["gw"]}, GW),
    "list_vgws": ("list", lambda w: {}, lambda j: [x["id"] for x in j["vpn_gateways"]], "gw"),
    "update_vgw": ("nf", lambda w: {"vpn_gateway": {"name": "stolen"}}, lambda w: {"vgw_id": w["gw"]}, GW),
    "update_postpaid_vgw_specification": ("nf", lambda w: {"vpn_gateway": {"flavor": "Professional2"}},
                                          lambda w: {"vgw_id": w["gw"]}, GW),
    "delete_vgw": ("nf", NB, lambda w: {"vgw_id": w["gw"]}, GW),
    "list_availability_zones": ("own", "zones of the caller's region", lambda hw, w: None),
    "list_extended_availability_zones": ("own", "zones of the caller's region", lambda hw, w: None),
    "show_vpn_gateway_routing_table": ("nf", NB, lambda w: {"vgw_id": w["gw"]}, GW),
    "create_vgw_certificate": ("nf", gm_body, lambda w: {"vgw_id": w["gm"]}, GW),
    "show_vpn_gateway_certificate": ("nf", NB, lambda w: {"vgw_id": w["gm"]}, GW),
    "update_vgw_certificate": ("nf", lambda w: {"certificate": {"name": "stolen"}},
                               lambda w: {"vgw_id": w["gm"], "certificate_id": w["cert"]}, GW),
    "list_vpn_gateway_certificates": ("list", lambda w: {}, lambda j: [x["id"] for x in j["vpn_gateway_certificates"]],
                                      "cert"),
    "upgrade_vpn_gateway": ("nf", lambda w: {"action": "finish"}, lambda w: {"vgw_id": w["gw"]}, GW),
    "list_vpn_gateway_jobs": ("list", lambda w: {"resource_id": w["gw"]}, lambda j: [x["id"] for x in j["jobs"]], "job"),
    "delete_vpn_gateway_job": ("nf", NB, lambda w: {"job_id": w["job"]}, GW),
    # customer gateways
    "create_cgw": ("own", "the same peer address is free in another tenant",
                   lambda hw, w: own_cgw(hw, w)),
    "show_cgw": ("nf", NB, lambda w: {"customer_gateway_id": w["cgw"]}, GW),
    "list_cgws": ("list", lambda w: {}, lambda j: [x["id"] for x in j["customer_gateways"]], "cgw"),
    "update_cgw": ("nf", lambda w: {"customer_gateway": {"name": "stolen"}},
                   lambda w: {"customer_gateway_id": w["cgw"]}, GW),
    "delete_cgw": ("nf", NB, lambda w: {"customer_gateway_id": w["cgw"]}, GW),
    # connections
    "create_vpn_connection": ("nf", lambda w: {"vpn_connection": {"vgw_id": w["gw"], "vgw_ip": w["eip"],
                                                                  "cgw_id": w["cgw"], "peer_subnets": ["172.16.9.0/24"],
                                                                  "psk": hwlib.PSK}}, lambda w: {}, GW),
    "batch_create_vpn_connection": ("nf", lambda w: {"vpn_connections": [{"vgw_id": w["gw"], "vgw_ip": w["eip"],
                                                                          "cgw_id": w["cgw"], "psk": hwlib.PSK,
                                                                          "peer_subnets": ["172.16.9.0/24"]}]},
                                    lambda w: {}, GW),
    "show_vpn_connection": ("nf", NB, lambda w: {"vpn_connection_id": w["conn"]}, GW),
    "list_vpn_connections": ("list", lambda w: {}, lambda j: [x["id"] for x in j["vpn_connections"]], "conn"),
    "update_vpn_connection": ("nf", lambda w: {"vpn_connection": {"name": "stolen"}},
                              lambda w: {"vpn_connection_id": w["conn"]}, GW),
    "delete_vpn_connection": ("nf", NB, lambda w: {"vpn_connection_id": w["conn"]}, GW),
    "show_vpn_connection_log": ("nf", NB, lambda w: {"vpn_connection_id": w["conn"]}, GW),
    "reset_vpn_connection": ("nf", NB, lambda w: {"vpn_connection_id": w["conn"]}, GW),
    "list_connection_ipsec_sa": ("nf", NB, lambda w: {"vpn_connection_id": w["conn"]}, GW),
    "export_vpn_connection_peer_configuration": ("nf", lambda w: {"vendor": "strongSwan"},
                                                 lambda w: {"vpn_connection_id": w["conn"]}, GW),
    "list_peer_configuration_supported_devices": ("own", "a static device list", lambda hw, w: None),
    # monitors
    "create_connection_monitor": ("nf", lambda w: {"connection_monitor": {"vpn_connection_id": w["conn"]}},
                                  lambda w: {}, GW),
    "show_connection_monitor": ("nf", NB, lambda w: {"connection_monitor_id": w["mon"]}, GW),
    "list_connection_monitors": ("list", lambda w: {}, lambda j: [x["id"] for x in j["connection_monitors"]], "mon"),
    "delete_connection_monitor": ("nf", NB, lambda w: {"connection_monitor_id": w["mon"]}, GW),
    # quotas, tags
    "show_quotas_info": ("own", "the caller's own usage (nothing of A's)",
                         lambda hw, w: assert_used_zero(hw)),
    "list_resources_by_tags": ("list", lambda w: {"resource_type": "vpn-gateway", "body": {"tags": [
        {"key": "isokey", "values": []}]}}, lambda j: [x["resource_id"] for x in j["resources"]], "gw"),
    "count_resources_by_tags": ("own", "counts only the caller's resources", lambda hw, w: assert_count_zero(hw)),
    "batch_create_resource_tags": ("nf", lambda w: {"tags": [{"key": "stolen", "value": "x"}]},
                                   lambda w: {"resource_type": "vpn-gateway", "resource_id": w["gw"]}, GW),
    "batch_delete_resource_tags": ("nf", lambda w: {"tags": [{"key": "isokey"}]},
                                   lambda w: {"resource_type": "vpn-gateway", "resource_id": w["gw"]}, GW),
    "show_resource_tags": ("nf", NB, lambda w: {"resource_type": "vpn-gateway", "resource_id": w["gw"]}, GW),
    "list_project_tags": ("list", lambda w: {"resource_type": "vpn-gateway"}, lambda j: [x["key"] for x in j["tags"]],
                          "tagkey"),
    # P2C gateways
    "create_p2c_vgw": ("own", "creates in the caller's project", lambda hw, w: None),
    "show_p2c_vgw": ("nf", NB, lambda w: {"p2c_vgw_id": w["p2c"]}, P2C),
    "list_p2c_vgws": ("list", lambda w: {}, lambda j: [x["id"] for x in j["p2c_vpn_gateways"]], "p2c"),
    "update_p2c_vgw": ("nf", lambda w: {"p2c_vpn_gateway": {"name": "stolen"}}, lambda w: {"p2c_vgw_id": w["p2c"]},
                       P2C),
    "delete_p2c_vgw": ("nf", NB, lambda w: {"p2c_vgw_id": w["p2c"]}, P2C),
    "list_p2c_vgw_availability_zones": ("own", "zones of the caller's region", lambda hw, w: None),
    "list_p2c_vgw_connections": ("nf", NB, lambda w: {"p2c_vgw_id": w["p2c"]}, P2C),
    "delete_p2c_vgw_connection": ("nf", NB, lambda w: {"p2c_vgw_id": w["p2c"], "connection_id": uid()}, P2C),
    "upgrade_p2c_vpn_gateway": ("nf", lambda w: {"action": "rollback"}, lambda w: {"p2c_vgw_id": w["p2c_cert"]}, P2C),
    "list_p2c_vpn_gateway_jobs": ("list", lambda w: {"resource_id": w["p2c_cert"]},
                                  lambda j: [x["id"] for x in j["jobs"]], "p2c_job"),
    "delete_p2c_vpn_gateway_job": ("nf", NB, lambda w: {"job_id": w["p2c_job"]}, GW),
    "update_vpn_connections_log_config": ("nf", lambda w: {"log_config": {"log_group_id": uid(),
                                                                          "log_stream_id": uid()}},
                                          lambda w: {"p2c_vgw_id": w["p2c"]}, P2C),
    "show_vpn_connections_log_config": ("nf", NB, lambda w: {"p2c_vgw_id": w["p2c"]}, P2C),
    "delete_vpn_connections_log_config": ("nf", NB, lambda w: {"p2c_vgw_id": w["p2c"]}, P2C),
    # servers, client CAs
    "create_vpn_server": ("nf", lambda w: hwlib.server_body(), lambda w: {"p2c_vgw_id": w["p2c"]}, P2C),
    "list_vpn_servers_by_vgw": ("nf", NB, lambda w: {"p2c_vgw_id": w["p2c"]}, P2C),
    "list_vpn_servers_by_project": ("list", lambda w: {}, lambda j: [x["id"] for x in j["vpn_servers"]], "srv"),
    "update_vpn_server": ("nf", lambda w: {"vpn_server": {"dns_servers": ["10.0.0.9"]}},
                          lambda w: {"vpn_server_id": w["srv"]}, SRV),
    "export_client_config": ("nf", lambda w: {"os_type": "Linux"}, lambda w: {"vpn_server_id": w["srv"]}, SRV),
    "check_client_ca_certificate": ("own", "checks the given certificate only", lambda hw, w: None),
    "import_client_ca": ("nf", lambda w: {"client_ca_certificate": {"content": CERTS.get("ca2")}},
                         lambda w: {"vpn_server_id": w["srv_cert"]}, SRV),
    "show_client_ca": ("nf", NB, lambda w: {"vpn_server_id": w["srv_cert"], "client_ca_certificate_id": w["ca"]}, CA),
    "update_client_ca": ("nf", lambda w: {"client_ca_certificate": {"name": "stolen"}},
                         lambda w: {"vpn_server_id": w["srv_cert"], "client_ca_certificate_id": w["ca"]}, CA),
    "delete_client_ca": ("nf", NB, lambda w: {"vpn_server_id": w["srv_cert"], "client_ca_certificate_id": w["ca"]},
                         CA),
    # users, groups, policies
    "create_vpn_user": ("nf", lambda w: {"user": {"name": "intruder", "password": USER_PW}},
                        lambda w: {"vpn_server_id": w["srv"]}, SRV),
    "batch_create_vpn_users": ("nf", lambda w: {"users": [{"name": "intruder", "password": USER_PW}]},
                               lambda w: {"vpn_server_id": w["srv"]}, SRV),
    "show_vpn_user": ("nf", NB, lambda w: {"vpn_server_id": w["srv"], "user_id": w["user"]}, USR),
    "list_vpn_users": ("nf", NB, lambda w: {"vpn_server_id": w["srv"]}, SRV),
    "update_vpn_user": ("nf", lambda w: {"user": {"description": "stolen"}},
                        lambda w: {"vpn_server_id": w["srv"], "user_id": w["user"]}, USR),
    "delete_vpn_user": ("nf", NB, lambda w: {"vpn_server_id": w["srv"], "user_id": w["user"]}, USR),
    "batch_delete_vpn_users": ("nf", lambda w: {"users": [{"id": w["user"]}]}, lambda w: {"vpn_server_id": w["srv"]},
                               USR),
    "update_vpn_user_password": ("nf", lambda w: {"old_password": USER_PW, "new_password": "Stolen-Pass1"},
                                 lambda w: {"vpn_server_id": w["srv"], "user_id": w["user"]}, USR),
    "reset_vpn_user_password": ("nf", lambda w: {"new_password": "Stolen-Pass1"},
                                lambda w: {"vpn_server_id": w["srv"], "user_id": w["user"]}, USR),
    "create_vpn_user_group": ("nf", lambda w: {"user_group": {"name": "intruders"}},
                              lambda w: {"vpn_server_id": w["srv"]}, SRV),
    "show_vpn_user_group": ("nf", NB, lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]}, GRP),
    "list_vpn_user_groups": ("nf", NB, lambda w: {"vpn_server_id": w["srv"]}, SRV),
    "update_vpn_user_group": ("nf", lambda w: {"user_group": {"name": "stolen"}},
                              lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]}, GRP),
    "delete_vpn_user_group": ("nf", NB, lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]}, GRP),
    "add_vpn_users_to_group": ("nf", lambda w: {"users": [{"id": w["user"]}]},
                               lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]}, GRP | USR),
    "remove_vpn_users_from_group": ("nf", lambda w: {"users": [{"id": w["user"]}]},
                                    lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]}, GRP | USR),
    "list_vpn_users_in_group": ("nf", NB, lambda w: {"vpn_server_id": w["srv"], "group_id": w["grp"]}, GRP),
    "create_vpn_access_policy": ("nf", lambda w: {"access_policy": {"name": "intrude", "user_group_id": w["grp"],
                                                                    "dest_ip_cidrs": ["10.0.0.0/8"]}},
                                 lambda w: {"vpn_server_id": w["srv"]}, GRP),
    "show_vpn_access_policy": ("nf", NB, lambda w: {"vpn_server_id": w["srv"], "policy_id": w["pol"]}, POL),
    "list_vpn_access_policies": ("nf", NB, lambda w: {"vpn_server_id": w["srv"]}, SRV),
    "update_vpn_access_policy": ("nf", lambda w: {"access_policy": {"name": "stolen"}},
                                 lambda w: {"vpn_server_id": w["srv"], "policy_id": w["pol"]}, POL),
    "delete_vpn_access_policy": ("nf", NB, lambda w: {"vpn_server_id": w["srv"], "policy_id": w["pol"]}, POL),
    # IAM
    "keystone_create_user_token_by_password": ("iam", None, None, None),
    "keystone_list_projects": ("iam", None, None, None),
}


def own_cgw(hw, w):
    c = hw.call("create_cgw", hwlib.cgw_body(ip=w["cgw_ip"]))
    assert c.status == 201 and c.json["customer_gateway"]["id"] != w["cgw"]
    hw.call("delete_cgw", customer_gateway_id=c.json["customer_gateway"]["id"])


def assert_used_zero(hw):
    res = hw.call("show_quotas_info").json["quotas"]["resources"]
    assert {x["type"]: x["used"] for x in res} == {"customer_gateway": 0, "vpn_connection": 0, "vpn_gateway": 0}, res


def assert_count_zero(hw):
    assert hw.call("count_resources_by_tags", {"tags": [{"key": "isokey", "values": []}]},
                   resource_type="vpn-gateway").json["total_count"] == 0


def test_every_operation_has_a_row(server):
    ops = [name for name, _m, _p in hwlib.dialect_ops()]
    assert len(ops) == 91
    assert sorted(ops) == sorted(ROWS), f"missing: {sorted(set(ops) - set(ROWS))}, extra: {sorted(set(ROWS) - set(ops))}"
    # ... and every operation the running server documents (its OpenAPI document) has one, for both callers.
    served = set(hwlib.openapi(server.port))
    assert served == set(ROWS), f"served without a row: {sorted(served - set(ROWS))}, " \
                                f"rows for unserved operations: {sorted(set(ROWS) - served)}"


CALLERS = ["tenant_b", "other_region"]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("op", sorted(ROWS))
def test_isolation(world, caller, op):
    a, b, a2, w = world
    hw = b if caller == "tenant_b" else a2
    row = ROWS[op]
    kind = row[0]
    if kind == "nf":
        _, body, params, codes = row
        e = hw.error(op, body(w), **params(w))
        assert e.status_code in (400, 404) and e.error_code in codes, \
            f"{op} by {caller}: {e.status_code} {e.error_code} {e.error_msg}"
        assert e.request_id
    elif kind == "list":
        _, params, ids, key = row
        p = params(w)
        body = p.pop("body", None)
        j = hw.call(op, body, **p).json
        target = "isokey" if key == "tagkey" else w[key]
        assert target not in ids(j), f"{op} by {caller} lists A's {key}"
    elif kind == "own":
        _, _reason, check = row
        check(hw, w)
    elif op == "keystone_list_projects":
        r = hw.raw("GET", "/v3/projects", query=[("name", hwlib.REGION)], project_header=False)
        assert r.status == 200
        ids = [p["id"] for p in r.json["projects"]]
        assert w["tenant_a"]["projects"][hwlib.REGION] not in ids or caller == "other_region"
        if caller == "tenant_b":
            assert ids == [w["tenant_b"]["projects"][hwlib.REGION]]
    else:
        # A's IAM user signing in under B's account name
        domain = w["tenant_b"]["name"] if caller == "tenant_b" else w["tenant_a"]["name"]
        project = hwlib.REGION if caller == "tenant_b" else hwlib.OTHER
        r = hwlib.get_token(hw.port, "isoiam", "Iso-Pass123", domain, project)
        if caller == "tenant_b":
            assert r.status == 401 and r.json["error_code"] == "IAM.0004", r.text
        else:
            # the same user in A's other project gets a token for that project only
            assert r.status == 201, r.text
            assert r.json["token"]["project"]["id"] == w["tenant_a"]["projects"][hwlib.OTHER]


def test_resources_unchanged(world):
    a, _b, _a2, w = world
    # the matrix ran first (module order); compare A's view with the snapshot
    assert snapshot(a, w) == w["snapshot"]


# ------------------------------------------------------------------------------------------------------------------
# projects and headers
# ------------------------------------------------------------------------------------------------------------------
def test_path_project_of_another_tenant_is_forbidden(world):
    a, b, _a2, w = world
    intruder = hwlib.Hw(w["tenant_b"], b.port, project_id=w["tenant_a"]["projects"][hwlib.REGION])
    e = intruder.expect("list_vgws", "VPN.0003", 403)
    assert "Authentication failed" in e.error_msg
    intruder.expect("show_vgw", "VPN.0003", 403, vgw_id=w["gw"])
    intruder.expect("delete_cgw", "VPN.0003", 403, customer_gateway_id=w["cgw"])
    unknown = hwlib.Hw(w["tenant_b"], b.port, project_id="0" * 32)
    unknown.expect("list_vgws", "VPN.0003", 403)


def test_x_project_id_must_match_path(world):
    a, _b, _a2, w = world
    r = a.raw("GET", "/v5/{project_id}/vpn-gateways", headers={"X-Project-Id": w["tenant_a"]["projects"][hwlib.OTHER]},
              project_header=False)
    assert_raw_error(r, 403, "VPN.0003", "X-Project-Id")
    ok = a.raw("GET", "/v5/{project_id}/vpn-gateways")
    assert ok.status == 200 and w["gw"] in [g["id"] for g in ok.json["vpn_gateways"]]
    no_header = a.raw("GET", "/v5/{project_id}/vpn-gateways", project_header=False)
    assert no_header.status == 200, "X-Project-Id is optional"


def test_token_scoped_to_one_project(world, server):
    a, _b, _a2, w = world
    r = hwlib.get_token(server.port, "isoiam", "Iso-Pass123", w["tenant_a"]["name"], hwlib.REGION)
    assert r.status == 201, r.text
    token = r.header("X-Subject-Token")
    north, south = w["tenant_a"]["projects"][hwlib.REGION], w["tenant_a"]["projects"][hwlib.OTHER]
    ok = hwlib.token_call(server.port, token, "GET", f"/v5/{north}/vpn-gateways")
    assert ok.status == 200 and w["gw"] in [g["id"] for g in ok.json["vpn_gateways"]]
    bad = hwlib.token_call(server.port, token, "GET", f"/v5/{south}/vpn-gateways")
    assert_raw_error(bad, 403, "VPN.0003", "token")
    other = hwlib.token_call(server.port, token, "GET", f"/v5/{w['tenant_b']['projects'][hwlib.REGION]}/vpn-gateways")
    assert_raw_error(other, 403, "VPN.0003")
