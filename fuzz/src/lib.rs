//! What the fuzz targets share: a request from raw bytes, the dialects on a scratch store, reading a rendered
//! response, and strict checks of rendered XML and JSON.
//!
//! Request inputs are HTTP/1.1 requests as text (`METHOD /path?query HTTP/1.1`, `Name: value` lines, an empty
//! line, the body), so the seed corpora are readable and come straight from the signature vectors' `raw_http`.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Response;
use http_body_util::BodyExt;
use openvgw_aliyun::Aliyun;
use openvgw_api::{ApiRequest, Credential, Principal};
use openvgw_control::Service;
use openvgw_core::config::Config;
use openvgw_dataplane::simulated::SimulatedDriver;
use openvgw_huawei::Huawei;
use openvgw_store::Store;
use serde_json::Value;

/// The secret Alibaba's signature vectors were made with.
pub const SECRET: &str = "testsecret";
/// The secret Huawei's signature vectors were made with.
pub const HUAWEI_SECRET: &str = "probe-secret-key-0001/+=";

/// The principal routing is tried with: a tenant the scratch store does not have.
pub fn principal() -> Principal {
    Principal { tenant_id: "t-fuzz".into(), via: Credential::AccessKey("testid".into()) }
}

/// "now" for freshness checks: within minutes of the vectors' dates, so both outcomes are reachable.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_795_305_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Reads `data` as an HTTP/1.1 request. Anything goes, but what HTTP cannot carry is dropped the way the server's
/// HTTP stack refuses it: the method is a token, the path and query are visible ASCII, header names are tokens,
/// header values have no control characters but tab. The body is taken as is.
pub fn request(data: &[u8]) -> ApiRequest {
    let (head, body) = split_head(data);
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    let mut words = first.split(' ');
    let method: String = words.next().unwrap_or("").chars().filter(|c| is_token(*c)).collect();
    let target: String = words.next().unwrap_or("").chars().filter(|c| c.is_ascii_graphic()).collect();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| !name.is_empty() && name.chars().all(is_token))
        .map(|(name, value)| {
            let value: String = value.chars().filter(|c| *c == '\t' || !c.is_control()).collect();
            (name.to_string(), value.trim().to_string())
        })
        .collect();
    ApiRequest {
        request_id: "FUZZ0000-0000-0000-0000-000000000000".into(),
        method,
        path: path.to_string(),
        raw_query: query.to_string(),
        headers,
        body: bytes::Bytes::copy_from_slice(body),
    }
}

fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for sep in [&b"\r\n\r\n"[..], &b"\n\n"[..]] {
        if let Some(i) = data.windows(sep.len()).position(|w| w == sep) {
            return (&data[..i], &data[i + sep.len()..]);
        }
    }
    (data, &[])
}

fn is_token(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// One service for the whole run, on an empty store in a scratch directory (`TMPDIR`; decoding never writes).
pub fn service() -> Arc<Service> {
    static SVC: OnceLock<Arc<Service>> = OnceLock::new();
    SVC.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("openvgw-fuzz").tempdir().expect("scratch directory");
        let store = Store::open(&dir.path().join("openvgw.db")).expect("scratch store");
        // The directory lives as long as the process.
        std::mem::forget(dir);
        let driver = Arc::new(SimulatedDriver::new(std::time::Duration::ZERO, std::time::Duration::ZERO));
        Arc::new(Service::new(Arc::new(store), Arc::new(Config::default()), driver))
    })
    .clone()
}

pub fn aliyun() -> &'static Aliyun {
    static D: OnceLock<Aliyun> = OnceLock::new();
    D.get_or_init(|| Aliyun::new(service(), Default::default()))
}

pub fn huawei() -> &'static Huawei {
    static D: OnceLock<Huawei> = OnceLock::new();
    D.get_or_init(|| Huawei::new(service(), Default::default()))
}

/// A rendered response: status, content type and body.
pub fn read(resp: Response<Body>) -> (u16, String, Vec<u8>) {
    thread_local! {
        static RT: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    }
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = RT.with(|rt| rt.block_on(resp.into_body().collect())).expect("an in-memory body").to_bytes().to_vec();
    (status, content_type, body)
}

/// XML 1.0 `Char`: what a document may contain at all (no other control character, no U+FFFE/U+FFFF).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Parses `text` as XML, panicking (a finding) when it is not well-formed.
pub fn parse_xml(text: &str) -> roxmltree::Document<'_> {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        panic!("not well-formed XML: character {c:?} at byte {i} is not an XML 1.0 Char in {text:?}");
    }
    roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("not well-formed XML ({e}): {text:?}"))
}

/// The text an XML parser returns for `s` written raw: line ends normalised (`\r\n` and `\r` become `\n`).
pub fn xml_line_ends(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// `a` and `b` are the same JSON, numbers compared as numbers (floats up to rounding in the last digits, which
/// the JSON parser does not promise to round-trip).
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()),
                _ => false,
            },
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && same_json(vx, vy))
        }
        _ => a == b,
    }
}

/// A JSON value from fuzz input: the input itself when it is JSON, otherwise a reply-shaped object carrying the
/// input's text (split at `|` into a list as well), so that raw strings reach the renderers without JSON escaping.
pub fn value(data: &[u8]) -> Value {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        return v;
    }
    let text = String::from_utf8_lossy(data);
    serde_json::json!({
        "RequestId": "FUZZ",
        "Message": text,
        "Items": {"Item": text.split('|').collect::<Vec<_>>()},
        "Empty": null,
    })
}
