#!/usr/bin/env bash
# Does this kernel have what the kernel-XFRM data plane needs? Exits non-zero if not.
#   - an ESP state (AES-CBC/HMAC-SHA256 and AES-GCM) can be created   (CONFIG_INET_ESP, crypto)
#   - an XFRM interface can be created                                 (CONFIG_XFRM_INTERFACE)
#   - TUN, veth, bridge are available
# Runs in a private network namespace (unshare -n): nothing is configured outside it and
# no packet is sent. Meant for the test VM: tests/vm/run tests/vm/selfcheck.sh
# (on the dev/CI machine's kernel the ESP and XFRM interface checks fail, as expected).
set -u
[ "$(id -u)" = 0 ] || { echo "selfcheck: needs root" >&2; exit 2; }
exec unshare -n bash -s <<'CHECKS'
fail=0
check() {  # check NAME CMD...
  local name=$1 out; shift
  if out=$("$@" 2>&1); then echo "ok   $name"; else echo "FAIL $name: ${out:-exit $?}"; fail=1; fi
}
K=0x00112233445566778899aabbccddeeff
A=0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
echo "kernel $(uname -r)"
ip link set lo up
check "xfrm state: ESP aes-cbc/hmac-sha256" ip xfrm state add src 198.51.100.1 dst 198.51.100.2 \
  proto esp spi 0x1001 mode tunnel enc 'cbc(aes)' $K auth 'hmac(sha256)' $A
check "xfrm state: ESP aes-gcm (rfc4106)" ip xfrm state add src 198.51.100.1 dst 198.51.100.2 \
  proto esp spi 0x1002 mode tunnel aead 'rfc4106(gcm(aes))' 0x00112233445566778899aabbccddeeff00112233 128
check "xfrm state: ESP-in-UDP (encap espinudp 4500)" ip xfrm state add src 198.51.100.1 dst 198.51.100.2 \
  proto esp spi 0x1003 mode tunnel enc 'cbc(aes)' $K auth 'hmac(sha256)' $A encap espinudp 4500 4500 0.0.0.0
check "xfrm policy" ip xfrm policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out \
  tmpl src 198.51.100.1 dst 198.51.100.2 proto esp mode tunnel
check "xfrm interface (if_id 5)" ip link add x type xfrm if_id 5
check "xfrm interface up" ip link set x up
check "xfrm policy with if_id" ip xfrm policy add src 0.0.0.0/0 dst 0.0.0.0/0 dir out if_id 5 \
  tmpl src 198.51.100.1 dst 198.51.100.2 proto esp mode tunnel
check "veth" ip link add v0 type veth peer name v1
check "bridge" ip link add br0 type bridge
check "tun (/dev/net/tun)" ip tuntap add mode tun name t0
echo "states: $(ip xfrm state | grep -c '^src'), policies: $(ip xfrm policy | grep -c '^src')"
if [ $fail = 0 ]; then echo "selfcheck: PASS (kernel ESP + XFRM interfaces)"; else echo "selfcheck: FAIL"; fi
exit $fail
CHECKS
