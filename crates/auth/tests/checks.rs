//! Freshness, replay protection, missing or malformed credentials, and the error renderings.

mod common;

use common::*;
use openvgw_auth::aliyun::{self, Scheme};
use openvgw_auth::{huawei, AuthError, RequestParts, DEFAULT_FRESHNESS_WINDOW};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn aliyun_cred(owned: &OwnedRequest) -> Result<aliyun::Credential, AuthError> {
    let req = owned.parts();
    let params = aliyun::decode_params(&req)?;
    aliyun::credential(&req, &params)
}

// ---------- freshness ----------

#[test]
fn aliyun_freshness_window() {
    for name in ["py-tea-v3-CreateVpnGateway", "legacy-core-CreateVpnGateway"] {
        let cred = aliyun_cred(&aliyun_request(&aliyun_vector(name))).expect("credential");
        let ts: OffsetDateTime = match cred.scheme {
            Scheme::Acs3HmacSha256 => datetime!(2026-11-21 23:49:31 UTC),
            Scheme::RpcHmacSha1 => datetime!(2026-11-21 23:49:32 UTC),
        };
        for ok in [Duration::ZERO, Duration::minutes(14), Duration::minutes(15), -Duration::minutes(15)] {
            assert_eq!(aliyun::check_freshness(&cred, ts + ok, DEFAULT_FRESHNESS_WINDOW), Ok(()), "{name} {ok}");
        }
        for late in [Duration::seconds(15 * 60 + 1), -Duration::seconds(15 * 60 + 1), Duration::days(1)] {
            let err = aliyun::check_freshness(&cred, ts + late, DEFAULT_FRESHNESS_WINDOW).expect_err(name);
            assert_eq!(err, AuthError::TimestampExpired { timestamp: cred.timestamp.clone() });
        }
    }
}

#[test]
fn aliyun_bad_timestamp_format() {
    let mut cred = aliyun_cred(&aliyun_request(&aliyun_vector("py-tea-v3-CreateVpnGateway"))).expect("credential");
    let now = datetime!(2026-11-21 23:49:31 UTC);
    for bad in [
        "2026-11-21 23:49:31Z",
        "2026-11-21T23:49:31",
        "2026-11-21T23:49:31+08:00",
        "20261121T234931Z",
        "Sat, 21 Nov 2026 23:49:31 GMT",
        "2026-13-21T23:49:31Z",
        "",
    ] {
        cred.timestamp = bad.to_owned();
        let err = aliyun::check_freshness(&cred, now, DEFAULT_FRESHNESS_WINDOW).expect_err(bad);
        assert_eq!(err, AuthError::InvalidTimestampFormat, "{bad}");
    }
}

#[test]
fn huawei_freshness_window() {
    let owned = huawei_request(&huawei_vector(0));
    let mut cred = huawei::credential(&owned.parts()).expect("credential");
    let ts = datetime!(2026-11-21 23:28:54 UTC);
    assert_eq!(huawei::check_freshness(&cred, ts, DEFAULT_FRESHNESS_WINDOW), Ok(()));
    assert_eq!(huawei::check_freshness(&cred, ts + Duration::minutes(15), DEFAULT_FRESHNESS_WINDOW), Ok(()));
    assert_eq!(huawei::check_freshness(&cred, ts - Duration::minutes(15), DEFAULT_FRESHNESS_WINDOW), Ok(()));
    let err = huawei::check_freshness(&cred, ts + Duration::minutes(16), DEFAULT_FRESHNESS_WINDOW).expect_err("late");
    assert_eq!(err, AuthError::TimestampExpired { timestamp: "20261121T232854Z".into() });
    // A shorter configured window is honoured.
    assert!(huawei::check_freshness(&cred, ts + Duration::minutes(2), Duration::minutes(1)).is_err());
    assert!(huawei::check_freshness(&cred, ts - Duration::minutes(16), DEFAULT_FRESHNESS_WINDOW).is_err());

    for bad in ["2026-11-21T23:28:54Z", "20261121T232854", "20261121 232854Z", "20261321T232854Z"] {
        cred.sdk_date = bad.to_owned();
        assert_eq!(
            huawei::check_freshness(&cred, ts, DEFAULT_FRESHNESS_WINDOW),
            Err(AuthError::InvalidTimestampFormat),
            "{bad}"
        );
    }
}

// ---------- missing or malformed credentials: Alibaba V3 ----------

const V3: &str = "py-tea-v3-CreateVpnGateway";

#[test]
fn aliyun_v3_missing_pieces() {
    let base = aliyun_request(&aliyun_vector(V3));
    let auth = base.header("Authorization").to_owned();

    let mut r = base.clone();
    r.remove_header("x-acs-signature-nonce");
    assert_eq!(aliyun_cred(&r), Err(AuthError::MissingSignatureNonce));

    let mut r = base.clone();
    r.remove_header("x-acs-date");
    assert_eq!(aliyun_cred(&r), Err(AuthError::MissingTimestamp));

    let mut r = base.clone();
    r.set_header("Authorization", &auth.replace("Credential=testid,", ""));
    assert_eq!(aliyun_cred(&r), Err(AuthError::MissingAccessKeyId));

    let mut r = base.clone();
    r.set_header("Authorization", &auth[..auth.find(",Signature=").expect("sig")]);
    assert_eq!(aliyun_cred(&r), Err(AuthError::MissingSignature));

    let mut r = base.clone();
    let no_signed_headers =
        auth.replace(&auth[auth.find("SignedHeaders=").expect("sh")..auth.find(",Signature=").expect("sig") + 1], "");
    r.set_header("Authorization", &no_signed_headers);
    let err = aliyun_cred(&r).expect_err("no SignedHeaders");
    assert!(matches!(err, AuthError::IncompleteSignature { .. }), "{err:?}");

    let mut r = base.clone();
    r.set_header("Authorization", &auth.replace("accept;host", "accept;;host"));
    assert!(matches!(aliyun_cred(&r), Err(AuthError::IncompleteSignature { .. })));

    let mut r = base.clone();
    r.set_header("Authorization", &auth.replace("ACS3-HMAC-SHA256", "ACS3-HMAC-SM3"));
    let err = aliyun_cred(&r).expect_err("sm3");
    assert_eq!(err, AuthError::InvalidSignatureMethod);
}

/// Date and nonce must be signed, or a captured request could be re-dated and replayed.
#[test]
fn aliyun_v3_replay_headers_must_be_signed() {
    let base = aliyun_request(&aliyun_vector(V3));
    let auth = base.header("Authorization").to_owned();
    for h in ["x-acs-signature-nonce;", "x-acs-date;", "x-acs-action;"] {
        let mut r = base.clone();
        r.set_header("Authorization", &auth.replacen(h, "", 1));
        assert!(matches!(aliyun_cred(&r), Err(AuthError::IncompleteSignature { .. })), "{h}");
    }
    // An unsigned header that is not security-relevant is fine (Node leaves out accept/user-agent).
    let mut r = base.clone();
    r.set_header("x-forwarded-for", "10.0.0.1");
    assert!(aliyun_cred(&r).is_ok());
}

#[test]
fn aliyun_v3_changed_signed_header_fails() {
    let base = aliyun_request(&aliyun_vector(V3));
    for (name, value) in [
        ("x-acs-action", "DeleteVpnGateway"),
        ("x-acs-signature-nonce", "00000000000000000000000000000000"),
        ("x-acs-date", "2026-11-21T23:59:31Z"),
        ("host", "127.0.0.1:18081"),
    ] {
        let mut r = base.clone();
        r.set_header(name, value);
        let req = r.parts();
        let params = aliyun::decode_params(&req).expect("params");
        let cred = aliyun::credential(&req, &params).expect("credential");
        assert!(
            matches!(aliyun::verify(&req, &params, &cred, "testsecret"), Err(AuthError::SignatureDoesNotMatch { .. })),
            "{name}"
        );
    }
    // Headers outside SignedHeaders may change freely.
    let mut r = base.clone();
    r.set_header("Accept-Encoding", "gzip");
    let req = r.parts();
    let params = aliyun::decode_params(&req).expect("params");
    let cred = aliyun::credential(&req, &params).expect("credential");
    assert_eq!(aliyun::verify(&req, &params, &cred, "testsecret"), Ok(()));
}

// ---------- missing or malformed credentials: Alibaba RPC ----------

#[test]
fn aliyun_rpc_missing_pieces() {
    let base = aliyun_request(&aliyun_vector("legacy-core-CreateVpnGateway"));
    for (from, to, want) in [
        ("&AccessKeyId=testid", "", AuthError::MissingAccessKeyId),
        ("&AccessKeyId=testid", "&AccessKeyId=", AuthError::MissingAccessKeyId),
        ("&Signature=99r3QX%2F6sc7opWpUyV0tohvyk58%3D", "", AuthError::MissingSignature),
        ("&SignatureNonce=694a60813d7d2ac748ec59f8fdb2b71e", "", AuthError::MissingSignatureNonce),
        ("&Timestamp=2026-11-21T23%3A49%3A32Z", "", AuthError::MissingTimestamp),
        ("&SignatureMethod=HMAC-SHA1", "", AuthError::MissingSignatureMethod),
        ("&SignatureVersion=1.0", "", AuthError::MissingSignatureVersion),
        ("SignatureMethod=HMAC-SHA1", "SignatureMethod=HMAC-SHA256", AuthError::InvalidSignatureMethod),
        ("SignatureVersion=1.0", "SignatureVersion=2.0", AuthError::InvalidSignatureVersion),
    ] {
        let mut r = base.clone();
        r.edit_query(from, to);
        assert_eq!(aliyun_cred(&r), Err(want.clone()), "{from} -> {to}");
    }
    // No credentials at all (neither header nor params).
    let bare = OwnedRequest {
        method: "POST".into(),
        path: "/".into(),
        raw_query: "RegionId=cn-hangzhou".into(),
        headers: vec![("host".into(), "127.0.0.1".into())],
        body: Vec::new(),
    };
    assert_eq!(aliyun_cred(&bare), Err(AuthError::MissingAccessKeyId));
}

#[test]
fn aliyun_invalid_utf8_parameters() {
    let mut r = aliyun_request(&aliyun_vector("legacy-core-CreateVpnGateway"));
    r.edit_query("Name=my", "Name=%FFmy");
    let err = aliyun::decode_params(&r.parts()).expect_err("invalid utf-8");
    assert_eq!(err, AuthError::MalformedParameters);

    let mut r = aliyun_request(&aliyun_vector("py-tea-v3-CreateVpnConnection-IkeConfig"));
    r.body = vec![b'a', b'=', 0xff];
    assert_eq!(aliyun::decode_params(&r.parts()), Err(AuthError::MalformedParameters));
}

#[test]
fn aliyun_form_body_only_with_form_content_type() {
    let mut r = aliyun_request(&aliyun_vector("py-tea-v3-CreateVpnGateway"));
    r.body = b"Extra=1".to_vec();
    let without = aliyun::decode_params(&r.parts()).expect("params");
    r.set_header("content-type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8");
    let with = aliyun::decode_params(&r.parts()).expect("params");
    assert_eq!(with.len(), without.len() + 1);
    assert_eq!(with.last(), Some(&("Extra".to_owned(), "1".to_owned())));
}

/// The corrected worked example of the seed document (aliyun-wire.md section 1).
#[test]
fn aliyun_seed_worked_example() {
    let query = "Action=CreateVpnGateway&Format=XML&Version=2014-05-26&AccessKeyId=testid\
        &SignatureMethod=HMAC-SHA1&SignatureVersion=1.0\
        &SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx&Timestamp=2016-05-23T12:46:24Z\
        &Signature=mb833gwv9sOvU6AsuC%2FMofNXDzs%3D";
    let headers = Vec::new();
    let req = RequestParts { method: "GET", path: "/", raw_query: query, headers: &headers, body: b"" };
    let params = aliyun::decode_params(&req).expect("params");
    let cred = aliyun::credential(&req, &params).expect("credential");
    assert_eq!(cred.scheme, Scheme::RpcHmacSha1);
    assert_eq!(
        aliyun::string_to_sign(&req, &params, &cred).expect("sts"),
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DCreateVpnGateway%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx%26SignatureVersion%3D1.0%26Timestamp%3D2016-05-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    );
    assert_eq!(aliyun::verify(&req, &params, &cred, "testsecret"), Ok(()));
    assert!(aliyun::verify(&req, &params, &cred, "testsecret&").is_err());
}

// ---------- missing or malformed credentials: Huawei ----------

#[test]
fn huawei_missing_pieces() {
    let base = huawei_request(&huawei_vector(0));
    let auth = base.header("Authorization").to_owned();

    let mut r = base.clone();
    r.remove_header("Authorization");
    let err = huawei::credential(&r.parts()).expect_err("no auth");
    assert_eq!(err, AuthError::MissingSignature);

    let mut r = base.clone();
    r.remove_header("X-Sdk-Date");
    assert_eq!(huawei::credential(&r.parts()), Err(AuthError::MissingTimestamp));

    let mut r = base.clone();
    r.set_header("Authorization", &auth.replace("Access=PROBEAK0000000000001, ", ""));
    assert_eq!(huawei::credential(&r.parts()), Err(AuthError::MissingAccessKeyId));

    let mut r = base.clone();
    r.set_header("Authorization", &auth[..auth.find(", Signature=").expect("sig")]);
    assert!(matches!(huawei::credential(&r.parts()), Err(AuthError::IncompleteSignature { .. })));

    let mut r = base.clone();
    r.set_header("Authorization", &auth.replace("SDK-HMAC-SHA256", "SDK-HMAC-SM3"));
    assert_eq!(huawei::credential(&r.parts()), Err(AuthError::InvalidSignatureMethod));

    let mut r = base.clone();
    r.set_header("Authorization", "Bearer abc");
    assert!(matches!(huawei::credential(&r.parts()), Err(AuthError::IncompleteSignature { .. })));

    // The signed X-Sdk-Date cannot be moved forward to dodge the freshness check.
    let mut r = base.clone();
    r.set_header("X-Sdk-Date", "20261121T235854Z");
    let cred = huawei::credential(&r.parts()).expect("credential");
    assert!(huawei::verify(&r.parts(), &cred, "probe-secret-key-0001/+=").is_err());
}

/// Secrets never end up in an error, whatever the failure.
#[test]
fn secret_not_in_errors() {
    let secret = "SUPER-SECRET-VALUE";
    let v = aliyun_vector("legacy-core-CreateVpnGateway");
    let owned = aliyun_request(&v);
    let req = owned.parts();
    let params = aliyun::decode_params(&req).expect("params");
    let cred = aliyun::credential(&req, &params).expect("credential");
    let err = aliyun::verify(&req, &params, &cred, secret).expect_err("wrong secret");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(secret), "{text}");
    }
    let sig = aliyun::signature(Scheme::RpcHmacSha1, "x", secret);
    assert!(!sig.contains(secret));
}
