//! openvgw-huawei: the Huawei Cloud VPN (enterprise edition) REST dialect, API v5 — site-to-cloud gateways,
//! customer gateways, connections, monitors, jobs; client-to-site (P2C) gateways, VPN servers, client CAs, users,
//! groups and access policies; quotas; tags — plus the two IAM calls the SDKs and tools make (token sign-in and
//! the project lookup).
//!
//! A thin translation over the shared API layer: the path picks a typed operation (`ops.rs`, one list from which
//! the routes, the dispatch and the OpenAPI document are generated), the project in the path picks the scope, JSON
//! bodies become typed requests with Huawei's defaults and ranges, one service operation runs, and the answer goes
//! back with Huawei's wrappers, status codes and `{"error_code","error_msg","request_id"}` errors. It never
//! touches SQL or the data plane directly.

mod call;
mod error;
mod ext;
mod handlers;
mod iam;
mod input;
pub mod openapi;
mod ops;
mod route;
mod spelling;
mod wire;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use openvgw_api::{
    ApiRequest, Credential, Dialect, Presented, Principal, ReadCache, SignedRequest, Throttle, Throttled,
};
use openvgw_auth::{huawei as sig, AuthError};
use openvgw_control::Service;
use openvgw_core::model::Scope;
use time::{Duration, OffsetDateTime};

pub use crate::call::Call;
pub use crate::error::HwError;
pub use crate::ops::{Family, Op};
use crate::route::{Matched, PathParams};

/// Entry points for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::route::{find, Matched};
    use crate::{ops, HwError, Op};

    /// The operation `method path` routes to, with `body` decoded as that operation's request type (what `handle`
    /// does before the handler runs); `None` when nothing routes.
    pub fn decode_body(method: &str, path: &str, body: &[u8]) -> Option<Result<Op, HwError>> {
        match find(ops::ROUTES, method, path) {
            Matched::Found(op, _) => Some(ops::decode_body(op, body).map(|()| op)),
            Matched::WrongMethod | Matched::NotFound => None,
        }
    }
}

pub struct Huawei {
    svc: Arc<Service>,
    /// Answers of pure reads, kept while the store is unchanged.
    reads: Arc<ReadCache>,
}

impl Huawei {
    pub fn new(svc: Arc<Service>, reads: Arc<ReadCache>) -> Self {
        Huawei { svc, reads }
    }
}

/// Stands for the request id in a kept answer: a raw NUL never occurs in JSON text (serde_json escapes it).
const KEPT_REQUEST_ID: &str = "\"request_id\":\"\0\"";

/// `text` with its first `from` replaced by `to`, in one allocation of the final size (`str::replacen` grows its
/// result step by step: several copies of a page of tens of kB).
fn swap_request_id(text: &str, from: &str, to: &str) -> String {
    match text.find(from) {
        Some(at) => {
            let mut out = String::with_capacity(text.len() - from.len() + to.len());
            out.push_str(&text[..at]);
            out.push_str(to);
            out.push_str(&text[at + from.len()..]);
            out
        }
        None => text.to_string(),
    }
}

/// A routed request: the operation and its path parameters.
pub struct Decoded {
    op: Op,
    params: PathParams,
}

pub struct Endpoint {
    op: Op,
    params: PathParams,
    scope: Option<Scope>,
    principal: Option<Principal>,
}

/// What a handler answers: a status, an optional JSON body, extra headers.
pub struct Reply {
    pub status: u16,
    /// The JSON text of the body.
    pub body: Option<String>,
    pub headers: Vec<(&'static str, String)>,
}

/// An `SDK-HMAC-SHA256` signature.
struct Signed {
    cred: sig::Credential,
    /// The scheme has no nonce: a signature is good for one change. Reads are answered the same however often they
    /// come (and polling loops repeat them within a second), so only changes are guarded against replay; a client
    /// repeating an identical change within the same second of `X-Sdk-Date` is refused like a replay.
    replay_key: Option<String>,
}

impl SignedRequest for Signed {
    fn access_key_id(&self) -> &str {
        &self.cred.access_key_id
    }
    fn verify(&self, req: &ApiRequest, secret: &str) -> Result<(), AuthError> {
        sig::verify(&req.parts(), &self.cred, secret)
    }
    fn check_freshness(&self, now: OffsetDateTime, window: Duration) -> Result<(), AuthError> {
        sig::check_freshness(&self.cred, now, window)
    }
    fn replay_key(&self) -> Option<&str> {
        self.replay_key.as_deref()
    }
}

impl Huawei {
    /// The scope a `/v5/{project_id}/…` request acts in: the project must be the principal's, in a region this
    /// dialect serves, and a token only works in the project it was issued for.
    fn scope(&self, req: &ApiRequest, project_id: &str, principal: &Principal) -> Result<Scope, HwError> {
        if let Some(header) = req.header("x-project-id") {
            if header != project_id {
                return Err(HwError::forbidden("X-Project-Id does not match the project in the path"));
            }
        }
        let tenant = self
            .svc
            .tenant(&principal.tenant_id)
            .map_err(|_| HwError::internal())?
            .ok_or_else(|| HwError::forbidden("the account does not exist"))?;
        let region = tenant
            .region_of_project(project_id)
            .filter(|r| self.svc.config().regions.huawei.iter().any(|h| h == r))
            .map(str::to_string)
            .ok_or_else(|| HwError::forbidden(format!("project {project_id} is not a project of this account")))?;
        if let Credential::Token { region: token_region, .. } = &principal.via {
            if *token_region != region {
                return Err(HwError::forbidden("the token is not scoped to this project"));
            }
        }
        Ok(Scope::new(tenant.id, region))
    }
}

impl Dialect for Huawei {
    const NAME: &'static str = "huawei";
    /// AK/SK-signed bodies are limited to 12 MB by the vendor; nothing in this API needs more than a few kB.
    const MAX_BODY: usize = 1 << 20;
    type Decoded = Decoded;
    type Endpoint = Endpoint;
    type Reply = Reply;
    type Error = HwError;

    /// 32 lower-case hex digits, as Huawei's request ids look.
    fn request_id(&self) -> String {
        openvgw_core::ids::random_hex(32)
    }

    fn decode(&self, req: &ApiRequest) -> Result<(Decoded, Presented), HwError> {
        let Decoded { op, params } = self.decode_trusted(req)?;
        let presented = if op.anonymous() {
            Presented::Anonymous
        } else if let Some(token) = req.header("x-auth-token").filter(|t| !t.is_empty()) {
            Presented::Token(token.to_string())
        } else {
            let cred = sig::credential(&req.parts()).map_err(|e| error::from_auth(&e))?;
            let replay_key = (req.method != "GET" && req.method != "HEAD").then(|| cred.signature.clone());
            Presented::Signature(Box::new(Signed { cred, replay_key }))
        };
        Ok((Decoded { op, params }, presented))
    }

    /// The operation the method and path route to, with a query and a body it can read.
    fn decode_trusted(&self, req: &ApiRequest) -> Result<Decoded, HwError> {
        let (op, params) = match route::find(ops::ROUTES, &req.method, &req.path) {
            Matched::Found(op, params) => (op, params),
            Matched::WrongMethod => return Err(HwError::method_not_allowed()),
            Matched::NotFound => return Err(HwError::no_such_api()),
        };
        input::check_query(&req.raw_query)?;
        input::check_body(&req.body)?;
        Ok(Decoded { op, params })
    }

    fn route(&self, req: &ApiRequest, d: &Decoded, principal: Option<&Principal>) -> Result<Endpoint, HwError> {
        let scope = match (d.params.get("project_id"), principal) {
            (Some(project), Some(p)) => Some(self.scope(req, project, p)?),
            (Some(_), None) => return Err(HwError::internal()),
            (None, _) => None,
        };
        Ok(Endpoint { op: d.op, params: d.params.clone(), scope, principal: principal.cloned() })
    }

    fn operation(endpoint: &Endpoint) -> &'static str {
        endpoint.op.name()
    }

    fn handle(&self, req: &ApiRequest, e: Endpoint) -> Result<Reply, HwError> {
        let call = Call::new(&self.svc, e.op, req, &e.params, e.scope, e.principal.as_ref());
        // Read before the store is, so that what is kept is at least as new as the version it is kept under.
        let Some(version) = e.op.answer_is_stored_state().then(|| self.svc.read_cache_version()).flatten() else {
            return ops::dispatch(&call);
        };
        let own_id = format!("\"request_id\":{}", serde_json::Value::from(req.request_id.as_str()));
        let kept = self.reads.get_or_read(
            version,
            || call.read_key(),
            || {
                let reply = ops::dispatch(&call)?;
                // These operations answer their documented status with a body and no extra header.
                Ok(swap_request_id(&reply.body.unwrap_or_default(), &own_id, KEPT_REQUEST_ID))
            },
        )?;
        Ok(Reply {
            status: e.op.status(),
            body: Some(swap_request_id(&kept, KEPT_REQUEST_ID, &own_id)),
            headers: vec![],
        })
    }

    fn auth_error(&self, e: AuthError) -> HwError {
        error::from_auth(&e)
    }

    fn internal_error(&self, e: &openvgw_core::Error) -> HwError {
        let mut err = HwError::internal();
        err.cause = Some(e.to_string());
        err
    }

    fn body_too_large(&self) -> HwError {
        HwError::new(413, "VPN.0001", "invalid request: the request body is too large")
    }

    fn body_timeout(&self) -> HwError {
        HwError::new(408, "VPN.0001", "invalid request: the request body did not arrive in time")
    }

    fn throttled(&self, t: Throttled) -> HwError {
        // Huawei's API gateway answers an exceeded flow-control policy with 429 APIGW.0308.
        let what = match t.by {
            Throttle::Tenant => "this account's",
            Throttle::Operation => "this API's",
        };
        let mut e = HwError::new(429, "APIGW.0308", format!("The request is throttled: {what} rate limit is reached"));
        e.retry_after_s = Some(t.retry_after.as_secs_f64().ceil().max(1.0) as u64);
        e
    }

    fn respond(
        &self,
        req: &ApiRequest,
        _decoded: Option<&Decoded>,
        _operation: Option<&'static str>,
        result: Result<Reply, HwError>,
    ) -> Response<Body> {
        let (status, body, headers) = match result {
            Ok(r) => (r.status, r.body, r.headers),
            Err(e) => {
                let body = serde_json::json!({"error_code": e.code, "error_msg": e.msg, "request_id": req.request_id})
                    .to_string();
                let headers = e.retry_after_s.map(|s| ("retry-after", s.to_string())).into_iter().collect();
                (e.status, Some(body), headers)
            }
        };
        let mut resp = match body {
            Some(text) => Response::new(Body::from(text)),
            None => Response::new(Body::empty()),
        };
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
        // The SDK takes the request id of an error only from this header.
        if let Ok(v) = HeaderValue::from_str(&req.request_id) {
            h.insert("x-request-id", v);
        }
        for (name, value) in headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_answer_gets_the_request_id_of_its_request() {
        let own = r#""request_id":"abc""#;
        let text = r#"{"x":[1],"request_id":"abc"}"#;
        let kept = swap_request_id(text, own, KEPT_REQUEST_ID);
        assert!(kept.contains('\0') && !kept.contains("abc"));
        let next = r#""request_id":"def""#;
        assert_eq!(swap_request_id(&kept, KEPT_REQUEST_ID, next), r#"{"x":[1],"request_id":"def"}"#);
        assert_eq!(swap_request_id("{}", KEPT_REQUEST_ID, next), "{}", "no id in it: unchanged");
    }
}
