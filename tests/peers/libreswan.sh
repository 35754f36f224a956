#!/usr/bin/env bash
# shellcheck shell=bash
# libreswan (pluto) as a test peer, one instance per network namespace.
#
# Debian's libreswan package Conflicts with strongSwan's (strongswan-libcharon,
# strongswan-starter), so it is NEVER apt-installed: its .deb is unpacked into
# $LSW_CACHE/root and pluto runs from there in a private mount namespace where the
# unpacked usr/libexec is bind-mounted over /usr/libexec (pluto hard-codes
# /usr/libexec/ipsec/{addconn,_updown}). Its runtime libraries (libldns3,
# libevent-pthreads-2.1-7, libnss3 + certutil from libnss3-tools) conflict with nothing
# and are apt-installed when missing.
#
# libreswan has no userspace ESP: CHILD SAs need kernel ESP (CONFIG_INET_ESP). On a
# kernel without it (the dev/CI machine) IKE SAs still establish, but installing the
# IPsec SA fails ("Protocol not supported"); inside tests/vm/run it carries traffic.
#
# As a library:   source tests/peers/libreswan.sh
#   lsw_ensure                         unpack libreswan (host only: needs apt + network)
#   lsw_start   <netns> <dir> [listen-ip]  start pluto in <netns> with <dir>/ipsec.conf and
#                                      <dir>/ipsec.secrets; NSS db in <dir>/nss, control
#                                      socket <dir>/run/pluto.ctl, log <dir>/pluto.log,
#                                      PID in <dir>/pluto.pid. conns with auto=add/start
#                                      are loaded (and started) by pluto itself.
#   lsw_add     <netns> <dir> <conn>   load one conn from <dir>/ipsec.conf      (= ipsec auto --add)
#   lsw_up      <netns> <dir> <conn>   initiate it and wait for the result      (= ipsec auto --up)
#   lsw_add_up  <netns> <dir> <conn>   both
#   lsw_down    <netns> <dir> <conn>   delete its SAs, no revival, keep the conn (= ipsec auto --down)
#   lsw_delete  <netns> <dir> <conn>   delete SAs and conn                      (= ipsec auto --delete)
#   lsw_status  <netns> <dir>          brief status + traffic status on stdout
#   lsw_established <dir> <conn>       true if <conn> has an established IPsec SA (traffic status)
#   lsw_ike_established <dir> <conn>   true if <conn> has an established IKE SA
#   lsw_whack   <dir> <whack args...>  raw whack against this instance
#   lsw_stop    <dir>                  whack --shutdown, then TERM/KILL by the recorded PID
# As a command:   tests/peers/libreswan.sh <ensure|start|add|up|add-up|down|delete|status|
#                                          established|whack|stop> <args as above>
#
# Config notes: `leftupdown` may be left at its default ("ipsec _updown"): pluto runs with
# the unpacked usr/sbin first in PATH, so "ipsec" is libreswan's even when strongSwan's
# /usr/sbin/ipsec (strongswan-starter) exists. Policy-based Linux IPsec still needs a
# route to the remote subnet on the libreswan side for locally originated traffic.
# Environment: LSW_CACHE (default /var/cache/openvgw-libreswan), LSW_TIMEOUT (seconds
# for lsw_up, default 30).

LSW_CACHE=${LSW_CACHE:-/var/cache/openvgw-libreswan}
LSW_ROOT=$LSW_CACHE/root
LSW_LIBEXEC=$LSW_ROOT/usr/libexec/ipsec
LSW_DEPS="libldns3 libevent-pthreads-2.1-7 libnss3-tools"

_lsw_log() { printf '[libreswan] %s\n' "$*" >&2; }
_lsw_now() { date +%s%3N; }

_lsw_missing_pkgs() {
  local p
  for p in $LSW_DEPS; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s ' "$p"
  done
}

_lsw_apt_update() {  # at most once per run (OPENVGW_APT_UPDATED is shared with tests/vm/run)
  [ "${OPENVGW_APT_UPDATED:-0}" = 1 ] && return 0
  apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null && export OPENVGW_APT_UPDATED=1
}

lsw_ensure() {
  local missing tmp
  missing=$(_lsw_missing_pkgs)
  if [ -x "$LSW_LIBEXEC/pluto" ] && [ -z "$missing" ]; then return 0; fi
  if [ "${OVGW_IN_VM:-}" = 1 ]; then
    _lsw_log "libreswan is not prepared (${missing:+missing packages: $missing; }root $LSW_ROOT) and the VM cannot install; run 'tests/peers/libreswan.sh ensure' on the host"
    return 1
  fi
  [ "$(id -u)" = 0 ] || { _lsw_log "lsw_ensure needs root"; return 1; }
  if [ -n "$missing" ]; then
    _lsw_log "installing $missing"
    # shellcheck disable=SC2086
    { _lsw_apt_update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
        --no-install-recommends $missing >/dev/null; } || { _lsw_log "apt-get install $missing failed"; return 1; }
  fi
  if [ ! -x "$LSW_LIBEXEC/pluto" ]; then
    mkdir -p "$LSW_CACHE"
    (
      flock 8
      [ -x "$LSW_LIBEXEC/pluto" ] && exit 0
      tmp=$(mktemp -d "$LSW_CACHE/unpack.XXXXXX") || exit 1
      trap 'rm -rf "$tmp"' EXIT
      _lsw_log "downloading + unpacking libreswan into $LSW_ROOT"
      (cd "$tmp" && apt-get download -q libreswan >/dev/null 2>&1) ||
        { _lsw_apt_update && (cd "$tmp" && apt-get download -q libreswan >/dev/null); } ||
        { _lsw_log "apt-get download libreswan failed"; exit 1; }
      dpkg-deb -x "$tmp"/libreswan_*.deb "$tmp/root" || { _lsw_log "unpacking failed"; exit 1; }
      rm -rf "$LSW_ROOT" && mv "$tmp/root" "$LSW_ROOT"
    ) 8>"$LSW_CACHE/.lock" || return 1
  fi
  if ldd "$LSW_LIBEXEC/pluto" | grep -q 'not found'; then
    _lsw_log "pluto lacks libraries: $(ldd "$LSW_LIBEXEC/pluto" | grep 'not found' | tr -d '\t' | tr '\n' ' ')"
    return 1
  fi
}

_lsw_pid() {  # prints the PID of <dir>'s pluto if it is running
  local pid
  pid=$(cat "$1/pluto.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pluto ] && echo "$pid"
}

lsw_whack() {
  local dir=$1; shift
  "$LSW_LIBEXEC/whack" --ctlsocket "$dir/run/pluto.ctl" "$@"
}

lsw_start() {
  local ns=$1 dir=$2 listen=${3:-} pid t
  dir=$(cd "$dir" 2>/dev/null && pwd) || { _lsw_log "no directory $2"; return 1; }
  if [ ! -f "$dir/ipsec.conf" ] || [ ! -f "$dir/ipsec.secrets" ]; then
    _lsw_log "$dir needs ipsec.conf and ipsec.secrets"; return 1
  fi
  ip netns pids "$ns" >/dev/null 2>&1 || { _lsw_log "no network namespace $ns"; return 1; }
  lsw_ensure || return 1
  if pid=$(_lsw_pid "$dir"); then _lsw_log "pluto already running for $dir (pid $pid)"; return 1; fi
  mkdir -p "$dir/nss" "$dir/run"
  rm -f "$dir/run/pluto.ctl" "$dir/run/pluto.pid" "$dir/pluto.pid"
  if [ ! -f "$dir/nss/cert9.db" ]; then
    certutil -N -d "sql:$dir/nss" --empty-password >/dev/null || { _lsw_log "certutil -N failed"; return 1; }
  fi
  t=$(_lsw_now)
  # ip netns exec, unshare (no --fork) and sh all exec: $! is pluto itself.
  # --config must come first: later options override config-setup values.
  # shellcheck disable=SC2016  # ($1/$@ belong to the inner sh)
  ip netns exec "$ns" env PATH="$LSW_ROOT/usr/sbin:$PATH" \
    unshare -m --propagation private sh -c 'mount --bind "$1/usr/libexec" /usr/libexec && shift && exec "$@"' sh \
    "$LSW_ROOT" "$LSW_LIBEXEC/pluto" --config "$dir/ipsec.conf" --nofork --stderrlog \
    --rundir "$dir/run" --dumpdir "$dir/run" --nssdir "$dir/nss" --secretsfile "$dir/ipsec.secrets" \
    --ipsecdir "$dir" --no-dnssec ${listen:+--listen "$listen"} \
    >"$dir/pluto.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/pluto.pid"
  while [ $(( $(_lsw_now) - t )) -lt 15000 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      _lsw_log "pluto exited during start-up:"; tail -15 "$dir/pluto.log" >&2; rm -f "$dir/pluto.pid"; return 1
    fi
    if [ -S "$dir/run/pluto.ctl" ] && lsw_whack "$dir" --status >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  _lsw_log "pluto (pid $pid) did not answer within 15 s"; tail -15 "$dir/pluto.log" >&2
  lsw_stop "$dir"
  return 1
}

lsw_add() {
  local ns=$1 dir=$2 conn=$3
  # addconn resolves %defaultroute & co. from the routing table: run it in the namespace
  ip netns exec "$ns" "$LSW_LIBEXEC/addconn" --ctlsocket "$dir/run/pluto.ctl" \
    --config "$dir/ipsec.conf" "$conn"
}

lsw_up() {
  local ns=$1 dir=$2 conn=$3
  timeout "${LSW_TIMEOUT:-30}" "$LSW_LIBEXEC/whack" --ctlsocket "$dir/run/pluto.ctl" --name "$conn" --initiate
}

lsw_add_up() { lsw_add "$@" && lsw_up "$@"; }

lsw_down() {
  local dir=$2 conn=$3
  lsw_whack "$dir" --name "$conn" --terminate
}

lsw_delete() {
  local dir=$2 conn=$3
  lsw_whack "$dir" --name "$conn" --delete
}

lsw_status() {
  local dir=$2
  lsw_whack "$dir" --briefstatus && lsw_whack "$dir" --trafficstatus
}

lsw_established() {  # IPsec SA up: trafficstatus lists '"<conn>"...' entries
  lsw_whack "$1" --trafficstatus 2>/dev/null | grep -q "\"$2\""
}

lsw_ike_established() {
  lsw_whack "$1" --showstates 2>/dev/null |
    grep -E "\"$2\"" | grep -qE 'ESTABLISHED_IKE_SA|STATE_MAIN_(I4|R3)|STATE_AGGR_(I2|R2)|ISAKMP SA established|IKE SA established'
}

lsw_stop() {
  local dir=$1 pid
  dir=$(cd "$dir" 2>/dev/null && pwd) || return 0
  pid=$(_lsw_pid "$dir") || { rm -f "$dir/pluto.pid"; return 0; }
  # orderly: pluto deletes its SAs and XFRM policies; then by PID
  timeout 5 "$LSW_LIBEXEC/whack" --ctlsocket "$dir/run/pluto.ctl" --shutdown >/dev/null 2>&1
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$dir/pluto.pid"
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -u -o pipefail
  cmd=${1:-}; shift || true
  case $cmd in
    ensure)       lsw_ensure && echo "$LSW_ROOT ($("$LSW_LIBEXEC/pluto" --version 2>&1 | head -1))" ;;
    start)        lsw_start "$@" ;;
    add)          lsw_add "$@" ;;
    up)           lsw_up "$@" ;;
    add-up)       lsw_add_up "$@" ;;
    down)         lsw_down "$@" ;;
    delete)       lsw_delete "$@" ;;
    status)       lsw_status "$@" ;;
    established)  lsw_established "$@" ;;
    whack)        lsw_whack "$@" ;;
    stop)         lsw_stop "$@" ;;
    *) sed -n '/^# As a library/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
fi
