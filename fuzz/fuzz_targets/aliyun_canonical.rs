//! Alibaba's signature canonicalisation (ACS3-HMAC-SHA256 and HMAC-SHA1 RPC) on arbitrary requests:
//! * the canonical request and the string to sign never panic and fail together;
//! * a request signed with the server's own string to sign verifies (bar a body hash that does not match), and
//!   fails with another secret;
//! * how the query is percent-encoded on the wire does not change what is signed (the SDKs differ: `+`/`%20`,
//!   `%2A`/`*`): the query re-encoded with every byte as `%XX` canonicalises the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvgw_auth::aliyun::{self as sig, Scheme};
use openvgw_auth::{AuthError, RequestParts};
use openvgw_fuzz::{now, request, SECRET};

fuzz_target!(|data: &[u8]| {
    let req = request(data);
    let parts = req.parts();
    let Ok(params) = sig::decode_params(&parts) else { return };
    let Ok(cred) = sig::credential(&parts, &params) else { return };
    let _ = sig::check_freshness(&cred, now(), openvgw_auth::DEFAULT_FRESHNESS_WINDOW);
    let canonical = sig::canonical_request(&parts, &params, &cred);
    let sts = match (&canonical, sig::string_to_sign(&parts, &params, &cred)) {
        (Ok(_), Ok(sts)) => sts,
        (Err(_), Err(_)) => return,
        (c, s) => panic!("canonical request {c:?} and string to sign {s:?} disagree"),
    };
    let _ = sig::verify(&parts, &params, &cred, SECRET);

    let signed = sig::Credential { signature: sig::signature(cred.scheme, &sts, SECRET), ..cred.clone() };
    match sig::verify(&parts, &params, &signed, SECRET) {
        Ok(()) => assert!(sig::verify(&parts, &params, &signed, "another secret").is_err()),
        Err(AuthError::ContentSha256Mismatch) if cred.scheme == Scheme::Acs3HmacSha256 => {}
        Err(e) => panic!("signed with its own string to sign, the request does not verify: {e:?}"),
    }

    // Re-encode the query: every byte of every decoded key and value as %XX.
    let query_only = RequestParts { headers: &[], body: b"", ..parts };
    let Ok(query_pairs) = sig::decode_params(&query_only) else { panic!("the query decoded before") };
    let reencoded: String =
        query_pairs.iter().map(|(k, v)| format!("{}={}", all_encoded(k), all_encoded(v))).collect::<Vec<_>>().join("&");
    let other = RequestParts { raw_query: &reencoded, ..parts };
    let other_params = sig::decode_params(&other).expect("a re-encoded query decodes");
    assert_eq!(other_params, params, "re-encoding the query changed the parameters");
    let other_canonical = sig::canonical_request(&other, &other_params, &cred);
    assert_eq!(
        other_canonical.ok(),
        canonical.ok(),
        "re-encoding the query ({reencoded}) changed the canonical request"
    );
});

/// Every byte as `%XX`, as no SDK writes it but every decoder must read it.
fn all_encoded(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}
