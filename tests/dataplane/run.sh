#!/usr/bin/env bash
# End-to-end tests of the netns data plane (real strongSwan / OpenVPN in network namespaces), then a check that
# nothing is left behind: no lab/gateway namespace, no lab bridge, no extra charon or openvpn process.
# Run as root. INSTALL=1 installs the Debian packages first. Extra arguments go to `cargo test` (e.g. a test name).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
if [ "${INSTALL:-0}" = 1 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends strongswan-swanctl charon-systemd libcharon-extra-plugins \
    libstrongswan-standard-plugins openvpn iputils-ping nftables >/dev/null
fi
# Every gateway's packet filter is nftables (scripts/test installs it too; this is for runs of this script alone).
if ! command -v nft >/dev/null && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables >/dev/null
fi
daemons() { { ps -C charon-systemd,openvpn -o pid= || true; } | wc -l; }
before=$(daemons)
start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo test -p openvgw-vici -p openvgw-dataplane -p openvgw-dataplane-tests "$@" -- --test-threads=1 --nocapture 2>&1 |
  tee "$out"
# Tests that cannot run here return early with a `SKIP <test>: <reason>` line; cargo counts them as passed.
skipped=$(grep -c '^SKIP ' "$out" || true)
echo "data-plane tests took $(( $(date +%s) - start )) s; $skipped skipped"
grep '^SKIP ' "$out" || true
left=0
if ip netns list | grep -E '^(ovgwt|ovgwvici|ovgwprobe)'; then echo "LEFTOVER namespaces" >&2; left=1; fi
if ip -o link show | grep -E ': ovt[0-9a-f]{4}'; then echo "LEFTOVER lab links/bridges" >&2; left=1; fi
if [ "$(daemons)" != "$before" ]; then echo "LEFTOVER daemons: $before before, $(daemons) after" >&2; left=1; fi
[ $left = 0 ] && echo "clean: no namespaces, bridges or daemons left behind"
exit $left
