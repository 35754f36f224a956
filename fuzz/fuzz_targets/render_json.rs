//! The JSON replies of both dialects on arbitrary documents and messages, through their real `respond`: the body
//! parses back to exactly the document (Alibaba: with `RequestId` added; Huawei: as given), and errors carry their
//! message verbatim in each vendor's error shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvgw_aliyun::error::WireError;
use openvgw_api::Dialect;
use openvgw_fuzz::{aliyun, huawei, read, request, same_json, value};
use openvgw_huawei::{HwError, Reply};
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let v = value(data);
    let text = String::from_utf8_lossy(data).into_owned();
    let req = request(b"GET / HTTP/1.1\r\nHost: openvgw\r\n\r\n");

    // Alibaba, success: the document (an object; anything else becomes {}) plus RequestId.
    let reply = openvgw_aliyun::action::Reply::of(&v);
    let (_, _, body) = read(aliyun().respond(&req, None, Some("DescribeVpnGateways"), reply));
    let mut want = if v.is_object() { v.clone() } else { json!({}) };
    want["RequestId"] = json!(req.request_id);
    assert_json(&body, &want);

    // Alibaba, error: the message verbatim.
    let e = WireError::new(400, "InvalidParameter", text.clone());
    let (status, _, body) = read(aliyun().respond(&req, None, None, Err(e)));
    assert_eq!(status, 400);
    let got = parse(&body);
    assert_eq!(got["Message"].as_str(), Some(text.as_str()));
    assert_eq!(got["Code"].as_str(), Some("InvalidParameter"));

    // Huawei, success: the document as given.
    let reply = Reply { status: 200, body: Some(v.to_string()), headers: Vec::new() };
    let (_, _, body) = read(huawei().respond(&req, None, None, Ok(reply)));
    assert_json(&body, &v);

    // Huawei, error: `{"error_code","error_msg","request_id"}` with the message verbatim.
    let e = HwError::new(400, "VPN.0001", text.clone());
    let (status, _, body) = read(huawei().respond(&req, None, None, Err(e)));
    assert_eq!(status, 400);
    let got = parse(&body);
    assert_eq!(got["error_msg"].as_str(), Some(text.as_str()));
    assert_eq!(got["request_id"].as_str(), Some(req.request_id.as_str()));
});

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

fn assert_json(body: &[u8], want: &Value) {
    let got = parse(body);
    assert!(same_json(&got, want), "reply {got} is not {want}");
}
