//! Huawei's SDK-HMAC-SHA256 canonicalisation on arbitrary requests:
//! * the canonical request and the string to sign never panic and fail together;
//! * a request signed with the server's own string to sign verifies, and fails with another secret;
//! * the query's percent-encoding does not change what is signed (every byte re-encoded as `%XX`);
//! * a trailing `/` does not change what is signed (the SDK appends one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvgw_auth::huawei as sig;
use openvgw_auth::RequestParts;
use openvgw_fuzz::{now, request, SECRET};
use percent_encoding::percent_decode_str;

fuzz_target!(|data: &[u8]| {
    let req = request(data);
    let parts = req.parts();
    let Ok(cred) = sig::credential(&parts) else { return };
    let _ = sig::check_freshness(&cred, now(), openvgw_auth::DEFAULT_FRESHNESS_WINDOW);
    let canonical = sig::canonical_request(&parts, &cred);
    let sts = match (&canonical, sig::string_to_sign(&parts, &cred)) {
        (Ok(_), Ok(sts)) => sts,
        (Err(_), Err(_)) => return,
        (c, s) => panic!("canonical request {c:?} and string to sign {s:?} disagree"),
    };
    let _ = sig::verify(&parts, &cred, SECRET);

    let signed = sig::Credential { signature: sig::signature(&sts, SECRET), ..cred.clone() };
    if let Err(e) = sig::verify(&parts, &signed, SECRET) {
        panic!("signed with its own string to sign, the request does not verify: {e:?}");
    }
    assert!(sig::verify(&parts, &signed, "another secret").is_err());

    // The query re-encoded: split as the signer splits it, each side percent-decoded, every byte as %XX.
    let reencoded: String = parts
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            format!("{}={}", all_encoded(k), all_encoded(v))
        })
        .collect::<Vec<_>>()
        .join("&");
    let other = RequestParts { raw_query: &reencoded, ..parts };
    let again = sig::canonical_request(&other, &cred).ok();
    assert_eq!(
        again,
        canonical.as_ref().ok().cloned(),
        "re-encoding the query ({reencoded}) changed the canonical request"
    );

    // A trailing '/' is invisible to the signature.
    if !percent_decode_str(parts.path).collect::<Vec<u8>>().ends_with(b"/") {
        let slashed = format!("{}/", parts.path);
        let other = RequestParts { path: &slashed, ..parts };
        let again = sig::canonical_request(&other, &cred).ok();
        assert_eq!(again, canonical.ok(), "a trailing / changed the canonical request");
    }
});

/// Every percent-decoded byte as `%XX`.
fn all_encoded(s: &str) -> String {
    percent_decode_str(s).map(|b| format!("%{b:02X}")).collect()
}
