"""Alibaba's Node.js SDKs behind the same `Api` interface as the Python tea client, so every scenario written against
the `tea` fixture also runs through them (conftest: the `node-v3` and `node-pop` parameters).

Each client is one `node tests/interop/node/bridge.js` process (see there): wire-named parameters in, the response
body's map out, errors as `NodeSdkError` with the SDK's code and HTTP status. The packages are installed by
scripts/test (`npm ci` in tests/interop/node).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from Tea.exceptions import TeaException

import vgwlib

NODE_DIR = Path(__file__).resolve().parent / "node"


def missing() -> str:
    """Why the Node SDKs cannot run here ("" when they can)."""
    if not shutil.which("node"):
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "@alicloud" / "vpc20160428").is_dir():
        return f"the Node SDKs are not installed (npm ci in {NODE_DIR})"
    return ""


class NodeSdkError(TeaException):
    """What a Node SDK threw for an error answer: its code, the HTTP status it saw and the error body (`data`, with
    `statusCode`, as the Python SDK gives it), so that code written for the Python SDK's errors handles it."""

    def __init__(self, code: str, status: Optional[int], message: str, data: Optional[Dict[str, Any]]):
        super().__init__({"code": code, "message": message, "data": {**(data or {}), "statusCode": status}})
        self.status_code = status


class Bridge:
    """One Node SDK client; requests are serialised (tests may call from threads)."""

    _all: List["Bridge"] = []

    def __init__(self, kind: str, ak: str, sk: str, port: int, region: str):
        self.kind = kind
        self.proc = subprocess.Popen(
            ["node", str(NODE_DIR / "bridge.js"), kind, ak, str(port), region],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            env={**os.environ, "NODE_NO_WARNINGS": "1"})
        assert self.proc.stdin is not None
        self.proc.stdin.write(sk + "\n")
        self.lock = threading.Lock()
        Bridge._all.append(self)

    def request(self, action: str, params: Dict[str, Any]) -> Dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self.lock:
            self.proc.stdin.write(json.dumps({"action": action, "params": params}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"the Node {self.kind} bridge exited: {err}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @classmethod
    def close_all(cls) -> None:
        for b in cls._all:
            b.close()
        cls._all.clear()


class NodeApi(vgwlib.Api):
    """`vgwlib.Api` through a Node SDK: `mode` is `node-v3` (the tea SDK, ACS3-HMAC-SHA256) or `node-pop`
    (pop-core, HMAC-SHA1)."""

    def __init__(self, bridge: Bridge, mode: str, tenant: Dict[str, Any], port: int,
                 region: str = vgwlib.DEFAULT_REGION):
        super().__init__(None, mode, tenant, port, region)
        self.bridge = bridge

    def in_region(self, region: str) -> "NodeApi":
        return NodeApi(self.bridge, self.mode, self.tenant, self.port, region)

    def answer(self, action: str, params: Optional[Dict[str, Any]] = None, **kw) -> Tuple[int, Dict[str, Any]]:
        p = dict(params or {})
        p.update(kw)
        p.setdefault("RegionId", self.region)
        p = {k: v for k, v in p.items() if v is not None}
        answer = self.bridge.request(action, p)
        if answer.get("code") == "BridgeError" or (answer.get("message") or "").startswith("test bug"):
            raise AssertionError(f"[{self.mode}] {action}: {answer['message']}")
        if not answer["ok"]:
            raise NodeSdkError(answer["code"], answer.get("status"), answer.get("message", ""), answer.get("data"))
        if self.mode == "node-v3":
            # The tea bridge compares the answer with the SDK's typed model: Go's and Java's decoders would refuse
            # what Node's models quietly convert.
            assert answer["mismatches"] == [], \
                f"[{self.mode}] {action}: the answer's types differ from the SDK's model: {answer['mismatches']}"
        return answer["status"], answer["body"]


def node_api(tenant: Dict[str, Any], port: int, mode: str, region: str = vgwlib.DEFAULT_REGION) -> NodeApi:
    kind = {"node-v3": "tea", "node-pop": "pop"}[mode]
    bridge = Bridge(kind, tenant["access_key_id"], tenant["access_key_secret"], port, region)
    return NodeApi(bridge, mode, tenant, port, region)
