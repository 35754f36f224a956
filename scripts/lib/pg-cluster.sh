# Sourced by scripts/test: a throw-away PostgreSQL cluster for the tests.
#   pg_cluster_start   -> exports OPENVGW_TEST_PG_URL (a database "openvgw_test" on 127.0.0.1:<free port>, trust
#                         authentication, also a unix socket in the cluster's directory), sets PG_CLUSTER_PID
#   pg_cluster_createdb NAME -> prints the URL of a new empty database NAME on it
#   pg_cluster_stop    -> stops the server (by its PID) and removes the directory
# As root the cluster belongs to the `postgres` system user (initdb refuses root). The cluster runs with fsync=off:
# it is thrown away, and the tests kill openvgw, never PostgreSQL (openvgw's commits stay synchronous; this only
# spares the disk flushes, which made the interop suite on PostgreSQL 5m13s instead of 3m58s). Returns 1 with a reason in
# PG_CLUSTER_SKIP when no PostgreSQL server binaries are found.

PG_CLUSTER_DIR=
PG_CLUSTER_PID=
PG_CLUSTER_SKIP=

pg_cluster_bindir() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

pg_cluster_as() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_cluster_start() {
  local bin port i
  if ! bin=$(pg_cluster_bindir); then
    PG_CLUSTER_SKIP="no PostgreSQL server binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin"
    return 1
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    PG_CLUSTER_SKIP="running as root but there is no postgres system user to own the cluster"
    return 1
  fi
  PG_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/openvgw-pg.XXXXXX")
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_CLUSTER_DIR"
  chmod 0700 "$PG_CLUSTER_DIR"
  pg_cluster_as "$bin/initdb" -D "$PG_CLUSTER_DIR/data" -U postgres -A trust -E UTF8 --no-instructions \
    >"$PG_CLUSTER_DIR/initdb.log" 2>&1 ||
    { cat "$PG_CLUSTER_DIR/initdb.log"; PG_CLUSTER_SKIP="initdb failed (log above)"; return 2; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_cluster_as "$bin/pg_ctl" -D "$PG_CLUSTER_DIR/data" -l "$PG_CLUSTER_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_CLUSTER_DIR -c max_connections=400 -c fsync=off" \
    start >/dev/null ||
    { cat "$PG_CLUSTER_DIR/server.log"; PG_CLUSTER_SKIP="the server did not start (log above)"; return 2; }
  PG_CLUSTER_PID=$(head -1 "$PG_CLUSTER_DIR/data/postmaster.pid")
  for i in $(seq 50); do
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAtc 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc 'CREATE DATABASE openvgw_test' >/dev/null; then
    PG_CLUSTER_SKIP="the server does not answer on 127.0.0.1:$port"
    return 2
  fi
  export OPENVGW_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/openvgw_test"
  export OPENVGW_TEST_PG_BINDIR="$bin"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (pid $PG_CLUSTER_PID, $PG_CLUSTER_DIR)"
}

# pg_cluster_createdb NAME -> a new empty database on the cluster; prints its URL.
pg_cluster_createdb() {
  "$OPENVGW_TEST_PG_BINDIR/psql" "$OPENVGW_TEST_PG_URL" -qc "CREATE DATABASE $1" >/dev/null || return 1
  echo "${OPENVGW_TEST_PG_URL%/*}/$1"
}

pg_cluster_stop() {
  local i
  if [ -n "$PG_CLUSTER_PID" ] && kill -0 "$PG_CLUSTER_PID" 2>/dev/null; then
    kill -INT "$PG_CLUSTER_PID" 2>/dev/null || true # fast shutdown
    for i in $(seq 100); do
      kill -0 "$PG_CLUSTER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$PG_CLUSTER_PID" 2>/dev/null || true
  fi
  PG_CLUSTER_PID=
  if [ -n "$PG_CLUSTER_DIR" ]; then
    rm -rf "$PG_CLUSTER_DIR"
    PG_CLUSTER_DIR=
  fi
}
