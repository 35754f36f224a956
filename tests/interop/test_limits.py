"""Connection limits: idle, slow and abandoned clients cannot starve real ones.

A server with a small connection cap and short timeouts is held under hundreds of idle and byte-a-second
(slowloris) connections; signed SDK calls must still be answered, the cap holds, and each kind of stalled
connection is closed by the server (the waits below are upper bounds many times the configured timeouts, not
timing windows).
"""
from __future__ import annotations

import socket
import threading
import time
from typing import List

import pytest

import vgwlib
from conftest import MAIN_CONFIG, _start

MAX_CONNECTIONS = 64
LIMITS_CONFIG = MAIN_CONFIG.replace(
    "[regions]",
    f"""[server]
max_connections = {MAX_CONNECTIONS}
header_read_timeout_s = 2
idle_timeout_s = 2
body_read_timeout_s = 2

[regions]""",
    1,
)
# Upper bound for "the server closes it": far above every configured timeout.
CLOSE_BOUND_S = 30


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory):
    srv = _start(tmp_path_factory, "openvgw-limits", LIMITS_CONFIG, "198.18.32.0/24")
    yield srv
    srv.stop()


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return s


def _closed_by_server(s: socket.socket, bound_s: float = CLOSE_BOUND_S) -> bytes:
    """Reads until the server closes the connection; fails if it is still open after `bound_s`."""
    s.settimeout(bound_s)
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return got
            got += chunk
    except ConnectionResetError:
        return got
    except socket.timeout:
        pytest.fail(f"the server kept a stalled connection open for more than {bound_s} s")


def _open_connections(limits_server) -> int:
    text = vgwlib.http_request(limits_server.port, "GET", "/metrics").body.decode()
    _, samples = vgwlib.parse_prometheus(text)
    values = [v for name, _labels, v in samples if name == "openvgw_http_connections_open"]
    assert len(values) == 1, f"/metrics has no openvgw_http_connections_open gauge: {values}"
    return int(values[0])


def test_idle_and_slowloris_connections_do_not_starve_signed_requests(limits_server):
    tenant = limits_server.create_tenant(vgwlib.unique_name("lim"))
    api = limits_server.api(tenant)
    held: List[socket.socket] = []
    stop = threading.Event()

    def trickle(s: socket.socket) -> None:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            while not stop.is_set():
                s.sendall(b"X")
                time.sleep(0.5)
        except OSError:
            pass  # closed by the server: what the test wants

    threads = []
    try:
        for _ in range(300):
            held.append(_connect(limits_server.port))
        for _ in range(50):
            s = _connect(limits_server.port)
            held.append(s)
            t = threading.Thread(target=trickle, args=(s,), daemon=True)
            t.start()
            threads.append(t)
        for i in range(10):
            body = api.call("DescribeVpnGateways", {"PageSize": 10})
            assert body["TotalCount"] == 0, body
            # Each call is a new connection that must be admitted despite the 350 held ones.
        assert _open_connections(limits_server) <= MAX_CONNECTIONS
    finally:
        stop.set()
        for s in held:
            s.close()
        for t in threads:
            t.join(timeout=5)


def test_a_connection_that_never_completes_its_headers_is_closed(limits_server):
    s = _connect(limits_server.port)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        _closed_by_server(s)
    finally:
        s.close()


def test_a_silent_connection_is_closed(limits_server):
    s = _connect(limits_server.port)
    try:
        _closed_by_server(s)
    finally:
        s.close()


def test_an_idle_keep_alive_connection_is_closed(limits_server):
    s = _connect(limits_server.port)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = _closed_by_server(s)
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
    finally:
        s.close()


@pytest.mark.parametrize("path,dialect_code", [("/", b"RequestTimeout"), ("/v5/p/vpn-gateways", b"VPN.0001")])
def test_a_body_that_never_arrives_gets_408(limits_server, path, dialect_code):
    s = _connect(limits_server.port)
    try:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 100\r\n\r\n{{\"a\":".encode())
        got = _closed_by_server(s)
        assert got.startswith(b"HTTP/1.1 408"), got[:300]
        assert dialect_code in got, got
    finally:
        s.close()


# ---- rate limits ----------------------------------------------------------------------------------------------
THROTTLE_CONFIG = MAIN_CONFIG.replace(
    "[regions]",
    """[rate_limit]
tenant_per_second = 1
tenant_burst = 3
operation_per_second = 1000
operation_burst = 1000

[regions]""",
    1,
)


@pytest.fixture(scope="module")
def throttle_server(tmp_path_factory):
    srv = _start(tmp_path_factory, "openvgw-throttle", THROTTLE_CONFIG, "198.18.33.0/24")
    yield srv
    srv.stop()


def test_aliyun_throttling_per_tenant_and_operation(throttle_server):
    from alibabacloud_tea_openapi.exceptions import ThrottlingException

    a = throttle_server.api(throttle_server.create_tenant(vgwlib.unique_name("ta")))
    b = throttle_server.api(throttle_server.create_tenant(vgwlib.unique_name("tb")))
    for _ in range(3):
        a.call("DescribeVpnGateways")
    with pytest.raises(ThrottlingException) as info:
        a.call("DescribeVpnGateways")
    e = info.value
    assert e.code == "Throttling.User" and e.status_code == 400, e
    assert isinstance(e.retry_after, int) and 0 < e.retry_after <= 1000, e.retry_after
    # Another operation of the same tenant, and the same operation of another tenant, have their own budget.
    a.call("DescribeCustomerGateways")
    b.call("DescribeVpnGateways")
    # Waiting as long as the answer says is enough.
    time.sleep(e.retry_after / 1000 + 0.05)
    a.call("DescribeVpnGateways")


def test_huawei_throttling_is_429_with_retry_after(throttle_server):
    import hwlib

    hw = hwlib.Hw(throttle_server.create_tenant(vgwlib.unique_name("th")), throttle_server.port, hwlib.REGION)
    for _ in range(3):
        hw.call("list_cgws")
    r = hw.raw("GET", "/v5/{project_id}/customer-gateways")
    hwlib.assert_raw_error(r, 429, "APIGW.0308")
    retry = int(r.header("Retry-After"))
    assert 1 <= retry <= 2, retry
    # The SDK's transport treats any 429 as "retries exhausted" (urllib3 Retry with status_forcelist=[429] and
    # retry_times 0) and raises a request exception with status 429 and code "429" of its own making.
    err = hw.error("list_cgws")
    assert (err.status_code, err.error_code) == (429, "429"), err
    time.sleep(retry + 0.05)
    hw.call("list_cgws")
