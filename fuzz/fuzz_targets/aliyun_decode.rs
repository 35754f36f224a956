//! Alibaba's request decoding as the server runs it: form/query parameters, the action, the credential, the
//! signature check with the vectors' secret, routing, and the rendered reply. Nothing may panic, and the reply must
//! be well-formed in the format it claims (XML for `Format=XML`, JSON otherwise).
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvgw_aliyun::params::Params;
use openvgw_aliyun::Aliyun;
use openvgw_api::{Dialect, Presented};
use openvgw_auth::aliyun as sig;
use openvgw_fuzz::{aliyun, now, parse_xml, principal, read, request, SECRET};
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let req = request(data);
    let dialect = aliyun();

    // The typed accessors handlers use, over whatever was sent.
    if let Some((pairs, p)) = sig::decode_params(&req.parts()).ok().and_then(|pairs| {
        let p = Params::parse(&pairs).ok()?;
        Some((pairs, p))
    }) {
        let _ = (p.list("ResourceId"), p.objects("Tag"), p.page(), p.token_page(10, 100), p.dry_run());
        for (name, _) in pairs.iter().take(8) {
            let _ = (p.bool(name), p.int(name), p.u32(name), p.list(name), p.objects(name));
            if let Ok(Some(j)) = p.json(name) {
                let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).take(4).collect();
                if !keys.is_empty() {
                    let _ = (j.str(&keys), j.u32(&keys), j.bool(&keys), j.parsed(&keys, |s| s.parse::<u8>().ok()));
                }
            }
        }
    }

    let (decoded, results) = match dialect.decode(&req) {
        Err(e) => (None, vec![Err(e)]),
        Ok((decoded, presented)) => {
            let Presented::Signature(signed) = presented else { panic!("Alibaba requests present a signature") };
            let _ = (signed.access_key_id(), signed.replay_key());
            let checked = signed
                .verify(&req, SECRET)
                .and_then(|()| signed.check_freshness(now(), openvgw_auth::DEFAULT_FRESHNESS_WINDOW))
                .map_err(|e| dialect.auth_error(e));
            // Routing as it goes for this request, and as it would for a client holding a valid key.
            let routed = dialect.route(&req, &decoded, Some(&principal())).map(|e| Aliyun::operation(&e));
            (Some(decoded), vec![checked.and(routed.clone()), routed])
        }
    };
    for result in results {
        let operation = result.as_ref().ok().copied();
        let reply = result.and_then(|_| openvgw_aliyun::action::Reply::of(&json!({"Routed": true})));
        let (status, content_type, body) = read(dialect.respond(&req, decoded.as_ref(), operation, reply));
        assert!((200..600).contains(&status));
        let text = String::from_utf8(body).expect("a UTF-8 reply");
        if content_type.starts_with("text/xml") {
            let doc = parse_xml(&text);
            let root = doc.root_element();
            assert!(root.children().any(|n| n.has_tag_name("RequestId")), "no RequestId in {text}");
        } else {
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {text:?}"));
            assert!(v["RequestId"].is_string(), "no RequestId in {text}");
        }
    }
});
