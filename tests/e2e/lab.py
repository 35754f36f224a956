"""A small network lab for end-to-end tests: namespaces, bridges, veths, daemons — all torn down by PID.

Only documentation ranges are used on the shared "public" bridge (203.0.113.0/24) and private ranges only inside
namespaces the lab creates. Nothing is ever sent anywhere else.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple


def sh(*cmd: str, check: bool = True, ns: Optional[str] = None, timeout: float = 30, env=None) -> subprocess.CompletedProcess:
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed ({r.returncode}): {r.stderr.strip()} {r.stdout.strip()}")
    return r


def kernel_has_esp() -> bool:
    """True when this kernel can hold ESP states (else strongSwan must use userspace ESP)."""
    ns = f"ovgwt-esp{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        r = sh("ip", "-n", ns, "xfrm", "state", "add", "src", "198.51.100.1", "dst", "198.51.100.2", "proto", "esp",
               "spi", "0x1000", "mode", "tunnel", "enc", "cbc(aes)", "0x00112233445566778899aabbccddeeff",
               "auth", "hmac(sha256)", "0x" + "00112233445566778899aabbccddeeff" * 2, check=False)
        return r.returncode == 0
    finally:
        sh("ip", "netns", "del", ns, check=False)


def wait_until(fn, timeout: float, every: float = 0.3):
    """`fn()` once it is truthy, polling every `every` s for at most `timeout` s; else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(every)
    return fn()


def counters(ns: str) -> Dict[str, int]:
    """Packets counted in a namespace: per device (rx/tx), per XFRM state (by direction and SPI) and the kernel's
    XFRM error counters (/proc/net/xfrm_stat, per namespace)."""
    out: Dict[str, int] = {}
    for link in json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show", check=False).stdout or "[]"):
        stats = link.get("stats64", {})
        for way in ("rx", "tx"):
            out[f"{link['ifname']} {way}"] = stats.get(way, {}).get("packets", 0)
            if stats.get(way, {}).get("dropped", 0):
                out[f"{link['ifname']} {way} dropped"] = stats[way]["dropped"]
    out.update(xfrm_state_packets(sh("ip", "-n", ns, "-s", "xfrm", "state", check=False).stdout))
    stat = sh("cat", "/proc/net/xfrm_stat", ns=ns, check=False).stdout
    for line in stat.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit() and int(value):
            out[name] = int(value)
    return out


def xfrm_state_packets(text: str) -> Dict[str, int]:
    """`ip -s xfrm state` -> {"esp SRC>DST SPI": packets}."""
    out: Dict[str, int] = {}
    key, current = "", False
    for line in text.splitlines():
        words = line.split()
        if line.startswith("src ") and len(words) >= 4:
            key, current = f"esp {words[1]}>{words[3]}", False
        elif words[:3] == ["proto", "esp", "spi"] and key:
            key += " " + words[3].split("(")[0]
        elif "lifetime current:" in line:
            current = True
        elif current and line.rstrip().endswith("(packets)"):
            out[key] = int(line.split(",")[1].split("(")[0])
            current = False
    return out


def packet_trail(namespaces: List[str], burst) -> str:
    """Which counters of `namespaces` move while `burst()` sends traffic: where packets stop on the way (a failed
    ping says only that they do). Compact, so that it leads a failure's message."""
    before = {ns: counters(ns) for ns in namespaces}
    burst()
    lines = ["counters that moved during a burst of pings:"]
    for ns in namespaces:
        after = counters(ns)
        moved = [f"{k} +{v - before[ns].get(k, 0)}" for k, v in sorted(after.items()) if v != before[ns].get(k, 0)]
        lines.append(f"  {ns}: {', '.join(moved) or 'nothing'}")
    return "\n".join(lines)


class Lab:
    """Everything a test builds, remembered so `close()` removes exactly that."""

    def __init__(self, workdir: Path, prefix: str = "ovgwt"):
        self.workdir = workdir
        self.prefix = prefix
        self.namespaces: List[str] = []
        self.bridges: List[str] = []
        self.procs: List[subprocess.Popen] = []
        self._n = 0

    # -- topology ---------------------------------------------------------------------------------
    def netns(self, name: str) -> str:
        ns = f"{self.prefix}-{name}"
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=ns)
        return ns

    def bridge(self, name: str) -> str:
        if sh("ip", "link", "show", name, check=False).returncode != 0:
            sh("ip", "link", "add", name, "type", "bridge")
            self.bridges.append(name)
        sh("ip", "link", "set", name, "up")
        return name

    def attach(self, ns: str, ifname: str, bridge: str, cidr: str) -> None:
        """A veth from `ns` (as `ifname`, holding `cidr`) to a bridge in the root namespace."""
        self._n += 1
        host_if = f"ot{os.getpid() % 10000}{self._n}"[:15]
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ifname, "netns", ns)
        sh("ip", "link", "set", host_if, "master", bridge, "up")
        sh("ip", "-n", ns, "addr", "add", cidr, "dev", ifname)
        sh("ip", "-n", ns, "link", "set", ifname, "up")

    def wire(self, ns_a: str, if_a: str, cidr_a: str, ns_b: str, if_b: str, cidr_b: str) -> None:
        sh("ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        for ns, ifn, cidr in ((ns_a, if_a, cidr_a), (ns_b, if_b, cidr_b)):
            sh("ip", "-n", ns, "addr", "add", cidr, "dev", ifn)
            sh("ip", "-n", ns, "link", "set", ifn, "up")

    def route(self, ns: str, dest: str, via: str) -> None:
        sh("ip", "-n", ns, "route", "replace", dest, "via", via)

    def forward(self, ns: str) -> None:
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=ns)

    # -- processes --------------------------------------------------------------------------------
    def spawn(self, ns: str, cmd: List[str], log: Path, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        out = open(log, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})}, start_new_session=True)
        out.close()
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p: subprocess.Popen, timeout: float = 5) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=timeout)

    # -- probes -----------------------------------------------------------------------------------
    @staticmethod
    def ping(ns: str, dst: str, src: Optional[str] = None, wait_s: float = 1) -> bool:
        cmd = ["ping", "-n", "-c", "1", "-W", str(wait_s)] + (["-I", src] if src else []) + [dst]
        return sh(*cmd, ns=ns, check=False).returncode == 0

    @classmethod
    def wait_ping(cls, ns: str, dst: str, timeout: float, src: Optional[str] = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cls.ping(ns, dst, src):
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        for p in self.procs:
            try:
                self.stop(p)
            except Exception:
                pass
        for ns in self.namespaces:
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        for br in self.bridges:
            sh("ip", "link", "del", br, check=False)
        self.namespaces.clear()
        self.bridges.clear()
        self.procs.clear()


def vanish(ns: str, arriving: str, leaving: str) -> None:
    """Something stops carrying without saying so: packets matching `arriving` (prerouting) and `leaving` (output)
    are dropped in `ns` (addresses and routes stay). `unvanish` ends it."""
    sh("nft", f"add table ip vanish; add chain ip vanish in {{ type filter hook prerouting priority raw; }}; "
              f"add chain ip vanish out {{ type filter hook output priority raw; }}; "
              f"add rule ip vanish in {arriving} drop; add rule ip vanish out {leaving} drop", ns=ns)


def unvanish(ns: str) -> None:
    sh("nft", "delete table ip vanish", ns=ns, check=False)


class Charon:
    """A strongSwan peer (customer gateway or road warrior) in its own namespace, configured with swanctl."""

    def __init__(self, lab: Lab, ns: str, name: str, kernel_esp: bool, charon_options: str = ""):
        """`charon_options`: extra lines for strongswan.conf's `charon` section."""
        self.lab, self.ns = lab, ns
        self.dir = lab.workdir / name
        for sub in ("swanctl/x509", "swanctl/x509ca", "swanctl/private", "swanctl/conf.d"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        kplug = "kernel-netlink" if kernel_esp else "kernel-libipsec kernel-netlink"
        (self.dir / "strongswan.conf").write_text(f"""charon-systemd {{
  journal {{
    default = -1
  }}
  filelog {{
    main {{
      path = {self.dir}/charon.log
      default = 1
      ike = 2
    }}
  }}
}}
charon {{
  load_modular = no
  load = random nonce openssl aes sha1 sha2 md5 des hmac gmp pem pkcs1 pkcs8 x509 pubkey constraints kdf {kplug} socket-default vici updown attr
  install_virtual_ip = yes
{charon_options}
  plugins {{
    vici {{
      socket = unix://{self.dir}/charon.vici
    }}
  }}
}}
swanctl {{
  socket = unix://{self.dir}/charon.vici
}}
""")
        self.env = {"STRONGSWAN_CONF": str(self.dir / "strongswan.conf"), "SWANCTL_DIR": str(self.dir / "swanctl")}
        self.proc = lab.spawn(ns, ["/usr/sbin/charon-systemd"], self.dir / "stdout.log", self.env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.swanctl("--stats", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"charon in {ns} did not start: {self.log_tail()}")

    def swanctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("swanctl", *args, ns=self.ns, check=check, env={**os.environ, **self.env})

    def load(self, conf: str) -> None:
        (self.dir / "swanctl" / "swanctl.conf").write_text(conf)
        os.chmod(self.dir / "swanctl" / "swanctl.conf", 0o600)
        self.swanctl("--load-all", "--noprompt")

    def initiate(self, child: str, timeout: int = 20) -> subprocess.CompletedProcess:
        return sh("swanctl", "--initiate", "--child", child, "--timeout", str(timeout), ns=self.ns, check=False,
                  env={**os.environ, **self.env}, timeout=timeout + 10)

    def sas(self) -> str:
        return self.swanctl("--list-sas", check=False).stdout

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join((self.dir / "charon.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no charon log)"

    def stop(self) -> None:
        Lab.stop(self.proc)


def swanctl_from_download(cfg: dict, name: str, encap: bool) -> str:
    """The customer side, from nothing but DownloadVpnConnectionConfig's `VpnConnectionConfig`.

    Local/LocalSubnet/LocalId are the VPN gateway's side; Remote/RemoteSubnet/RemoteId are ours.
    """
    ike, esp = cfg["IkeConfig"], cfg["IpsecConfig"]
    enc = {"aes": "aes128", "aes192": "aes192", "aes256": "aes256", "3des": "3des", "des": "des"}
    dh = {"group1": "modp768", "group2": "modp1024", "group5": "modp1536", "group14": "modp2048",
          "group24": "modp2048s256"}
    ike_prop = f"{enc[ike['IkeEncAlg']]}-{ike['IkeAuthAlg']}-{dh[ike['IkePfs']]}"
    esp_prop = f"{enc[esp['IpsecEncAlg']]}-{esp['IpsecAuthAlg']}" + (
        f"-{dh[esp['IpsecPfs']]}" if esp["IpsecPfs"] in dh else "")
    version = 1 if ike["IkeVersion"] == "ikev1" else 2
    aggressive = "aggressive = yes" if version == 1 and ike["IkeMode"] == "aggressive" else ""
    return f"""connections {{
  {name} {{
    version = {version}
    {aggressive}
    local_addrs = {cfg['Remote']}
    remote_addrs = {cfg['Local']}
    proposals = {ike_prop}
    rekey_time = {ike['IkeLifetime']}s
    encap = {'yes' if encap else 'no'}
    local {{
      auth = psk
      id = {ike['RemoteId']}
    }}
    remote {{
      auth = psk
      id = {ike['LocalId']}
    }}
    children {{
      {name} {{
        local_ts = {cfg['RemoteSubnet']}
        remote_ts = {cfg['LocalSubnet']}
        esp_proposals = {esp_prop}
        life_time = {esp['IpsecLifetime']}s
        # Without it strongSwan rekeys after 1 h minus a random part of (life_time - 1 h): at once, again and again.
        rekey_time = {esp['IpsecLifetime'] * 9 // 10}s
        start_action = start
      }}
    }}
  }}
}}
secrets {{
  ike-{name} {{
    id-local = {ike['RemoteId']}
    id-remote = {ike['LocalId']}
    secret = "{ike['Psk']}"
  }}
}}
"""



class Bird:
    """A customer's BIRD 2 in its own namespace: announces its networks and installs what it learns."""

    def __init__(self, lab: Lab, ns: str, name: str, conf: str):
        self.ns = ns
        self.dir = lab.workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = str(self.dir / "bird.ctl")
        (self.dir / "bird.conf").write_text(conf)
        self.proc = lab.spawn(ns, ["/usr/sbin/bird", "-f", "-c", str(self.dir / "bird.conf"), "-s", self.socket],
                              self.dir / "bird.log")
        if not wait_until(lambda: self.birdc("show", "status").returncode == 0, 10):
            raise RuntimeError(f"BIRD in {ns} did not start: {(self.dir / 'bird.log').read_text(errors='replace')}")

    def birdc(self, *args: str) -> subprocess.CompletedProcess:
        return sh("birdc", "-s", self.socket, *args, check=False)

    def established(self, protocol: str) -> bool:
        out = self.birdc("show", "protocols", protocol).stdout
        return any(line.split()[:1] == [protocol] and "Established" in line for line in out.splitlines())

    def log_tail(self, n: int = 30) -> str:
        return "\n".join((self.dir / "bird.log").read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        Lab.stop(self.proc)


class BgpCustomer:
    """A customer gateway that speaks BGP over one route-based tunnel (0.0.0.0/0 both ways) and has no static route:
    its charon installs none (`install_routes = no`) and its BIRD learns whatever it reaches. The tunnel device is
    charon's `ipsec0` under libipsec, an XFRM interface whose if_id the CHILD_SA carries under kernel IPsec."""

    IF_ID = 66

    def __init__(self, lab: Lab, name: str, public_cidr: str, bridge: str, network_host: str, kernel_esp: bool):
        """`network_host`: the customer's network as the address of its host (`172.16.50.1/24`, on lo)."""
        self.lab, self.kernel_esp = lab, kernel_esp
        self.ns = lab.netns(name)
        self.public_ip = public_cidr.split("/")[0]
        lab.attach(self.ns, "pub0", bridge, public_cidr)
        sh("ip", "-n", self.ns, "addr", "add", network_host, "dev", "lo")
        lab.forward(self.ns)
        self.charon = Charon(lab, self.ns, f"{name}-charon", kernel_esp, charon_options="  install_routes = no")
        self.device = "xfrm-bgp" if kernel_esp else "ipsec0"
        if kernel_esp:
            sh("ip", "-n", self.ns, "link", "add", self.device, "type", "xfrm", "dev", "pub0", "if_id",
               str(self.IF_ID))
            sh("ip", "-n", self.ns, "link", "set", self.device, "up")
        self.bird: Optional[Bird] = None
        self.name = name

    def up(self, swanctl_conf: str, child: str, tunnel_address: str, bird_config: str) -> None:
        if self.kernel_esp:
            swanctl_conf = swanctl_conf.replace(
                "start_action = start",
                f"start_action = start\n        if_id_in = {self.IF_ID}\n        if_id_out = {self.IF_ID}")
        assert "local_ts = 0.0.0.0/0" in swanctl_conf and "remote_ts = 0.0.0.0/0" in swanctl_conf, swanctl_conf
        self.charon.load(swanctl_conf)
        self.charon.initiate(child)
        sh("ip", "-n", self.ns, "addr", "replace", tunnel_address, "dev", self.device)
        self.bird = Bird(self.lab, self.ns, f"{self.name}-bird", bird_config)

    def down(self, ike: str) -> None:
        if self.bird:
            self.bird.stop()
            self.bird = None
        self.charon.swanctl("--terminate", "--ike", ike, "--force", check=False)
        self.charon.load("")
        sh("ip", "-n", self.ns, "addr", "flush", "dev", self.device, check=False)

    def route(self, dest: str) -> str:
        return sh("ip", "-n", self.ns, "route", "show", "exact", dest, check=False).stdout.strip()

    def learned(self) -> List[str]:
        """The prefixes its BIRD installed."""
        out = sh("ip", "-n", self.ns, "route", "show", "proto", "bird").stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]


def bird_from_download(bgp: dict, router_id: str, announce: List[str], auth_key: Optional[str] = None) -> str:
    """The customer's BGP speaker from DownloadVpnConnectionConfig's `BgpConfigs.BgpConfig[0]` (Local* is the VPN
    gateway's side, Peer* ours)."""
    return bird_conf(bgp["PeerBgpIp"], bgp["PeerAsn"], bgp["LocalBgpIp"], bgp["LocalAsn"], router_id, announce,
                     auth_key)


def bird_conf(local: str, asn: int, neighbor: str, neighbor_asn: int, router_id: str, announce: List[str],
              auth_key: Optional[str] = None) -> str:
    """A customer's BIRD: announces `announce`, installs whatever it learns, has no static route."""
    password = f'  password "{auth_key}";\n' if auth_key else ""
    statics = "".join(f"  route {n} unreachable;\n" for n in announce)
    return f"""router id {router_id};
log stderr all;
protocol device {{ scan time 2; }}
protocol kernel {{
  ipv4 {{ import none; export where source = RTS_BGP; }};
}}
protocol static onprem {{
  ipv4;
{statics}}}
protocol bgp uplink {{
  local {local} as {asn};
  neighbor {neighbor} as {neighbor_asn};
  hold time 30;
  connect retry time 5;
  error wait time 5, 30;
{password}  ipv4 {{ import all; export where proto = "onprem"; }};
}}
"""

# -- libreswan ------------------------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parent.parent.parent
LSW_SH = REPO / "tests" / "peers" / "libreswan.sh"
LSW_ROOT = Path(os.environ.get("LSW_CACHE", "/var/cache/openvgw-libreswan")) / "root"

# Alibaba's algorithm names -> libreswan's. libreswan 4.10 as Debian builds it has no modp768/modp1024 (groups 1
# and 2) nor dh24: it refuses such a connection ("IKE DH algorithm 'modp1024' is not supported").
LSW_ENC = {"aes": "aes128", "aes192": "aes192", "aes256": "aes256", "3des": "3des", "des": "des"}
LSW_AUTH = {"md5": "md5", "sha1": "sha1", "sha256": "sha2_256", "sha384": "sha2_384", "sha512": "sha2_512"}
LSW_DH = {"group1": "modp768", "group2": "modp1024", "group5": "modp1536", "group14": "modp2048",
          "group24": "dh24"}


def _lsw_id(ident: str) -> str:
    """libreswan writes FQDN identities with a leading `@` (an IP address stays as it is)."""
    import ipaddress
    try:
        ipaddress.ip_address(ident)
        return ident
    except ValueError:
        return ident if ident.startswith("@") else "@" + ident


def libreswan_from_download(cfg: dict, name: str) -> Tuple[str, str]:
    """The customer side for libreswan 4.x (ipsec.conf, ipsec.secrets), from nothing but
    DownloadVpnConnectionConfig's `VpnConnectionConfig`: Local*/LocalId are the VPN gateway's side, Remote*/RemoteId
    ours. The connection is only added (auto=add): the caller initiates it."""
    ike, esp = cfg["IkeConfig"], cfg["IpsecConfig"]
    v1 = ike["IkeVersion"] == "ikev1"

    def subnets(side: str, nets: str) -> str:
        items = [n.strip() for n in nets.split(",") if n.strip()]
        return f"\t{side}subnet={items[0]}" if len(items) == 1 else f"\t{side}subnets={{{' '.join(items)}}}"

    lines = ["config setup", "\tlogappend=no"]
    if v1:
        lines.append("\tikev1-policy=accept")  # libreswan 4.x drops IKEv1 without it
    lines += ["", f"conn {name}", "\tauthby=secret", f"\tikev2={'no' if v1 else 'yes'}"]
    if v1 and ike["IkeMode"] == "aggressive":
        lines.append("\taggressive=yes")
    lines += [
        f"\tleft={cfg['Remote']}", f"\tleftid={_lsw_id(ike['RemoteId'])}", subnets("left", cfg["RemoteSubnet"]),
        f"\tright={cfg['Local']}", f"\trightid={_lsw_id(ike['LocalId'])}", subnets("right", cfg["LocalSubnet"]),
        f"\tike={LSW_ENC[ike['IkeEncAlg']]}-{LSW_AUTH[ike['IkeAuthAlg']]};{LSW_DH[ike['IkePfs']]}",
    ]
    esp_alg = f"{LSW_ENC[esp['IpsecEncAlg']]}-{LSW_AUTH[esp['IpsecAuthAlg']]}"
    if esp["IpsecPfs"] in LSW_DH:
        lines.append(f"\tesp={esp_alg};{LSW_DH[esp['IpsecPfs']]}")
    else:
        lines += [f"\tesp={esp_alg}", "\tpfs=no"]
    if ike["IkeLifetime"]:
        lines.append(f"\tikelifetime={ike['IkeLifetime']}s")
    if esp["IpsecLifetime"]:
        lines.append(f"\tsalifetime={esp['IpsecLifetime']}s")
    lines += ["\tauto=add", ""]
    secrets = f'{_lsw_id(ike["RemoteId"])} {_lsw_id(ike["LocalId"])} : PSK "{ike["Psk"]}"\n'
    return "\n".join(lines), secrets


def libreswan_missing() -> str:
    """Why libreswan cannot run here ("" if it can)."""
    if not (LSW_ROOT / "usr" / "libexec" / "ipsec" / "pluto").exists():
        return f"libreswan is not unpacked in {LSW_ROOT} (run tests/peers/ensure-host.sh as root)"
    if not shutil.which("certutil"):
        return "certutil is missing (libnss3-tools; tests/peers/ensure-host.sh installs it)"
    return ""


class Libreswan:
    """pluto in a namespace through tests/peers/libreswan.sh, with its files in `dir`; stopped by PID."""

    def __init__(self, ns: str, dir: Path):
        self.ns, self.dir = ns, dir
        dir.mkdir(parents=True, exist_ok=True)
        self.pid: Optional[int] = None

    def _lsw(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return sh("bash", str(LSW_SH), *args, check=False, timeout=timeout)

    def write(self, conf: str, secrets: str) -> None:
        (self.dir / "ipsec.conf").write_text(conf)
        s = self.dir / "ipsec.secrets"
        s.write_text(secrets)
        os.chmod(s, 0o600)

    def start(self) -> None:
        r = self._lsw("start", self.ns, str(self.dir))
        if r.returncode != 0:
            raise RuntimeError(f"pluto did not start: {r.stderr.strip()}\n{self.log_tail()}")
        self.pid = int((self.dir / "pluto.pid").read_text())

    def add(self, conn: str) -> subprocess.CompletedProcess:
        return self._lsw("add", self.ns, str(self.dir), conn)

    def up(self, conn: str) -> subprocess.CompletedProcess:
        return self._lsw("up", self.ns, str(self.dir), conn)

    def established(self, conn: str) -> bool:
        return self._lsw("established", str(self.dir), conn).returncode == 0

    def status(self) -> str:
        r = self._lsw("status", self.ns, str(self.dir))
        return r.stdout + r.stderr

    def log(self) -> str:
        try:
            return (self.dir / "pluto.log").read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-n:]) or "(no pluto log)"

    def stop(self) -> None:
        """Orderly shutdown (pluto deletes its SAs and policies), then by PID. pluto was started by a script that
        exited, so it is the orphan of the nearest subreaper (the e2e session): reap it here, or it would linger
        as a zombie that still looks like a running pluto."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        self._lsw("whack", str(self.dir), "--shutdown", timeout=15)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _gone(pid):
            time.sleep(0.1)
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not _gone(pid):
                time.sleep(0.1)


def _gone(pid: int) -> bool:
    """Exited (and reaped if it was our child)?"""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return True
