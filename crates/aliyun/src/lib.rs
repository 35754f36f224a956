//! openvgw-aliyun: the Alibaba Cloud VPN Gateway RPC dialect (Version 2016-04-28).
//!
//! A thin adapter: it decodes the request as the SDKs send it (query and/or form body, action in `Action` or
//! `x-acs-action`), verifies the signature (ACS3-HMAC-SHA256 or HMAC-SHA1 v1.0) with replay protection, turns the
//! flattened parameters into typed inputs, calls the shared service, and renders JSON (default) or XML with
//! Alibaba's list shapes and error codes. It never touches SQL or the data plane directly.

pub mod actions;
pub mod error;
pub mod params;
pub mod render;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use openvgw_auth::{aliyun as sig, NonceCache, RequestParts};
use openvgw_control::{tenants, Service};
use openvgw_core::ids::request_id;
use openvgw_core::model::Scope;
use serde_json::{json, Value};

use crate::error::{from_auth, from_core, WireError};
use crate::params::Params;

pub const API_VERSION: &str = "2016-04-28";
const MAX_BODY: usize = 1 << 20;

pub struct Aliyun {
    svc: Arc<Service>,
    nonces: NonceCache,
}

/// What a request came to, for metrics and access logs (set as a response extension).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub dialect: &'static str,
    pub action: String,
    pub code: String,
}

impl Aliyun {
    pub fn new(svc: Arc<Service>) -> Arc<Self> {
        let window = time::Duration::seconds(svc.config.server.signature_window_s as i64);
        // Remember nonces for twice the window: a request dated +window stays fresh until now + 2 * window.
        Arc::new(Aliyun { svc, nonces: NonceCache::with_retention(window * 2) })
    }
}

struct Received {
    method: String,
    path: String,
    raw_query: String,
    headers: Vec<(String, String)>,
    body: bytes::Bytes,
}

impl Received {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            raw_query: &self.raw_query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Serves one request on `/`.
pub async fn handle(state: Arc<Aliyun>, req: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let request_id = request_id();
    let (parts, body) = req.into_parts();
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("openvgw").to_string();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let e = WireError::new(413, "InvalidParameter.BodyTooLarge", "The request body is too large.");
            return respond(&request_id, &host, "", false, Err(e));
        }
    };
    let received = Received {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        raw_query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body,
    };
    let st = state.clone();
    let joined = tokio::task::spawn_blocking(move || process(&st, &received)).await;
    let (action, xml, tenant, result) = match joined {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(request_id = %request_id, error = %e, "request handler panicked");
            (
                String::new(),
                false,
                None,
                Err(WireError::new(500, "InternalError", "The request processing has failed.")),
            )
        }
    };
    let code = match &result {
        Ok(_) => "200".to_string(),
        Err(e) => e.code.clone(),
    };
    let status = result.as_ref().map(|_| 200).unwrap_or_else(|e| e.status);
    tracing::info!(
        request_id = %request_id, dialect = "aliyun", action = %action, tenant = tenant.as_deref().unwrap_or("-"),
        status, code = %code, elapsed_us = started.elapsed().as_micros() as u64, "request"
    );
    let mut resp = respond(&request_id, &host, &action, xml, result);
    resp.extensions_mut().insert(Outcome { dialect: "aliyun", action, code });
    resp
}

type Processed = (String, bool, Option<String>, Result<Value, WireError>);

/// Decode, authenticate, dispatch (on a blocking thread: store access is synchronous).
fn process(state: &Aliyun, r: &Received) -> Processed {
    let parts = r.parts();
    let pairs = match sig::decode_params(&parts) {
        Ok(p) => p,
        Err(e) => return (String::new(), false, None, Err(from_auth(&e))),
    };
    let p = Params::new(&pairs);
    let xml = p.get("Format").is_some_and(|f| f.eq_ignore_ascii_case("xml"));
    let action = p.string("Action").or_else(|| r.header("x-acs-action").map(str::to_string)).unwrap_or_default();
    let mut tenant = None;
    let result = authenticate_and_run(state, &parts, &pairs, &p, &action, &mut tenant);
    (action, xml, tenant, result)
}

fn authenticate_and_run(
    state: &Aliyun,
    parts: &RequestParts,
    pairs: &[(String, String)],
    p: &Params,
    action: &str,
    tenant: &mut Option<String>,
) -> Result<Value, WireError> {
    if action.is_empty() {
        return Err(WireError::missing("Action"));
    }
    let cred = sig::credential(parts, pairs).map_err(|e| from_auth(&e))?;
    let key =
        tenants::access_key(&state.svc.store, &cred.access_key_id).map_err(|e| from_core(&e, action))?.ok_or_else(
            || from_auth(&openvgw_auth::AuthError::AccessKeyNotFound { access_key_id: cred.access_key_id.clone() }),
        )?;
    sig::verify(parts, pairs, &cred, &key.secret).map_err(|e| from_auth(&e))?;
    let now = time::OffsetDateTime::now_utc();
    sig::check_freshness(&cred, now).map_err(|e| from_auth(&e))?;
    state.nonces.check_and_insert(&cred.access_key_id, &cred.nonce, now).map_err(|e| from_auth(&e))?;
    *tenant = Some(key.tenant_id.clone());
    if !actions::ACTIONS.contains(&action) {
        return Err(WireError::unknown_action(action));
    }
    let version = p.get("Version").or_else(|| {
        parts.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-acs-version")).map(|(_, v)| v.as_str())
    });
    if let Some(v) = version {
        if v != API_VERSION {
            return Err(WireError::new(
                400,
                "InvalidVersion",
                format!("Specified parameter Version {v} is not valid."),
            ));
        }
    }
    let region = p.req("RegionId")?;
    state.svc.check_region(region).map_err(|e| from_core(&e, action))?;
    let call = actions::Call {
        svc: &state.svc,
        action,
        scope: Scope { tenant_id: key.tenant_id, region: region.to_string() },
        p,
    };
    actions::dispatch(&call)
}

fn respond(request_id: &str, host: &str, action: &str, xml: bool, result: Result<Value, WireError>) -> Response<Body> {
    let (status, body, root) = match result {
        Ok(mut v) => {
            if !v.is_object() {
                v = json!({});
            }
            v["RequestId"] = json!(request_id);
            (200, v, format!("{action}Response"))
        }
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(request_id = %request_id, code = %e.code, "internal error");
            }
            let v = json!({
                "RequestId": request_id,
                "HostId": host,
                "Code": e.code,
                "Message": e.message,
                "Recommend": format!("https://next.api.aliyun.com/troubleshoot?q={}", e.code),
            });
            (e.status, v, "Error".to_string())
        }
    };
    let (content_type, text) = if xml {
        ("text/xml;charset=utf-8", render::to_xml(&root, &body))
    } else {
        ("application/json;charset=utf-8", body.to_string())
    };
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-acs-request-id", v);
    }
    resp
}
