"""A server a test owns: its own data dir, config and store, started, `kill -9`ed and restarted on the same store.

The session servers in conftest.py are shared; tests that kill a server or need their own pool and quotas start one
of these through a fixture whose finalizer stops it (by PID) even when the test fails.

Binary: $OPENVGW_BIN or <repo>/target/debug/openvgw. Store: the embedded SQLite in the data dir, or, when
$OPENVGW_TEST_STORE_URL is set (a PostgreSQL URL the test user may create databases with), a fresh database created
on that server for each OwnServer (`CREATE DATABASE` through `psql`) and passed as `--store`; every restart of the
same OwnServer keeps that database.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
STORE_ENV = "OPENVGW_TEST_STORE_URL"


def binary() -> Path:
    return Path(os.environ.get("OPENVGW_BIN") or REPO / "target" / "debug" / "openvgw")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(bin_path: Path, port: int, data_dir: Path, config_path: Path, store_args: List[str],
           log_path: Path) -> subprocess.Popen:
    """`openvgw serve` on 127.0.0.1:`port`, its output appended to `log_path`, in a session of its own."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [str(bin_path), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
             "--config", str(config_path), *store_args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "RUST_BACKTRACE": "1"})


def wait_healthy(proc: subprocess.Popen, port: int, timeout: float) -> bool:
    """Whether `proc` answers /healthz on `port` within `timeout` (False as soon as it exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return True
        except Exception:
            pass
        time.sleep(0.05)
    return False


def stop_process(proc: Optional[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; nothing if it is not running."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass


def psql_binary() -> str:
    bindir = os.environ.get("OPENVGW_TEST_PG_BINDIR")
    if bindir and (Path(bindir) / "psql").exists():
        return str(Path(bindir) / "psql")
    return "psql"


def _psql(url: str, sql: str) -> None:
    r = subprocess.run([psql_binary(), url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"psql {sql!r} exited {r.returncode}: {r.stderr.strip()}")


def fresh_store() -> Optional[Dict[str, str]]:
    """None for the embedded store; with $OPENVGW_TEST_STORE_URL a new, empty database on that server:
    {"url": <url of the new database>, "name": <database name>, "admin": <the URL from the environment>}."""
    base = os.environ.get(STORE_ENV)
    if not base:
        return None
    name = f"openvgw_own_{uuid.uuid4().hex[:16]}"
    try:
        url = create_database(base, name)
    except (OSError, RuntimeError) as e:
        pytest.fail(f"{STORE_ENV} is set but a database could not be created there: {e}", pytrace=False)
    return {"url": url, "name": name, "admin": base}


def test_pg_url(purpose: str) -> str:
    """$OPENVGW_TEST_PG_URL, the PostgreSQL server scripts/test starts for tests that need one (replicas); without
    it the test is skipped with a reason, except under CI=true, where it fails."""
    url = os.environ.get("OPENVGW_TEST_PG_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"OPENVGW_TEST_PG_URL is not set under CI=true: scripts/test starts a PostgreSQL server for "
                        f"{purpose}", pytrace=False)
        pytest.skip(f"OPENVGW_TEST_PG_URL is not set: no PostgreSQL server for {purpose}")
    return url


def create_database(base: str, name: str) -> str:
    """A new, empty database `name` on the server of `base` (a PostgreSQL URL); the new database's URL."""
    _psql(base, f'CREATE DATABASE "{name}"')
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path="/" + name))


def drop_store(store: Optional[Dict[str, str]]) -> None:
    if store is None:
        return
    try:
        _psql(store["admin"], f'DROP DATABASE IF EXISTS "{store["name"]}"')
    except (OSError, RuntimeError) as e:  # the database is left behind; the run itself is unaffected
        print(f"could not drop {store['name']}: {e}")


class OwnServer:
    def __init__(self, name: str, workdir: Path, config: str, store: Optional[Dict[str, str]] = None):
        self.name = name
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config_path = workdir / "config.toml"
        self.stderr_path = workdir / "server.stderr"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config)
        self.bin = binary()
        # A replica shares another server's database (and leaves dropping it to that server).
        self.owns_store = store is None
        self.store = fresh_store() if store is None else store
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.starts = 0

    def store_args(self) -> List[str]:
        return ["--store", self.store["url"]] if self.store else []

    @property
    def sqlite_file(self) -> Optional[Path]:
        return None if self.store else self.data_dir / "openvgw.db"

    # -- process -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Starts (or restarts, on the same data dir and store) and waits for /healthz; a fresh port each time."""
        if not self.bin.exists():
            pytest.fail(f"openvgw binary not found at {self.bin} (set OPENVGW_BIN or `cargo build -p openvgw`)",
                        pytrace=False)
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is already running"
        for _attempt in range(3):
            self.port = free_port()
            with open(self.stderr_path, "ab") as log:
                log.write(f"\n=== start {self.starts + 1} on port {self.port} ===\n".encode())
            self.proc = launch(self.bin, self.port, self.data_dir, self.config_path, self.store_args(),
                               self.stderr_path)
            if wait_healthy(self.proc, self.port, 30.0):
                self.starts += 1
                return
            self.stop()
        pytest.fail(f"{self.name}: openvgw did not serve /healthz within 30 s\n{self.tail()}", pytrace=False)

    def kill9(self) -> None:
        """SIGKILL, no chance to flush or close anything; waits until the process is gone."""
        proc = self.proc
        assert proc is not None and proc.poll() is None, f"{self.name} is not running (exit {proc and proc.poll()})"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc)

    def close(self) -> None:
        """Stops the process and drops the PostgreSQL database (if any). For fixture finalizers."""
        self.stop()
        if self.owns_store:
            drop_store(self.store)
        self.store = None

    def tail(self, n: int = 30) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(lines[-n:])

    def crashed(self) -> bool:
        """A panic in the log (the server's own crash, not our SIGKILL)."""
        try:
            return "panicked at" in self.stderr_path.read_text(errors="replace")
        except OSError:
            return False

    # -- tenants -------------------------------------------------------------------------------------------------
    def create_tenant(self, name: str) -> Dict[str, Any]:
        cmd = [str(self.bin), "tenant", "create", "--name", name, "--data-dir", str(self.data_dir),
               "--config", str(self.config_path), *self.store_args()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"`tenant create` exited {r.returncode}: {r.stderr}\n{r.stdout}"
        lines = [line for line in r.stdout.splitlines() if line.strip().startswith("{")]
        assert lines, f"`tenant create` printed no JSON line: {r.stdout!r}"
        t = json.loads(lines[-1])
        t["name"] = name
        return t


def started(tmp_path_factory, name: str, config: str, store: Optional[Dict[str, str]] = None) -> OwnServer:
    """A started OwnServer in a fresh temp dir; the caller's fixture must `close()` it (also on failure). With
    `store`, a replica on that (PostgreSQL) database."""
    srv = OwnServer(name, tmp_path_factory.mktemp(name), config, store)
    try:
        srv.start()
    except BaseException:
        srv.close()
        raise
    return srv


def finish(srv: OwnServer) -> None:
    """For fixture finalizers: prints the log tail (pytest shows it with a failing test) and closes."""
    print(f"--- {srv.name} log tail ---\n{srv.tail(20)}")
    srv.close()
