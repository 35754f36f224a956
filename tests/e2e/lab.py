"""A small network lab for end-to-end tests: namespaces, bridges, veths, daemons — all torn down by PID.

Only documentation ranges are used on the shared "public" bridge (203.0.113.0/24) and private ranges only inside
namespaces the lab creates. Nothing is ever sent anywhere else.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional


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


class Charon:
    """A strongSwan peer (customer gateway or road warrior) in its own namespace, configured with swanctl."""

    def __init__(self, lab: Lab, ns: str, name: str, kernel_esp: bool):
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
