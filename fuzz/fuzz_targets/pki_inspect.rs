//! Certificates uploaded through the APIs (gateway certificates, client CAs) on arbitrary text: inspecting never
//! panics, and a certificate that inspects re-inspects from its normalised PEM to the same facts. Whatever follows
//! the certificate is tried as its SM2 private key.
#![no_main]

use libfuzzer_sys::fuzz_target;

const END: &str = "-----END CERTIFICATE-----";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(i) = openvgw_pki::inspect(&text) {
        let again = openvgw_pki::inspect(&i.pem).expect("the normalised PEM inspects");
        assert_eq!(again, i, "re-inspecting the normalised PEM changed what it says");
    }
    if let Some(at) = text.find(END) {
        let _ = openvgw_pki::sm2_key_matches(&text, &text[at + END.len()..]);
    }
});
