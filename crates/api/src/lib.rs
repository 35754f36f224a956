//! openvgw-api: the part of serving an API that every dialect shares (Garage's `api/common` is the model).
//!
//! A dialect ([`Dialect`]) supplies: how to decode a request and which credential it presents, how to route an
//! authenticated request to a typed endpoint, how to handle that endpoint, and how to render a reply or an error
//! on its wire. Everything else lives here once: request ids, the body limit, running the (synchronous) store work
//! on a blocking thread, authentication (key lookup, signature, freshness window, replay protection), the access
//! log line, and the per-request [`Outcome`] that metrics are recorded from.

mod auth;
mod limit;
mod reads;

use std::sync::Arc;
use std::time::Instant;

pub use auth::{Authenticator, Credential, Presented, Principal, SignedRequest};
use axum::body::Body;
use axum::http::{header, Request, Response};
use bytes::Bytes;
pub use limit::{RateLimiter, Throttle, Throttled};
use openvgw_auth::{AuthError, RequestParts};
pub use reads::ReadCache;

/// A request as received, with the id it is answered under.
#[derive(Debug)]
pub struct ApiRequest {
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub raw_query: String,
    /// Headers in arrival order (values that are not UTF-8 are replaced lossily).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl ApiRequest {
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            raw_query: &self.raw_query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What an error needs to say for metrics and logs; how it looks on the wire is the dialect's.
pub trait ApiError: Send + 'static {
    fn status(&self) -> u16;
    fn code(&self) -> &str;
    /// The internal cause of a 5xx, logged with the request id and never sent.
    fn cause(&self) -> Option<&str> {
        None
    }
}

/// What a request came to, for metrics and access logs (attached to every response as an extension).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub dialect: &'static str,
    /// The endpoint's name, `"-"` when the request never reached one (a bad signature, an unknown action).
    pub operation: &'static str,
    /// The wire code of an error, or the HTTP status of a success.
    pub code: String,
}

pub trait Dialect: Send + Sync + 'static {
    /// Label in metrics and logs.
    const NAME: &'static str;
    /// The largest request body accepted.
    const MAX_BODY: usize = 1 << 20;
    /// What `decode` makes of a request (parameters, format, path match), kept for routing and rendering.
    type Decoded: Send;
    /// A typed operation with its inputs.
    type Endpoint: Send;
    type Reply: Send;
    type Error: ApiError;

    /// A fresh request id in the vendor's format.
    fn request_id(&self) -> String;
    /// Decodes the request and extracts its credential, without touching the store.
    fn decode(&self, req: &ApiRequest) -> Result<(Self::Decoded, Presented), Self::Error>;
    /// Decodes a request made on behalf of a principal the server has already authenticated (the web console's
    /// session): everything `decode` reads except the credential, which such a request does not carry.
    fn decode_trusted(&self, req: &ApiRequest) -> Result<Self::Decoded, Self::Error>;
    /// The endpoint an authenticated (or, where the dialect allows it, anonymous) request addresses; builds and
    /// checks its scope.
    fn route(
        &self,
        req: &ApiRequest,
        decoded: &Self::Decoded,
        principal: Option<&Principal>,
    ) -> Result<Self::Endpoint, Self::Error>;
    /// The endpoint's name for metrics and logs.
    fn operation(endpoint: &Self::Endpoint) -> &'static str;
    /// Runs the endpoint (on a blocking thread: the store is synchronous).
    fn handle(&self, req: &ApiRequest, endpoint: Self::Endpoint) -> Result<Self::Reply, Self::Error>;
    fn auth_error(&self, e: AuthError) -> Self::Error;
    /// An internal failure outside any endpoint (the store during authentication, a panic).
    fn internal_error(&self, e: &openvgw_core::Error) -> Self::Error;
    fn body_too_large(&self) -> Self::Error;
    /// The body did not arrive within the configured time.
    fn body_timeout(&self) -> Self::Error;
    /// A rate limit refused the request.
    fn throttled(&self, t: Throttled) -> Self::Error;
    /// Renders the reply or error on the wire; `decoded` is `None` when decoding failed.
    fn respond(
        &self,
        req: &ApiRequest,
        decoded: Option<&Self::Decoded>,
        operation: Option<&'static str>,
        result: Result<Self::Reply, Self::Error>,
    ) -> Response<Body>;
}

/// One dialect served with the shared authenticator.
pub struct ApiServer<D: Dialect> {
    pub dialect: D,
    pub auth: Arc<Authenticator>,
}

struct Processed<D: Dialect> {
    decoded: Option<D::Decoded>,
    operation: Option<&'static str>,
    tenant: Option<String>,
    result: Result<D::Reply, D::Error>,
    /// Whether the endpoint ran (and so a replay record, if any, must be durable before the answer).
    handled: bool,
}

impl<D: Dialect> Processed<D> {
    /// An outcome whose endpoint never ran (so no replay record waits on it).
    fn unhandled(
        decoded: Option<D::Decoded>,
        operation: Option<&'static str>,
        tenant: Option<String>,
        e: D::Error,
    ) -> Self {
        Processed { decoded, operation, tenant, result: Err(e), handled: false }
    }
}

impl<D: Dialect> ApiServer<D> {
    pub fn new(dialect: D, auth: Arc<Authenticator>) -> Arc<Self> {
        Arc::new(ApiServer { dialect, auth })
    }

    fn process(&self, req: &ApiRequest) -> Processed<D> {
        let (decoded, presented) = match self.dialect.decode(req) {
            Ok(d) => d,
            Err(e) => return Processed::unhandled(None, None, None, e),
        };
        let (principal, durable) = match self.auth.authenticate(req, presented) {
            Ok(p) => p,
            Err(auth::Failure::Auth(e)) => {
                return Processed::unhandled(Some(decoded), None, None, self.dialect.auth_error(e));
            }
            Err(auth::Failure::Internal(e)) => {
                tracing::error!(request_id = %req.request_id, error = %e, "authentication failed internally");
                return Processed::unhandled(Some(decoded), None, None, self.dialect.internal_error(&e));
            }
        };
        let mut processed = self.run(req, decoded, principal);
        if processed.handled {
            // The answer waits for the replay record (its commit overlapped the work).
            if let Err(e) = durable.wait() {
                tracing::error!(request_id = %req.request_id, error = %e, "recording the request's nonce failed");
                processed.result = Err(self.dialect.internal_error(&e));
            }
        }
        processed
    }

    /// Routes, throttles and handles a decoded request of `principal`.
    fn run(&self, req: &ApiRequest, decoded: D::Decoded, principal: Option<Principal>) -> Processed<D> {
        let tenant = principal.as_ref().map(|p| p.tenant_id.clone());
        let endpoint = match self.dialect.route(req, &decoded, principal.as_ref()) {
            Ok(e) => e,
            Err(e) => return Processed::unhandled(Some(decoded), None, tenant, e),
        };
        let operation = Some(D::operation(&endpoint));
        if let Some(t) = &tenant {
            if let Err(throttled) = self.auth.limiter().check(t, D::operation(&endpoint)) {
                return Processed::unhandled(Some(decoded), operation, tenant, self.dialect.throttled(throttled));
            }
        }
        let result = self.dialect.handle(req, endpoint);
        Processed { decoded: Some(decoded), operation, tenant, result, handled: true }
    }

    /// Renders the outcome, logs the request's line and attaches its [`Outcome`].
    fn answer(&self, req: &ApiRequest, processed: Processed<D>, started: Instant, via: &str) -> Response<Body> {
        let (status, code) = match &processed.result {
            Ok(_) => (None, None),
            Err(e) => (Some(e.status()), Some(e.code().to_string())),
        };
        if let Err(e) = &processed.result {
            if e.status() >= 500 {
                tracing::error!(
                    request_id = %req.request_id, code = e.code(), cause = e.cause().unwrap_or("-"),
                    "internal error"
                );
            }
        }
        let operation = processed.operation;
        let mut resp = self.dialect.respond(req, processed.decoded.as_ref(), operation, processed.result);
        let status = status.unwrap_or(resp.status().as_u16());
        let code = code.unwrap_or_else(|| status.to_string());
        tracing::info!(
            request_id = %req.request_id, dialect = D::NAME, operation = operation.unwrap_or("-"),
            tenant = processed.tenant.as_deref().unwrap_or("-"), status, code = %code, via,
            elapsed_us = started.elapsed().as_micros() as u64, "request"
        );
        resp.extensions_mut().insert(Outcome { dialect: D::NAME, operation: operation.unwrap_or("-"), code });
        resp
    }

    /// Serves one request.
    pub async fn serve(self: Arc<Self>, req: Request<Body>) -> Response<Body> {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let mut api_req = ApiRequest {
            request_id: self.dialect.request_id(),
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            raw_query: parts.uri.query().unwrap_or("").to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: Bytes::new(),
        };
        let too_large = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > D::MAX_BODY);
        let body_timeout = std::time::Duration::from_secs(self.auth.service().config().server.body_read_timeout_s);
        let body = if too_large {
            Err(BodyFailure::TooLarge)
        } else {
            match tokio::time::timeout(body_timeout, axum::body::to_bytes(body, D::MAX_BODY)).await {
                Ok(Ok(b)) => Ok(b),
                Ok(Err(_)) => Err(BodyFailure::TooLarge),
                Err(_) => Err(BodyFailure::Timeout),
            }
        };
        let request_id = api_req.request_id.clone();
        let (api_req, processed) = match body {
            Ok(b) => {
                api_req.body = b;
                let me = self.clone();
                match tokio::task::spawn_blocking(move || {
                    let p = me.process(&api_req);
                    (api_req, p)
                })
                .await
                {
                    Ok(done) => done,
                    Err(e) => {
                        tracing::error!(error = %e, "request handler panicked");
                        let req = request_shell(&parts, request_id);
                        let err = self.dialect.internal_error(&openvgw_core::Error::internal("handler panicked"));
                        (req, Processed::unhandled(None, None, None, err))
                    }
                }
            }
            Err(failure) => {
                let err = match failure {
                    BodyFailure::TooLarge => self.dialect.body_too_large(),
                    BodyFailure::Timeout => self.dialect.body_timeout(),
                };
                (api_req, Processed::unhandled(None, None, None, err))
            }
        };
        self.answer(&api_req, processed, started, "api")
    }
}

/// A dialect's API served on behalf of principals the caller has authenticated itself (the web console's sessions,
/// which re-check the key and the tenant on every request): the dialect decodes, routes, scopes, throttles and
/// handles such a request exactly as a signed one and answers on its own wire, with its own codes and defaults.
pub trait OnBehalf: Send + Sync {
    /// A fresh request id in the dialect's format.
    fn new_request_id(&self) -> String;
    /// Serves `req` for `principal`; `via` names the caller in the access log. Runs the store work on the calling
    /// thread.
    fn serve_as(&self, req: &ApiRequest, principal: &Principal, via: &str) -> Response<Body>;
}

impl<D: Dialect> OnBehalf for ApiServer<D> {
    fn new_request_id(&self) -> String {
        self.dialect.request_id()
    }

    fn serve_as(&self, req: &ApiRequest, principal: &Principal, via: &str) -> Response<Body> {
        let started = Instant::now();
        let processed = match self.dialect.decode_trusted(req) {
            Ok(decoded) => self.run(req, decoded, Some(principal.clone())),
            Err(e) => Processed::unhandled(None, None, None, e),
        };
        self.answer(req, processed, started, via)
    }
}

enum BodyFailure {
    TooLarge,
    Timeout,
}

fn request_shell(parts: &axum::http::request::Parts, request_id: String) -> ApiRequest {
    ApiRequest {
        request_id,
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        raw_query: String::new(),
        headers: Vec::new(),
        body: Bytes::new(),
    }
}
