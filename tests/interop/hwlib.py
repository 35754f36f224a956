"""Helpers for the Huawei Cloud VPN v5 dialect, driven through the real vendor SDK (huaweicloudsdkvpn).

* `Hw`: one tenant in one project (region): a `VpnClient`, `call(op, body, **params)` through the SDK (any of the
  89 SDK operations by its snake-case name, bodies as plain dicts), `raw(...)` for signed requests the SDK cannot
  make (the SDK's own signer signs them), `expect(...)` for error assertions.
* factories: S2C gateways, customer gateways, connections, P2C gateways, VPN servers, users, groups, policies.
* certificates: a CA generator (RSA 2048/SHA256, CA:TRUE) plus non-CA, expired, not-yet-valid, SHA1, RSA-1024 and SM2
  variants for the certificate error codes.
"""
from __future__ import annotations

import datetime as _dt
import itertools
import json
import os
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import urllib.error
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import pytest

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
import huaweicloudsdkvpn.v5 as vpn

REGION = "cn-north-4"
OTHER = "cn-south-1"
REGIONS = [REGION, OTHER]

_seq = itertools.count(1)

OPS_RS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "huawei", "src", "ops.rs")


def dialect_ops() -> List[Tuple[str, str, str]]:
    """(sdk name, method, path) of every operation in crates/huawei/src/ops.rs."""
    import re
    text = open(OPS_RS).read()
    return re.findall(r'^\s*\w+ = "(\w+)":\s*"(\w+)" "([^"]+)"', text, re.M)


METHOD = {name: method for name, method, _ in dialect_ops()}

#: The server refuses a signed change whose signature it has seen (replay); the SDK's signature has second
#: resolution, so two identical changes in one second look alike. Identical changes are spaced a second apart:
#: the SDK signs somewhere between building the request and its answer, so the second that counts is the one in
#: which the previous identical change was answered (`answered`).
_last_change: Dict[str, int] = {}
_pending_key: List[str] = []


def pace(key: str) -> None:
    now = time.time()
    if _last_change.get(key, -1) >= int(now):
        time.sleep(_last_change[key] + 1.02 - now)
    _last_change[key] = int(time.time())
    _pending_key[:] = [key]


def answered() -> None:
    """The change built last has its answer: no identical one may be signed in this second."""
    if _pending_key:
        _last_change[_pending_key.pop()] = int(time.time())


#: The OpenAPI document each server serves, by port: operation name -> (method, path, operation object).
_OPENAPI: Dict[int, Dict[str, Tuple[str, str, Dict[str, Any]]]] = {}


def openapi(port: int) -> Dict[str, Tuple[str, str, Dict[str, Any]]]:
    if port not in _OPENAPI:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi/huawei.json", timeout=10) as r:
            doc = json.load(r)
        _OPENAPI[port] = {o["operationId"]: (m.upper(), p, o) for p, item in doc["paths"].items() for m, o in item.items()}
    return _OPENAPI[port]


def check_against_openapi(port: int, op: str, status: int, data: Any) -> None:
    """Every successful SDK call is checked against the document the server serves: the documented status, and the
    answer valid under the operation's response schema (so the document cannot drift from what is served)."""
    from jsonschema import Draft202012Validator
    method, path, o = openapi(port)[op]
    documented = [s for s in o["responses"] if s != "default"]
    assert [str(status)] == documented, f"{op}: answered {status}, the document says {documented}"
    if status == 204:
        assert data is None, f"{op}: 204 with a body"
        return
    schema = o["responses"][str(status)]["content"]["application/json"]["schema"]
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    assert not errors, f"{op}: the answer does not match the document: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])


#: SDK operations that answered successfully at least once in this session (the coverage check reads it).
CALLED: set = set()


def skip_unless_ci(reason: str) -> None:
    """Skips with `reason` on a developer's machine; fails under CI (`CI` set), where the test command installs
    everything the suite needs, so a missing tool cannot hide a test there."""
    if os.environ.get("CI"):
        pytest.fail(f"cannot run under CI: {reason}")
    pytest.skip(reason)


def uname(prefix: str = "hw") -> str:
    return f"{prefix}-{os.getpid() % 10000}-{next(_seq)}"


def uid() -> str:
    """A fresh 36-character id (VPC/subnet ids are not checked for existence, only their form)."""
    return str(uuid.uuid4())


def camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


# ----------------------------------------------------------------------------------------------------------------
# results and errors
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Result:
    status: int
    json: Any
    model: Any
    headers: Dict[str, str]


@dataclass
class Raw:
    status: int
    json: Any
    headers: Dict[str, str]
    text: str

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


class HwCallError(AssertionError):
    pass


def build_client(ak: str, sk: str, project_id: str, port: int) -> vpn.VpnClient:
    cfg = HttpConfig.get_default_config()
    cfg.retry_times = 0
    cfg.timeout = (5, 30)
    creds = BasicCredentials(ak, sk, project_id)
    return (vpn.VpnClient.new_builder()
            .with_http_config(cfg)
            .with_credentials(creds)
            .with_endpoints([f"http://127.0.0.1:{port}"])
            .build())


class Hw:
    """Tenant `tenant` in `region`, through the SDK and raw signed HTTP."""

    def __init__(self, tenant: Dict[str, Any], port: int, region: str = REGION, project_id: Optional[str] = None):
        self.tenant = tenant
        self.port = port
        self.region = region
        self.project_id = project_id or tenant["projects"][region]
        self.ak = tenant["access_key_id"]
        self.sk = tenant["access_key_secret"]
        self.client = build_client(self.ak, self.sk, self.project_id, port)

    def other(self, region: str) -> "Hw":
        return Hw(self.tenant, self.port, region)

    # -- SDK ------------------------------------------------------------------------------------------------
    def request(self, op: str, body: Any = None, **params):
        cls = getattr(vpn, camel(op) + "Request")
        req = cls()
        for k, v in params.items():
            if k not in cls.openapi_types:
                raise TypeError(f"{cls.__name__} has no parameter {k}")
            setattr(req, k, v)
        if body is not None:
            req.body = body
        if METHOD.get(op, "GET") != "GET":
            pace(json.dumps([self.ak, self.project_id, op, body, sorted(params.items())], sort_keys=True,
                            default=str))
        return req

    def call(self, op: str, body: Any = None, **params) -> Result:
        """Calls `op` through the SDK; the answer's wire JSON (raw_content) and model."""
        req = self.request(op, body, **params)
        try:
            resp = getattr(self.client, op)(req)
        except sdk_exc.ServiceResponseException as e:
            raise HwCallError(f"{op} failed: {e.status_code} {e.error_code} {e.error_msg} (request {e.request_id})")
        finally:
            answered()
        raw = getattr(resp, "raw_content", None) or b""
        data = json.loads(raw) if raw.strip() else None
        check_against_openapi(self.port, op, resp.status_code, data)
        CALLED.add(op)
        return Result(resp.status_code, data, resp, {})

    def error(self, op: str, body: Any = None, **params) -> sdk_exc.ServiceResponseException:
        req = self.request(op, body, **params)
        try:
            resp = getattr(self.client, op)(req)
        except sdk_exc.ServiceResponseException as e:
            return e
        finally:
            answered()
        raise AssertionError(f"{op} succeeded ({resp.status_code}) but an error was expected: "
                             f"{getattr(resp, 'raw_content', b'')[:400]!r}")

    def expect(self, op: str, code: str, status: int, body: Any = None, msg: Optional[str] = None,
               **params) -> sdk_exc.ServiceResponseException:
        e = self.error(op, body, **params)
        assert (e.status_code, e.error_code) == (status, code), \
            f"{op}: expected {status} {code}, got {e.status_code} {e.error_code} {e.error_msg!r}"
        assert e.error_msg, f"{op}: empty error_msg"
        if msg is not None:
            assert msg in e.error_msg, f"{op}: {msg!r} not in {e.error_msg!r}"
        assert e.request_id and len(e.request_id) >= 16, f"{op}: no request id from X-Request-Id ({e.request_id!r})"
        return e

    # -- raw HTTP -------------------------------------------------------------------------------------------
    def raw(self, method: str, path: str, body: Any = None, query: Optional[List[Tuple[str, str]]] = None,
            headers: Optional[Dict[str, str]] = None, sign: bool = True, project_header: bool = True,
            ak: Optional[str] = None, sk: Optional[str] = None, date: Optional[str] = None,
            resign=None) -> Raw:
        """A request signed with the SDK's own `Signer` (SDK-HMAC-SHA256); `{project_id}` in the path is this
        project. `resign` may tamper with the signed request before it is sent."""
        path = path.replace("{project_id}", self.project_id)
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json"}
        if project_header:
            hdrs["X-Project-Id"] = self.project_id
        hdrs.update(headers or {})
        if date:
            hdrs["X-Sdk-Date"] = date
        q = list(query or [])
        if sign:
            req = SdkRequest(method=method, schema="http", host=f"127.0.0.1:{self.port}", resource_path=path,
                             query_params=q, header_params=hdrs, body=data)

            class _C:
                pass
            c = _C()
            c.ak, c.sk = ak or self.ak, sk or self.sk
            Signer(c).sign(req)
            hdrs = dict(req.header_params)
            if resign:
                resign(hdrs)
        return http(method, self.port, path, q, hdrs, data)


def http(method: str, port: int, path: str, query: List[Tuple[str, str]], headers: Dict[str, str],
         data: bytes = b"") -> Raw:
    qs = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    url = f"http://127.0.0.1:{port}{path}" + (f"?{qs}" if qs else "")
    hdrs = {k: v for k, v in headers.items() if k.lower() != "host"}
    req = urllib.request.Request(url, data=data if data or method in ("POST", "PUT") else None, method=method,
                                 headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            status, rh = r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        status, rh = e.code, dict(e.headers)
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    return Raw(status, body, rh, text)


def assert_raw_error(r: Raw, status: int, code: str, msg: Optional[str] = None) -> None:
    assert r.status == status and r.json and r.json.get("error_code") == code, \
        f"expected {status} {code}, got {r.status} {r.text[:300]}"
    assert r.json.get("error_msg"), r.text
    if msg is not None:
        assert msg in r.json["error_msg"], f"{msg!r} not in {r.json['error_msg']!r}"
    assert r.header("X-Request-Id"), f"no X-Request-Id header: {r.headers}"


# ----------------------------------------------------------------------------------------------------------------
# IAM (token) helpers
# ----------------------------------------------------------------------------------------------------------------
def token_body(user: str, password: str, domain: str, project: Optional[str] = REGION,
               domain_scope: bool = False) -> Dict[str, Any]:
    scope: Dict[str, Any] = {"domain": {"name": domain}} if domain_scope else {"project": {"name": project}}
    return {"auth": {"identity": {"methods": ["password"],
                                  "password": {"user": {"name": user, "password": password,
                                                        "domain": {"name": domain}}}},
                     "scope": scope}}


def get_token(port: int, user: str, password: str, domain: str, project: str = REGION) -> Raw:
    return http("POST", port, "/v3/auth/tokens", [], {"Content-Type": "application/json"},
                json.dumps(token_body(user, password, domain, project)).encode())


def token_call(port: int, token: str, method: str, path: str, body: Any = None,
               query: Optional[List[Tuple[str, str]]] = None, headers: Optional[Dict[str, str]] = None) -> Raw:
    h = {"Content-Type": "application/json", "X-Auth-Token": token}
    h.update(headers or {})
    return http(method, port, path, list(query or []), h, b"" if body is None else json.dumps(body).encode())


# ----------------------------------------------------------------------------------------------------------------
# waiting
# ----------------------------------------------------------------------------------------------------------------
def poll(fn, desc: str, timeout: float = 60.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {desc} (last: {last!r})")


def wait_vgw(hw: Hw, vgw_id: str, status: str = "ACTIVE", timeout: float = 60.0) -> Dict[str, Any]:
    def check():
        g = hw.call("show_vgw", vgw_id=vgw_id).json["vpn_gateway"]
        return g if g["status"] == status else None
    return poll(check, f"gateway {vgw_id} {status}", timeout)


def wait_p2c(hw: Hw, gw_id: str, status: str = "ACTIVE", timeout: float = 60.0) -> Dict[str, Any]:
    def check():
        g = hw.call("show_p2c_vgw", p2c_vgw_id=gw_id).json["p2c_vpn_gateway"]
        return g if g["status"] == status else None
    return poll(check, f"p2c gateway {gw_id} {status}", timeout)


def wait_server(hw: Hw, gw_id: str, server_id: str, status: str = "ACTIVE", timeout: float = 60.0):
    def check():
        for s in hw.call("list_vpn_servers_by_vgw", p2c_vgw_id=gw_id).json["vpn_servers"]:
            if s["id"] == server_id and s["status"] == status:
                return s
        return None
    return poll(check, f"vpn server {server_id} {status}", timeout)


def wait_gone(fn, desc: str, timeout: float = 60.0):
    """Polls until `fn` raises a service error with 404 (or 400 for codes the reference gives 400)."""
    def check():
        try:
            fn()
        except HwCallError as e:
            return str(e)
        return None
    return poll(check, desc, timeout)


# ----------------------------------------------------------------------------------------------------------------
# factories
# ----------------------------------------------------------------------------------------------------------------
_net = itertools.count(1)


def next_octet() -> int:
    return 1 + (next(_net) % 250)


def eip(size: int = 100, **extra) -> Dict[str, Any]:
    d = {"type": "5_bgp", "charge_mode": "bandwidth", "bandwidth_size": size}
    d.update(extra)
    return d


def vgw_body(**over) -> Dict[str, Any]:
    n = next_octet()
    g = {"name": uname("vgw"), "vpc_id": uid(), "connect_subnet": uid(), "local_subnets": [f"10.{n}.0.0/16"],
         "flavor": "Professional1", "eip1": eip(), "eip2": eip()}
    g.update(over)
    return {"vpn_gateway": {k: v for k, v in g.items() if v is not None}}


def create_vgw(hw: Hw, wait: bool = True, **over) -> Dict[str, Any]:
    r = hw.call("create_vgw", vgw_body(**over))
    gw = r.json["vpn_gateway"]
    if wait:
        return wait_vgw(hw, gw["id"])
    return gw


def cgw_body(ip: Optional[str] = None, **over) -> Dict[str, Any]:
    c = {"name": uname("cgw"), "id_type": "ip", "id_value": ip or f"203.0.113.{next_octet()}", "bgp_asn": 65000}
    c.update(over)
    return {"customer_gateway": {k: v for k, v in c.items() if v is not None}}


_cgw_ips = itertools.count(1)


def fresh_peer_ip() -> str:
    i = next(_cgw_ips)
    block = ["203.0.113", "198.51.100", "192.0.2"][(i // 250) % 3]
    return f"{block}.{1 + i % 250}"


def create_cgw(hw: Hw, **over) -> Dict[str, Any]:
    over.setdefault("ip", fresh_peer_ip())
    return hw.call("create_cgw", cgw_body(**over)).json["customer_gateway"]


PSK = "Abcdef12345!"


def conn_body(gw: Dict[str, Any], cgw: Dict[str, Any], eip_index: int = 1, **over) -> Dict[str, Any]:
    c = {"name": uname("vpn"), "vgw_id": gw["id"], "vgw_ip": gw[f"eip{eip_index}"]["id"], "style": "static",
         "cgw_id": cgw["id"], "peer_subnets": [f"172.{16 + next_octet() % 15}.{next_octet()}.0/24"], "psk": PSK}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def create_conn(hw: Hw, gw: Dict[str, Any], cgw: Dict[str, Any], **over) -> Dict[str, Any]:
    return hw.call("create_vpn_connection", {"vpn_connection": conn_body(gw, cgw, **over)}).json["vpn_connection"]


def p2c_body(**over) -> Dict[str, Any]:
    g = {"name": uname("p2c"), "vpc_id": uid(), "connect_subnet": uid(), "flavor": "Professional1",
         "eip": eip(100), "max_connection_number": 10}
    g.update(over)
    return {"p2c_vpn_gateway": {k: v for k, v in g.items() if v is not None}}


def create_p2c(hw: Hw, wait: bool = True, token: Optional[str] = None, **over) -> Dict[str, Any]:
    kw = {"x_client_token": token} if token else {}
    gid = hw.call("create_p2c_vgw", p2c_body(**over), **kw).json["p2c_vpn_gateway"]["id"]
    if wait:
        return wait_p2c(hw, gid)
    return {"id": gid}


def server_body(**over) -> Dict[str, Any]:
    n = next_octet()
    s = {"tunnel_protocol": "SSL", "client_cidr": f"192.168.{n}.0/24", "local_subnets": [f"10.{n}.0.0/16"],
         "client_auth_type": "LOCAL_PASSWORD", "server_certificate": {"source": "SERVICE_SIGN"}}
    s.update(over)
    return {"vpn_server": {k: v for k, v in s.items() if v is not None}}


def create_server(hw: Hw, gw_id: str, wait: bool = True, **over) -> Dict[str, Any]:
    sid = hw.call("create_vpn_server", server_body(**over), p2c_vgw_id=gw_id).json["vpn_server"]["id"]
    if wait:
        wait_server(hw, gw_id, sid)
        wait_p2c(hw, gw_id)
    return {"id": sid, "p2c_vgw_id": gw_id}


USER_PW = "Passw0rd!x"


def create_user(hw: Hw, sid: str, name: Optional[str] = None, **over) -> Dict[str, Any]:
    u = {"name": name or uname("u").replace("-", "_"), "password": USER_PW}
    u.update(over)
    uid_ = hw.call("create_vpn_user", {"user": u}, vpn_server_id=sid).json["user"]["id"]
    return {"id": uid_, "name": u["name"]}


def create_group(hw: Hw, sid: str, name: Optional[str] = None, **over) -> Dict[str, Any]:
    g = {"name": name or uname("g"), "description": "group"}
    g.update(over)
    gid = hw.call("create_vpn_user_group", {"user_group": g}, vpn_server_id=sid).json["user_group"]["id"]
    return {"id": gid, "name": g["name"]}


def create_policy(hw: Hw, sid: str, group_id: str, **over) -> Dict[str, Any]:
    p = {"name": uname("pol"), "user_group_id": group_id, "dest_ip_cidrs": [f"10.{next_octet()}.0.0/16"]}
    p.update(over)
    pid = hw.call("create_vpn_access_policy", {"access_policy": p}, vpn_server_id=sid).json["access_policy"]["id"]
    return {"id": pid, "name": p["name"]}


def walk_pages(hw: Hw, op: str, key: str, limit: int = 2, **params) -> Tuple[List[Dict[str, Any]], List[Any]]:
    """Follows `page_info.next_marker` with `limit`; returns every item and every page's JSON."""
    items: List[Dict[str, Any]] = []
    pages: List[Any] = []
    marker = None
    for _ in range(200):
        kw = dict(params, limit=limit)
        if marker is not None:
            kw["marker"] = marker
        j = hw.call(op, **kw).json
        pages.append(j)
        items.extend(j[key])
        marker = j["page_info"].get("next_marker")
        if marker is None:
            return items, pages
    raise AssertionError(f"{op}: more than 200 pages")


# ----------------------------------------------------------------------------------------------------------------
# certificates
# ----------------------------------------------------------------------------------------------------------------
def _cg():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    return x509, hashes, serialization, rsa, NameOID


def make_cert(cn: str = "openvgw test CA", ca: bool = True, days_from: int = -1, days_to: int = 365,
              hash_name: str = "sha256", bits: int = 2048, issuer: Optional[Tuple[Any, Any]] = None
              ) -> Tuple[str, str]:
    """A certificate and its key (PEM); self-signed unless `issuer` = (issuer_cert_obj, issuer_key)."""
    x509, hashes, serialization, rsa, NameOID = _cg()
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openvgw")])
    now = _dt.datetime.now(_dt.timezone.utc)
    iss_name, sign_key = (name, key) if issuer is None else (issuer[0].subject, issuer[1])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(iss_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + _dt.timedelta(days=days_from))
         .not_valid_after(now + _dt.timedelta(days=days_to))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    h = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1(), "sha384": hashes.SHA384()}[hash_name]
    cert = b.sign(sign_key, h)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    kpem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    return pem, kpem


def make_ca_pair(cn: str = "openvgw CA"):
    """(cert object, key) of a CA for issuing leaf certificates."""
    x509, hashes, serialization, rsa, NameOID = _cg()
    pem, kpem = make_cert(cn, ca=True)
    cert = x509.load_pem_x509_certificate(pem.encode())
    key = serialization.load_pem_private_key(kpem.encode(), password=None)
    return cert, key, pem


class Certs:
    """Lazily made certificates for the client-CA error matrix."""

    def __init__(self):
        self._c: Dict[str, str] = {}

    def get(self, kind: str) -> str:
        if kind not in self._c:
            self._c[kind] = {
                "ca": lambda: make_cert("hw-ca")[0],
                "ca2": lambda: make_cert("hw-ca-2")[0],
                "ca3": lambda: make_cert("hw-ca-3")[0],
                "leaf": lambda: make_cert("hw-leaf", ca=False)[0],
                "expired": lambda: make_cert("hw-expired", days_from=-30, days_to=-1)[0],
                "future": lambda: make_cert("hw-future", days_from=10, days_to=400)[0],
                "sha1": lambda: openssl_sha1_ca(),
                "rsa1024": lambda: make_cert("hw-1024", bits=1024)[0],
            }[kind]()
        return self._c[kind]


CERTS = Certs()


def openssl_sha1_ca() -> str:
    """A SHA1-signed CA (the cryptography package refuses SHA1 signatures, the openssl CLI does not)."""
    d = tempfile.mkdtemp(prefix="hwsha1")
    out = os.path.join(d, "ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-sha1", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    os.path.join(d, "k.pem"), "-subj", "/CN=hw-sha1", "-days", "30", "-addext",
                    "basicConstraints=critical,CA:TRUE", "-out", out], check=True, capture_output=True)
    return open(out).read()


def openssl_sm2_cert(cn: str, ca: bool, workdir: str, issuer: Optional[Tuple[str, str]] = None) -> Tuple[str, str]:
    """An SM2/SM3 certificate via the openssl CLI (OpenSSL 3 has SM2). Returns (cert pem, key pem)."""
    key = os.path.join(workdir, f"{cn}.key")
    crt = os.path.join(workdir, f"{cn}.crt")
    ext = os.path.join(workdir, f"{cn}.ext")
    with open(ext, "w") as f:
        f.write(f"basicConstraints=critical,CA:{'TRUE' if ca else 'FALSE'}\n")
    subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", key], check=True, capture_output=True)
    if issuer is None:
        subprocess.run(["openssl", "req", "-new", "-x509", "-key", key, "-sm3", "-days", "365", "-subj",
                        f"/CN={cn}/O=openvgw", "-out", crt, "-extensions", "v3", "-config", _req_conf(workdir, ca)],
                       check=True, capture_output=True)
    else:
        csr = os.path.join(workdir, f"{cn}.csr")
        subprocess.run(["openssl", "req", "-new", "-key", key, "-sm3", "-subj", f"/CN={cn}/O=openvgw", "-out", csr],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1],
                        "-CAcreateserial", "-sm3", "-days", "365", "-extfile", ext, "-out", crt],
                       check=True, capture_output=True)
    return open(crt).read(), open(key).read()


def _req_conf(workdir: str, ca: bool) -> str:
    p = os.path.join(workdir, "req.cnf")
    with open(p, "w") as f:
        f.write("[req]\ndistinguished_name=dn\n[dn]\n[v3]\n"
                f"basicConstraints=critical,CA:{'TRUE' if ca else 'FALSE'}\n")
    return p


def gm_bundle() -> Dict[str, str]:
    """An SM2 CA, a signing certificate and an encryption certificate it issued, with keys; RSA fallback when the
    openssl CLI has no SM2 (the caller reports which)."""
    d = tempfile.mkdtemp(prefix="hwgm")
    ca_pem, ca_key = openssl_sm2_cert("gmca", True, d)
    ca_files = (os.path.join(d, "gmca.crt"), os.path.join(d, "gmca.key"))
    sig, sig_key = openssl_sm2_cert("gmsig", False, d, ca_files)
    enc, enc_key = openssl_sm2_cert("gmenc", False, d, ca_files)
    return {"certificate_chain": ca_pem, "certificate": sig, "private_key": sig_key,
            "enc_certificate": enc, "enc_private_key": enc_key}
