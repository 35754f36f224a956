"""The operator commands (`openvgw tenant …`, `openvgw admin …`) against a running server's store, from another
process as an operator would run them: every command explains itself, tenants show their state, keys and usage,
disabling a tenant shuts its keys and users out of both APIs within a second and enabling lets them back, and a
rotated key is replaced in one step."""
from __future__ import annotations

import json
import re
import subprocess
import time
from typing import List

import pytest

import hwlib
import vgwlib
from hwlib import HwCallError


def _commands(bin_path: str, *path: str) -> List[str]:
    """The subcommands `openvgw <path> --help` lists (clap's "Commands:" section), without `help`."""
    out = subprocess.run([bin_path, *path, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    section = out.stdout.split("Commands:", 1)
    if len(section) < 2:
        return []
    names = []
    for line in section[1].split("\n\n", 1)[0].splitlines():
        m = re.match(r"^  (\S+)\s", line)
        if m and m.group(1) != "help":
            names.append(m.group(1))
    return names


def test_every_command_explains_itself(server):
    """`--help` of every command and subcommand says what it does (a new command without a doc comment fails)."""
    bin_path = str(server.bin)
    seen = []
    pending = [[c] for c in _commands(bin_path)]
    assert {"serve", "tenant", "admin", "peer-config"} <= {p[0] for p in pending}, pending
    while pending:
        path = pending.pop()
        out = subprocess.run([bin_path, *path, "--help"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, f"{path}: {out.stderr}"
        about = out.stdout.split("\n\n", 1)[0].strip()
        assert about and not about.startswith("Usage:"), f"`openvgw {' '.join(path)}` has no description:\n{out.stdout}"
        seen.append(" ".join(path))
        pending.extend(path + [c] for c in _commands(bin_path, *path))
    for cmd in ("tenant list", "tenant show", "tenant disable", "tenant enable", "tenant delete", "tenant keys",
                "tenant rotate-key", "tenant create-key", "tenant delete-key", "admin backup", "admin restore",
                "admin gateway"):
        assert cmd in seen, (cmd, seen)


def test_tenant_list_and_show_report_state_keys_and_usage(server):
    t = server.create_tenant(vgwlib.unique_name("ops"))
    api = server.api(t)
    vgwlib.create_cgw(api)
    vgwlib.create_cgw(api)
    gw, _ = vgwlib.create_gateway(api)
    listed = json.loads(server.run_cli("tenant", "list", "--json").stdout)
    mine = [r for r in listed if r["tenant_id"] == t["tenant_id"]]
    assert len(mine) == 1, listed
    r = mine[0]
    assert (r["name"], r["disabled"]) == (t["name"], False), r
    assert [k["access_key_id"] for k in r["access_keys"]] == [t["access_key_id"]], r
    assert "access_key_secret" not in json.dumps(listed) and t["access_key_secret"] not in json.dumps(listed)
    assert r["usage"].get("customer_gateway") == 2 and r["usage"].get("vpn_gateway") == 1, r["usage"]

    table = server.run_cli("tenant", "list")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "STATE", "KEYS", "RESOURCES", "CREATED"], header
    row = next(l for l in rows if t["tenant_id"] in l)
    assert row.split()[:4] == [t["name"], t["tenant_id"], "enabled", "1"], row
    assert "customer_gateway=2" in row and "vpn_gateway=1" in row, row
    assert t["access_key_secret"] not in table.stdout

    shown = json.loads(server.run_cli("tenant", "show", "--tenant", t["name"], "--json").stdout)
    assert shown == r, (shown, r)
    text = server.run_cli("tenant", "show", "--tenant", t["tenant_id"]).stdout
    assert f"key:       {t['access_key_id']}" in text and "state:     enabled" in text, text
    missing = server.run_cli("tenant", "show", "--tenant", "no-such-tenant")
    assert missing.returncode != 0 and "no tenant no-such-tenant" in missing.stderr
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})


def test_a_disabled_tenant_is_shut_out_of_both_apis_until_enabled(server):
    t = server.create_tenant(vgwlib.unique_name("off"))
    ali = server.api(t)
    hw = hwlib.Hw(t, server.port)
    ali.call("DescribeVpnGateways", {})
    hw.call("list_vgws")
    off = server.cli("tenant", "disable", "--tenant", t["name"])
    assert off == {"tenant_id": t["tenant_id"], "name": t["name"], "disabled": True}, off
    time.sleep(1.0)  # the key cache's bound (KEY_CACHE_TTL); slower machines only wait longer than needed
    for mode in ("v3", "v2"):
        e = server.api(t, mode).error("DescribeVpnGateways", {}, "InvalidAccessKeyId.Inactive", 400)
        assert "disabled" in (e.data or {}).get("Message", ""), e.data
    with pytest.raises(HwCallError, match=r"401 APIGW\.0301 .*is disabled"):
        hw.call("list_vgws")
    # Only a correctly signed request learns that the key is disabled.
    wrong = vgwlib.Api(vgwlib.make_tea_client(t["access_key_id"], t["access_key_secret"] + "x", server.port, "v3"),
                       "v3", t, server.port)
    wrong.error("DescribeVpnGateways", {}, "SignatureDoesNotMatch", 400)
    listed = {r["tenant_id"]: r for r in json.loads(server.run_cli("tenant", "list", "--json").stdout)}
    assert listed[t["tenant_id"]]["disabled"] is True

    assert server.cli("tenant", "enable", "--tenant", t["tenant_id"])["disabled"] is False
    time.sleep(1.0)
    ali.call("DescribeVpnGateways", {})
    hw.call("list_vgws")
    r = server.run_cli("tenant", "disable", "--tenant", "no-such-tenant")
    assert r.returncode != 0 and "no tenant no-such-tenant" in r.stderr


def test_rotating_a_key_replaces_it_in_one_step(server):
    t = server.create_tenant(vgwlib.unique_name("rot"))
    old = server.api(t)
    old.call("DescribeVpnGateways", {})
    new_key = server.cli("tenant", "rotate-key", "--access-key-id", t["access_key_id"])
    assert new_key["replaced"] == t["access_key_id"] and new_key["tenant_id"] == t["tenant_id"], new_key
    assert new_key["access_key_id"] != t["access_key_id"] and len(new_key["access_key_secret"]) >= 30
    keys = json.loads(server.run_cli("tenant", "keys", "--tenant", t["name"], "--json").stdout)
    assert [k["access_key_id"] for k in keys] == [new_key["access_key_id"]], keys
    table = server.run_cli("tenant", "keys", "--tenant", t["tenant_id"]).stdout.splitlines()
    assert table[0].split() == ["ACCESS", "KEY", "ID", "CREATED"] and table[1].split()[0] == new_key["access_key_id"]
    time.sleep(1.0)
    old.error("DescribeVpnGateways", {}, "InvalidAccessKeyId.NotFound")
    server.api({**t, **new_key}).call("DescribeVpnGateways", {})
    again = server.run_cli("tenant", "rotate-key", "--access-key-id", t["access_key_id"])
    assert again.returncode != 0 and "no access key" in again.stderr


def test_a_tenant_is_deleted_only_once_it_holds_nothing(server):
    t = server.create_tenant(vgwlib.unique_name("del"))
    api = server.api(t)
    cgw, _ = vgwlib.create_cgw(api)
    refused = server.run_cli("tenant", "delete", "--tenant", t["name"])
    assert refused.returncode != 0 and "still holds resources (customer_gateway=1)" in refused.stderr, refused.stderr
    api.call("DescribeVpnGateways", {})  # nothing was taken away
    api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})
    assert server.cli("tenant", "delete", "--tenant", t["tenant_id"]) == {"deleted": t["tenant_id"], "name": t["name"]}
    time.sleep(1.0)
    api.error("DescribeVpnGateways", {}, "InvalidAccessKeyId.NotFound")
    assert t["tenant_id"] not in server.run_cli("tenant", "list").stdout
    gone = server.run_cli("tenant", "delete", "--tenant", t["tenant_id"])
    assert gone.returncode != 0 and "no tenant" in gone.stderr
    # The name is free again.
    again = server.create_tenant(t["name"])
    server.api(again).call("DescribeVpnGateways", {})
