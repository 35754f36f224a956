//! OpenVPN 2.6 configuration fragments for SSL-VPN servers and clients.
//!
//! OpenVPN 2.6 ignores `--cipher` in TLS mode: the data-channel cipher is
//! negotiated from `--data-ciphers` (server order wins), whose default list
//! contains only AEAD ciphers. The CBC ciphers and `none` that the Alibaba API
//! offers therefore have to be listed explicitly on both sides.
//! `--data-ciphers-fallback` covers peers without negotiation (<= 2.3).

use std::fmt::Write as _;

use openvgw_core::crypto::SslCipher;

/// OpenVPN's names of the data-channel ciphers the SSL-VPN APIs offer.
pub const SUPPORTED_CIPHERS: [&str; 6] =
    ["AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "AES-128-GCM", "AES-256-GCM", "none"];

/// OpenVPN's name of a data-channel cipher.
pub fn cipher_name(c: SslCipher) -> &'static str {
    match c {
        SslCipher::Aes128Cbc => "AES-128-CBC",
        SslCipher::Aes192Cbc => "AES-192-CBC",
        SslCipher::Aes256Cbc => "AES-256-CBC",
        SslCipher::Aes128Gcm => "AES-128-GCM",
        SslCipher::Aes256Gcm => "AES-256-GCM",
        SslCipher::None => "none",
    }
}

/// Alibaba's default when no cipher is given.
const DEFAULT_CIPHER: &str = "AES-128-CBC";

/// What a client profile needs to reach one SSL-VPN server.
#[derive(Clone, Copy)]
pub struct OpenVpnClientProfile<'a> {
    pub remote_host: &'a str,
    pub port: u16,
    pub proto_udp: bool,
    /// One of [`SUPPORTED_CIPHERS`] (case-insensitive).
    pub cipher: &'a str,
    pub compress: bool,
    pub ca_pem: &'a str,
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

/// Renders a self-contained `.ovpn` client profile (inline `<ca>`, `<cert>`,
/// `<key>`) for stock OpenVPN 2.6.
pub fn openvpn_client_config(p: &OpenVpnClientProfile) -> String {
    let mut out = String::with_capacity(4096);
    // `client` implies `pull` + `tls-client`, i.e. cipher negotiation.
    out.push_str("client\ndev tun\n");
    out.push_str(if p.proto_udp { "proto udp\n" } else { "proto tcp-client\n" });
    // Values end up in a config file that OpenVPN executes directives from:
    // strip anything that could start a new line or a new argument.
    let _ = writeln!(out, "remote {} {}", sanitize_host(p.remote_host), p.port);
    out.push_str(
        "resolv-retry infinite\n\
         nobind\n\
         persist-key\n\
         persist-tun\n\
         remote-cert-tls server\n",
    );
    out.push_str(&cipher_directives(p.cipher));
    if p.compress {
        // 2.6 defaults to `allow-compression no` and then refuses both a local
        // `compress` and one pushed by the server.
        out.push_str("allow-compression yes\ncompress lz4-v2\n");
    }
    out.push_str("verb 3\n");
    push_inline(&mut out, "ca", p.ca_pem);
    push_inline(&mut out, "cert", p.cert_pem);
    push_inline(&mut out, "key", p.key_pem);
    out
}

/// Server-side counterpart of [`openvpn_client_config`]: the cipher and
/// compression directives the data plane embeds in the server config so that
/// both ends negotiate the same data channel.
pub fn openvpn_server_cipher_directives(cipher: &str, compress: bool) -> String {
    let mut out = cipher_directives(cipher);
    if compress {
        // Push it too, so clients that only carry `allow-compression yes`
        // (rather than a local `compress`) still frame packets identically.
        out.push_str("allow-compression yes\ncompress lz4-v2\npush \"compress lz4-v2\"\n");
    }
    out
}

/// `data-ciphers` restricted to exactly the configured cipher so a 2.6 peer
/// cannot silently upgrade/downgrade to a different one; `none` is accepted
/// there by 2.6 (verified against openvpn 2.6.14, see tests/openvpn.rs).
fn cipher_directives(cipher: &str) -> String {
    let c = normalize_cipher(cipher);
    format!("data-ciphers {c}\ndata-ciphers-fallback {c}\n")
}

fn normalize_cipher(cipher: &str) -> String {
    let cipher = cipher.trim();
    if let Some(known) = SUPPORTED_CIPHERS.iter().find(|c| c.eq_ignore_ascii_case(cipher)) {
        return (*known).to_string();
    }
    // Unknown values are passed through (so OpenVPN reports them) but reduced
    // to cipher-name characters so they cannot inject directives.
    let token: String = cipher.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    if token.is_empty() {
        DEFAULT_CIPHER.to_string()
    } else {
        token.to_ascii_uppercase()
    }
}

fn sanitize_host(host: &str) -> String {
    host.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')).collect()
}

fn push_inline(out: &mut String, tag: &str, pem: &str) {
    let _ = writeln!(out, "<{tag}>");
    // PEM never contains '<'; dropping such lines keeps a malformed input from
    // closing the inline block early.
    for line in pem.lines().filter(|l| !l.contains('<') && !l.trim().is_empty()) {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let _ = writeln!(out, "</{tag}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile<'a>(cipher: &'a str, compress: bool, udp: bool) -> OpenVpnClientProfile<'a> {
        OpenVpnClientProfile {
            remote_host: "vpn.example.com",
            port: 1194,
            proto_udp: udp,
            cipher,
            compress,
            ca_pem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
            cert_pem: "-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----",
            key_pem: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
        }
    }

    fn lines(s: &str) -> Vec<&str> {
        s.lines().collect()
    }

    #[test]
    fn client_config_has_required_directives() {
        let cfg = openvpn_client_config(&profile("aes-256-cbc", false, true));
        let l = lines(&cfg);
        for want in [
            "client",
            "dev tun",
            "proto udp",
            "remote vpn.example.com 1194",
            "nobind",
            "persist-key",
            "persist-tun",
            "remote-cert-tls server",
            "resolv-retry infinite",
            "data-ciphers AES-256-CBC",
            "data-ciphers-fallback AES-256-CBC",
            "verb 3",
            "<ca>",
            "</ca>",
            "<cert>",
            "</cert>",
            "<key>",
            "</key>",
        ] {
            assert!(l.contains(&want), "missing {want:?} in:\n{cfg}");
        }
        assert!(!cfg.contains("compress"), "{cfg}");
        // `cipher` is ignored by 2.6 in TLS mode and only causes warnings.
        assert!(!l.iter().any(|x| x.starts_with("cipher ")), "{cfg}");
        assert!(cfg.contains("<cert>\n-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n</cert>\n"));
    }

    #[test]
    fn client_config_tcp_and_compression() {
        let cfg = openvpn_client_config(&profile("AES-128-CBC", true, false));
        let l = lines(&cfg);
        assert!(l.contains(&"proto tcp-client"), "{cfg}");
        assert!(l.contains(&"allow-compression yes"), "{cfg}");
        assert!(l.contains(&"compress lz4-v2"), "{cfg}");
        assert!(!l.contains(&"proto udp"), "{cfg}");
    }

    #[test]
    fn none_cipher_spelling() {
        for input in ["none", "NONE", " None "] {
            let d = openvpn_server_cipher_directives(input, false);
            assert_eq!(d, "data-ciphers none\ndata-ciphers-fallback none\n");
        }
    }

    #[test]
    fn server_directives_match_client() {
        for cipher in SUPPORTED_CIPHERS {
            for compress in [false, true] {
                let server = openvpn_server_cipher_directives(cipher, compress);
                let client = openvpn_client_config(&profile(cipher, compress, true));
                for line in server.lines().filter(|l| !l.starts_with("push ")) {
                    assert!(client.lines().any(|c| c == line), "client lacks server line {line:?}");
                }
                assert_eq!(server.contains("push \"compress lz4-v2\""), compress);
            }
        }
    }

    #[test]
    fn injection_is_neutralised() {
        let mut p = profile("AES-128-CBC\nup /bin/sh", false, true);
        p.remote_host = "evil.example.com 1\nscript-security 2";
        p.key_pem = "-----BEGIN PRIVATE KEY-----\nKEY\n</key>\nup /bin/sh\n-----END PRIVATE KEY-----";
        let cfg = openvpn_client_config(&p);
        assert!(cfg.lines().all(|l| !l.starts_with("script-security")), "{cfg}");
        // The smuggled line stays inside the inline key block (a bad key, not a directive).
        assert_eq!(cfg.matches("</key>").count(), 1, "{cfg}");
        let up = cfg.find("\nup /bin/sh\n").expect("line kept inside block");
        assert!(up > cfg.find("<key>").expect("open") && up < cfg.find("</key>").expect("close"));
        assert!(cfg.contains("remote evil.example.com1script-security2 1194\n"), "{cfg}");
        assert!(cfg.contains("data-ciphers AES-128-CBCUPBINSH\n"), "{cfg}");
    }

    #[test]
    fn empty_cipher_falls_back_to_alibaba_default() {
        assert_eq!(normalize_cipher(""), "AES-128-CBC");
    }
}
