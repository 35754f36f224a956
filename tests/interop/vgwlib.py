"""Helpers for the openvgw Alibaba-dialect interop suite.

Everything here talks to a running `openvgw serve` through the real Alibaba SDKs
(tea-openapi V3/V2 and the legacy aliyun-python-sdk-core), or, for the replay /
freshness checks the SDKs cannot produce, through hand-signed raw HTTP.

Authorities: shared/seeds/000_*.txt (behaviour), shared/spec/aliyun-wire.md (wire),
docs/aliyun-behaviour.md (openvgw's decisions where the seed is silent).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import http.client
import ipaddress
import itertools
import json
import os
import re
import time
import urllib.parse
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

API_VERSION = "2016-04-28"
DEFAULT_REGION = "cn-hangzhou"
OTHER_REGION = "cn-shanghai"
THIRD_REGION = "cn-beijing"
UNKNOWN_REGION = "xx-nowhere-9"

DRY_RUN_MESSAGE = "Request validation has been passed with DryRun flag set."

GATEWAY_STATES = ("init", "provisioning", "active", "updating", "deleting")

# --------------------------------------------------------------------------------------
# unique values
# --------------------------------------------------------------------------------------
_counter = itertools.count(1)
_RUN = uuid.uuid4().hex[:6]


def uid() -> str:
    return f"{_RUN}{next(_counter)}"


def unique_name(prefix: str = "it") -> str:
    # names: 2..100 chars, start with a letter, letters/digits/_/-
    return f"{prefix}-{uid()}"


def unique_vpc() -> str:
    return f"vpc-it{uid()}"


def unique_token() -> str:
    return f"tok-{uuid.uuid4().hex}"


_ip_counter = itertools.count(1)


def unique_ip() -> str:
    """A unique, globally routable IPv4 address (47.0.0.0/8 is Alibaba's own space)."""
    n = next(_ip_counter) + (os.getpid() % 200) * 4000
    return f"47.{100 + (n // 64516) % 100}.{(n // 254) % 254 + 1}.{n % 254 + 1}"


# --------------------------------------------------------------------------------------
# type / shape assertions (aliyun-wire.md section 3)
# --------------------------------------------------------------------------------------
def _type_ok(value: Any, t: Any) -> bool:
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is bool:
        return isinstance(value, bool)
    if t is str:
        return isinstance(value, str)
    if t is dict:
        return isinstance(value, dict)
    if t is list:
        return isinstance(value, list)
    raise TypeError(t)


def assert_type(value: Any, t: Any, where: str) -> None:
    assert _type_ok(value, t), (
        f"{where}: expected JSON {t.__name__}, got {type(value).__name__} {value!r}"
    )


def check_fields(obj: Dict[str, Any], required: Dict[str, Any],
                 optional: Optional[Dict[str, Any]] = None, where: str = "") -> None:
    assert isinstance(obj, dict), f"{where}: expected an object, got {obj!r}"
    for key, t in required.items():
        assert key in obj and obj[key] is not None, (
            f"{where}: missing field {key!r}; fields present: {sorted(obj)}"
        )
        assert_type(obj[key], t, f"{where}.{key}")
    for key, t in (optional or {}).items():
        if key in obj and obj[key] is not None:
            assert_type(obj[key], t, f"{where}.{key}")


def wrapped_list(obj: Dict[str, Any], outer: str, inner: str, where: str = "") -> List[Any]:
    """`{"Outer": {"Inner": [...]}}` -> the list (asserting that exact shape)."""
    assert outer in obj and obj[outer] is not None, (
        f"{where}: missing wrapped list {outer}.{inner}; fields: {sorted(obj)}"
    )
    wrapper = obj[outer]
    assert isinstance(wrapper, dict), f"{where}.{outer} must be an object wrapping {inner}[], got {wrapper!r}"
    items = wrapper.get(inner, [])
    assert isinstance(items, list), f"{where}.{outer}.{inner} must be an array, got {items!r}"
    return items


def plain_list(obj: Dict[str, Any], key: str, where: str = "") -> List[Any]:
    assert key in obj and obj[key] is not None, f"{where}: missing array {key}; fields: {sorted(obj)}"
    assert isinstance(obj[key], list), f"{where}.{key} must be a plain array, got {obj[key]!r}"
    return obj[key]


def tag_map(obj: Dict[str, Any], outer: str = "Tags", where: str = "") -> Dict[str, str]:
    tags = wrapped_list(obj, outer, "Tag", where)
    out = {}
    for i, t in enumerate(tags):
        check_fields(t, {"Key": str}, {"Value": str}, f"{where}.{outer}.Tag[{i}]")
        out[t["Key"]] = t.get("Value", "")
    return out


def assert_spec(spec: Any, bandwidth: int, where: str = "Spec") -> None:
    # the seed shows both "5M" and "5"; either is the same bandwidth, but it must be a String
    assert_type(spec, str, where)
    assert re.fullmatch(rf"{bandwidth}M?", spec), f"{where}: {spec!r} does not denote {bandwidth} Mbps"


def assert_recent_ms(value: Any, where: str, slack_s: int = 600) -> None:
    assert_type(value, int, where)
    now = time.time()
    assert abs(value / 1000.0 - now) < slack_s, (
        f"{where}: {value} is not a millisecond timestamp near now ({int(now * 1000)})"
    )


ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

GATEWAY_REQUIRED = {
    "VpnGatewayId": str, "VpcId": str, "Status": str, "InternetIp": str, "Spec": str,
    "CreateTime": int, "IpsecVpn": str, "SslVpn": str, "Name": str, "VpnType": str,
    "EnableBgp": bool, "AutoPropagate": bool, "BusinessStatus": str,
}
GATEWAY_OPTIONAL = {
    "SslMaxConnections": int, "EndTime": int, "ChargeType": str, "Description": str,
    "VSwitchId": str, "Tag": str, "IntranetIp": str, "ReservationData": dict, "Tags": dict,
}

IKE_TYPES = {"IkeVersion": str, "IkeMode": str, "IkeEncAlg": str, "IkeAuthAlg": str,
             "IkePfs": str, "IkeLifetime": int, "LocalId": str, "RemoteId": str}
IPSEC_TYPES = {"IpsecEncAlg": str, "IpsecAuthAlg": str, "IpsecPfs": str, "IpsecLifetime": int}
CONNECTION_REQUIRED = {
    "VpnConnectionId": str, "VpnGatewayId": str, "CustomerGatewayId": str, "LocalSubnet": str,
    "RemoteSubnet": str, "CreateTime": int, "EffectImmediately": bool, "EnableDpd": bool,
    "EnableNatTraversal": bool, "Status": str, "IkeConfig": dict, "IpsecConfig": dict,
}
CONNECTION_OPTIONAL = {"Name": str, "RemoteCaCertificate": str, "VcoHealthCheck": dict,
                       "VpnBgpConfig": dict, "Description": str}
HEALTH_TYPES = {"Dip": str, "Sip": str, "Enable": str, "Status": str, "Interval": int, "Retry": int}
BGP_TYPES = {"EnableBgp": str, "LocalAsn": int, "PeerAsn": int, "TunnelCidr": str,
             "LocalBgpIp": str, "PeerBgpIp": str, "Status": str, "AuthKey": str}


def check_connection(c: Dict[str, Any], where: str, status: bool = True) -> None:
    """`status=False` for ModifyVpnConnectionAttribute, whose response (seed 7.2) has no Status."""
    required = dict(CONNECTION_REQUIRED)
    if not status:
        required.pop("Status")
    check_fields(c, required, {**CONNECTION_OPTIONAL, "Status": str}, where)
    check_fields(c["IkeConfig"], {k: IKE_TYPES[k] for k in (
        "IkeVersion", "IkeMode", "IkeEncAlg", "IkeAuthAlg", "IkePfs", "IkeLifetime")},
        {"LocalId": str, "RemoteId": str, "Psk": str}, f"{where}.IkeConfig")
    check_fields(c["IpsecConfig"], IPSEC_TYPES, None, f"{where}.IpsecConfig")
    if c.get("VcoHealthCheck"):
        check_fields(c["VcoHealthCheck"], {}, HEALTH_TYPES, f"{where}.VcoHealthCheck")
    if c.get("VpnBgpConfig"):
        check_fields(c["VpnBgpConfig"], {}, BGP_TYPES, f"{where}.VpnBgpConfig")


def check_paging(body: Dict[str, Any], page_number: int, page_size: int, where: str) -> None:
    check_fields(body, {"PageNumber": int, "PageSize": int, "TotalCount": int}, None, where)
    assert body["PageNumber"] == page_number, f"{where}: PageNumber {body['PageNumber']} != {page_number}"
    assert body["PageSize"] == page_size, f"{where}: PageSize {body['PageSize']} != {page_size}"


def in_pool(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


# --------------------------------------------------------------------------------------
# SDK error helpers
# --------------------------------------------------------------------------------------
def tea_status(e: BaseException) -> Optional[int]:
    for attr in ("status_code", "statusCode"):
        v = getattr(e, attr, None)
        if isinstance(v, int):
            return v
    data = getattr(e, "data", None)
    if isinstance(data, dict) and isinstance(data.get("statusCode"), int):
        return data["statusCode"]
    return None


def assert_code(actual: Optional[str], expected: Any, where: str) -> None:
    if callable(expected):
        assert expected(actual), f"{where}: unexpected error code {actual!r}"
    elif isinstance(expected, (tuple, list, set)):
        assert actual in expected, f"{where}: error code {actual!r} not in {expected!r}"
    else:
        assert actual == expected, f"{where}: error code {actual!r}, expected {expected!r}"


def code_prefix(prefix: str, field: Optional[str] = None) -> Callable[[Optional[str]], bool]:
    """`Invalid<Param>` for a field inside a JSON-string parameter (the behaviour doc does not say which
    name is <Param>): `InvalidIkeConfig`, `InvalidIkeConfig.<Field>`, or `Invalid<Field>`."""
    def check(code: Optional[str]) -> bool:
        code = code or ""
        return code == prefix or code.startswith(prefix + ".") or (field is not None and code == f"Invalid{field}")
    check.__name__ = f"code_prefix({prefix}{'|Invalid' + field if field else ''})"
    return check


# --------------------------------------------------------------------------------------
# tea-openapi client wrapper (V3 by default, V2 = HMAC-SHA1 v1.0)
# --------------------------------------------------------------------------------------
def snake(action: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", action).lower()


def make_tea_client(ak: str, sk: str, port: int, mode: str):
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_vpc20160428.client import Client

    kwargs = dict(access_key_id=ak, access_key_secret=sk, region_id=DEFAULT_REGION,
                  endpoint=f"127.0.0.1:{port}", protocol="http",
                  read_timeout=15000, connect_timeout=5000)
    if mode == "v2":
        kwargs["signature_algorithm"] = "v2"
    elif mode != "v3":
        raise ValueError(mode)
    return Client(open_api_models.Config(**kwargs))


class Api:
    """Calls one action through the tea SDK with wire-named params; returns `resp.body.to_map()`."""

    def __init__(self, client, mode: str, tenant: Dict[str, Any], port: int, region: str = DEFAULT_REGION):
        self.client = client
        self.mode = mode
        self.tenant = tenant
        self.port = port
        self.region = region

    def __repr__(self) -> str:
        return f"Api({self.mode}, tenant={self.tenant.get('name')})"

    def in_region(self, region: str) -> "Api":
        return Api(self.client, self.mode, self.tenant, self.port, region)

    def _request(self, action: str, params: Dict[str, Any]):
        from alibabacloud_vpc20160428 import models as vpc_models

        params = dict(params)
        if "RegionId" not in params:
            params["RegionId"] = self.region
        params = {k: v for k, v in params.items() if v is not None}
        req = getattr(vpc_models, f"{action}Request")().from_map(params)
        sent = req.to_map()
        lost = set(params) - set(sent)
        assert not lost, f"test bug: SDK model {action}Request has no field(s) {sorted(lost)}"
        return req

    def raw(self, action: str, params: Optional[Dict[str, Any]] = None, **kw):
        p = dict(params or {})
        p.update(kw)
        req = self._request(action, p)
        return getattr(self.client, snake(action))(req)

    def answer(self, action: str, params: Optional[Dict[str, Any]] = None, **kw) -> Tuple[int, Dict[str, Any]]:
        """The HTTP status and the body's map of a successful call (other SDKs override this)."""
        resp = self.raw(action, params, **kw)
        assert resp.body is not None, (
            f"[{self.mode}] {action}: the SDK could not map the response body (wrong list/object "
            f"shape?); raw response: {getattr(resp, '_map', None)!r}"
        )
        return resp.status_code, resp.body.to_map()

    def call(self, action: str, params: Optional[Dict[str, Any]] = None, **kw) -> Dict[str, Any]:
        status, body = self.answer(action, params, **kw)
        assert status == 200, f"[{self.mode}] {action}: HTTP {status}"
        check_fields(body, {"RequestId": str}, None, f"[{self.mode}] {action}")
        assert body["RequestId"], f"[{self.mode}] {action}: empty RequestId"
        return body

    def error(self, action: str, params: Optional[Dict[str, Any]] = None, code: Any = None,
              status: Optional[int] = None, **kw):
        """Assert the call fails with `code` (and HTTP `status`); return the exception."""
        from Tea.exceptions import TeaException

        try:
            body = self.call(action, params, **kw)
        except TeaException as e:
            where = f"[{self.mode}] {action}({params or kw})"
            assert_code(getattr(e, "code", None), code, f"{where} -> {e}")
            if status is not None:
                assert tea_status(e) == status, (
                    f"{where}: HTTP status {tea_status(e)}, expected {status} (code {e.code})"
                )
            return e
        pytest.fail(f"[{self.mode}] {action}({params or kw}) succeeded, expected error {code}: {body}")


# --------------------------------------------------------------------------------------
# lifecycle helpers
# --------------------------------------------------------------------------------------
POLL = 0.05


def wait_gateway_status(api: Api, gw_id: str, status: str = "active", timeout: float = 10.0,
                        seen: Optional[List[str]] = None) -> Dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        d = api.call("DescribeVpnGateway", {"VpnGatewayId": gw_id})
        last = d.get("Status")
        if seen is not None and (not seen or seen[-1] != last):
            seen.append(last)
        if last == status:
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"gateway {gw_id} still {last!r} after {timeout}s (waiting for {status!r})")
        time.sleep(POLL)


def wait_gateway_gone(api: Api, gw_id: str, timeout: float = 10.0,
                      seen: Optional[List[str]] = None) -> None:
    from Tea.exceptions import TeaException

    deadline = time.monotonic() + timeout
    while True:
        try:
            d = api.call("DescribeVpnGateway", {"VpnGatewayId": gw_id})
        except TeaException as e:
            assert e.code == "InvalidVpnGatewayInstanceId.NotFound", f"unexpected error {e}"
            assert tea_status(e) == 404, f"DescribeVpnGateway NotFound must be HTTP 404, got {tea_status(e)}"
            return
        if seen is not None and (not seen or seen[-1] != d.get("Status")):
            seen.append(d.get("Status"))
        assert d.get("Status") == "deleting", f"gateway {gw_id} is {d.get('Status')!r} after DeleteVpnGateway"
        if time.monotonic() > deadline:
            raise AssertionError(f"gateway {gw_id} still present {timeout}s after DeleteVpnGateway")
        time.sleep(POLL)


def create_gateway(api: Api, *, vpc: Optional[str] = None, bandwidth: int = 5, ssl: bool = False,
                   wait: bool = True, **extra) -> Tuple[str, Dict[str, Any]]:
    params = {"VpcId": vpc or unique_vpc(), "Bandwidth": bandwidth, "Name": unique_name("gw")}
    if ssl:
        params["EnableSsl"] = True
        params.setdefault("SslConnections", 5)
    params.update(extra)
    body = api.call("CreateVpnGateway", params)
    gw = body["VpnGatewayId"]
    if wait:
        return gw, wait_gateway_status(api, gw, "active")
    return gw, body


def create_cgw(api: Api, ip: Optional[str] = None, **extra) -> Tuple[str, str]:
    ip = ip or unique_ip()
    params = {"IpAddress": ip, "Name": unique_name("cgw")}
    params.update(extra)
    body = api.call("CreateCustomerGateway", params)
    return body["CustomerGatewayId"], ip


def create_connection(api: Api, gw: str, cgw: str, local: str = "10.1.0.0/16",
                      remote: str = "192.168.10.0/24", wait: bool = True, **extra) -> str:
    params = {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": local,
              "RemoteSubnet": remote, "Name": unique_name("vco")}
    params.update(extra)
    body = api.call("CreateVpnConnection", params)
    vco = body["VpnConnectionId"]
    if wait:
        wait_gateway_status(api, gw, "active")
    return vco


# --------------------------------------------------------------------------------------
# hand-signed raw HTTP (replay / freshness / seed GET / error body checks)
# --------------------------------------------------------------------------------------
def pct(s: str) -> str:
    """percentEncode from aliyun-wire.md: keep A-Z a-z 0-9 - _ . ~, everything else %XX."""
    return urllib.parse.quote(str(s), safe="-_.~")


def acs3_sign(ak: str, sk: str, method: str, query: Dict[str, str], headers: Dict[str, str],
              body: bytes = b"", signed: Optional[List[str]] = None) -> Dict[str, str]:
    """Sign in place (ACS3-HMAC-SHA256); returns the headers. `query` are decoded params."""
    headers = dict(headers)
    hashed = hashlib.sha256(body).hexdigest()
    headers.setdefault("x-acs-content-sha256", hashed)
    lower = {k.lower(): v for k, v in headers.items()}
    if signed is None:
        signed = sorted(h for h in lower if h == "host" or h == "content-type" or h.startswith("x-acs-"))
    cq = "&".join(f"{k}={v}" for k, v in sorted((pct(k), pct(v)) for k, v in query.items()))
    ch = "".join(f"{h}:{lower[h].strip()}\n" for h in signed)
    sh = ";".join(signed)
    canonical = f"{method}\n/\n{cq}\n{ch}\n{sh}\n{lower['x-acs-content-sha256']}"
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    sig = hmac.new(sk.encode(), sts.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"ACS3-HMAC-SHA256 Credential={ak},SignedHeaders={sh},Signature={sig}"
    return headers


def v1_signature(sk: str, method: str, params: Dict[str, str]) -> str:
    canon = "&".join(f"{k}={v}" for k, v in sorted((pct(k), pct(v)) for k, v in params.items()
                                                  if k != "Signature"))
    sts = f"{method}&{pct('/')}&{pct(canon)}"
    return base64.b64encode(hmac.new((sk + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()


def utc_stamp(offset_s: float = 0) -> str:
    t = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class RawResponse:
    def __init__(self, status: int, headers: Dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Dict[str, Any]:
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError(f"HTTP {self.status}: body is not JSON: {self.body[:500]!r}") from e

    def __repr__(self) -> str:
        return f"RawResponse({self.status}, {self.body[:300]!r})"


def http_request(port: int, method: str, target: str, headers: Optional[Dict[str, str]] = None,
                 body: bytes = b"", timeout: float = 10.0) -> RawResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if "host" not in {k.lower() for k in hdrs}:
            hdrs["host"] = f"127.0.0.1:{port}"
        if body or method in ("POST", "PUT"):
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data = r.read()
        return RawResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def acs3_prepare(port: int, ak: str, sk: str, action: str, params: Dict[str, Any],
                 nonce: Optional[str] = None, date: Optional[str] = None,
                 method: str = "POST") -> Tuple[str, Dict[str, str]]:
    query = {k: str(v) for k, v in params.items()}
    headers = {
        "host": f"127.0.0.1:{port}",
        "x-acs-action": action,
        "x-acs-version": API_VERSION,
        "x-acs-date": date or utc_stamp(),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "accept": "application/json",
    }
    headers = acs3_sign(ak, sk, method, query, headers)
    target = "/?" + urllib.parse.urlencode(query) if query else "/"
    return target, headers


def acs3_call(port: int, ak: str, sk: str, action: str, params: Dict[str, Any], **kw) -> RawResponse:
    method = kw.get("method", "POST")
    target, headers = acs3_prepare(port, ak, sk, action, params, **kw)
    return http_request(port, method, target, headers)


def v1_prepare(ak: str, sk: str, action: str, params: Dict[str, Any], method: str = "GET",
               timestamp: Optional[str] = None, nonce: Optional[str] = None,
               fmt: Optional[str] = "JSON") -> str:
    q = {
        "Action": action, "Version": API_VERSION, "AccessKeyId": ak,
        "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex, "Timestamp": timestamp or utc_stamp(),
    }
    if fmt is not None:
        q["Format"] = fmt
    q.update({k: str(v) for k, v in params.items()})
    q["Signature"] = v1_signature(sk, method, q)
    return "/?" + "&".join(f"{pct(k)}={pct(v)}" for k, v in q.items())


def v1_call(port: int, ak: str, sk: str, action: str, params: Dict[str, Any], method: str = "GET",
            **kw) -> RawResponse:
    target = v1_prepare(ak, sk, action, params, method=method, **kw)
    return http_request(port, method, target, {"host": f"127.0.0.1:{port}"})


# --------------------------------------------------------------------------------------
# legacy aliyun-python-sdk-core wrapper
# --------------------------------------------------------------------------------------
class Legacy:
    def __init__(self, ak: str, sk: str, port: int, region: str = DEFAULT_REGION):
        from aliyunsdkcore.client import AcsClient

        self.port = port
        self.client = AcsClient(ak, sk, region, auto_retry=False, max_retry_time=0,
                                timeout=15, connect_timeout=5)

    def _prep(self, req, method: Optional[str] = "POST"):
        req.set_endpoint(f"127.0.0.1:{self.port}")
        req.set_protocol_type("http")
        if method:
            req.set_method(method)
        return req

    def do(self, req, method: Optional[str] = "POST") -> Dict[str, Any]:
        body = self.client.do_action_with_exception(self._prep(req, method))
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        assert isinstance(data.get("RequestId"), str) and data["RequestId"], f"no RequestId in {data}"
        return data

    def raw(self, req, method: Optional[str] = "POST") -> bytes:
        """Raw body bytes without forcing Format=JSON (for Format=XML)."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return self.client.do_action(self._prep(req, method))

    def error(self, req, code: Any, status: Optional[int] = None, method: Optional[str] = "POST"):
        from aliyunsdkcore.acs_exception.exceptions import ServerException

        try:
            body = self.do(req, method)
        except ServerException as e:
            assert_code(e.get_error_code(), code, f"legacy {req.get_action_name()} -> {e}")
            if status is not None:
                assert e.get_http_status() == status, (
                    f"legacy {req.get_action_name()}: HTTP {e.get_http_status()}, expected {status}"
                )
            return e
        pytest.fail(f"legacy {req.get_action_name()} succeeded, expected {code}: {body}")


def legacy_request(name: str, **params):
    """Instantiate aliyunsdkvpc.request.v20160428.<name>Request and call its set_<Param> setters."""
    import importlib

    mod = importlib.import_module(f"aliyunsdkvpc.request.v20160428.{name}Request")
    req = getattr(mod, f"{name}Request")()
    for k, v in params.items():
        setter = getattr(req, f"set_{k}", None)
        assert setter is not None, f"test bug: legacy {name}Request has no set_{k}"
        setter(v)
    return req


def legacy_common(port: int, action: str, params: Optional[Dict[str, Any]] = None,
                  method: Optional[str] = None, fmt: Optional[str] = None):
    from aliyunsdkcore.request import CommonRequest

    req = CommonRequest(domain=f"127.0.0.1:{port}", version=API_VERSION, action_name=action, product="Vpc")
    req.set_protocol_type("http")
    if method:
        req.set_method(method)
    if fmt:
        req.set_accept_format(fmt)
    for k, v in (params or {}).items():
        req.add_query_param(k, v)
    return req


# --------------------------------------------------------------------------------------
# Prometheus text parsing
# --------------------------------------------------------------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> Tuple[Dict[str, str], List[Tuple[str, Dict[str, str], float]]]:
    types: Dict[str, str] = {}
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        samples.append((m.group(1), labels, value))
    return types, samples
