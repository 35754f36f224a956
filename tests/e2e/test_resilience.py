"""The data plane converges back: a killed charon, a restarted openvgw, a deleted gateway."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

import vgwlib
from conftest import NS_PREFIX, ONPREM_NET, VPC_CIDR, VPC_HOST
from lab import Lab, sh
from test_dataplane import create_connection, peer_down, peer_up, wait_until


def gateway_namespace(gw: str) -> str:
    return NS_PREFIX + gw


def daemons_in(ns: str, name: str) -> list:
    pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == name:
                    out.append(int(pid))
        except OSError:
            pass
    return out


def namespaces() -> list:
    return [l.split()[0] for l in sh("ip", "netns", "list").stdout.splitlines() if l.strip()]


@pytest.mark.kernel_ipsec
def test_killed_charon_restart_and_delete(api, server, site, customer_gateway, lab):
    from test_dataplane import SSL_POOL, IPSEC_POOL  # noqa: F401  (same VPC routes as the main gateway)
    from conftest import VPC
    body = api.call("CreateVpnGateway", {"VpcId": VPC, "Bandwidth": 5, "Name": "e2e-resilience"})
    gw = body["VpnGatewayId"]
    vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
    inside = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "e2e-resilience"})["IntranetIp"]
    site.route_vpc_to_gateway(inside, ONPREM_NET)
    ns = gateway_namespace(gw)
    assert ns in namespaces()
    vco = create_connection(api, gw, customer_gateway, VPC_CIDR, ONPREM_NET, EffectImmediately=True,
                            IkeConfig=json.dumps({"IkeVersion": "ikev2"}))
    peer_up(site, api, vco, "res")
    try:
        assert Lab.wait_ping(site.onprem, VPC_HOST, 30), site.charon.log_tail()

        # 1. kill the gateway's charon: the reconciler notices and the tunnel comes back by itself.
        [charon] = daemons_in(ns, "charon-systemd")
        os.kill(charon, signal.SIGKILL)
        t0 = time.monotonic()
        assert wait_until(lambda: daemons_in(ns, "charon-systemd") not in ([], [charon]), 20), "charon not restarted"
        assert Lab.wait_ping(site.onprem, VPC_HOST, 40), site.charon.log_tail()
        print(f"killed charon -> pinging again in {time.monotonic() - t0:.1f} s")

        # 2. restart openvgw: no duplicate namespaces or daemons; the tunnel still carries packets.
        before_ns = sorted(namespaces())
        before_charon = daemons_in(ns, "charon-systemd")
        server.stop()
        server.start()
        vgwlib.wait_gateway_status(api, gw, "active", timeout=30)
        time.sleep(3)  # a few reconcile passes
        assert sorted(namespaces()) == before_ns
        assert daemons_in(ns, "charon-systemd") == before_charon, "restart duplicated or replaced charon"
        assert Lab.wait_ping(site.onprem, VPC_HOST, 20)
    finally:
        peer_down(site, "res")

    # 3. delete the gateway: its namespace, daemons, veths and routes go with it.
    links_before = sh("ip", "-o", "link", "show").stdout
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    vgwlib.wait_gateway_gone(api, gw, timeout=60)
    assert ns not in namespaces()
    assert not any(pid for pid in daemons_in(ns, "charon-systemd"))
    links_after = sh("ip", "-o", "link", "show").stdout
    assert links_after.count("ovgw") < links_before.count("ovgw"), "the gateway's veths are still there"
    assert not Lab.ping(site.onprem, VPC_HOST)
