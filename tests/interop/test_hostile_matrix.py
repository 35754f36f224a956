"""Never a 5xx, table-driven: every operation of both dialects, every parameter it takes, hostile values.

Alibaba: each action's parameters are read from the SDK's own request model; each is sent alone (with RegionId)
with numbers at the edges, wrong types, markup, oversized and odd text. Huawei: each operation of the served OpenAPI
document with hostile path ids and paging, and, where it takes a body, every field of its request schema set to
values of the wrong type or size. Every answer must be a 2xx/4xx with the dialect's error body. The operation lists
come from the dialects themselves, so a new operation is covered without a new row.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any, Dict, List, Tuple

import pytest

import hwlib
import vgwlib
from conftest import MAIN_CONFIG, _start
from test_isolation_matrix import dialect_actions

CONFIG = MAIN_CONFIG.replace("[regions]", "[rate_limit]\nenabled = false\n\n[regions]", 1)

ALIYUN_VALUES = ["9223372036854775807", "-9223372036854775809", "18446744073709551616", "1e309", "NaN", "-1", "0",
                 "", " ", "true", "{", "[1,{}]", "{\"a\":[]}", "<a>&'\"</a>", "\u00e9\u4e2d" * 100, "x" * 1500,
                 "10.0.0.0/33", "vpn-" + "a" * 100]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    srv = _start(tmp_path_factory, "openvgw-hostile", CONFIG, "198.18.34.0/24")
    yield srv
    srv.stop()


def wire_fields(action: str) -> Tuple[List[str], List[str]]:
    """The wire names of the scalar parameters of the SDK's request model for `action`, and the attributes that are
    not scalars (lists/objects: sent through their flattened forms by other tests)."""
    from alibabacloud_vpc20160428 import models as vpc_models
    cls = getattr(vpc_models, f"{action}Request")
    names, other = [], []
    for attr in vars(cls()):
        if attr.startswith("_"):
            continue
        m = cls()
        setattr(m, attr, "v")
        try:
            sent = m.to_map()
        except Exception:  # a list or object field
            other.append(attr)
            continue
        names.extend(k for k, v in sent.items() if v == "v")
    return sorted(set(names)), other


def test_every_alibaba_action_has_an_sdk_model():
    from alibabacloud_vpc20160428 import models as vpc_models
    missing = [a for a in dialect_actions() if not hasattr(vpc_models, f"{a}Request")]
    assert not missing, f"actions without an SDK request model: {missing}"


@pytest.mark.parametrize("action", dialect_actions())
def test_alibaba_action_never_answers_5xx(hostile_server, action):
    tenant = hostile_server.create_tenant(vgwlib.unique_name("h"))
    ak, sk = tenant["access_key_id"], tenant["access_key_secret"]
    fields, _ = wire_fields(action)
    fields = [f for f in fields if f != "RegionId"]
    assert fields, f"{action}: the SDK model has no scalar parameter"
    bad = []
    for field in fields:
        for value in ALIYUN_VALUES:
            r = vgwlib.acs3_call(hostile_server.port, ak, sk, action,
                                 {"RegionId": vgwlib.DEFAULT_REGION, field: value})
            body = r.json()
            if r.status >= 500 or (r.status >= 400 and not body.get("Code")):
                bad.append((field, value[:40], r.status, body.get("Code"), body.get("Message", "")[:120]))
    assert not bad, f"{action}: {len(bad)} answers were 5xx or lacked a code: {bad[:10]}"


# ---- Huawei ----------------------------------------------------------------------------------------------------
HW_IDS = ["0", "a" * 300, "%00", "..", "x%2Fy", "%E2%80%AE", str(uuid.uuid4())]
HW_QUERIES = [[("limit", "18446744073709551616")], [("offset", "-1")], [("marker", "\u00ff" * 50)],
              [("limit", "x")], [("offset", "99999999999999999999")]]
HW_FIELD_VALUES: List[Any] = [2 ** 64, -1, 1e308, "x" * 5000, [], {}, None, True, "\u00e9" * 50, [[]], "0"]
HW_BODIES: List[Any] = [{}, [], None, "text", 0, {"x": {}}]


def _ops() -> List[Tuple[str, str, str]]:
    return hwlib.dialect_ops()


def _fields(schema: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(wrapper, field) pairs of a request schema `{wrapper: {field: …}}`; (field, "") for flat ones."""
    out = []
    for top, sub in (schema.get("properties") or {}).items():
        props = (sub or {}).get("properties")
        if props:
            out.extend((top, f) for f in props)
        else:
            out.append((top, ""))
    return out


@pytest.mark.parametrize("op,method,path", _ops(), ids=[o[0] for o in _ops()])
def test_huawei_operation_never_answers_5xx(hostile_server, op, method, path):
    tenant = hostile_server.create_tenant(vgwlib.unique_name("hh"))
    hw = hwlib.Hw(tenant, hostile_server.port, hwlib.REGION)
    doc = hwlib.openapi(hostile_server.port)
    assert op in doc, f"{op} is not in the served OpenAPI document"
    schema = (doc[op][2].get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema", {})
    params = re.findall(r"\{(\w+)\}", path)
    bad = []

    def send(p: str, body: Any = None, query=None) -> None:
        data = None if body is None and method in ("GET", "DELETE") else json.dumps(body).encode()
        r = hw.raw(method, p, body=data, query=query)
        ok = r.status < 500 and (r.status < 400 or (isinstance(r.json, dict) and r.json.get("error_code")))
        if not ok:
            bad.append((p[:80], str(body)[:60], query, r.status, r.text[:120]))

    def with_ids(ident: str) -> str:
        p = path
        for name in params:
            if name != "project_id":
                p = p.replace("{" + name + "}", ident)
        return p

    for ident in HW_IDS:
        send(with_ids(ident), {} if method in ("POST", "PUT") else None)
    target = with_ids(str(uuid.uuid4()))
    if method == "GET":
        for q in HW_QUERIES:
            send(target, None, q)
    if method in ("POST", "PUT"):
        for body in HW_BODIES:
            send(target, body)
        for top, field in _fields(schema):
            for value in HW_FIELD_VALUES:
                send(target, {top: {field: value}} if field else {top: value})
    assert not bad, f"{op}: {len(bad)} answers were 5xx or lacked an error code: {bad[:8]}"
