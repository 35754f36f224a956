//! openvgw-aliyun: the Alibaba Cloud VPN Gateway RPC dialect (Version 2016-04-28).
//!
//! A thin translation over the shared API layer: it decodes the request as the SDKs send it (query and/or form
//! body, action in `Action` or `x-acs-action`), extracts the ACS3-HMAC-SHA256 or HMAC-SHA1 credential, routes the
//! authenticated request to a typed [`Action`](action::Action) with a checked scope, turns the flattened parameters
//! into typed inputs with Alibaba's defaults and ranges, calls the shared service, and renders JSON (default) or XML
//! with Alibaba's list shapes and error codes. It never touches SQL or the data plane.

pub mod action;
mod defaults;
pub mod error;
mod handlers;
pub mod params;
mod spelling;
mod xml;

/// Entry points for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// The XML renderer of `Format=XML` replies.
    pub use crate::xml::to_xml;
}

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use openvgw_api::{ApiRequest, Dialect, Presented, Principal, ReadCache, SignedRequest, Throttle, Throttled};
use openvgw_auth::aliyun as sig;
use openvgw_auth::AuthError;
use openvgw_control::Service;
use openvgw_core::model::Scope;
use rand::Rng;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::action::{Action, Call, Reply};
use crate::error::{from_auth, WireError};
use crate::params::Params;

pub const API_VERSION: &str = "2016-04-28";

pub struct Aliyun {
    svc: Arc<Service>,
    /// Answers of pure reads, kept while the store is unchanged.
    reads: Arc<ReadCache>,
}

impl Aliyun {
    pub fn new(svc: Arc<Service>, reads: Arc<ReadCache>) -> Self {
        Aliyun { svc, reads }
    }
}

/// A decoded request: its parameters, the action it names and the format it wants.
pub struct Decoded {
    params: Arc<Params>,
    action: String,
    xml: bool,
}

pub struct Endpoint {
    action: Action,
    scope: Scope,
    params: Arc<Params>,
}

/// An ACS3 or RPC signature with the parameters it covers.
struct Signed {
    cred: sig::Credential,
    pairs: Vec<(String, String)>,
}

impl SignedRequest for Signed {
    fn access_key_id(&self) -> &str {
        &self.cred.access_key_id
    }
    fn verify(&self, req: &ApiRequest, secret: &str) -> Result<(), AuthError> {
        sig::verify(&req.parts(), &self.pairs, &self.cred, secret)
    }
    fn check_freshness(&self, now: OffsetDateTime, window: Duration) -> Result<(), AuthError> {
        sig::check_freshness(&self.cred, now, window)
    }
    fn replay_key(&self) -> Option<&str> {
        Some(&self.cred.nonce)
    }
}

/// The request's parameters (query and form body), the action they name and the format wanted; with the raw pairs
/// a signature covers.
fn read(req: &ApiRequest) -> Result<(Decoded, Vec<(String, String)>), WireError> {
    let pairs = sig::decode_params(&req.parts()).map_err(|e| from_auth(&e))?;
    let params = Params::parse(&pairs)?;
    let xml = params.get("Format").is_some_and(|f| f.eq_ignore_ascii_case("xml"));
    let action = params.string("Action").or_else(|| req.header("x-acs-action").map(str::to_string)).unwrap_or_default();
    if action.is_empty() {
        return Err(WireError::missing("Action"));
    }
    Ok((Decoded { params: Arc::new(params), action, xml }, pairs))
}

impl Dialect for Aliyun {
    const NAME: &'static str = "aliyun";
    type Decoded = Decoded;
    type Endpoint = Endpoint;
    type Reply = Reply;
    type Error = WireError;

    /// Alibaba's upper-case UUID format.
    fn request_id(&self) -> String {
        let b: [u8; 16] = rand::thread_rng().gen();
        let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }

    fn decode(&self, req: &ApiRequest) -> Result<(Decoded, Presented), WireError> {
        let (decoded, pairs) = read(req)?;
        let cred = sig::credential(&req.parts(), &pairs).map_err(|e| from_auth(&e))?;
        Ok((decoded, Presented::Signature(Box::new(Signed { cred, pairs }))))
    }

    fn decode_trusted(&self, req: &ApiRequest) -> Result<Decoded, WireError> {
        read(req).map(|(decoded, _)| decoded)
    }

    fn route(&self, req: &ApiRequest, d: &Decoded, principal: Option<&Principal>) -> Result<Endpoint, WireError> {
        let principal = principal.ok_or_else(WireError::internal)?;
        let action = Action::parse(&d.action).ok_or_else(|| WireError::unknown_action(&d.action))?;
        if let Some(v) = d.params.get("Version").or_else(|| req.header("x-acs-version")) {
            if v != API_VERSION {
                return Err(WireError::new(
                    400,
                    "InvalidVersion",
                    format!("Specified parameter Version {v} is not valid."),
                ));
            }
        }
        let region = d.params.req("RegionId")?;
        if !self.svc.config().regions.aliyun.iter().any(|r| r == region) {
            return Err(WireError::new(
                404,
                "InvalidRegionId.NotFound",
                format!("The specified region {region} does not exist."),
            ));
        }
        Ok(Endpoint { action, scope: Scope::new(principal.tenant_id.clone(), region), params: d.params.clone() })
    }

    fn operation(endpoint: &Endpoint) -> &'static str {
        endpoint.action.name()
    }

    fn handle(&self, _req: &ApiRequest, e: Endpoint) -> Result<Reply, WireError> {
        let call = Call { svc: &self.svc, action: e.action, scope: &e.scope, p: &e.params };
        // Read before the store is, so that what is kept is at least as new as the version it is kept under.
        let Some(version) = e.action.answer_is_stored_state().then(|| self.svc.read_cache_version()).flatten() else {
            return action::dispatch(&call);
        };
        let text =
            self.reads.get_or_read(version, || call.read_key(), || action::dispatch(&call).map(Reply::into_text))?;
        Ok(Reply::kept(&text))
    }

    fn auth_error(&self, e: AuthError) -> WireError {
        from_auth(&e)
    }

    fn internal_error(&self, e: &openvgw_core::Error) -> WireError {
        let mut err = WireError::internal();
        err.cause = Some(e.to_string());
        err
    }

    fn body_too_large(&self) -> WireError {
        WireError::new(413, "InvalidParameter.BodyTooLarge", "The request body is too large.")
    }

    fn body_timeout(&self) -> WireError {
        WireError::new(408, "RequestTimeout", "The request body did not arrive in time.")
    }

    fn throttled(&self, t: Throttled) -> WireError {
        let (code, message) = match t.by {
            Throttle::Tenant => ("Throttling.User", "Request was denied due to user flow control."),
            Throttle::Operation => ("Throttling", "Request was denied due to request throttling."),
        };
        let mut e = WireError::new(400, code, message);
        e.retry_after_ms = Some(retry_ms(t.retry_after));
        e
    }

    fn respond(
        &self,
        req: &ApiRequest,
        decoded: Option<&Decoded>,
        operation: Option<&'static str>,
        result: Result<Reply, WireError>,
    ) -> Response<Body> {
        let xml = decoded.is_some_and(|d| d.xml);
        let mut retry_after_ms = None;
        let (status, text) = match result {
            Ok(reply) if !xml => (200, reply.with_request_id(&req.request_id)),
            Ok(reply) => {
                let mut v = reply.to_value();
                v["RequestId"] = json!(req.request_id);
                let action = operation.or(decoded.map(|d| d.action.as_str())).unwrap_or("");
                (200, xml::to_xml(&format!("{action}Response"), &v))
            }
            Err(e) => {
                retry_after_ms = e.retry_after_ms;
                let v = json!({
                    "RequestId": req.request_id,
                    "HostId": req.header("host").unwrap_or("openvgw"),
                    "Code": e.code,
                    "Message": e.message,
                    "Recommend": format!("https://next.api.aliyun.com/troubleshoot?q={}", e.code),
                });
                (e.status, if xml { xml::to_xml("Error", &v) } else { v.to_string() })
            }
        };
        let content_type = if xml { "text/xml;charset=utf-8" } else { "application/json;charset=utf-8" };
        let mut resp = Response::new(Body::from(text));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(v) = HeaderValue::from_str(&req.request_id) {
            resp.headers_mut().insert("x-acs-request-id", v);
        }
        if let Some(ms) = retry_after_ms {
            // The tea SDK raises ThrottlingException on this header; plain HTTP clients read Retry-After.
            resp.headers_mut().insert("x-acs-retry-after", HeaderValue::from(ms));
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
        }
        resp
    }
}

/// Milliseconds to wait, at least 1 (the SDK ignores a zero).
fn retry_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
