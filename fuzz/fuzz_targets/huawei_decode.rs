//! Huawei's request decoding as the server runs it: routing by method and path, the credential (token,
//! SDK-HMAC-SHA256 or none), the signature check with the vectors' secret, the project scope, the JSON body as the
//! routed operation's request type, and the rendered reply. Nothing may panic; the reply is JSON with Huawei's
//! error shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvgw_api::{Dialect, Presented};
use openvgw_fuzz::{huawei, now, principal, read, request, HUAWEI_SECRET};
use openvgw_huawei::{Huawei, Reply};
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let req = request(data);
    let dialect = huawei();

    // The body as the routed operation's request type, as `handle` decodes it before the handler.
    if let Some(Err(e)) = openvgw_huawei::fuzzing::decode_body(&req.method, &req.path, &req.body) {
        assert_eq!((e.status, e.code.as_str()), (400, "VPN.0001"));
    }

    let results = match dialect.decode(&req) {
        Err(e) => vec![Err(e)],
        Ok((decoded, presented)) => {
            let checked = match presented {
                Presented::Signature(signed) => {
                    let _ = (signed.access_key_id(), signed.replay_key());
                    signed
                        .verify(&req, HUAWEI_SECRET)
                        .and_then(|()| signed.check_freshness(now(), openvgw_auth::DEFAULT_FRESHNESS_WINDOW))
                        .map_err(|e| dialect.auth_error(e))
                }
                Presented::Token(_) | Presented::Anonymous => Ok(()),
            };
            // Routing as it goes for this request, and as it would for a client holding a valid key.
            let routed = dialect.route(&req, &decoded, Some(&principal())).map(|e| Huawei::operation(&e));
            vec![checked.and(routed.clone()), routed]
        }
    };
    for result in results {
        let reply = result.map(|op| Reply { status: 200, body: Some(json!({"operation": op}).to_string()), headers: Vec::new() });
        let (status, content_type, body) = read(dialect.respond(&req, None, None, reply));
        assert!((200..600).contains(&status));
        assert!(content_type.starts_with("application/json"));
        let v: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", String::from_utf8_lossy(&body)));
        if status >= 400 {
            assert!(v["error_code"].is_string() && v["error_msg"].is_string(), "not Huawei's error shape: {v}");
        }
    }
});
