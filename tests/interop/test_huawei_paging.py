"""Paging matrix for every marker-paged list of the Huawei dialect: N items, walked with limit=2 through
page_info.next_marker; every item exactly once, current_count per page, total_count on every page, no next_marker
on the last page. (The reference's limit/marker paging.)
"""
from __future__ import annotations

import pytest

import hwlib
from hwlib import create_cgw, create_group, create_p2c, create_policy, create_server, create_user, create_vgw, uname

N = 5


def setup_cgws(hw):
    return "list_cgws", "customer_gateways", {}, [create_cgw(hw)["id"] for _ in range(N)]


def setup_connections(hw):
    g = create_vgw(hw)
    ids = []
    for _ in range(N):
        ids.append(hwlib.create_conn(hw, g, create_cgw(hw))["id"])
        hwlib.wait_vgw(hw, g["id"])
    return "list_vpn_connections", "vpn_connections", {}, ids


def setup_p2c(hw):
    return "list_p2c_vgws", "p2c_vpn_gateways", {}, [create_p2c(hw, wait=False)["id"] for _ in range(N)]


def setup_servers(hw):
    gws = [create_p2c(hw)["id"] for _ in range(N)]
    return "list_vpn_servers_by_project", "vpn_servers", {}, [create_server(hw, g, wait=False)["id"] for g in gws]


def _server(hw):
    return create_server(hw, create_p2c(hw)["id"])["id"]


def setup_users(hw):
    sid = _server(hw)
    return "list_vpn_users", "users", {"vpn_server_id": sid}, [create_user(hw, sid)["id"] for _ in range(N)]


def setup_groups(hw):
    sid = _server(hw)
    default = hw.call("list_vpn_user_groups", vpn_server_id=sid).json["user_groups"][0]["id"]
    return "list_vpn_user_groups", "user_groups", {"vpn_server_id": sid}, \
        [default] + [create_group(hw, sid)["id"] for _ in range(N - 1)]


def setup_users_in_group(hw):
    sid = _server(hw)
    g = create_group(hw, sid)
    users = [create_user(hw, sid)["id"] for _ in range(N)]
    create_user(hw, sid)  # not a member
    hw.call("add_vpn_users_to_group", {"users": [{"id": u} for u in users]}, vpn_server_id=sid, group_id=g["id"])
    return "list_vpn_users_in_group", "users", {"vpn_server_id": sid, "group_id": g["id"]}, users


def setup_policies(hw):
    sid = _server(hw)
    g = create_group(hw, sid)
    return "list_vpn_access_policies", "access_policies", {"vpn_server_id": sid}, \
        [create_policy(hw, sid, g["id"])["id"] for _ in range(N)]


SETUPS = {"cgws": setup_cgws, "connections": setup_connections, "p2c_gateways": setup_p2c,
          "servers_by_project": setup_servers, "users": setup_users, "groups": setup_groups,
          "users_in_group": setup_users_in_group, "policies": setup_policies}


def test_every_paged_list_has_a_row():
    """Every SDK list whose request takes a marker is in the matrix (jobs and certificate lists take one but answer
    no page_info: they are checked by test_unpaged_lists_accept_limit)."""
    import huaweicloudsdkvpn.v5 as vpn
    paged = sorted(n for n, _m, _p in hwlib.dialect_ops()
                   if hasattr(vpn, hwlib.camel(n) + "Request")
                   and "marker" in getattr(vpn, hwlib.camel(n) + "Request").openapi_types)
    expected = {"list_cgws", "list_vpn_connections", "list_p2c_vgws", "list_vpn_servers_by_project", "list_vpn_users",
                "list_vpn_user_groups", "list_vpn_users_in_group", "list_vpn_access_policies",
                "list_vpn_gateway_jobs", "list_p2c_vpn_gateway_jobs", "list_vpn_gateway_certificates",
                "show_vpn_gateway_routing_table"}
    assert set(paged) == expected, sorted(set(paged) ^ expected)


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_paging(server, name):
    hw = hwlib.Hw(server.create_tenant(uname("hwpg")), server.port)
    op, key, params, ids = SETUPS[name](hw)
    assert len(set(ids)) == N
    items, pages = hwlib.walk_pages(hw, op, key, limit=2, **params)
    seen = [x["id"] for x in items]
    assert sorted(seen) == sorted(ids), f"{op}: every item exactly once (got {seen})"
    assert len(pages) == 3, [p["page_info"] for p in pages]
    for i, p in enumerate(pages):
        assert p["page_info"]["current_count"] == len(p[key])
        assert p["total_count"] == N, f"{op}: total_count is the whole list on every page"
        if i < len(pages) - 1:
            assert len(p[key]) == 2 and p["page_info"]["next_marker"]
        else:
            assert len(p[key]) == 1 and "next_marker" not in p["page_info"]
    everything = hw.call(op, **params).json
    assert sorted(x["id"] for x in everything[key]) == sorted(ids) and "next_marker" not in everything["page_info"]
    exact = hw.call(op, limit=N, **params).json
    assert exact["page_info"]["current_count"] == N
    if "next_marker" in exact["page_info"]:
        tail = hw.call(op, limit=N, marker=exact["page_info"]["next_marker"], **params).json
        assert tail[key] == [] and tail["page_info"]["current_count"] == 0


def test_unpaged_lists_accept_limit(server):
    hw = hwlib.Hw(server.create_tenant(uname("hwpj")), server.port)
    gws = [create_vgw(hw)["id"] for _ in range(3)]
    jobs = [hw.call("upgrade_vpn_gateway", {"action": "start"}, vgw_id=g).json["job_id"] for g in gws]
    first = hw.call("list_vpn_gateway_jobs", limit=2).json["jobs"]
    assert len(first) == 2
    rest = hw.call("list_vpn_gateway_jobs", limit=2, marker=first[-1]["id"]).json["jobs"]
    assert sorted(j["id"] for j in first + rest) == sorted(jobs)
