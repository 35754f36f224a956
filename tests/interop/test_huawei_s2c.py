"""Huawei VPN v5 site-to-cloud side through huaweicloudsdkvpn: gateways, availability zones, routing table, GM
certificates, upgrades and jobs, customer gateways, connections, monitors, quotas and tags.

References: Huawei's VPN v5 API reference (behaviour) and the SDK's models (field names and wrappers); where the
reference is silent, docs/huawei-behaviour.md.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import hwlib
from hwlib import (CERTS, PSK, HwCallError, create_cgw, create_conn, create_vgw, conn_body, eip, poll, uid,
                   uname, vgw_body, wait_vgw)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def conn(hw, gw, cgw, **over):
    c = create_conn(hw, gw, cgw, **over)
    wait_vgw(hw, gw["id"])
    return c


@pytest.fixture(scope="module")
def gw(hw_a):
    return create_vgw(hw_a)


# ------------------------------------------------------------------------------------------------------------------
# gateways
# ------------------------------------------------------------------------------------------------------------------
def test_vgw_create_show_list_update_delete(hw_a):
    body = vgw_body(bgp_asn=65010, tags=[{"key": "env", "value": "test"}])
    r = hw_a.call("create_vgw", body)
    assert r.status == 201
    g = r.json["vpn_gateway"]
    assert r.json["request_id"]
    # The create answer is CreateResponseVpnGateway: no status, no EIPs, no timestamps (reference 4.1.1.1).
    for absent in ("status", "eip1", "eip2", "created_at", "availability_zone_ids"):
        assert absent not in g, f"create answer has {absent}: {g}"
    src = body["vpn_gateway"]
    assert g["name"] == src["name"] and g["vpc_id"] == src["vpc_id"] and g["connect_subnet"] == src["connect_subnet"]
    assert g["local_subnets"] == src["local_subnets"]
    assert (g["bgp_asn"], g["flavor"], g["network_type"], g["attachment_type"], g["ip_version"]) == \
        (65010, "Professional1", "public", "vpc", "ipv4")
    assert (g["access_vpc_id"], g["access_subnet_id"]) == (src["vpc_id"], src["connect_subnet"])
    assert (g["enterprise_project_id"], g["ha_mode"]) == ("0", "active-active")
    assert (g["used_connection_number"], g["used_connection_group"]) == (0, 0)
    assert isinstance(g["connection_number"], int) and g["connection_number"] > 0
    assert g["tags"] == [{"key": "env", "value": "test"}]
    assert r.model.vpn_gateway.id == g["id"]

    full = wait_vgw(hw_a, g["id"])
    shown = hw_a.call("show_vgw", vgw_id=g["id"])
    assert shown.status == 200
    m = shown.model.vpn_gateway
    assert m.status == "ACTIVE" and m.eip1.ip_address and m.eip2.ip_address
    assert m.eip1.ip_address != m.eip2.ip_address
    for e in (full["eip1"], full["eip2"]):
        assert e["ip_address"].startswith("198.18."), e
        assert (e["type"], e["charge_mode"], e["bandwidth_size"], e["ip_version"]) == ("5_bgp", "bandwidth", 100, 4)
        assert e["bandwidth_name"].startswith("vpngw-bandwidth-")
    assert full["availability_zone_ids"] == ["cn-north-4a", "cn-north-4b"]
    assert ISO_MS.match(full["created_at"]) and ISO_MS.match(full["updated_at"]), full
    assert "Professional1" not in full["supported_flavors"] and "Professional2" in full["supported_flavors"]
    assert full["supported_features"] == ["query_connection_log"]
    assert full["upgrade_info"] == "ready"
    assert "certificate_id" not in full, "certificate_id is only for GM gateways"

    # list: by vgw_id (SDK-only filter), and everything
    lst = hw_a.call("list_vgws", vgw_id=g["id"])
    assert lst.status == 200 and [x["id"] for x in lst.json["vpn_gateways"]] == [g["id"]]
    assert "page_info" not in lst.json and "total_count" not in lst.json
    assert g["id"] in [x["id"] for x in hw_a.call("list_vgws").json["vpn_gateways"]]

    # update name and local subnets: UpdateResponseVpnGateway (no status)
    up = hw_a.call("update_vgw", {"vpn_gateway": {"name": "renamed.gw-1", "local_subnets": ["10.200.0.0/16",
                                                                                      "10.201.0.0/16"]}},
                   vgw_id=g["id"])
    assert up.status == 200
    ug = up.json["vpn_gateway"]
    assert "status" not in ug and ug["name"] == "renamed.gw-1"
    assert ug["local_subnets"] == ["10.200.0.0/16", "10.201.0.0/16"]
    assert ug["eip1"]["id"] == full["eip1"]["id"], "update answer carries the EIPs"
    after = wait_vgw(hw_a, g["id"])
    assert after["name"] == "renamed.gw-1" and after["local_subnets"] == ["10.200.0.0/16", "10.201.0.0/16"]
    assert after["bgp_asn"] == 65010 and after["vpc_id"] == src["vpc_id"], "other fields unchanged"

    d = hw_a.call("delete_vgw", vgw_id=g["id"])
    assert d.status == 204 and d.json is None
    hwlib.poll(lambda: g["id"] not in [x["id"] for x in hw_a.call("list_vgws").json["vpn_gateways"]],
               "gateway gone from the list")
    hw_a.expect("show_vgw", "VPN.0004", 404, vgw_id=g["id"])


def test_vgw_list_filter_enterprise_project(hw_a):
    ep = uid()
    g1 = create_vgw(hw_a, enterprise_project_id=ep)
    assert g1["enterprise_project_id"] == ep
    only = hw_a.call("list_vgws", enterprise_project_id=[ep]).json["vpn_gateways"]
    assert [x["id"] for x in only] == [g1["id"]]
    default = hw_a.call("list_vgws", enterprise_project_id=["0"]).json["vpn_gateways"]
    assert g1["id"] not in [x["id"] for x in default]
    assert all(x["enterprise_project_id"] == "0" for x in default)


def test_vgw_update_specification(hw_a):
    g = create_vgw(hw_a)
    r = hw_a.call("update_postpaid_vgw_specification", {"vpn_gateway": {"flavor": "Professional2"}}, vgw_id=g["id"])
    assert r.status == 200
    assert r.json["vpn_gateway"]["flavor"] == "Professional2" and "status" not in r.json["vpn_gateway"]
    after = wait_vgw(hw_a, g["id"])
    assert after["flavor"] == "Professional2"
    assert "Professional2" not in after["supported_flavors"] and "Professional1" in after["supported_flavors"]
    # 100 Mbit/s EIPs fit Basic
    hw_a.call("update_postpaid_vgw_specification", {"vpn_gateway": {"flavor": "Basic"}}, vgw_id=g["id"])
    assert wait_vgw(hw_a, g["id"])["flavor"] == "Basic"


def test_vgw_active_standby_and_default_name(hw_a):
    g = create_vgw(hw_a, name=None, ha_mode="active-standby", availability_zone_ids=["cn-north-4b", "cn-north-4a"])
    assert g["ha_mode"] == "active-standby"
    assert re.match(r"^vpngw-[0-9a-f]{4}$", g["name"]), g["name"]
    assert g["availability_zone_ids"] == ["cn-north-4b", "cn-north-4a"]


def test_availability_zones_v5_and_v51(hw_a, hw_a2):
    r = hw_a.call("list_availability_zones")
    assert r.status == 200
    az = r.json["availability_zones"]
    assert set(az) == {"basic", "professional1", "professional2", "Professional1-NonFixedIP",
                       "Professional2-NonFixedIP", "gm"}
    for k in ("basic", "professional1", "professional2", "gm"):
        assert az[k] == {"vpc": ["cn-north-4a", "cn-north-4b"], "er": []}, (k, az[k])
    assert r.model.availability_zones.professional1.vpc == ["cn-north-4a", "cn-north-4b"]
    r2 = hw_a2.call("list_availability_zones").json["availability_zones"]
    assert r2["professional1"]["vpc"] == ["cn-south-1a", "cn-south-1b"], "zones follow the project's region"

    ext = hw_a.call("list_extended_availability_zones")
    assert ext.status == 200
    zones = ext.json["availability_zones"]
    assert [z["name"] for z in zones] == ["cn-north-4a", "cn-north-4b"]
    for z in zones:
        assert z["public_border_group"] == "center"
        flavors = {s["flavor"] for s in z["available_specs"]}
        assert {"Basic", "Professional1", "Professional2", "GM"} <= flavors
        assert all(s["attachment_type"] == "vpc" and s["ip_version"] == "ipv4" for s in z["available_specs"])
    assert ext.model.availability_zones[0].available_specs[0].flavor


def test_routing_table(hw_a, gw):
    cgw = create_cgw(hw_a)
    c = conn(hw_a, gw, cgw, peer_subnets=["172.30.7.0/24", "172.30.8.0/24"])
    r = hw_a.call("show_vpn_gateway_routing_table", vgw_id=gw["id"])
    assert r.status == 200
    routes = [x for x in r.json["routing_table"] if x["destination"] in ("172.30.7.0/24", "172.30.8.0/24")]
    assert len(routes) == 2, r.json
    assert r.json["total_count"] == len(r.json["routing_table"])
    assert r.json["page_info"]["current_count"] == len(r.json["routing_table"])
    for x in routes:
        assert x["outbound_interface_ip"] and x["nexthop"] and x["origin"] in ("igp", "egp", "incomplete")
        assert "nexthop_resource" not in x
    withres = hw_a.call("show_vpn_gateway_routing_table", vgw_id=gw["id"], is_include_nexthop_resource=True).json
    mine = [x for x in withres["routing_table"] if x["destination"] == "172.30.7.0/24"]
    assert mine and mine[0]["nexthop_resource"] == {"id": c["id"], "type": "vpn_connection"}


# ------------------------------------------------------------------------------------------------------------------
# GM certificates
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gm_certs():
    if not shutil.which("openssl"):
        hwlib.skip_unless_ci("openssl CLI not found: cannot make SM2 certificates for the GM certificate tests")
    try:
        return hwlib.gm_bundle()
    except subprocess.CalledProcessError as e:
        hwlib.skip_unless_ci(f"openssl cannot make SM2 certificates here ({e.stderr!r}); GM certificate success paths")


def test_gm_certificate_upload_show_update_list(hw_a, gm_certs):
    g = create_vgw(hw_a, flavor="GM", eip1=eip(200), eip2=eip(200))
    assert g["flavor"] == "GM" and g["supported_flavors"] == []
    body = {"certificate": dict(gm_certs, name="gm-cert.1")}
    r = hw_a.call("create_vgw_certificate", body, vgw_id=g["id"])
    assert r.status == 201
    c = r.json["certificate"]
    assert c["name"] == "gm-cert.1" and c["vgw_id"] == g["id"] and c["id"]
    assert c["signature_algorithm"].upper() in ("SM3WITHSM2", "SM2WITHSM3", "SM2-WITH-SM3"), c
    assert c["certificate_serial_number"].isdigit() and "gmsig" in c["certificate_subject"]
    assert "gmca" in c["certificate_chain_subject"] and "gmenc" in c["enc_certificate_subject"]
    for absent in ("status", "project_id", "updated_at"):
        assert absent not in c, f"upload answer (VpnGatewayCertificateConfig) has {absent}"
    shown = hw_a.call("show_vpn_gateway_certificate", vgw_id=g["id"]).json["certificate"]
    assert shown["id"] == c["id"] and shown["status"] == "BOUND" and shown["project_id"] == hw_a.project_id
    assert hw_a.call("show_vgw", vgw_id=g["id"]).json["vpn_gateway"]["certificate_id"] == c["id"]
    up = hw_a.call("update_vgw_certificate", {"certificate": {"name": "gm-cert.2"}}, vgw_id=g["id"],
                   certificate_id=c["id"])
    assert up.status == 200 and up.json["certificate"]["name"] == "gm-cert.2"
    assert up.json["certificate"]["certificate_serial_number"] == c["certificate_serial_number"], "only the name changed"
    lst = hw_a.call("list_vpn_gateway_certificates")
    assert lst.status == 200
    assert c["id"] in [x["id"] for x in lst.json["vpn_gateway_certificates"]]
    soon = hw_a.call("list_vpn_gateway_certificates", pre_expire_days=3650).json["vpn_gateway_certificates"]
    assert c["id"] in [x["id"] for x in soon], "expires within 10 years"
    later = hw_a.call("list_vpn_gateway_certificates", pre_expire_days=1).json["vpn_gateway_certificates"]
    assert c["id"] not in [x["id"] for x in later], "does not expire within a day"


def test_gm_certificate_rejects_rsa_certificates(hw_a):
    """The GM gateway takes SM2 certificates (reference 4.1.1.10: "must be a GM (SM2) non-CA cert")."""
    g = create_vgw(hw_a, flavor="GM", eip1=eip(200), eip2=eip(200))
    ca, ca_key, ca_pem = hwlib.make_ca_pair("rsa-gm-ca")
    leaf, leaf_key = hwlib.make_cert("rsa-leaf", ca=False, issuer=(ca, ca_key))
    enc, enc_key = hwlib.make_cert("rsa-enc", ca=False, issuer=(ca, ca_key))
    body = {"certificate": {"certificate": leaf, "private_key": leaf_key, "certificate_chain": ca_pem,
                            "enc_certificate": enc, "enc_private_key": enc_key}}
    e = hw_a.error("create_vgw_certificate", body, vgw_id=g["id"])
    assert e.status_code == 400, (e.status_code, e.error_code, e.error_msg)


def test_gm_certificate_key_must_match(hw_a, gm_certs):
    """private_key "must match certificate's public key" (reference 4.1.1.10)."""
    g = create_vgw(hw_a, flavor="GM", eip1=eip(200), eip2=eip(200))
    swapped = dict(gm_certs, private_key=gm_certs["enc_private_key"], enc_private_key=gm_certs["private_key"])
    e = hw_a.error("create_vgw_certificate", {"certificate": swapped}, vgw_id=g["id"])
    assert e.status_code == 400, (e.status_code, e.error_code, e.error_msg)


# ------------------------------------------------------------------------------------------------------------------
# upgrades and jobs (S2C; the P2C side is in test_huawei_p2c.py)
# ------------------------------------------------------------------------------------------------------------------
def upgrade_cycle(hw, gid, upgrade_op, jobs_op, delete_op, id_param, show):
    r = hw.call(upgrade_op, {"action": "start"}, **{id_param: gid})
    assert r.status == 202 and r.json["job_id"] and r.json["request_id"]
    start_job = r.json["job_id"]
    assert show(gid)["status"] == "PENDING_UPGRADE_CONFIRM"
    jobs = hw.call(jobs_op, resource_id=gid).json["jobs"]
    j = [x for x in jobs if x["id"] == start_job]
    assert j and j[0]["job_type"] == "upgrade" and j[0]["status"] == "pending_upgrade_confirm", jobs
    assert j[0]["resource_id"] == gid
    assert [s["job_type"] for s in j[0]["sub_jobs"]] == ["prepare_resource", "upgrade_worker_1", "upgrade_worker_2"]
    hw.expect(upgrade_op, "VPN.0031", 400, {"action": "start"}, **{id_param: gid})
    fin = hw.call(upgrade_op, {"action": "finish"}, **{id_param: gid})
    assert fin.status == 202
    assert show(gid)["status"] == "ACTIVE"
    j = [x for x in hw.call(jobs_op, resource_id=gid).json["jobs"] if x["id"] == start_job][0]
    assert j["status"] == "success" and j["finished_at"]
    # start again and roll back
    hw.call(upgrade_op, {"action": "start"}, **{id_param: gid})
    rb = hw.call(upgrade_op, {"action": "rollback"}, **{id_param: gid})
    assert rb.status == 202
    jobs = hw.call(jobs_op, resource_id=gid).json["jobs"]
    rbj = [x for x in jobs if x["id"] == rb.json["job_id"]]
    assert rbj and rbj[0]["job_type"] == "rollback", jobs
    assert show(gid)["status"] == "ACTIVE"
    d = hw.call(delete_op, job_id=start_job)
    assert d.status == 204
    assert start_job not in [x["id"] for x in hw.call(jobs_op, resource_id=gid).json["jobs"]]
    hw.expect(delete_op, "VPN.0004", 404, job_id=start_job)
    return rb.json["job_id"]


def test_vgw_upgrade_and_jobs(hw_a):
    g = create_vgw(hw_a)
    show = lambda gid: hw_a.call("show_vgw", vgw_id=gid).json["vpn_gateway"]  # noqa: E731
    job = upgrade_cycle(hw_a, g["id"], "upgrade_vpn_gateway", "list_vpn_gateway_jobs", "delete_vpn_gateway_job",
                        "vgw_id", show)
    assert job in [x["id"] for x in hw_a.call("list_vpn_gateway_jobs").json["jobs"]]
    p2c_jobs = [x["id"] for x in hw_a.call("list_p2c_vpn_gateway_jobs").json["jobs"]]
    assert job not in p2c_jobs, "an S2C job is not listed among P2C jobs"


# ------------------------------------------------------------------------------------------------------------------
# customer gateways
# ------------------------------------------------------------------------------------------------------------------
def test_cgw_crud(hw_a):
    ip = hwlib.fresh_peer_ip()
    r = hw_a.call("create_cgw", hwlib.cgw_body(ip=ip, name="cgw.one_1", bgp_asn=65123,
                                               tags=[{"key": "site", "value": "hq"}]))
    assert r.status == 201
    c = r.json["customer_gateway"]
    assert (c["name"], c["id_type"], c["id_value"], c["bgp_asn"]) == ("cgw.one_1", "ip", ip, 65123)
    assert c["tags"] == [{"key": "site", "value": "hq"}] and ISO_MS.match(c["created_at"])
    assert "ca_certificate" not in c
    s = hw_a.call("show_cgw", customer_gateway_id=c["id"])
    assert s.status == 200 and s.json["customer_gateway"] == c
    lst = hw_a.call("list_cgws", cgw_id=c["id"]).json
    assert [x["id"] for x in lst["customer_gateways"]] == [c["id"]] and lst["total_count"] == 1
    up = hw_a.call("update_cgw", {"customer_gateway": {"name": "cgw-two"}}, customer_gateway_id=c["id"])
    assert up.status == 200 and up.json["customer_gateway"]["name"] == "cgw-two"
    assert up.json["customer_gateway"]["id_value"] == ip and up.json["customer_gateway"]["bgp_asn"] == 65123
    d = hw_a.call("delete_cgw", customer_gateway_id=c["id"])
    assert d.status == 204
    hw_a.expect("show_cgw", "VPN.0004", 404, customer_gateway_id=c["id"])


def test_repeated_reads_are_current_and_answered_under_their_own_request_id(hw_a):
    """Lists and shows are kept in memory while the store is unchanged (`server.read_cache`): a repeat carries its
    own request id (body and header agree), and every change is in the next answer."""
    c = create_cgw(hw_a, name="kept-one")
    path = f"/v5/{{project_id}}/customer-gateways/{c['id']}"
    answers = [hw_a.raw("GET", path) for _ in range(3)]
    ids = [a.json["request_id"] for a in answers]
    assert all(a.status == 200 and a.json["customer_gateway"]["name"] == "kept-one" for a in answers), answers
    assert len(set(ids)) == 3, f"a repeated read reused a request id: {ids}"
    assert ids == [a.header("X-Request-Id") for a in answers], "body and header name different requests"
    assert answers[1].text.replace(ids[1], ids[0]) == answers[0].text, "a repeat differs beyond its request id"
    for _ in range(2):
        listed = hw_a.call("list_cgws", cgw_id=c["id"]).json
        assert [x["name"] for x in listed["customer_gateways"]] == ["kept-one"]
    hw_a.call("update_cgw", {"customer_gateway": {"name": "kept-two"}}, customer_gateway_id=c["id"])
    assert hw_a.call("show_cgw", customer_gateway_id=c["id"]).json["customer_gateway"]["name"] == "kept-two"
    listed = hw_a.call("list_cgws", cgw_id=c["id"]).json
    assert [x["name"] for x in listed["customer_gateways"]] == ["kept-two"], listed
    hw_a.call("delete_cgw", customer_gateway_id=c["id"])
    assert hw_a.call("list_cgws", cgw_id=c["id"]).json["customer_gateways"] == []
    hw_a.expect("show_cgw", "VPN.0004", 404, customer_gateway_id=c["id"])


def test_cgw_fqdn_and_ca_certificate(hw_a):
    r = hw_a.call("create_cgw", {"customer_gateway": {"id_type": "fqdn", "id_value": "peer.example.test"}}).json
    c = r["customer_gateway"]
    assert (c["id_type"], c["id_value"]) == ("fqdn", "peer.example.test") and "bgp_asn" not in c
    assert re.match(r"^cgw-[0-9a-f]{4}$", c["name"]), c["name"]
    ca = CERTS.get("ca")
    r2 = hw_a.call("create_cgw", hwlib.cgw_body(ip=hwlib.fresh_peer_ip(), ca_certificate={"content": ca})).json
    cc = r2["customer_gateway"]["ca_certificate"]
    assert cc["serial_number"].isdigit() and "hw-ca" in cc["subject"] and "hw-ca" in cc["issuer"]
    assert cc["signature_algorithm"].upper().startswith("SHA256") and cc["is_updatable"] is True


def test_cgw_delete_with_connection_is_refused(hw_a, gw):
    cgw = create_cgw(hw_a)
    c = conn(hw_a, gw, cgw)
    hw_a.expect("delete_cgw", "VPN.0001", 400, msg=f"customer gateway {cgw['id']} has connection",
                customer_gateway_id=cgw["id"])
    hw_a.call("delete_vpn_connection", vpn_connection_id=c["id"])
    wait_vgw(hw_a, gw["id"])
    assert hw_a.call("delete_cgw", customer_gateway_id=cgw["id"]).status == 204


# ------------------------------------------------------------------------------------------------------------------
# connections
# ------------------------------------------------------------------------------------------------------------------
def test_connection_static_defaults(hw_a, gw):
    cgw = create_cgw(hw_a)
    body = conn_body(gw, cgw, peer_subnets=["172.31.1.0/24"])
    r = hw_a.call("create_vpn_connection", {"vpn_connection": body})
    assert r.status == 201
    c = r.json["vpn_connection"]
    wait_vgw(hw_a, gw["id"])
    assert "status" not in c and "psk" not in c and "connection_monitor_id" not in c
    assert (c["style"], c["vgw_id"], c["vgw_ip"], c["cgw_id"]) == ("STATIC", gw["id"], gw["eip1"]["id"], cgw["id"])
    assert c["peer_subnets"] == ["172.31.1.0/24"] and c["enable_nqa"] is False and c["policy_rules"] == []
    assert c["enable_health_check"] is False
    ike, ipsec = c["ikepolicy"], c["ipsecpolicy"]
    assert (ike["ike_version"], ike["authentication_algorithm"], ike["encryption_algorithm"], ike["dh_group"],
            ike["authentication_method"], ike["lifetime_seconds"]) == \
        ("v2", "sha2-256", "aes-128", "group15", "pre-share", 86400)
    assert "phase1_negotiation_mode" not in ike, "only returned for IKEv1"
    assert (ike["local_id_type"], ike["local_id"], ike["peer_id_type"], ike["peer_id"]) == \
        ("ip", gw["eip1"]["ip_address"], "ip", cgw["id_value"])
    assert ike["dpd"] == {"timeout": 15, "interval": 30, "msg": "seq-hash-notify"}
    assert (ipsec["authentication_algorithm"], ipsec["encryption_algorithm"], ipsec["pfs"],
            ipsec["transform_protocol"], ipsec["lifetime_seconds"], ipsec["encapsulation_mode"]) == \
        ("sha2-256", "aes-128", "group15", "esp", 3600, "tunnel")
    assert (c["ha_role"], c["enterprise_project_id"]) == ("master", "0")
    assert re.match(r"^169\.254\.\d+\.\d+/30$", c["tunnel_local_address"]), c
    shown = hw_a.call("show_vpn_connection", vpn_connection_id=c["id"])
    assert shown.status == 200
    s = shown.json["vpn_connection"]
    assert s["status"] in ("ACTIVE", "DOWN") and "enable_health_check" not in s
    assert s["id"] == c["id"] and s["ikepolicy"] == ike
    g = hw_a.call("show_vgw", vgw_id=gw["id"]).json["vpn_gateway"]
    assert g["used_connection_number"] >= 1


def test_connection_policy_and_bgp(hw_a, gw):
    cgw = create_cgw(hw_a, bgp_asn=65200)
    rules = [{"rule_index": 1, "source": "10.9.0.0/24", "destination": ["192.168.70.0/24", "192.168.71.0/24"]}]
    p = conn(hw_a, gw, cgw, style="policy", policy_rules=rules, peer_subnets=["192.168.70.0/24"])
    assert p["style"] == "POLICY" and "enable_nqa" not in p
    assert p["policy_rules"] == [{"rule_index": 1, "source": "10.9.0.0/24",
                                  "destination": ["192.168.70.0/24", "192.168.71.0/24"]}]
    b = conn(hw_a, gw, cgw, style="bgp", eip_index=2, tunnel_local_address="169.254.56.225/30",
             tunnel_peer_address="169.254.56.226/30", peer_subnets=["192.168.80.0/24"],
             ikepolicy={"ike_version": "v1", "phase1_negotiation_mode": "main", "authentication_algorithm": "sha2-512",
                        "encryption_algorithm": "aes-256", "dh_group": "group16", "lifetime_seconds": 172800,
                        "local_id_type": "fqdn", "local_id": "gw.example.test", "peer_id_type": "fqdn",
                        "peer_id": "peer.example.test", "dpd": {"timeout": 30, "interval": 60,
                                                                "msg": "seq-notify-hash"}},
             ipsecpolicy={"authentication_algorithm": "sha2-512", "encryption_algorithm": "aes-256",
                          "pfs": "group16", "transform_protocol": "esp", "lifetime_seconds": 7200,
                          "encapsulation_mode": "tunnel"})
    assert b["style"] == "BGP" and b["enable_hub"] is False and b["vgw_ip"] == gw["eip2"]["id"]
    assert (b["tunnel_local_address"], b["tunnel_peer_address"]) == ("169.254.56.225/30", "169.254.56.226/30")
    ike = b["ikepolicy"]
    assert (ike["ike_version"], ike["phase1_negotiation_mode"], ike["lifetime_seconds"], ike["local_id"],
            ike["peer_id_type"]) == ("v1", "main", 172800, "gw.example.test", "fqdn")
    assert ike["dpd"] == {"timeout": 30, "interval": 60, "msg": "seq-notify-hash"}
    assert b["ipsecpolicy"]["pfs"] == "group16" and b["ipsecpolicy"]["lifetime_seconds"] == 7200
    g = hw_a.call("show_vgw", vgw_id=gw["id"]).json["vpn_gateway"]
    assert g["used_connection_group"] >= 1


def test_connection_bgp_peer_in_show(hw_a, gw):
    """Show/list return `bgp_peer` for BGP connections (SDK ResponseVpnConnection.bgp_peer)."""
    cgw = create_cgw(hw_a, bgp_asn=65201)
    b = conn(hw_a, gw, cgw, style="bgp", tunnel_local_address="169.254.57.1/30",
             tunnel_peer_address="169.254.57.2/30")
    s = hw_a.call("show_vpn_connection", vpn_connection_id=b["id"]).json["vpn_connection"]
    assert "bgp_peer" in s, f"no bgp_peer in {sorted(s)}"
    assert s["bgp_peer"]["peer_asn"] == 65201 and s["bgp_peer"]["peer_ip_address"] == "169.254.57.2"


def test_connection_batch_create_two(hw_a):
    """The documented use of batch-create: one connection on each EIP of an ACTIVE gateway (reference 4.1.3.2)."""
    g = create_vgw(hw_a)
    cgw = create_cgw(hw_a)
    items = [conn_body(g, cgw, eip_index=1, peer_subnets=["172.29.1.0/24"]),
             conn_body(g, cgw, eip_index=2, peer_subnets=["172.29.1.0/24"])]
    r = hw_a.call("batch_create_vpn_connection", {"vpn_connections": items})
    assert r.status == 201
    made = r.json["vpn_connections"]
    assert [c["vgw_ip"] for c in made] == [g["eip1"]["id"], g["eip2"]["id"]]
    assert [c["name"] for c in made] == [items[0]["name"], items[1]["name"]]
    wait_vgw(hw_a, g["id"])
    assert hw_a.call("list_vpn_connections", vgw_id=g["id"]).json["total_count"] == 2


def test_connection_batch_create_one(hw_a):
    g = create_vgw(hw_a)
    cgw = create_cgw(hw_a)
    r = hw_a.call("batch_create_vpn_connection", {"vpn_connections": [conn_body(g, cgw, peer_subnets=["172.29.3.0/24"])]})
    assert r.status == 201 and len(r.json["vpn_connections"]) == 1
    assert r.json["vpn_connections"][0]["peer_subnets"] == ["172.29.3.0/24"]
    wait_vgw(hw_a, g["id"])


def test_connection_batch_create_all_or_nothing(hw_a):
    g2 = create_vgw(hw_a)
    cgw = create_cgw(hw_a)
    bad = [conn_body(g2, cgw, peer_subnets=["172.29.2.0/24"]),
           conn_body(g2, cgw, eip_index=2, peer_subnets=["not-a-cidr"])]
    hw_a.expect("batch_create_vpn_connection", "VPN.0001", 400, {"vpn_connections": bad})
    assert hw_a.call("list_vpn_connections", vgw_id=g2["id"]).json["vpn_connections"] == [], "nothing created"
    assert hw_a.call("show_vgw", vgw_id=g2["id"]).json["vpn_gateway"]["used_connection_number"] == 0


def test_connection_list_filters(hw_a):
    g = create_vgw(hw_a)
    cgw = create_cgw(hw_a)
    c1 = conn(hw_a, g, cgw, eip_index=1)
    c2 = conn(hw_a, g, cgw, eip_index=2)
    r = hw_a.call("list_vpn_connections", vgw_id=g["id"])
    assert r.status == 200 and {c["id"] for c in r.json["vpn_connections"]} == {c1["id"], c2["id"]}
    by_ip = hw_a.call("list_vpn_connections", vgw_ip=g["eip2"]["id"]).json["vpn_connections"]
    assert [c["id"] for c in by_ip] == [c2["id"]]
    by_id = hw_a.call("list_vpn_connections", vpn_id=c1["id"]).json["vpn_connections"]
    assert [c["id"] for c in by_id] == [c1["id"]]
    assert all("status" in c for c in r.json["vpn_connections"])


def test_connection_update_partial_patches(hw_a, gw):
    cgw = create_cgw(hw_a)
    c = conn(hw_a, gw, cgw, ikepolicy={"encryption_algorithm": "aes-256", "dh_group": "group14"},
             ipsecpolicy={"encryption_algorithm": "aes-256", "pfs": "group14"})
    r = hw_a.call("update_vpn_connection", {"vpn_connection": {
        "name": "conn.renamed", "peer_subnets": ["172.28.5.0/24", "172.28.6.0/24"], "psk": "Xyz98765!abc",
        "ikepolicy": {"lifetime_seconds": 3600}, "ipsecpolicy": {"lifetime_seconds": 1800}}},
        vpn_connection_id=c["id"])
    assert r.status == 200
    u = r.json["vpn_connection"]
    wait_vgw(hw_a, gw["id"])
    assert "status" not in u and "psk" not in u
    assert u["name"] == "conn.renamed" and u["peer_subnets"] == ["172.28.5.0/24", "172.28.6.0/24"]
    assert (u["ikepolicy"]["lifetime_seconds"], u["ikepolicy"]["encryption_algorithm"], u["ikepolicy"]["dh_group"]) \
        == (3600, "aes-256", "group14"), "ikepolicy patch keeps the other values"
    assert (u["ipsecpolicy"]["lifetime_seconds"], u["ipsecpolicy"]["encryption_algorithm"],
            u["ipsecpolicy"]["pfs"]) == (1800, "aes-256", "group14"), "ipsecpolicy patch keeps the other values"
    s = hw_a.call("show_vpn_connection", vpn_connection_id=c["id"]).json["vpn_connection"]
    assert s["ikepolicy"] == u["ikepolicy"] and s["updated_at"] >= c["updated_at"]
    # the new PSK is what the exported peer configuration carries
    peer = hw_a.call("export_vpn_connection_peer_configuration", {"vendor": "strongSwan"},
                     vpn_connection_id=c["id"]).json["peer_config"]
    assert "Xyz98765!abc" in peer and PSK not in peer


def test_connection_delete_log_reset_sa_export_devices(hw_a, gw):
    cgw = create_cgw(hw_a)
    c = conn(hw_a, gw, cgw, peer_subnets=["172.27.3.0/24"])
    logs = hw_a.call("show_vpn_connection_log", vpn_connection_id=c["id"])
    assert logs.status == 200 and isinstance(logs.json["logs"], list) and logs.json["request_id"]
    for line in logs.json["logs"]:
        assert isinstance(line["time"], int) and isinstance(line["raw_message"], str)
    rs = hw_a.call("reset_vpn_connection", vpn_connection_id=c["id"])
    assert rs.status == 200 and rs.json["request_id"]
    sa = hw_a.call("list_connection_ipsec_sa", vpn_connection_id=c["id"])
    assert sa.status == 200 and isinstance(sa.json["sa_infos"], list)
    dev = hw_a.call("list_peer_configuration_supported_devices")
    assert dev.status == 200
    vendors = [d["vendor"] for d in dev.json["supported_devices"]]
    assert "strongSwan" in vendors
    for d in dev.json["supported_devices"]:
        assert d["vendor"] and d["platform"] and d["version"]
        ex = hw_a.call("export_vpn_connection_peer_configuration", {"vendor": d["vendor"], "platform": d["platform"],
                                                                     "version": d["version"]},
                       vpn_connection_id=c["id"])
        assert ex.status == 200
        text = ex.json["peer_config"]
        assert gw["eip1"]["ip_address"] in text and cgw["id_value"] in text, text[:500]
        assert "172.27.3.0/24" in text and PSK in text
    d = hw_a.call("delete_vpn_connection", vpn_connection_id=c["id"])
    assert d.status == 204
    hw_a.expect("show_vpn_connection", "VPN.0004", 404, vpn_connection_id=c["id"])
    wait_vgw(hw_a, gw["id"])


# ------------------------------------------------------------------------------------------------------------------
# monitors
# ------------------------------------------------------------------------------------------------------------------
def test_connection_monitor_crud(hw_a, gw):
    cgw = create_cgw(hw_a)
    c = conn(hw_a, gw, cgw)
    r = hw_a.call("create_connection_monitor", {"connection_monitor": {"vpn_connection_id": c["id"]}})
    assert r.status == 201
    m = r.json["connection_monitor"]
    assert "status" not in m
    assert (m["vpn_connection_id"], m["type"], m["proto_type"]) == (c["id"], "gateway", "icmp")
    assert m["source_ip"] == gw["eip1"]["ip_address"] and m["destination_ip"] == cgw["id_value"]
    s = hw_a.call("show_connection_monitor", connection_monitor_id=m["id"])
    assert s.status == 200 and s.json["connection_monitor"]["status"] == "ACTIVE"
    assert s.json["connection_monitor"]["id"] == m["id"]
    lst = hw_a.call("list_connection_monitors", vpn_connection_id=c["id"]).json["connection_monitors"]
    assert [x["id"] for x in lst] == [m["id"]]
    assert m["id"] in [x["id"] for x in hw_a.call("list_connection_monitors").json["connection_monitors"]]
    assert hw_a.call("show_vpn_connection", vpn_connection_id=c["id"]).json["vpn_connection"][
        "connection_monitor_id"] == m["id"]
    hw_a.expect("create_connection_monitor", "VPN.0001", 400, {"connection_monitor": {"vpn_connection_id": c["id"]}})
    d = hw_a.call("delete_connection_monitor", connection_monitor_id=m["id"])
    assert d.status == 204
    assert "connection_monitor_id" not in hw_a.call("show_vpn_connection", vpn_connection_id=c["id"]).json[
        "vpn_connection"]
    hw_a.expect("show_connection_monitor", "VPN.0004", 404, connection_monitor_id=m["id"])


# ------------------------------------------------------------------------------------------------------------------
# quotas
# ------------------------------------------------------------------------------------------------------------------
def quota_used(hw):
    r = hw.call("show_quotas_info")
    assert r.status == 200
    res = r.json["quotas"]["resources"]
    assert {x["type"] for x in res} >= {"customer_gateway", "vpn_connection", "vpn_gateway"}
    return {x["type"]: (x["used"], x["quota"]) for x in res}


def test_quotas_track_creates_and_deletes(hw_fresh):
    hw = hw_fresh()
    q0 = quota_used(hw)
    assert {k: v[0] for k, v in q0.items() if k in ("customer_gateway", "vpn_connection", "vpn_gateway")} == \
        {"customer_gateway": 0, "vpn_connection": 0, "vpn_gateway": 0}
    assert q0["vpn_gateway"][1] == 500 and q0["customer_gateway"][1] == 500, q0
    g = create_vgw(hw)
    cgw = create_cgw(hw)
    c = conn(hw, g, cgw)
    p = hwlib.create_p2c(hw)
    q1 = quota_used(hw)
    assert (q1["vpn_gateway"][0], q1["customer_gateway"][0], q1["vpn_connection"][0]) == (2, 1, 1), q1
    hw.call("delete_vpn_connection", vpn_connection_id=c["id"])
    wait_vgw(hw, g["id"])
    hw.call("delete_cgw", customer_gateway_id=cgw["id"])
    hw.call("delete_p2c_vgw", p2c_vgw_id=p["id"])
    hw.call("delete_vgw", vgw_id=g["id"])
    poll(lambda: quota_used(hw)["vpn_gateway"][0] == 0, "gateway quota released")
    q2 = quota_used(hw)
    assert (q2["customer_gateway"][0], q2["vpn_connection"][0]) == (0, 0), q2


# ------------------------------------------------------------------------------------------------------------------
# tags on the four resource types
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tag_world(server):
    hw = hwlib.Hw(server.create_tenant(uname("hwtags")), server.port)
    g = create_vgw(hw, name="tagged-gw-alpha")
    g_plain = create_vgw(hw, name="plain-gw-beta")
    cgw = create_cgw(hw, name="tagged-cgw")
    cgw_plain = create_cgw(hw, name="plain-cgw")
    c = conn(hw, g, cgw, name="tagged-conn")
    c_plain = conn(hw, g, cgw_plain, name="plain-conn")
    p = hwlib.create_p2c(hw, name="tagged-p2c")
    p_plain = hwlib.create_p2c(hw, name="plain-p2c")
    return hw, {"vpn-gateway": (g["id"], g_plain["id"], "tagged-gw-alpha"),
                "customer-gateway": (cgw["id"], cgw_plain["id"], "tagged-cgw"),
                "vpn-connection": (c["id"], c_plain["id"], "tagged-conn"),
                "p2c-vpn-gateways": (p["id"], p_plain["id"], "tagged-p2c")}


@pytest.mark.parametrize("rtype", ["vpn-gateway", "customer-gateway", "vpn-connection", "p2c-vpn-gateways"])
def test_tags_on_resource_type(tag_world, rtype):
    hw, ids = tag_world
    rid, plain, name = ids[rtype]
    r = hw.call("batch_create_resource_tags", {"tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "net"},
                                                        {"key": "novalue"}]},
                resource_type=rtype, resource_id=rid)
    assert r.status == 204
    shown = hw.call("show_resource_tags", resource_type=rtype, resource_id=rid)
    assert shown.status == 200
    assert sorted((t["key"], t["value"]) for t in shown.json["tags"]) == \
        [("env", "prod"), ("novalue", ""), ("team", "net")]
    # overwrite a value
    hw.call("batch_create_resource_tags", {"tags": [{"key": "env", "value": "staging"}]}, resource_type=rtype,
            resource_id=rid)
    hw.call("batch_create_resource_tags", {"tags": [{"key": "env", "value": "dev"}]}, resource_type=rtype,
            resource_id=plain)
    proj = hw.call("list_project_tags", resource_type=rtype)
    assert proj.status == 200
    kv = {t["key"]: sorted(t["values"]) for t in proj.json["tags"]}
    assert kv == {"env": ["dev", "staging"], "team": ["net"], "novalue": [""]}, kv
    f = hw.call("list_resources_by_tags", {"tags": [{"key": "team", "values": ["net"]}]}, resource_type=rtype)
    assert f.status == 200
    assert [x["resource_id"] for x in f.json["resources"]] == [rid] and f.json["total_count"] == 1
    assert f.json["resources"][0]["resource_name"] == name
    both = hw.call("list_resources_by_tags", {"tags": [{"key": "env", "values": []}]}, resource_type=rtype).json
    assert {x["resource_id"] for x in both["resources"]} == {rid, plain}
    cnt = hw.call("count_resources_by_tags", {"tags": [{"key": "env", "values": ["staging", "dev"]}]},
                  resource_type=rtype)
    assert cnt.status == 200 and cnt.json["total_count"] == 2
    m = hw.call("list_resources_by_tags", {"matches": [{"key": "resource_name", "value": name}]},
                resource_type=rtype).json
    assert [x["resource_id"] for x in m["resources"]] == [rid]
    # delete: a tag given with a different value stays; the others go
    d = hw.call("batch_delete_resource_tags", {"tags": [{"key": "team"}, {"key": "env", "value": "other"},
                                                        {"key": "novalue", "value": ""}]},
                resource_type=rtype, resource_id=rid)
    assert d.status == 204
    left = hw.call("show_resource_tags", resource_type=rtype, resource_id=rid).json["tags"]
    assert left == [{"key": "env", "value": "staging"}]
    hw.call("batch_delete_resource_tags", {"tags": [{"key": "env"}]}, resource_type=rtype, resource_id=rid)
    hw.call("batch_delete_resource_tags", {"tags": [{"key": "env"}]}, resource_type=rtype, resource_id=plain)
    untagged = hw.call("list_resources_by_tags", {"without_any_tag": True}, resource_type=rtype).json
    assert {rid, plain} <= {x["resource_id"] for x in untagged["resources"]}
    assert hw.call("count_resources_by_tags", {"without_any_tag": True}, resource_type=rtype).json["total_count"] \
        == untagged["total_count"]
    assert hw.call("list_project_tags", resource_type=rtype).json["tags"] == []


def test_tags_at_creation_are_visible_to_tag_api(hw_a):
    g = create_vgw(hw_a, tags=[{"key": "born", "value": "tagged"}])
    t = hw_a.call("show_resource_tags", resource_type="vpn-gateway", resource_id=g["id"]).json["tags"]
    assert t == [{"key": "born", "value": "tagged"}]
    p = hwlib.create_p2c(hw_a, tags=[{"key": "born", "value": "p2c"}])
    assert p["tags"] == [{"key": "born", "value": "p2c"}]
    t = hw_a.call("show_resource_tags", resource_type="p2c-vpn-gateways", resource_id=p["id"]).json["tags"]
    assert t == [{"key": "born", "value": "p2c"}]
    # a P2C gateway is not a vpn-gateway resource for the tag API
    hw_a.expect("show_resource_tags", "VPN.0004", 404, resource_type="vpn-gateway", resource_id=p["id"])
