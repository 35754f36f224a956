#!/usr/bin/env python3
"""Data-plane benchmark (root): real tunnels created through the Alibaba SDK against `openvgw serve --dataplane netns`.

Prints:
  * time from CreateVpnConnection to the first ping through the tunnel (several runs);
  * time from `serve` start to all tunnels up, with N connections on one gateway whose data plane is gone
    (namespace deleted while openvgw was down, as after a host reboot);
  * TCP throughput (iperf3) through the tunnel vs. plain routing between the same namespaces.
All traffic stays inside namespaces this script creates (203.0.113.0/24 on the lab's public bridge).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "interop"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))  # first: its conftest is the one meant here

import vgwlib  # noqa: E402
from conftest import (CGW_IP, ONPREM_HOST, ONPREM_NET, PUB_BRIDGE, VPC, VPC_BRIDGE, VPC_CIDR, VPC_HOST,  # noqa: E402
                      Server, Site, become_subreaper, reap_orphans, remove_gateway_namespaces, NS_PREFIX)
from lab import Charon, Lab, kernel_has_esp, sh, swanctl_from_download  # noqa: E402


def ms(t0: float) -> float:
    return (time.monotonic() - t0) * 1000


def api_for(server: Server) -> vgwlib.Api:
    t = server.tenant("bench")
    return vgwlib.Api(vgwlib.make_tea_client(t["access_key_id"], t["access_key_secret"], server.port, "v3"),
                      "v3", t, server.port, "cn-hangzhou")


def first_ping_runs(api, site, gw: str, cgw: str, runs: int) -> list:
    out = []
    for i in range(runs):
        t0 = time.monotonic()
        vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": VPC_CIDR,
                                               "RemoteSubnet": ONPREM_NET, "EffectImmediately": True,
                                               "IkeConfig": json.dumps({"IkeVersion": "ikev2"})})["VpnConnectionId"]
        cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
        site.charon.load(swanctl_from_download(cfg, f"b{i}", encap=not site.kernel_esp))
        # Short probe timeouts so the figure is not rounded up to a whole ping timeout.
        while not Lab.ping(site.onprem, VPC_HOST, wait_s=0.2):
            if ms(t0) > 60_000:
                raise RuntimeError("no ping within 60 s")
        out.append(ms(t0))
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        site.charon.swanctl("--terminate", "--ike", f"b{i}", "--force", check=False)
        site.charon.load("")
    return out


def many_tunnels(api, server, lab, site, gw: str, n: int) -> float:
    """N customer gateways (one peer namespace holding N public addresses), N connections on one gateway."""
    peer_ns = lab.netns("many")
    lab.attach(peer_ns, "pub0", PUB_BRIDGE, "203.0.113.150/24")
    conns = []
    conf = ["connections {"]
    secrets = ["secrets {"]
    peer = Charon(lab, peer_ns, "many-charon", site.kernel_esp)
    whole = lambda: "\n".join(conf) + "\n}\n" + "\n".join(secrets) + "\n}\n"
    for i in range(n):
        ip = f"203.0.113.{150 + i}"
        if i:
            sh("ip", "-n", peer_ns, "addr", "add", f"{ip}/24", "dev", "pub0")
        net = f"172.18.{i}.0/24"
        sh("ip", "-n", peer_ns, "addr", "add", f"172.18.{i}.1/24", "dev", "lo")
        cgw = api.call("CreateCustomerGateway", {"IpAddress": ip})["CustomerGatewayId"]
        vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": VPC_CIDR,
                                               "RemoteSubnet": net, "EffectImmediately": True,
                                               "IkeConfig": json.dumps({"IkeVersion": "ikev2"})})["VpnConnectionId"]
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
        one = swanctl_from_download(cfg, f"m{i}", encap=not site.kernel_esp)
        body = one.split("secrets {")
        conf.append(body[0].strip()[len("connections {"):-1].replace("start_action = start", "start_action = trap"))
        secrets.append(body[1].strip()[:-1])
        conns.append(vco)
        peer.load(whole())
    # Counted on the peer: CHILD_SAs really installed, not what the API last observed.
    established = lambda: peer.swanctl("--list-sas", check=False).stdout.count("INSTALLED")
    deadline = time.monotonic() + 120
    while established() < n and time.monotonic() < deadline:
        time.sleep(0.5)
    if established() < n:
        sas = peer.swanctl("--list-sas", check=False).stdout
        missing = [f"m{i}" for i in range(n) if f"m{i}: #" not in sas]
        raise RuntimeError(f"only {established()} of {n} tunnels came up before the restart; missing {missing}\n"
                           + peer.log_tail(80))
    # Host "reboot": openvgw down, the gateway's namespace and daemons gone, the peer's SAs forgotten; then measure
    # serve start -> all tunnels up again (the gateway initiates them: EffectImmediately).
    server.stop()
    remove_gateway_namespaces()
    reap_orphans()
    peer.stop()
    peer = Charon(lab, peer_ns, "many-charon2", site.kernel_esp)
    peer.load(whole())
    assert established() == 0, "the restarted peer still has SAs"
    observed = lambda: sum(1 for c in api.call("DescribeVpnConnections", {"VpnGatewayId": gw, "PageSize": 50})
                           ["VpnConnections"]["VpnConnection"] if c["Status"] == "ipsec_sa_established")
    t0 = time.monotonic()
    server.start()
    deadline = time.monotonic() + 300
    while established() < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {established()} of {n} tunnels up after 300 s")
        time.sleep(0.05)
    took = ms(t0)
    while observed() < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API shows only {observed()} of {n} tunnels up after 300 s")
        time.sleep(0.2)
    took_api = ms(t0)
    peer.stop()
    for vco in conns:
        api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
    return took, took_api


def gateway_rss_kb(gw: str) -> int:
    """Resident memory of every process in a gateway's namespace (charon, OpenVPN)."""
    total = 0
    for pid in sh("ip", "netns", "pids", NS_PREFIX + gw, check=False).stdout.split():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def installed(peer: Charon) -> int:
    """CHILD_SAs the peer really installed (not what the API last observed)."""
    return peer.swanctl("--list-sas", check=False).stdout.count("INSTALLED")


def ike_established(peer: Charon) -> int:
    """IKE_SAs past their handshake, from `swanctl --stats` (cheap: listing a thousand SAs ten times a second
    would take the peer's charon from the negotiations being measured)."""
    m = re.search(r"IKE_SAs: (\d+) total, (\d+) half-open", peer.swanctl("--stats", check=False).stdout)
    return int(m.group(1)) - int(m.group(2)) if m else 0


def wait_installed(peer: Charon, n: int, when: str) -> None:
    """Until the peer has `n` CHILD_SAs; the deadline only bounds a broken run (a minute plus 0.5 s a tunnel).
    Polls the cheap IKE_SA count and confirms with the installed CHILD_SAs once that count is reached."""
    deadline = time.monotonic() + 60 + n * 0.5
    while ike_established(peer) < n or installed(peer) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {installed(peer)} of {n} tunnels up {when}\n{peer.log_tail(30)}")
        time.sleep(0.2)


IDLE_WINDOW_S = 20


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and of the children it has waited for (`ip`, `nft`, ...)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17 (1-based).
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def fleet(api, server, lab, kernel_esp: bool, gateways: int, per_gw: int) -> None:
    """`gateways` gateways × `per_gw` connections on one host, each connection to one of `per_gw` customer gateways
    (one peer namespace holding their addresses, one charon answering all tunnels). Prints the time to bring all
    tunnels up as they are created, the memory per gateway, and the time from `serve` start to all tunnels up again
    after the host's data plane is gone (namespaces deleted, peer restarted)."""
    peer_ns = lab.netns("fleet")
    cgw_ips = [f"203.0.113.{200 + i}" for i in range(per_gw)]
    lab.attach(peer_ns, "pub0", PUB_BRIDGE, f"{cgw_ips[0]}/24")
    for ip in cgw_ips[1:]:
        sh("ip", "-n", peer_ns, "addr", "add", f"{ip}/24", "dev", "pub0")
    # One charon stands in for `per_gw` customers, so every gateway address has `per_gw` half-open IKE_SAs with it
    # at once where a real customer would see one: its per-peer-IP limits (block_threshold 5, cookies from 10
    # half-open in all) would drop or delay what separate customers would answer at once.
    peer_options = f"  block_threshold = {2 * per_gw}\n  cookie_threshold = {4 * gateways * per_gw}"
    peer = Charon(lab, peer_ns, "fleet-charon", kernel_esp, peer_options)
    cgws = [api.call("CreateCustomerGateway", {"IpAddress": ip})["CustomerGatewayId"] for ip in cgw_ips]
    t0 = time.monotonic()
    gws = [api.call("CreateVpnGateway", {"VpcId": VPC, "Bandwidth": 10, "Name": f"fleet{j}"})["VpnGatewayId"]
           for j in range(gateways)]
    for gw in gws:
        vgwlib.wait_gateway_status(api, gw, "active", timeout=300)
    print(f"fleet: {gateways} gateways active {ms(t0) / 1000:.1f} s after the first CreateVpnGateway")
    rss = [gateway_rss_kb(gw) for gw in gws]
    print(f"fleet: resident memory per gateway without tunnels: median {statistics.median(rss) / 1024:.1f} MiB")
    conf, secrets = ["connections {"], ["secrets {"]
    whole = lambda: "\n".join(conf) + "\n}\n" + "\n".join(secrets) + "\n}\n"
    total = gateways * per_gw
    t1 = time.monotonic()
    # Round-robin over the gateways, so each has applied its last change before it gets the next.
    for i, cgw in enumerate(cgws):
        for j, gw in enumerate(gws):
            params = {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": VPC_CIDR,
                      "RemoteSubnet": f"10.{j}.{i}.0/24", "EffectImmediately": True,
                      "IkeConfig": json.dumps({"IkeVersion": "ikev2"})}
            deadline = time.monotonic() + 120
            while True:
                try:
                    vco = api.call("CreateVpnConnection", params)["VpnConnectionId"]
                    break
                except Exception as e:  # the gateway is still applying the previous change
                    if "Configuring" not in str(e) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            # The peer holds an address in its side's subnet (charon installs the tunnel's policies and routes
            # with it as the source).
            sh("ip", "-n", peer_ns, "addr", "add", f"10.{j}.{i}.1/24", "dev", "lo")
            cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
            body = swanctl_from_download(cfg, f"g{j}c{i}", encap=not kernel_esp).split("secrets {")
            conf.append(body[0].strip()[len("connections {"):-1].replace("start_action = start", "start_action = trap"))
            secrets.append(body[1].strip()[:-1])
        peer.load(whole())
    created = ms(t1)
    wait_installed(peer, total, "after creating them")
    print(f"fleet: {total} connections created in {created / 1000:.1f} s; the {total}th tunnel up "
          f"{ms(t1) / 1000:.1f} s after the first CreateVpnConnection")
    rss = [gateway_rss_kb(gw) for gw in gws]
    print(f"fleet: resident memory per gateway with {per_gw} tunnels: median {statistics.median(rss) / 1024:.1f} MiB, "
          f"max {max(rss) / 1024:.1f} MiB, all {sum(rss) / 1024:.0f} MiB")
    # What watching costs once everything is up and nothing changes: CPU of `serve` and the commands it ran.
    before, t_idle = cpu_seconds(server.proc.pid), time.monotonic()
    time.sleep(IDLE_WINDOW_S)
    idle = (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t_idle)
    print(f"fleet: openvgw serve idle with {gateways} gateways and {total} tunnels up: {idle * 100:.1f} % of a core "
          f"(over {IDLE_WINDOW_S} s, including the commands it ran)")
    # The host "reboots": openvgw down, every gateway namespace and daemon gone, the peer restarted.
    server.stop()
    remove_gateway_namespaces()
    reap_orphans()
    peer.stop()
    peer = Charon(lab, peer_ns, "fleet-charon2", kernel_esp, peer_options)
    peer.load(whole())
    t2 = time.monotonic()
    server.start()
    wait_installed(peer, total, "after serve started")
    print(f"fleet: serve start -> all {total} tunnels up again (data plane rebuilt from nothing): "
          f"{ms(t2) / 1000:.1f} s")
    peer.stop()


def iperf(lab, site, seconds: int) -> float:
    srv = lab.spawn(site.vpc_host, ["iperf3", "-s", "-1"], lab.workdir / "iperf-s.log")
    time.sleep(0.5)
    r = sh("iperf3", "-c", VPC_HOST, "-t", str(seconds), "-J", ns=site.onprem, timeout=seconds + 30)
    Lab.stop(srv)
    return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--fleet", metavar="GxC", help="only the fleet run: G gateways x C connections (e.g. 100x10)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (server, charon logs) afterwards")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root (network namespaces)", file=sys.stderr)
        return 2
    if not shutil.which("iperf3"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "iperf3"], check=True)
    work = Path(tempfile.mkdtemp(prefix="ovgw-bench-"))
    lab = Lab(work)
    server = None
    try:
        lab.bridge(PUB_BRIDGE)
        lab.bridge(VPC_BRIDGE)
        become_subreaper()
        server = Server(work, f"\n[quotas]\nconnections_per_gateway = {args.connections + 1}\n"
                              f"vpn_gateways_per_region = 200\n")
        if args.fleet:
            # Room for a hundred gateways' public addresses (the peers use .200 and up).
            server.config.write_text(server.config.read_text().replace('eip_pool = "203.0.113.64/26"',
                                                                       'eip_pool = "203.0.113.0/25"'))
        server.start()
        api = api_for(server)
        if args.fleet:
            g, c = (int(x) for x in args.fleet.lower().split("x"))
            backend = "kernel ESP" if kernel_has_esp() else "libipsec (userspace ESP)"
            print(f"openvgw data-plane fleet benchmark — {g} gateways x {c} connections, {backend}, "
                  f"kernel {os.uname().release}")
            fleet(api, server, lab, kernel_has_esp(), g, c)
            return 0
        site = Site(lab, kernel_has_esp())
        gw = api.call("CreateVpnGateway", {"VpcId": VPC, "Bandwidth": 200, "Name": "bench"})["VpnGatewayId"]
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        inside = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "bench"})["IntranetIp"]
        site.route_vpc_to_gateway(inside, ONPREM_NET)
        cgw = api.call("CreateCustomerGateway", {"IpAddress": CGW_IP})["CustomerGatewayId"]
        backend = "kernel ESP" if site.kernel_esp else "libipsec (userspace ESP)"
        print(f"openvgw data-plane benchmark — {backend}, kernel {os.uname().release}")

        runs = first_ping_runs(api, site, gw, cgw, args.runs)
        print(f"CreateVpnConnection -> first ping: median {statistics.median(runs):.0f} ms, "
              f"min {min(runs):.0f} ms, max {max(runs):.0f} ms ({len(runs)} runs)")

        vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": VPC_CIDR,
                                               "RemoteSubnet": ONPREM_NET, "EffectImmediately": True,
                                               "IkeConfig": json.dumps({"IkeVersion": "ikev2", "IkeEncAlg": "aes256",
                                                                        "IkeAuthAlg": "sha256", "IkePfs": "group14"}),
                                               "IpsecConfig": json.dumps({"IpsecEncAlg": "aes256",
                                                                          "IpsecAuthAlg": "sha256",
                                                                          "IpsecPfs": "group14"})})["VpnConnectionId"]
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})["VpnConnectionConfig"]
        site.charon.load(swanctl_from_download(cfg, "tput", encap=not site.kernel_esp))
        if not Lab.wait_ping(site.onprem, VPC_HOST, 30):
            raise RuntimeError("tunnel for the throughput run did not come up")
        esp = iperf(lab, site, args.seconds)
        api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
        vgwlib.wait_gateway_status(api, gw, "active", timeout=60)
        site.charon.swanctl("--terminate", "--ike", "tput", "--force", check=False)
        site.charon.load("")
        # Plain routing over the same namespaces and links: gateway <-> customer gateway without IPsec.
        gw_ns = NS_PREFIX + gw
        sh("ip", "-n", gw_ns, "route", "replace", ONPREM_NET, "via", CGW_IP)
        sh("ip", "-n", site.cgw, "route", "replace", VPC_CIDR, "via", api.call(
            "DescribeVpnGateway", {"VpnGatewayId": gw})["InternetIp"])
        plain = iperf(lab, site, args.seconds)
        sh("ip", "-n", gw_ns, "route", "del", ONPREM_NET, check=False)
        sh("ip", "-n", site.cgw, "route", "del", VPC_CIDR, check=False)
        print(f"TCP throughput on-prem -> VPC ({args.seconds} s): ESP aes256-sha256 {esp:.0f} Mbit/s, "
              f"plain routing {plain:.0f} Mbit/s ({esp / plain * 100:.1f} %)")

        took, took_api = many_tunnels(api, server, lab, site, gw, args.connections)
        print(f"serve start -> {args.connections} tunnels up on one gateway (data plane rebuilt): "
              f"{took / 1000:.2f} s (SAs on the peer), {took_api / 1000:.2f} s (all ipsec_sa_established in the API)")
        api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
        vgwlib.wait_gateway_gone(api, gw, timeout=120)
        return 0
    finally:
        if server:
            server.stop()
        remove_gateway_namespaces()
        lab.close()
        reap_orphans()
        if args.keep:
            print(f"kept {work} (server.log, the peers' charon logs, the data directory)")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
