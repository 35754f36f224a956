"""Operability: secrets never reach the logs, every request is logged with its id, SIGTERM shuts down cleanly,
and `tenant create` works against a running server whose new key is accepted at once."""
from __future__ import annotations

import json
import os
import signal
import subprocess

import vgwlib
from conftest import MAIN_CONFIG, Server


def test_secrets_never_logged(server, tenant_a, tea_v3):
    api = tea_v3
    psk = "Psk-" + vgwlib.uid() + "-never-logged"
    auth_key = "Bgp" + vgwlib.uid()
    gw, _ = vgwlib.create_gateway(api, ssl=True)
    cgw, _ = vgwlib.create_cgw(api, Asn="65010", AuthKey=auth_key)
    vco = vgwlib.create_connection(api, gw, cgw, IkeConfig=json.dumps({"Psk": psk}))
    assert api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]["IkeConfig"]["Psk"] == psk
    server_psk = "Srv" + vgwlib.uid()
    api.call("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.20.0.0/16", "ClientIpPool": "10.30.0.0/24",
                                   "Psk": server_psk})
    vgwlib.wait_gateway_status(api, gw, "active")
    # A failing signature must not leak the string-to-sign (it may hold a PSK) into the log either.
    bad = vgwlib.acs3_call(server.port, tenant_a["access_key_id"], "wrong-secret", "ModifyVpnConnectionAttribute",
                           {"RegionId": vgwlib.DEFAULT_REGION, "VpnConnectionId": vco,
                            "IkeConfig": json.dumps({"Psk": psk + "x"})})
    assert bad.status == 400
    log = server.stderr_path.read_text(errors="replace")
    for secret in (psk, auth_key, server_psk, tenant_a["access_key_secret"]):
        assert secret not in log, "a secret appeared in the server log"
    # Every request line is structured JSON carrying its request id.
    ids = [json.loads(l).get("request_id") for l in log.splitlines() if l.startswith("{") and '"request"' in l]
    assert ids and all(ids), "request log lines without request ids"


def test_tenant_created_while_serving_is_accepted_at_once(server):
    t = server.create_tenant("live-" + vgwlib.uid())
    api = server.api(t)
    body = api.call("DescribeVpnGateways", {})
    assert body["TotalCount"] == 0
    assert set(t["projects"]) == {"cn-north-4", "cn-south-1"}


def test_sigterm_shuts_down_gracefully(tmp_path):
    srv = Server("openvgw-sigterm", tmp_path, MAIN_CONFIG, "198.18.0.0/20")
    srv.start()
    try:
        t = srv.create_tenant("t")
        srv.api(t).call("DescribeVpnGateways", {})
        proc = srv.proc
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, srv.tail()
        assert "shutting down" in srv.stderr_path.read_text()
    finally:
        srv.stop()


def test_a_signed_request_replayed_after_a_restart_is_refused(tmp_path):
    """Used nonces are kept in the store (SQLite here, PostgreSQL when the suite runs on it), not in memory."""
    srv = Server("openvgw-restart", tmp_path, MAIN_CONFIG, "198.18.0.0/20")
    srv.start()
    try:
        t = srv.create_tenant("t")
        target, headers = vgwlib.acs3_prepare(srv.port, t["access_key_id"], t["access_key_secret"], "CreateVpnGateway",
                                              {"RegionId": vgwlib.DEFAULT_REGION, "VpcId": vgwlib.unique_vpc(),
                                               "Bandwidth": 5})
        first = vgwlib.http_request(srv.port, "POST", target, headers)
        assert first.status == 200, first
        srv.kill()  # not even a clean shutdown
        srv.start()
        again = vgwlib.http_request(srv.port, "POST", target, headers)
        assert again.status == 400 and again.json()["Code"] == "SignatureNonceUsed", again
        listed = srv.api(t).call("DescribeVpnGateways", {})
        assert listed["TotalCount"] == 1, "the replayed request created a second gateway"
    finally:
        srv.stop()


def test_backup_while_serving_restores_to_a_service_that_answers_the_same(server, tmp_path):
    """`admin backup` of the running server, `admin restore` into a new store, a server on it: same answers."""
    t = server.create_tenant("bk-" + vgwlib.uid())
    api = server.api(t)
    gw, _ = vgwlib.create_gateway(api, ssl=True)
    cgw, _ = vgwlib.create_cgw(api)
    api.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                              "Tag": [{"Key": "env", "Value": "prod"}]})
    dump = tmp_path / "backup.jsonl"
    r = subprocess.run([str(server.bin), "admin", "backup", "--output", str(dump), "--data-dir", str(server.data_dir),
                        "--config", str(server.config_path), *server.store_args()],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert oct(dump.stat().st_mode & 0o777) == "0o600"
    restored = Server("openvgw-restored", tmp_path / "restored", MAIN_CONFIG, "198.18.0.0/20")
    # The backup holds secrets sealed and not the key: the restored service needs the original master key (the
    # environment's on PostgreSQL; the one the SQLite server generated in its data dir otherwise).
    assert b"ovs1:" in dump.read_bytes()
    key_file = server.data_dir / "master.key"
    if "OPENVGW_MASTER_KEY" not in os.environ:
        assert key_file.exists(), "the SQLite server generated no master key"
        (restored.data_dir / "master.key").write_bytes(key_file.read_bytes())
        os.chmod(restored.data_dir / "master.key", 0o600)
    r = subprocess.run([str(restored.bin), "admin", "restore", "--input", str(dump), "--data-dir",
                        str(restored.data_dir), "--config", str(restored.config_path), *restored.store_args()],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    restored.start()
    try:
        again = restored.api(t)
        for action, params in [("DescribeVpnGateways", {}), ("DescribeVpnGateway", {"VpnGatewayId": gw}),
                               ("DescribeCustomerGateways", {}), ("DescribeCustomerGateway", {"CustomerGatewayId": cgw}),
                               ("ListTagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw]})]:
            want, got = api.call(action, params), again.call(action, params)
            want.pop("RequestId", None)
            got.pop("RequestId", None)
            assert got == want, action
        # A restore refuses a store that is not empty.
        r = subprocess.run([str(restored.bin), "admin", "restore", "--input", str(dump), "--data-dir",
                            str(restored.data_dir), "--config", str(restored.config_path), *restored.store_args()],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "not empty" in r.stderr, r.stderr
    finally:
        restored.stop()
