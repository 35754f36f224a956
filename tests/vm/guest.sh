#!/bin/bash
# Runs inside the test VM (chrooted into the overlay by tests/vm/init) as the last step
# before the command: loads the modules the data plane needs, sets up the environment
# given by tests/vm/run and runs the command. Its exit status is the command's.
# Usage (by init only): guest.sh <run dir>
RUN=$1
set -u

hostname ovgw-vm 2>/dev/null
ip link set lo up

# Modules. The host has kmod installed (tests/vm/run makes sure), so the guest's
# /usr/sbin/modprobe is kmod's and on-demand loading (crypto templates like
# "crypto-rfc4106(gcm(aes))", nft expressions, ...) works. The data-plane set is still
# loaded eagerly so that a missing module shows up here, not as an obscure test failure.
echo /usr/sbin/modprobe >/proc/sys/kernel/modprobe
MODS="xfrm_user xfrm_algo af_key esp4 esp6 ah4 xfrm_ipcomp ipcomp xfrm_interface ip_vti xfrm4_tunnel
      tunnel4 tun veth bridge dummy macvlan vxlan 8021q nf_tables nft_chain_nat nft_masq nf_nat
      iptable_nat iptable_filter iptable_mangle xt_policy xt_MASQUERADE
      drbg authenc authencesn echainiv seqiv gcm ccm ctr cbc ecb hmac sha1_generic sha256_generic
      sha512_generic md5 des_generic des3_ede_x86_64 aesni_intel ghash_clmulni_intel
      chacha20poly1305 chacha_x86_64 poly1305_x86_64 xcbc cmac"
failed=
# shellcheck disable=SC2086
if ! modprobe -q -a $MODS 2>/dev/null; then   # one process: each modprobe costs ~0.15 s under TCG
  for m in $MODS; do modprobe -q "$m" 2>/dev/null || failed="$failed $m"; done
fi
# aesni/ghash need CPU flags that TCG may not offer: fall back to the generic ones
case " $failed " in *" aesni_intel "*) modprobe -q aes_generic && failed=${failed/ aesni_intel/};; esac
case " $failed " in *" ghash_clmulni_intel "*) modprobe -q ghash_generic && failed=${failed/ ghash_clmulni_intel/};; esac
[ -z "$failed" ] || echo "[vm] modprobe failed:$failed"

set -a
# shellcheck disable=SC1091
. "$RUN/env"
set +a
[ -d /root/.cargo/bin ] && PATH=/root/.cargo/bin:$PATH
export PATH HOME=/root
cd "$OVGW_VM_CWD" || { echo "[vm] no directory $OVGW_VM_CWD"; exit 125; }
read -r up _ </proc/uptime
echo "OVGW-VM-UP $(cat "$RUN/nonce") $up"
echo "[vm] kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MiB; running: $(cat "$RUN/cmd")"
bash "$RUN/cmd" </dev/null
rc=$?
read -r up _ </proc/uptime
echo "[vm] command exited $rc at ${up}s uptime"
exit $rc
