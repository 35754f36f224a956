//! Which IPsec data path this host offers strongSwan.

use std::fmt;

use super::sys;

/// `kernel-netlink` needs a kernel with ESP (and XFRM interfaces for route-based tunnels); without ESP strongSwan
/// falls back to `kernel-libipsec`: userspace ESP through one TUN device per charon, always UDP-encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpsecBackend {
    KernelNetlink { xfrm_interfaces: bool },
    KernelLibipsec,
}

impl IpsecBackend {
    pub fn name(self) -> &'static str {
        match self {
            IpsecBackend::KernelNetlink { .. } => "kernel-netlink",
            IpsecBackend::KernelLibipsec => "kernel-libipsec",
        }
    }

    pub fn is_libipsec(self) -> bool {
        self == IpsecBackend::KernelLibipsec
    }

    /// charon's plugin list: libipsec must come before kernel-netlink to own the IPsec part, while kernel-netlink
    /// still handles interfaces, addresses and routes.
    pub(crate) fn kernel_plugins(self) -> &'static str {
        match self {
            IpsecBackend::KernelNetlink { .. } => "kernel-netlink",
            IpsecBackend::KernelLibipsec => "kernel-libipsec kernel-netlink",
        }
    }
}

impl fmt::Display for IpsecBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpsecBackend::KernelNetlink { xfrm_interfaces: true } => f.write_str("kernel-netlink (XFRM interfaces)"),
            IpsecBackend::KernelNetlink { xfrm_interfaces: false } => {
                f.write_str("kernel-netlink (no XFRM interfaces: policy-based only)")
            }
            IpsecBackend::KernelLibipsec => f.write_str("kernel-libipsec (userspace ESP over TUN)"),
        }
    }
}

/// Probes the kernel in a throw-away namespace (no packet is sent): can it hold an ESP state, can it create an XFRM
/// interface?
/// Blocking (a few `ip` calls): meant for start-up.
pub fn detect_ipsec_backend() -> IpsecBackend {
    let ns = format!("ovgwprobe{}", std::process::id());
    let ip = |args: &[&str]| sys::run_blocking("ip", args);
    if ip(&["netns", "add", &ns]).is_err() {
        tracing::warn!("cannot create a namespace to probe kernel IPsec; assuming kernel-libipsec");
        return IpsecBackend::KernelLibipsec;
    }
    let esp = ip(&[
        "-n",
        &ns,
        "xfrm",
        "state",
        "add",
        "src",
        "198.51.100.1",
        "dst",
        "198.51.100.2",
        "proto",
        "esp",
        "spi",
        "0x1000",
        "mode",
        "tunnel",
        "enc",
        "cbc(aes)",
        "0x00112233445566778899aabbccddeeff",
        "auth",
        "hmac(sha256)",
        "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    ])
    .is_ok();
    let xfrm_interfaces = esp && ip(&["-n", &ns, "link", "add", "xfrmprobe", "type", "xfrm", "if_id", "7"]).is_ok();
    let _ = ip(&["netns", "del", &ns]);
    if esp {
        IpsecBackend::KernelNetlink { xfrm_interfaces }
    } else {
        IpsecBackend::KernelLibipsec
    }
}
