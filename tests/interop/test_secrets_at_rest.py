"""Secrets at rest, through the running service: pre-shared keys, client private keys and access-key secrets are
sealed in the store and in backups; the master key rotates without losing anything; a wrong key stops the service
at start instead of failing every request.

Runs on SQLite (the server generates its own key in the data dir) and, under OPENVGW_TEST_STORE_URL, on
PostgreSQL (the key comes from OPENVGW_MASTER_KEY, as every replica's must).
"""
from __future__ import annotations

import base64
import os
import stat
import subprocess
import uuid
from typing import Dict, List

import pytest

import vgwlib
from conftest import MAIN_CONFIG
from ownserver import finish, started


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def srv(tmp_path_factory):
    s = started(tmp_path_factory, "openvgw-secrets", MAIN_CONFIG)
    yield s
    finish(s)


def admin(srv, *args: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [str(srv.bin), "admin", *args, "--data-dir", str(srv.data_dir), "--config", str(srv.config_path),
           *srv.store_args()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    assert r.returncode == 0, f"`{' '.join(args)}` exited {r.returncode}: {r.stderr}"
    return r


def stored_bytes(srv) -> List[bytes]:
    """Every file of the SQLite store (database, WAL); nothing on PostgreSQL (the backup covers it)."""
    if srv.sqlite_file is None:
        return []
    return [p.read_bytes() for p in srv.data_dir.iterdir() if p.name.startswith("openvgw.db")]


def test_secrets_are_sealed_and_survive_a_key_rotation(srv, tmp_path, monkeypatch):
    env_key = os.environ.get("OPENVGW_MASTER_KEY")
    if srv.sqlite_file is not None and env_key is None:
        key_file = srv.data_dir / "master.key"
        assert key_file.exists(), "a SQLite deployment without a key generates one in its data dir"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, oct(key_file.stat().st_mode)
        old_key = key_file.read_text().strip()
    else:
        assert env_key, "a PostgreSQL store needs OPENVGW_MASTER_KEY (scripts/test sets it)"
        old_key = env_key

    tenant = srv.create_tenant(vgwlib.unique_name("sec"))

    def current() -> vgwlib.Api:
        """A client for the server's current port (a restart picks a fresh one)."""
        client = vgwlib.make_tea_client(tenant["access_key_id"], tenant["access_key_secret"], srv.port, "v3")
        return vgwlib.Api(client, "v3", tenant, srv.port)

    api = current()
    psk = "psk-" + uuid.uuid4().hex
    gw, _ = vgwlib.create_gateway(api, ssl=True)
    cgw, _ = vgwlib.create_cgw(api)
    vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw,
                                           "LocalSubnet": "10.1.0.0/16", "RemoteSubnet": "10.2.0.0/16",
                                           "IkeConfig": f'{{"Psk":"{psk}"}}'})["VpnConnectionId"]
    vgwlib.wait_gateway_status(api, gw)
    sid = api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.160.0/24",
                                          "LocalSubnet": "10.16.0.0/16"})["SslVpnServerId"]
    vgwlib.wait_gateway_status(api, gw)
    cert = api.call("CreateSslVpnClientCert", {"SslVpnServerId": sid, "Name": "c1"})["SslVpnClientCertId"]
    vgwlib.wait_gateway_status(api, gw)
    client_key = api.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": cert})["ClientKey"]
    key_body = "".join(client_key.strip().splitlines()[1:-1])[:60]
    assert len(key_body) == 60, client_key[:100]

    def psk_now() -> str:
        return current().call("DescribeVpnConnection", {"VpnConnectionId": vco})["IkeConfig"]["Psk"]

    assert psk_now() == psk
    clear = [psk.encode(), tenant["access_key_secret"].encode(), key_body.encode()]

    # Nothing in clear in the store's files (SQLite) or in a backup (either backend).
    for blob in stored_bytes(srv):
        for c in clear:
            assert c not in blob, f"{c[:12]!r}… is stored in clear"
    env = dict(os.environ)
    if env_key is None:
        env.pop("OPENVGW_MASTER_KEY", None)
    dump = tmp_path / "backup.jsonl"
    admin(srv, "backup", "--output", str(dump), env=env)
    text = dump.read_bytes()
    for c in clear:
        assert c not in text, f"{c[:12]!r}… is in the backup in clear"
    assert b"ovs1:" in text

    # Rotation without losing a secret: new key first, the old one still opens; reseal; the old key goes.
    srv.stop()
    k2 = new_key()
    monkeypatch.setenv("OPENVGW_MASTER_KEY", k2)
    monkeypatch.setenv("OPENVGW_PREVIOUS_MASTER_KEYS", old_key)
    srv.start()
    assert psk_now() == psk
    r = admin(srv, "reseal", env=dict(os.environ))
    assert "resealed" in r.stderr, r.stderr
    srv.stop()
    monkeypatch.delenv("OPENVGW_PREVIOUS_MASTER_KEYS")
    srv.start()
    assert psk_now() == psk, "a secret was lost in the rotation"
    assert current().call("DescribeSslVpnClientCert", {"SslVpnClientCertId": cert})["ClientKey"] == client_key

    # A wrong key: the service refuses to start, naming the problem, rather than failing every request.
    srv.stop()
    monkeypatch.setenv("OPENVGW_MASTER_KEY", new_key())
    cmd = [str(srv.bin), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(srv.data_dir),
           "--config", str(srv.config_path), *srv.store_args()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode != 0, "serve started with a master key that opens nothing"
    assert "master key" in r.stderr, r.stderr[-500:]
    monkeypatch.setenv("OPENVGW_MASTER_KEY", k2)
    srv.start()
    assert psk_now() == psk
