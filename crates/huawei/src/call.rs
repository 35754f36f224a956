//! One authenticated request on its way to a handler: typed access to path, query and body, paging, the
//! mutation context, and the mapping of core errors with the operation's family.

use openvgw_api::{ApiRequest, Principal};
use openvgw_control::{Ctx, Service};
use openvgw_core::model::Scope;
use openvgw_core::{Cursor, IdStyle, PageRequest};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{from_core, HwError};
use crate::ops::Op;
use crate::route::PathParams;

pub struct Call<'a> {
    pub svc: &'a Service,
    pub op: Op,
    pub req: &'a ApiRequest,
    params: &'a PathParams,
    query: Vec<(String, String)>,
    scope: Option<Scope>,
    pub principal: Option<&'a Principal>,
    /// Response headers a handler adds (the sign-in's `X-Subject-Token`).
    pub(crate) extra_headers: std::cell::RefCell<Vec<(&'static str, String)>>,
}

impl<'a> Call<'a> {
    pub fn new(
        svc: &'a Service,
        op: Op,
        req: &'a ApiRequest,
        params: &'a PathParams,
        scope: Option<Scope>,
        principal: Option<&'a Principal>,
    ) -> Self {
        let query = crate::input::parse_query(&req.raw_query);
        Call { svc, op, req, params, query, scope, principal, extra_headers: Default::default() }
    }

    /// What a kept answer of this call is found by (see `openvgw_api::ReadCache`): everything it depends on —
    /// tenant, region, operation, path and query parameters (sorted: their order does not change the answer).
    pub fn read_key(&self) -> String {
        let mut query: Vec<(&str, &str)> = self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        query.sort_unstable();
        let (tenant, region) = self.scope.as_ref().map_or(("", ""), |s| (s.tenant_id.as_str(), s.region.as_str()));
        let head = ["huawei", tenant, region, self.op.name()];
        let path: Vec<(&str, &str)> = self.params.all().collect();
        let pairs = path.into_iter().chain(query).flat_map(|(k, v)| [k, v]);
        openvgw_api::ReadCache::key(head.into_iter().chain(pairs))
    }

    pub fn set_header(&self, name: &'static str, value: String) {
        self.extra_headers.borrow_mut().push((name, value));
    }

    pub fn request_id(&self) -> String {
        self.req.request_id.clone()
    }

    pub fn scope(&self) -> Result<&Scope, HwError> {
        self.scope.as_ref().ok_or_else(HwError::internal)
    }

    pub fn path(&self, name: &str) -> Result<&str, HwError> {
        self.params.get(name).ok_or_else(HwError::internal)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// Every value of a repeated query parameter.
    pub fn query_all(&self, name: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()).collect()
    }

    pub fn query_u64(&self, name: &str) -> Result<Option<u64>, HwError> {
        self.query(name)
            .map(|v| v.parse::<u64>().map_err(|_| HwError::invalid(format!("{name} must be a non-negative integer"))))
            .transpose()
    }

    pub fn query_bool(&self, name: &str) -> Result<Option<bool>, HwError> {
        self.query(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(HwError::invalid(format!("{name} must be true or false"))),
            })
            .transpose()
    }

    /// The JSON body as `T` (an absent body reads as `{}`); a body that is not what the operation takes is
    /// `VPN.0001` with serde's description of what is wrong.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, HwError> {
        parse_body(&self.req.body)
    }

    /// `limit` + `marker` keyset paging (`marker` is the position the previous page ended at).
    pub fn marker_page(&self, default: u64, max: u64) -> Result<PageRequest, HwError> {
        let limit = match self.query_u64("limit")? {
            None | Some(0) => default,
            Some(l) if l > max => return Err(HwError::invalid(format!("limit must be 0-{max}"))),
            Some(l) => l,
        };
        let cursor = self.query("marker").map(|m| Cursor(m.to_string()));
        Ok(PageRequest::After { cursor, limit })
    }

    /// `limit` + `offset` paging.
    pub fn offset_page(&self, default: u64, max: u64) -> Result<PageRequest, HwError> {
        let limit = match self.query_u64("limit")? {
            None | Some(0) => default,
            Some(l) if l > max => return Err(HwError::invalid(format!("limit must be 1-{max}"))),
            Some(l) => l,
        };
        Ok(PageRequest::Offset { offset: self.query_u64("offset")?.unwrap_or(0), limit })
    }

    /// The context of a mutation: scope, `X-Client-Token`, a digest of what the request asks.
    pub fn ctx(&self) -> Result<Ctx, HwError> {
        let client_token = self.req.header("x-client-token").filter(|t| !t.is_empty()).map(str::to_string);
        if let Some(t) = &client_token {
            if t.len() > 64 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(HwError::invalid("X-Client-Token must be at most 64 printable characters"));
            }
        }
        let mut h = Sha256::new();
        for part in
            [self.req.method.as_bytes(), self.req.path.as_bytes(), self.req.raw_query.as_bytes(), &self.req.body]
        {
            h.update(part);
            h.update([0]);
        }
        Ok(Ctx {
            scope: self.scope()?.clone(),
            operation: format!("huawei:{}", self.op.name()),
            client_token,
            params_hash: hex::encode(h.finalize()),
            dry_run: false,
            ids: IdStyle::Uuid,
            // Huawei's gateways take connection and server changes while they apply earlier ones.
            queue_changes: true,
        })
    }

    /// Maps a core error with this operation's codes.
    pub fn core(&self, e: openvgw_core::Error) -> HwError {
        if let openvgw_core::Error::Internal(cause) = &e {
            tracing::error!(request_id = %self.req.request_id, operation = self.op.name(), cause = %cause, "internal error");
        }
        from_core(&e, self.op.family())
    }

    /// Runs a data-plane query on the current runtime (handlers run on a blocking thread).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        tokio::runtime::Handle::current().block_on(f)
    }
}

/// A request body as `T`, as [`Call::body`] reads it.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, HwError> {
    let bytes: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(bytes).map_err(|e| HwError::invalid(format!("body: {e}")))
}
