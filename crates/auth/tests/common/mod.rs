//! Loading the signature vectors captured from the vendors' SDKs (copied into `tests/vectors`).
#![allow(dead_code)]

use openvgw_auth::RequestParts;
use serde_json::Value;

pub const ALIYUN_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/aliyun-signature-vectors.json");
pub const HUAWEI_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/huawei-signature-vectors.json");

pub fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("field {key} is not a string in {v}"))
}

/// An owned request; `parts()` borrows it as the HTTP layer would.
#[derive(Clone, Debug)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub raw_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            raw_query: &self.raw_query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        match self.headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(h) => h.1 = value.to_owned(),
            None => self.headers.push((name.to_owned(), value.to_owned())),
        }
    }

    pub fn remove_header(&mut self, name: &str) {
        let before = self.headers.len();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        assert!(self.headers.len() < before, "no header {name} to remove");
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no header {name}"))
    }

    /// Replaces one occurrence of `from` in the raw query (which must contain it).
    pub fn edit_query(&mut self, from: &str, to: &str) {
        assert!(self.raw_query.contains(from), "{from} not in {}", self.raw_query);
        self.raw_query = self.raw_query.replacen(from, to, 1);
    }
}

fn headers(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .expect("headers is an array")
        .iter()
        .map(|pair| (pair[0].as_str().expect("name").to_owned(), pair[1].as_str().expect("value").to_owned()))
        .collect()
}

/// Alibaba vectors carry method/path/raw_query/headers/body.
pub fn aliyun_request(vector: &Value) -> OwnedRequest {
    let r = &vector["request"];
    OwnedRequest {
        method: s(r, "method").to_owned(),
        path: s(r, "path").to_owned(),
        raw_query: s(r, "raw_query").to_owned(),
        headers: headers(&r["headers"]),
        body: s(r, "body").as_bytes().to_vec(),
    }
}

/// Huawei vectors carry method/request_target/headers/body.
pub fn huawei_request(vector: &Value) -> OwnedRequest {
    let r = &vector["request"];
    let target = s(r, "request_target");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    OwnedRequest {
        method: s(r, "method").to_owned(),
        path: path.to_owned(),
        raw_query: query.to_owned(),
        headers: headers(&r["headers"]),
        body: s(r, "body").as_bytes().to_vec(),
    }
}

pub fn aliyun_vector(name: &str) -> Value {
    load(ALIYUN_VECTORS)["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
        .clone()
}

pub fn huawei_vector(index: usize) -> Value {
    load(HUAWEI_VECTORS)["vectors"][index].clone()
}
