"""The OpenAPI document `openvgw serve` publishes for the Huawei dialect: the same as the checked-in copy, and every
operation in it routes on the running server. (Every successful SDK call of the suite is also checked against the
document's status and response schema, in hwlib.check_against_openapi.)"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import hwlib

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "huawei.json"


def served(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi/huawei.json", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        return json.load(r)


def test_served_document_is_the_checked_in_one(server):
    doc = served(server.port)
    assert doc == json.loads(DOC.read_text()), "docs/openapi/huawei.json differs from what serve publishes"
    assert doc["openapi"].startswith("3.1")
    ops = {o["operationId"] for item in doc["paths"].values() for o in item.values()}
    assert ops == {name for name, _, _ in hwlib.dialect_ops()}, "document and ops.rs list different operations"


def test_every_documented_operation_routes(server):
    """Unsigned, every documented method and path reaches authentication (401), none is unknown to the router
    (404 APIGW.0101); the password sign-in needs no credential and refuses the empty body instead."""
    doc = served(server.port)
    for path, item in doc["paths"].items():
        concrete = "/".join("x0y1z2" if s.startswith("{") else s for s in path.split("/"))
        for method, o in item.items():
            r = hwlib.http(method.upper(), server.port, concrete, [], {"Content-Type": "application/json"},
                           b"{}" if method in ("post", "put") else b"")
            if o["operationId"] == "keystone_create_user_token_by_password":
                assert r.status == 400, (method, path, r.status, r.text)
            else:
                assert (r.status, r.json and r.json.get("error_code")) == (401, "APIGW.0301"), (method, path, r.text)
