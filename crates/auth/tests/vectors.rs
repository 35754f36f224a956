//! Every captured SDK request in `tests/vectors/*-signature-vectors.json` must canonicalize byte-exactly
//! and verify (or, for `expect_valid: false`, fail with SignatureDoesNotMatch). Freshness is not
//! checked here: the vectors' timestamps are old.

mod common;

use std::collections::BTreeMap;

use common::*;
use openvgw_auth::aliyun::{self, Scheme};
use openvgw_auth::{huawei, AuthError};

#[test]
fn aliyun_every_vector() {
    let file = load(ALIYUN_VECTORS);
    let vectors = file["vectors"].as_array().expect("vectors");
    let (mut valid, mut invalid, mut v3, mut rpc) = (0, 0, 0, 0);
    for v in vectors {
        let name = s(v, "name");
        let secret = s(v, "access_key_secret");
        let owned = aliyun_request(v);
        let req = owned.parts();

        let params = aliyun::decode_params(&req).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: BTreeMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let want: BTreeMap<&str, &str> = v["decoded_params"]
            .as_object()
            .expect("decoded_params")
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().expect("string param")))
            .collect();
        assert_eq!(got, want, "{name}: decoded params");
        assert_eq!(params.len(), want.len(), "{name}: no duplicate params");

        let cred = aliyun::credential(&req, &params).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cred.access_key_id, s(v, "access_key_id"), "{name}");
        assert_eq!(cred.signature, s(v, "signature_in_request"), "{name}");
        match s(v, "scheme") {
            "v3-acs3-hmac-sha256" => {
                v3 += 1;
                assert_eq!(cred.scheme, Scheme::Acs3HmacSha256, "{name}");
                let canonical = aliyun::canonical_request(&req, &params, &cred).expect("canonical");
                assert_eq!(canonical, s(v, "expected_canonical_request"), "{name}: canonical request");
                let signed: Vec<&str> = v["signed_headers"]
                    .as_array()
                    .expect("signed_headers")
                    .iter()
                    .map(|h| h.as_str().expect("name"))
                    .collect();
                assert_eq!(cred.signed_headers, signed, "{name}");
            }
            "v2-hmac-sha1" => {
                rpc += 1;
                assert_eq!(cred.scheme, Scheme::RpcHmacSha1, "{name}");
            }
            other => panic!("{name}: unknown scheme {other}"),
        }

        let sts = aliyun::string_to_sign(&req, &params, &cred).expect("string to sign");
        assert_eq!(sts, s(v, "expected_string_to_sign"), "{name}: string to sign");
        assert_eq!(aliyun::signature(cred.scheme, &sts, secret), s(v, "expected_signature"), "{name}: signature");

        let result = aliyun::verify(&req, &params, &cred, secret);
        if v["expect_valid"].as_bool().expect("expect_valid") {
            valid += 1;
            assert_eq!(result, Ok(()), "{name}");
            // The same request must not pass with another secret.
            assert!(aliyun::verify(&req, &params, &cred, "testsecreT").is_err(), "{name}");
        } else {
            invalid += 1;
            let err = result.expect_err(name);
            assert_eq!(err, AuthError::SignatureDoesNotMatch { string_to_sign: sts.clone() }, "{name}");
        }
    }
    // Guard against an empty or truncated file passing silently.
    assert!(valid >= 7 && invalid >= 2 && v3 >= 5 && rpc >= 4, "{valid} {invalid} {v3} {rpc}");
}

#[test]
fn huawei_every_vector() {
    let file = load(HUAWEI_VECTORS);
    let vectors = file["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 6);
    for v in vectors {
        let label = s(v, "label");
        let secret = s(v, "sk");
        let owned = huawei_request(v);
        let req = owned.parts();

        let cred = huawei::credential(&req).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(cred.access_key_id, s(v, "ak"), "{label}");
        assert_eq!(cred.sdk_date, owned.header("X-Sdk-Date"), "{label}");
        let signed: Vec<&str> =
            v["signed_headers"].as_array().expect("signed_headers").iter().map(|h| h.as_str().expect("name")).collect();
        assert_eq!(cred.signed_headers, signed, "{label}");

        let canonical = huawei::canonical_request(&req, &cred).expect("canonical");
        assert_eq!(canonical, s(v, "canonical_request"), "{label}: canonical request");
        let sts = huawei::string_to_sign(&req, &cred).expect("string to sign");
        assert_eq!(sts, s(v, "string_to_sign"), "{label}: string to sign");
        assert_eq!(huawei::signature(&sts, secret), s(v, "expected_signature"), "{label}");

        assert_eq!(huawei::verify(&req, &cred, secret), Ok(()), "{label}");
        let err = huawei::verify(&req, &cred, "probe-secret-key-0001/+").expect_err(label);
        assert_eq!(err, AuthError::SignatureDoesNotMatch { string_to_sign: sts });
    }
}

/// The file's `derived_checks`: one changed body byte fails; a trailing '/' still verifies.
#[test]
fn huawei_derived_checks() {
    let v = huawei_vector(0);
    let secret = s(&v, "sk");
    let base = huawei_request(&v);
    assert!(!base.body.is_empty());

    let mut changed = base.clone();
    changed.body[20] ^= 1;
    let cred = huawei::credential(&changed.parts()).expect("credential");
    assert!(matches!(huawei::verify(&changed.parts(), &cred, secret), Err(AuthError::SignatureDoesNotMatch { .. })));

    let mut slash = base.clone();
    slash.path.push('/');
    let cred = huawei::credential(&slash.parts()).expect("credential");
    assert_eq!(huawei::verify(&slash.parts(), &cred, secret), Ok(()));
}

#[test]
fn huawei_query_and_path_are_recanonicalized() {
    // GET with a repeated key: reordering the pairs or writing ':' literally signs the same.
    let v = huawei_vector(2);
    let secret = s(&v, "sk");
    let mut req = huawei_request(&v);
    req.raw_query = "enterprise_project_id=b%20ep%2F2&enterprise_project_id=0".into();
    let cred = huawei::credential(&req.parts()).expect("credential");
    assert_eq!(huawei::verify(&req.parts(), &cred, secret), Ok(()));

    // '+' is not a space for Huawei (percent-decode, not form-decode).
    req.raw_query = "enterprise_project_id=0&enterprise_project_id=b+ep%2F2".into();
    assert!(huawei::verify(&req.parts(), &cred, secret).is_err());

    let v = huawei_vector(1);
    let mut req = huawei_request(&v);
    req.edit_query("%3A", ":");
    let cred = huawei::credential(&req.parts()).expect("credential");
    assert_eq!(huawei::verify(&req.parts(), &cred, s(&v, "sk")), Ok(()));
    // A tampered query value fails.
    req.edit_query("limit=2", "limit=3");
    assert!(huawei::verify(&req.parts(), &cred, s(&v, "sk")).is_err());
    // So does another path.
    let mut req = huawei_request(&v);
    req.path = req.path.replace("vpn-connection", "vpn-connections");
    assert!(huawei::verify(&req.parts(), &cred, s(&v, "sk")).is_err());
}

#[test]
fn huawei_declared_content_sha256() {
    let v = huawei_vector(0);
    let secret = s(&v, "sk");
    let mut req = huawei_request(&v);
    let cred = huawei::credential(&req.parts()).expect("credential");

    // The true hash (any case) is accepted; the signer would have used it anyway.
    let hash = s(&v, "canonical_request").rsplit('\n').next().expect("hash").to_owned();
    req.set_header("X-Sdk-Content-Sha256", &hash.to_uppercase());
    assert!(huawei::canonical_request(&req.parts(), &cred).is_ok());

    req.set_header("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD");
    assert_eq!(huawei::verify(&req.parts(), &cred, secret), Err(AuthError::ContentSha256Mismatch));
    req.set_header("X-Sdk-Content-Sha256", &"0".repeat(64));
    assert_eq!(huawei::verify(&req.parts(), &cred, secret), Err(AuthError::ContentSha256Mismatch));
}

#[test]
fn aliyun_tampered_parameter_fails() {
    for (name, from, to) in [
        ("py-tea-v3-CreateVpnGateway", "Bandwidth=5", "Bandwidth=6"),
        ("node-v3-CreateVpnConnection-IkeConfig", "Name=ipsec-1", "Name=ipsec-2"),
        ("py-tea-v2-TagResources", "Tag.1.Value=prod", "Tag.1.Value=dev"),
        ("legacy-core-CreateVpnGateway", "Bandwidth=5", "Bandwidth=50"),
        // An extra parameter is as bad as a changed one.
        ("legacy-core-CommonRequest-GET-XML", "RegionId=cn-hangzhou", "RegionId=cn-hangzhou&DryRun=true"),
        // The empty, signed SignatureType= must stay.
        ("legacy-core-CreateVpnGateway", "SignatureType=&", ""),
    ] {
        let v = aliyun_vector(name);
        let mut owned = aliyun_request(&v);
        owned.edit_query(from, to);
        let req = owned.parts();
        let params = aliyun::decode_params(&req).expect("params");
        let cred = aliyun::credential(&req, &params).expect("credential");
        let err = aliyun::verify(&req, &params, &cred, "testsecret").expect_err(name);
        assert!(matches!(err, AuthError::SignatureDoesNotMatch { .. }), "{name}: {err:?}");
    }
}

#[test]
fn aliyun_real_method_is_signed() {
    let v = aliyun_vector("legacy-core-CreateVpnGateway");
    let mut owned = aliyun_request(&v);
    owned.method = "GET".into();
    let req = owned.parts();
    let params = aliyun::decode_params(&req).expect("params");
    let cred = aliyun::credential(&req, &params).expect("credential");
    let err = aliyun::verify(&req, &params, &cred, "testsecret").expect_err("GET instead of POST");
    let AuthError::SignatureDoesNotMatch { string_to_sign } = err else { panic!("unexpected {err:?}") };
    assert!(string_to_sign.starts_with("GET&%2F&AccessKeyId%3Dtestid%26"));
}

#[test]
fn aliyun_query_encoding_does_not_matter() {
    // Python writes `+` and `%2A`, Node `%20` and `*`: both are the same signed values.
    let v = aliyun_vector("py-tea-v3-CreateVpnGateway");
    let mut owned = aliyun_request(&v);
    owned.edit_query("Name=my+gw+%E7%BD%91%E5%85%B3%2A~", "Name=my%20gw%20%e7%bd%91%e5%85%b3*%7E");
    // Parameter order in the URL is irrelevant too.
    owned.edit_query("Bandwidth=5&", "");
    owned.raw_query.push_str("&Bandwidth=5");
    let req = owned.parts();
    let params = aliyun::decode_params(&req).expect("params");
    let cred = aliyun::credential(&req, &params).expect("credential");
    assert_eq!(aliyun::verify(&req, &params, &cred, "testsecret"), Ok(()));
}

#[test]
fn aliyun_wrong_content_sha256_rejected() {
    let v = aliyun_vector("py-tea-v3-CreateVpnGateway");
    let mut owned = aliyun_request(&v);
    owned.set_header("x-acs-content-sha256", &"a".repeat(64));
    let req = owned.parts();
    let params = aliyun::decode_params(&req).expect("params");
    let cred = aliyun::credential(&req, &params).expect("credential");
    let err = aliyun::verify(&req, &params, &cred, "testsecret").expect_err("wrong hash");
    assert_eq!(err, AuthError::ContentSha256Mismatch);

    // A body appended to a request signed for an empty body: the header no longer matches.
    let mut owned = aliyun_request(&v);
    owned.body = b"RegionId=cn-shanghai".to_vec();
    let req = owned.parts();
    let params = aliyun::decode_params(&req).expect("params");
    let cred = aliyun::credential(&req, &params).expect("credential");
    assert_eq!(aliyun::verify(&req, &params, &cred, "testsecret"), Err(AuthError::ContentSha256Mismatch));
}

/// CreateVpnConnection's TunnelOptionsSpecification travels in a form body: it is an API parameter,
/// covered by the payload hash, not by the canonical query.
#[test]
fn aliyun_v3_form_body() {
    let v = aliyun_vector("py-tea-v3-CreateVpnConnection-IkeConfig");
    let mut owned = aliyun_request(&v);
    owned.body =
        b"TunnelOptionsSpecification.1.CustomerGatewayId=cgw-1&TunnelOptionsSpecification.1.Role=master".to_vec();
    // Computed independently of the crate's helpers.
    let real_hash = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&owned.body))
    };
    owned.set_header("x-acs-content-sha256", &real_hash);
    let req = owned.parts();
    let params = aliyun::decode_params(&req).expect("params");
    assert_eq!(
        &params[params.len() - 2..],
        &[
            ("TunnelOptionsSpecification.1.CustomerGatewayId".to_owned(), "cgw-1".to_owned()),
            ("TunnelOptionsSpecification.1.Role".to_owned(), "master".to_owned()),
        ]
    );
    let cred = aliyun::credential(&req, &params).expect("credential");
    let canonical = aliyun::canonical_request(&req, &params, &cred).expect("canonical");
    let expected_canonical = s(&v, "expected_canonical_request")
        .replace("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", &real_hash);
    assert_eq!(canonical, expected_canonical);
    assert!(!canonical.contains("TunnelOptions"));

    // Signed as a client would, it verifies; with one body byte changed it does not.
    let sts = aliyun::string_to_sign(&req, &params, &cred).expect("sts");
    let sig = aliyun::signature(Scheme::Acs3HmacSha256, &sts, "testsecret");
    let auth = owned.header("Authorization");
    let auth = format!("{}{sig}", &auth[..auth.rfind('=').expect("Signature=") + 1]);
    owned.set_header("Authorization", &auth);
    let req = owned.parts();
    let cred = aliyun::credential(&req, &params).expect("credential");
    assert_eq!(aliyun::verify(&req, &params, &cred, "testsecret"), Ok(()));
    let mut tampered = owned.clone();
    tampered.body =
        b"TunnelOptionsSpecification.1.CustomerGatewayId=cgw-2&TunnelOptionsSpecification.1.Role=master".to_vec();
    let req = tampered.parts();
    let params = aliyun::decode_params(&req).expect("params");
    assert_eq!(aliyun::verify(&req, &params, &cred, "testsecret"), Err(AuthError::ContentSha256Mismatch));
}
