#!/usr/bin/env bash
# tests/vm/dataplane-suite.sh: the data-plane suites whose outcome depends on the kernel's IPsec, on Debian's stock
# kernel (kernel ESP, XFRM interfaces, libreswan's data plane), in ONE boot of the test VM:
#   1. the Rust data-plane test binaries that exercise kernel IPsec (VM_RUST_PARTS: site_to_site, ha_and_selectors,
#      leak_and_server), one test at a time;
#   2. the API-level e2e tests marked kernel_ipsec (tests/e2e, pytest -m kernel_ipsec: strongSwan and libreswan
#      customer gateways).
# What only OpenVPN, the VICI codec or the API decides (ssl_vpn, ssl_clients, charon, roundtrip; the unmarked e2e
# tests) runs on the host alone: the VM runs everything under TCG, several times slower.
# Host side (root): builds the test binaries and openvgw (a no-op when fresh), makes sure the SDK venv exists, then
# boots the VM (tests/vm/run) running this script with --guest.
# Guest side: runs everything, then checks nothing is left behind, and prints a summary with timings. On a failure
# the failing test's output is on the console (the Rust lab dumps namespaces, XFRM state and daemon logs; the e2e
# suite attaches the same to the pytest report). Every e2e test has a time limit (pytest-timeout), so one that hangs
# fails alone instead of the VM's overall timeout ending the run.
#
#   sudo tests/vm/dataplane-suite.sh                 # everything (~12 min under TCG on 2 cores)
#   sudo ONLY=rust tests/vm/dataplane-suite.sh       # or ONLY=e2e
#   sudo OVGW_TEST_FILTER=route_based tests/vm/dataplane-suite.sh   # libtest name filter for the Rust binaries
#   sudo OVGW_PYTEST_ARGS='-k libreswan' tests/vm/dataplane-suite.sh
#   sudo VM_RUST_PARTS=all tests/vm/dataplane-suite.sh   # every Rust binary; OVGW_PYTEST_MARK= every e2e test
# VM_* variables go to tests/vm/run (VM_TIMEOUT defaults to 2700 here: the e2e part alone takes ~19 min under TCG).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

now() { date +%s; }

if [ "${1:-}" != --guest ]; then
  set -e
  [ "$(id -u)" = 0 ] || { echo "run as root (the VM shares / and the tests need namespaces)" >&2; exit 2; }
  only=${ONLY:-all}
  bins=()
  if [ "$only" != e2e ]; then
    echo "==> building the data-plane test binaries" >&2
    # --no-run builds (or finds) the binaries; cargo's JSON names them.
    mapfile -t bins < <(
      cargo test -p openvgw-vici -p openvgw-dataplane-tests --no-run --message-format=json \
        | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in m["target"]["kind"]:
        print(m["executable"])')
    [ ${#bins[@]} -gt 0 ] || { echo "no test binaries (cargo test --no-run failed?)" >&2; exit 1; }
    parts=${VM_RUST_PARTS:-site_to_site ha_and_selectors leak_and_server}
    if [ "$parts" != all ]; then
      kept=() left_out=()
      for bin in "${bins[@]}"; do
        name=$(basename "$bin" | sed 's/-[0-9a-f]*$//')
        if [[ " $parts " == *" $name "* ]]; then kept+=("$bin"); else left_out+=("$name"); fi
      done
      [ ${#kept[@]} -gt 0 ] || { echo "VM_RUST_PARTS ($parts) names no test binary" >&2; exit 1; }
      echo "==> not run in the VM (no kernel IPsec in them; they run on the host): ${left_out[*]}" >&2
      bins=("${kept[@]}")
    fi
  fi
  if [ "$only" != rust ]; then
    echo "==> building openvgw" >&2
    cargo build --quiet -p openvgw
    venv=$ROOT/.venv
    if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c 'import alibabacloud_vpc20160428, huaweicloudsdkvpn, pytest_timeout' 2>/dev/null; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
    fi
  fi
  export OVGW_SUITE_BINS="${bins[*]}" OVGW_SUITE_ONLY=$only OPENVGW_BIN=${OPENVGW_BIN:-$ROOT/target/debug/openvgw}
  export OVGW_TEST_FILTER=${OVGW_TEST_FILTER:-} OVGW_PYTEST_ARGS=${OVGW_PYTEST_ARGS:-}
  export OVGW_PYTEST_MARK=${OVGW_PYTEST_MARK-kernel_ipsec}
  export VM_ENV="${VM_ENV:-} OPENVGW_BIN" VM_TIMEOUT=${VM_TIMEOUT:-2700}
  set +e
  "$ROOT/tests/vm/run" "$ROOT/tests/vm/dataplane-suite.sh" --guest
  exit $?
fi

########## inside the VM ##########
[ "${OVGW_IN_VM:-}" = 1 ] || { echo "--guest is for tests/vm/run" >&2; exit 2; }
# Like a stock Debian host with systemd (50-default.conf): loose reverse-path filtering, which every namespace
# created from here on inherits. The driver must cope with it (it turns it off in the gateways).
sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2

summary=()
failed=0
daemons() { { ps -C charon-systemd,openvpn,pluto,bird -o pid= || true; } | wc -l; }
before=$(daemons)

run_part() {  # run_part NAME CMD... : runs, records pass/fail and the time it took
  local name=$1 t0 rc
  shift
  printf '\n==> %s\n' "$name"
  t0=$(now)
  "$@"
  rc=$?
  summary+=("$(printf '%-4s %4ss  %s' "$([ $rc = 0 ] && echo ok || echo FAIL)" $(( $(now) - t0 )) "$name")")
  [ $rc = 0 ] || failed=1
}

if [ "${OVGW_SUITE_ONLY:-all}" != e2e ]; then
  for bin in $OVGW_SUITE_BINS; do
    # shellcheck disable=SC2086
    run_part "$(basename "$bin" | sed 's/-[0-9a-f]*$//')" "$bin" --test-threads=1 ${OVGW_TEST_FILTER}
  done
fi
if [ "${OVGW_SUITE_ONLY:-all}" != rust ]; then
  mark=()
  [ -z "${OVGW_PYTEST_MARK:-}" ] || mark=(-m "$OVGW_PYTEST_MARK")
  # shellcheck disable=SC2086
  run_part "e2e (pytest tests/e2e ${mark[*]})" .venv/bin/pytest -q -p no:cacheprovider -rfEs --timeout 600 --durations 12 \
    "${mark[@]}" tests/e2e ${OVGW_PYTEST_ARGS}
fi

left=
ip netns list | grep -E '^(ovgwt|ovgwe2e|ovgwvici|ovgwprobe|ovgwlsw)' && left="namespaces "
ip -o link show | grep -E ': (ovt[0-9a-f]{4}|ovgwt-)' && left="${left}links "
[ "$(daemons)" = "$before" ] || { ps -C charon-systemd,openvpn,pluto,bird -o pid,args; left="${left}daemons"; }
if [ -n "$left" ]; then
  summary+=("FAIL        left behind: $left")
  failed=1
fi

printf '\n==> data-plane suite on %s\n' "$(uname -r)"
printf '  %s\n' "${summary[@]}"
exit $failed
