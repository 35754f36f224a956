#!/usr/bin/env bash
# Installs on the host what the peer scripts use, so they also work inside tests/vm/run
# (the VM sees the host's filesystem but has no network and cannot install anything):
# strongSwan (charon-systemd + swanctl + kernel-libipsec + openssl plugin), OpenVPN, BIRD 2,
# ping, tcpdump, and the unpacked libreswan (tests/peers/libreswan.sh). Fast when done.
# Default VM_PREPARE of tests/vm/run. Root only.
set -euo pipefail
PKGS="strongswan-swanctl charon-systemd libcharon-extra-plugins libstrongswan-standard-plugins
      iputils-ping openvpn tcpdump bird2"
missing=()
for p in $PKGS; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[ensure-host] installing ${missing[*]}" >&2
  if [ "${OPENVGW_APT_UPDATED:-0}" != 1 ]; then
    apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null; export OPENVGW_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
# shellcheck source=tests/peers/libreswan.sh
. "$(dirname "${BASH_SOURCE[0]}")/libreswan.sh"
lsw_ensure
