#!/usr/bin/env bash
# Self-test of tests/peers/libreswan.sh: strongSwan <-> libreswan site-to-site, PSK.
#
#   ns <p>-ss : strongSwan (charon-systemd, own strongswan.conf + VICI socket, swanctl
#               with its own SWANCTL_DIR); eth0 203.0.113.1/24, in0 10.1.0.1/24
#   ns <p>-lsw: libreswan (pluto via lsw_start);  eth0 203.0.113.2/24, in0 10.2.0.1/24
#   joined by one veth pair created inside the namespaces; nothing touches the root netns.
#
#   A  IKEv2, strongSwan initiates   C  IKEv1 main mode, libreswan initiates
#   B  IKEv2, libreswan initiates    D  IKEv1 main mode, strongSwan initiates
# Each case: IKE SA up, IPsec SA up, ping 10.1.0.1 -> 10.2.0.1 through the tunnel
# (strongSwan's CHILD SA packet counters must move), then torn down.
#
# With kernel ESP (tests/vm/run tests/peers/selftest-libreswan.sh) everything must pass.
# Without it (the dev/CI kernel; strongSwan then uses kernel-libipsec) libreswan cannot
# install IPsec SAs, so only the IKE SAs are checked and the data-plane checks are
# reported as SKIP. Exit status 0 = all checks passed. KEEP=1 keeps the run dir.
set -u -o pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/peers/libreswan.sh
. "$HERE/libreswan.sh"

NSP=ovgwlsw$$
NS_SS=$NSP-ss NS_LSW=$NSP-lsw
RUN=$(mktemp -d /tmp/ovgw-lsw-selftest.XXXXXX)
SS=$RUN/strongswan LSW=$RUN/libreswan
PSK=ovgw-selftest-psk-0123456789abcdef
CHARON_PID=
NAMESPACES=()
PASSED=0 FAILED=0 SKIPPED=0

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now_ms() { date +%s%3N; }
pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP $*"; }
die() { log "FATAL: $*"; FAILED=$((FAILED + 1)); exit 1; }
wait_for() {  # wait_for SECONDS CMD... : poll every 100 ms
  local end=$(( $(now_ms) + $1 * 1000 )); shift
  while [ "$(now_ms)" -lt "$end" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

stop_charon() {
  if [ -n "$CHARON_PID" ] && kill -0 "$CHARON_PID" 2>/dev/null; then
    kill "$CHARON_PID"
    for _ in $(seq 30); do kill -0 "$CHARON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CHARON_PID" 2>/dev/null
  fi
  CHARON_PID=
}

cleanup() {
  local rc=$? ns p
  set +e
  lsw_stop "$LSW"
  stop_charon
  for ns in "${NAMESPACES[@]}"; do   # anything left in our namespaces was started by us
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  if [ "$FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
    for f in "$SS/charon.log" "$LSW/pluto.log"; do
      [ -f "$f" ] && { echo "--- last lines of $f"; tail -25 "$f"; }
    done
  fi
  if [ "${KEEP:-0}" = 1 ]; then log "kept $RUN"; else rm -rf "$RUN"; fi
  echo "selftest-libreswan: $PASSED passed, $FAILED failed, $SKIPPED skipped ($(( ($(now_ms) - T0) / 1000 )) s)"
  [ "$FAILED" -eq 0 ] && [ $rc -eq 0 ] && exit 0
  exit 1
}
T0=$(now_ms)
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for c in ip swanctl ping certutil /usr/sbin/charon-systemd; do
  command -v "$c" >/dev/null || die "missing $c (run tests/peers/ensure-host.sh on the host)"
done
lsw_ensure || die "libreswan not available"

# Kernel ESP? (a throw-away state in a private netns; no packet is sent)
if unshare -n ip xfrm state add src 198.51.100.1 dst 198.51.100.2 proto esp spi 0x1000 mode tunnel \
     enc 'cbc(aes)' 0x00112233445566778899aabbccddeeff \
     auth 'hmac(sha256)' 0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 2>/dev/null; then
  KERNEL_ESP=1 KPLUG="kernel-netlink" ENCAP=auto
else
  # strongSwan 5.9.8's libipsec only does ESP-in-UDP
  KERNEL_ESP=0 KPLUG="kernel-libipsec kernel-netlink" ENCAP=yes
fi
log "kernel $(uname -r), kernel ESP: $KERNEL_ESP, run dir $RUN"

########## topology ##########
t=$(now_ms)
for ns in "$NS_SS" "$NS_LSW"; do
  ip netns add "$ns" || die "ip netns add $ns"
  NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  # the "inside" subnet: a stub veth pair (the dev/CI kernel has no dummy driver)
  ip -n "$ns" link add in0 type veth peer name in0p || die "inside interface"
  ip -n "$ns" link set in0 up; ip -n "$ns" link set in0p up
done
ip -n "$NS_SS" link add eth0 type veth peer name eth0 netns "$NS_LSW" || die "veth"
ip -n "$NS_SS" link set eth0 up; ip -n "$NS_LSW" link set eth0 up
ip -n "$NS_SS"  addr add 203.0.113.1/24 dev eth0; ip -n "$NS_SS"  addr add 10.1.0.1/24 dev in0
ip -n "$NS_LSW" addr add 203.0.113.2/24 dev eth0; ip -n "$NS_LSW" addr add 10.2.0.1/24 dev in0
# policy-based IPsec needs a route to the remote subnet before the XFRM lookup; strongSwan
# installs its own (table 220), libreswan's updown does not here (no nexthop): add it.
ip -n "$NS_LSW" route add 10.1.0.0/24 via 203.0.113.1 src 10.2.0.1
wait_for 5 ip netns exec "$NS_SS" ping -c1 -W1 203.0.113.2 || die "veth link broken"
log "topology up in $(( $(now_ms) - t )) ms"

########## strongSwan ##########
mkdir -p "$SS"/swanctl/{x509,x509ca,private,rsa,ecdsa,pkcs8,pubkey}
cat >"$SS/strongswan.conf" <<EOF
# one key per line: values run to the end of the line
charon-systemd {
  journal {
    default = -1
  }
  filelog {
    main {
      path = $SS/charon.log
      time_format = %H:%M:%S
      ike_name = yes
      default = 1
      ike = 2
      knl = 1
    }
  }
}
charon {
  load_modular = no
  load = random nonce openssl aes sha1 sha2 hmac gmp pem pkcs1 pkcs8 x509 pubkey constraints kdf $KPLUG socket-default vici updown
  port = 500
  port_nat_t = 4500
  retransmit_tries = 3
  plugins {
    vici {
      socket = unix://$SS/charon.vici
    }
  }
}
swanctl {
  socket = unix://$SS/charon.vici
  load = pem pkcs1 x509 revocation constraints pubkey openssl random
}
EOF
conn() {  # conn NAME VERSION
  cat <<EOF
  $1 {
    version = $2
    local_addrs = 203.0.113.1
    remote_addrs = 203.0.113.2
    proposals = aes256-sha256-modp2048
    mobike = no
    aggressive = no
    local {
      auth = psk
      id = 203.0.113.1
    }
    remote {
      auth = psk
      id = 203.0.113.2
    }
    children {
      net {
        local_ts = 10.1.0.0/24
        remote_ts = 10.2.0.0/24
        esp_proposals = aes256-sha256-modp2048
        mode = tunnel
        start_action = none
      }
    }
  }
EOF
}
{ echo "connections {"; conn v2 2; conn v1 1; echo "}"
  printf 'secrets {\n  ike-peer {\n    id-1 = 203.0.113.1\n    id-2 = 203.0.113.2\n    secret = "%s"\n  }\n}\n' "$PSK"
} >"$SS/swanctl/swanctl.conf"
swc() { STRONGSWAN_CONF="$SS/strongswan.conf" SWANCTL_DIR="$SS/swanctl" swanctl "$@"; }

start_charon() {
  local t; t=$(now_ms)
  ip netns exec "$NS_SS" env STRONGSWAN_CONF="$SS/strongswan.conf" /usr/sbin/charon-systemd \
    >>"$SS/stdout.log" 2>&1 </dev/null &
  CHARON_PID=$!   # ip netns exec and env exec: this is charon itself
  wait_for 15 swc --stats || die "charon did not come up"
  swc --load-all >"$SS/load.log" 2>&1 || { cat "$SS/load.log"; die "swanctl --load-all failed"; }
  log "strongSwan up + config loaded in $(( $(now_ms) - t )) ms (pid $CHARON_PID, $KPLUG)"
}
start_charon

########## libreswan ##########
mkdir -p "$LSW"
lconn() {  # lconn NAME IKEV2(yes|no)
  cat <<EOF

conn $1
	ikev2=$2
	authby=secret
	left=203.0.113.2
	leftid=203.0.113.2
	leftsubnet=10.2.0.0/24
	right=203.0.113.1
	rightid=203.0.113.1
	rightsubnet=10.1.0.0/24
	ike=aes256-sha2_256;modp2048
	esp=aes256-sha2_256;modp2048
	encapsulation=$ENCAP
	auto=ignore
EOF
}
# ikev1-policy: Debian's libreswan 4.10 drops IKEv1 unless told otherwise
{ printf 'config setup\n\tlogappend=no\n\tikev1-policy=accept\n'; lconn v2 yes; lconn v1 no; } >"$LSW/ipsec.conf"
echo "203.0.113.2 203.0.113.1 : PSK \"$PSK\"" >"$LSW/ipsec.secrets"
start_pluto() {
  local t; t=$(now_ms)
  lsw_start "$NS_LSW" "$LSW" 203.0.113.2 || die "pluto did not start"
  log "pluto up in $(( $(now_ms) - t )) ms (pid $(cat "$LSW/pluto.pid"))"
}
start_pluto

########## checks ##########
ss_ike_up()   { swc --list-sas --ike "$1" 2>/dev/null | grep -q ESTABLISHED; }
ss_child_up() { swc --list-sas --ike "$1" 2>/dev/null | grep -q INSTALLED; }
ss_no_sas()   { ! swc --list-sas 2>/dev/null | grep -qE 'ESTABLISHED|CONNECTING|INSTALLED|REKEY|DELET'; }
lsw_no_states() { ! lsw_whack "$LSW" --showstates 2>/dev/null | grep -q '"v[12]"'; }
ss_in_packets() {  # packets counted inbound on strongSwan's CHILD SA(s) of IKE conn $1
  swc --list-sas --ike "$1" 2>/dev/null |
    awk '$1=="in" {for (i = 2; i < NF; i++) if ($(i+1) ~ /^packets/) s += $i} END {print s+0}'
}

verdict() {  # verdict CASE IKE_CONN INITIATE_MS
  local name=$1 ike=$2 ims=$3 t p
  if ! ss_ike_up "$ike"; then fail "$name: no IKE SA"; return; fi
  if [ "$KERNEL_ESP" = 0 ]; then
    pass "$name: IKE SA established (initiate ${ims} ms)"
    skip "$name: IPsec SA + ping (no kernel ESP here: libreswan cannot install IPsec SAs)"
    return
  fi
  if ! wait_for 5 ss_child_up "$ike" || ! wait_for 5 lsw_established "$LSW" "$ike" ||
     ! lsw_ike_established "$LSW" "$ike"; then
    fail "$name: IKE/IPsec SA not up on both sides"; lsw_status "$NS_LSW" "$LSW" | sed 's/^/    /'; return
  fi
  t=$(now_ms)
  if wait_for 10 ip netns exec "$NS_SS" ping -c1 -W1 -I 10.1.0.1 10.2.0.1; then
    p=$(ss_in_packets "$ike")
    if [ "$p" -gt 0 ]; then
      pass "$name: IKE + IPsec SA up (initiate ${ims} ms), ping 10.1.0.1 -> 10.2.0.1 through ESP after $(( $(now_ms) - t )) ms ($p packets in)"
    else
      fail "$name: ping answered but strongSwan's CHILD SA counted no packets (not through the tunnel?)"
    fi
  else
    fail "$name: no ping through the tunnel"
    { ip -n "$NS_LSW" xfrm state; ip -n "$NS_LSW" xfrm policy; ip -n "$NS_SS" route show table 220; } >&2
  fi
}

teardown() {  # teardown CONN : both sides idle again
  if [ "$KERNEL_ESP" = 0 ]; then
    # Without kernel ESP libreswan keeps half-failed SAs around, drops them without
    # telling the peer and revives the conn: restart both daemons for a clean slate.
    lsw_stop "$LSW"; stop_charon; start_charon; start_pluto
    return
  fi
  # libreswan first: --down also keeps it from reviving the conn
  lsw_down "$NS_LSW" "$LSW" "$1" >/dev/null 2>&1
  swc --terminate --ike "$1" --timeout 10 >/dev/null 2>&1
  if ! wait_for 10 ss_no_sas || ! wait_for 10 lsw_no_states; then
    fail "$1: SAs left after teardown"
    { echo "strongSwan:"; swc --list-sas; echo "libreswan:"; lsw_whack "$LSW" --showstates; } 2>&1 | sed 's/^/    /'
  fi
}
# the CHILD SA never comes up without kernel ESP: do not wait long for it
INIT_TIMEOUT=$([ "$KERNEL_ESP" = 1 ] && echo 20 || echo 3)

# A: IKEv2, strongSwan -> libreswan
lsw_add "$NS_LSW" "$LSW" v2 >"$LSW/add-v2.log" 2>&1 || { cat "$LSW/add-v2.log"; die "addconn v2 failed"; }
t=$(now_ms)
swc --initiate --ike v2 --child net --timeout "$INIT_TIMEOUT" >"$SS/initiate-A.log" 2>&1
verdict "A IKEv2 strongSwan->libreswan" v2 $(( $(now_ms) - t ))
teardown v2

# B: IKEv2, libreswan -> strongSwan
lsw_add "$NS_LSW" "$LSW" v2 >/dev/null 2>&1   # (again if pluto was restarted)
t=$(now_ms)
LSW_TIMEOUT=$INIT_TIMEOUT lsw_up "$NS_LSW" "$LSW" v2 >"$LSW/initiate-B.log" 2>&1
verdict "B IKEv2 libreswan->strongSwan" v2 $(( $(now_ms) - t ))
teardown v2
lsw_delete "$NS_LSW" "$LSW" v2 >/dev/null 2>&1

# C: IKEv1 main mode, libreswan -> strongSwan
t=$(now_ms)
LSW_TIMEOUT=$INIT_TIMEOUT lsw_add_up "$NS_LSW" "$LSW" v1 >"$LSW/initiate-C.log" 2>&1
verdict "C IKEv1 libreswan->strongSwan" v1 $(( $(now_ms) - t ))
if grep -q 'initiating IKEv1 Main Mode' "$LSW/initiate-C.log" && swc --list-sas --ike v1 | grep -q 'IKEv1'; then
  pass "C: exchange was IKEv1 main mode (pluto 'initiating IKEv1 Main Mode', charon IKEv1 SA)"
else
  fail "C: not IKEv1 main mode"; head -5 "$LSW/initiate-C.log"
fi
teardown v1

# D: IKEv1 main mode, strongSwan -> libreswan
lsw_add "$NS_LSW" "$LSW" v1 >/dev/null 2>&1
t=$(now_ms)
swc --initiate --ike v1 --child net --timeout "$INIT_TIMEOUT" >"$SS/initiate-D.log" 2>&1
verdict "D IKEv1 strongSwan->libreswan" v1 $(( $(now_ms) - t ))
if grep -q 'initiating Main Mode IKE_SA' "$SS/initiate-D.log"; then
  pass "D: exchange was IKEv1 main mode (charon 'initiating Main Mode IKE_SA')"
else
  fail "D: no fresh main mode exchange"; grep -E 'ID_PROT|Main|QUICK' "$SS/initiate-D.log" | head -5
fi
teardown v1
