"""GET /metrics: Prometheus text with request counters labelled by action and code."""
from __future__ import annotations

from collections import defaultdict

import vgwlib
from vgwlib import create_gateway


def scrape(server):
    r = vgwlib.http_request(server.port, "GET", "/metrics")
    assert r.status == 200, r
    ctype = r.headers.get("content-type", "")
    assert ctype.startswith("text/plain"), f"/metrics Content-Type {ctype!r}"
    types, samples = vgwlib.parse_prometheus(r.body.decode("utf-8"))
    assert types, "no `# TYPE` lines in /metrics"
    return types, samples


def counters(types, samples, action, code=None):
    """{metric_name: value} for counter samples with label action=<action> (and code=<code>)."""
    out = defaultdict(float)
    for name, labels, value in samples:
        base = name[:-len("_total")] if name.endswith("_total") and name not in types else name
        if types.get(name) != "counter" and types.get(base) != "counter":
            continue
        if labels.get("action") != action or "code" not in labels:
            continue
        if code is not None and labels["code"] != code:
            continue
        out[name] += value
    return out


def test_healthz(server):
    r = vgwlib.http_request(server.port, "GET", "/healthz")
    assert r.status == 200


def test_request_counters_by_action_and_code(server, tea_v3):
    code = "InvalidVpnGatewayInstanceId.NotFound"
    types, samples = scrape(server)
    before_err = counters(types, samples, "DescribeVpnGateway", code)
    before_ok = counters(types, samples, "DescribeVpnGateways")

    for _ in range(2):
        tea_v3.error("DescribeVpnGateway", {"VpnGatewayId": "vpn-doesnotexist000"}, code, 404)
    tea_v3.call("DescribeVpnGateways", {})

    types, samples = scrape(server)
    after_err = counters(types, samples, "DescribeVpnGateway", code)
    after_ok = counters(types, samples, "DescribeVpnGateways")
    assert after_err, (f"no counter with labels action=\"DescribeVpnGateway\",code=\"{code}\" in /metrics; "
                       f"counters seen: {sorted({n for n, l, v in samples if types.get(n) == 'counter'})}")
    deltas = {n: after_err[n] - before_err.get(n, 0.0) for n in after_err}
    assert 2.0 in deltas.values(), f"error counter did not grow by exactly 2: {deltas}"
    ok_deltas = {n: after_ok[n] - before_ok.get(n, 0.0) for n in after_ok}
    assert any(d >= 1.0 for d in ok_deltas.values()), f"success counter for DescribeVpnGateways did not grow: {ok_deltas}"


def test_counters_cover_mutations(server, tea_v3):
    types, samples = scrape(server)
    before = counters(types, samples, "CreateVpnGateway")
    create_gateway(tea_v3, wait=False)
    types, samples = scrape(server)
    after = counters(types, samples, "CreateVpnGateway")
    assert any(after[n] - before.get(n, 0.0) >= 1.0 for n in after), f"CreateVpnGateway not counted: {after}"
