//! openvgw-console: the web console, served by `openvgw serve` under `/console/`.
//!
//! Like a dialect it is a thin layer: it reads through `control`, and every change (create, delete) is a call of the
//! resource's own API made on the signed-in tenant's behalf (`create`), so it has the same defaults, checks and
//! error codes as from an SDK; it never touches SQL and never talks to daemons. Sign-in takes a tenant's
//! access key pair (that tenant's resources) or an operator's password (every tenant and the data plane's health).
//! Sessions live in the store (digests only) and expire; every state-changing request carries the session's CSRF
//! token, cookies are `HttpOnly` and `SameSite=Strict`, and the pages allow only their own script and styles.
//! Pages are rendered on the server; the assets are compiled into the binary.

// A request that cannot go on returns its rendered response at once (`Halt`); it is never held or passed along, so
// boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

pub mod create;
pub mod guard;
pub mod history;
pub mod pages;
pub mod svg;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use openvgw_control::connections::PeerFormat;
use openvgw_control::console::{same_secret, NewSession, SESSION_TTL_MS};
use openvgw_control::ssl::ClientCertFilter;
use openvgw_control::Service;
use openvgw_core::ids::random_secret;
use openvgw_core::model::{
    ConsolePrincipal, ConsoleSession, GatewayRole, Scope, SslVpnClientCert, TunnelState, VpnConnection, VpnGateway,
};
use openvgw_core::{now_ms, PageRequest};
use serde::Deserialize;

use crate::create::{Api, Apis, Target, Values, What};
use crate::history::History;
use crate::pages::{Chrome, COOKIE, SIGN_IN_COOKIE};

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");
/// Forms are small: a sign-in, a token, a confirmation.
const MAX_FORM: usize = 16 * 1024;
/// Log lines shown per connection.
const LOG_LINES: usize = 8;

pub struct Console {
    svc: Arc<Service>,
    apis: Apis,
    history: History,
    sign_ins: guard::SignInGuard,
}

type Shared = State<Arc<Console>>;

/// A request's outcome when it cannot go on: a page or a redirect, already rendered.
type Halt = Response;

impl Console {
    /// The console of `svc`; its forms call `apis` (the servers the SDKs reach) on the signed-in tenant's behalf.
    pub fn new(svc: Arc<Service>, apis: Apis) -> Arc<Console> {
        Arc::new(Console { svc, apis, history: History::default(), sign_ins: guard::SignInGuard::default() })
    }

    /// The console's routes, all under `/console`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/console", get(index))
            .route("/console/", get(index))
            .route("/console/sign-in", get(sign_in_page).post(sign_in))
            .route("/console/sign-out", post(sign_out))
            .route("/console/gateways", get(gateways))
            .route("/console/gateways/{id}", get(gateway))
            .route("/console/gateways/{id}/delete", post(delete_gateway))
            .route("/console/create/gateway/{api}", get(new_gateway).post(create_gateway))
            .route("/console/create/{what}/{gateway}", get(new_on_gateway).post(create_on_gateway))
            .route("/console/connections/{id}/config/{format}", get(connection_config))
            .route("/console/client-certs/{id}/profile", get(client_profile))
            .route("/console/dataplane", get(dataplane))
            .route("/console/assets/console.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
            .route("/console/assets/console.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
            .layer(DefaultBodyLimit::max(MAX_FORM))
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self.clone())
    }

    /// Samples every tunnel's state for the chart, every `every`, until the runtime ends.
    pub async fn sample(self: Arc<Self>, every: Duration) {
        loop {
            let svc = self.svc.clone();
            if let Ok(Ok(states)) = tokio::task::spawn_blocking(move || svc.tunnel_states()).await {
                self.history.record(now_ms(), &states);
            }
            tokio::time::sleep(every).await;
        }
    }
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
               form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

fn html(status: StatusCode, m: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], m.into_string()).into_response()
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_string())]).into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Runs store work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Halt> {
    tokio::task::spawn_blocking(f).await.map_err(|_| failure())
}

/// Store work off the async threads, its error already rendered.
async fn work<T: Send + 'static>(f: impl FnOnce() -> openvgw_core::Result<T> + Send + 'static) -> Result<T, Halt> {
    blocking(f).await?.map_err(internal)
}

fn failure() -> Response {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message("Something went wrong", None, "The request could not be completed; it is in the server's log."),
    )
}

fn internal(e: openvgw_core::Error) -> Response {
    tracing::warn!(error = %e, "console request failed");
    failure()
}

/// A signed-in request: its session and the cookie that names it.
struct Signed {
    session: ConsoleSession,
    cookie: String,
}

impl Signed {
    fn chrome(&self) -> Chrome<'_> {
        Chrome { principal: &self.session.principal, csrf: &self.session.csrf }
    }

    /// Whether this principal may see what lives in `scope`.
    fn may_see(&self, scope: &Scope) -> bool {
        may_see(&self.session.principal, scope)
    }

    fn is_operator(&self) -> bool {
        matches!(self.session.principal, ConsolePrincipal::Operator { .. })
    }

    /// A state-changing request must carry the session's token and must not come from another site.
    fn check_form(&self, headers: &HeaderMap, token: &str) -> Result<(), Halt> {
        let cross_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "cross-site");
        if cross_site || !same_secret(&self.session.csrf, token) {
            return Err(html(
                StatusCode::FORBIDDEN,
                pages::message("Refused", Some(&self.chrome()), "The form was not sent from this console's own page."),
            ));
        }
        Ok(())
    }

    fn not_found(&self, what: &str) -> Response {
        html(StatusCode::NOT_FOUND, pages::message("Not found", Some(&self.chrome()), &format!("No such {what}.")))
    }
}

/// The session of a request, or the sign-in page for one without a live session.
async fn signed(c: &Arc<Console>, headers: &HeaderMap) -> Result<Signed, Halt> {
    let Some(value) = cookie(headers, COOKIE) else { return Err(see_other("/console/sign-in")) };
    let svc = c.svc.clone();
    let v = value.clone();
    match work(move || svc.console_session(&v)).await? {
        Some(session) => Ok(Signed { session, cookie: value }),
        None => Err(see_other("/console/sign-in")),
    }
}

async fn index(State(c): Shared, headers: HeaderMap) -> Response {
    match signed(&c, &headers).await {
        Ok(_) => see_other("/console/gateways"),
        Err(r) => r,
    }
}

fn sign_in_form(failed: bool) -> Response {
    // Signing in needs a token of its own (there is no session yet): one in a cookie of this page, the same in its
    // form, so that another site cannot sign a browser in under its own key.
    let pre = random_secret(32);
    let mut r = html(if failed { StatusCode::UNAUTHORIZED } else { StatusCode::OK }, pages::sign_in(&pre, failed));
    let set = format!("{SIGN_IN_COOKIE}={pre}; Path=/console/sign-in; HttpOnly; SameSite=Strict; Max-Age=900");
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn sign_in_page() -> Response {
    sign_in_form(false)
}

#[derive(Deserialize)]
struct SignInForm {
    kind: String,
    id: String,
    secret: String,
    pre: String,
}

async fn sign_in(State(c): Shared, headers: HeaderMap, Form(f): Form<SignInForm>) -> Response {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&expected, &f.pre) || f.id.len() > 128 || f.secret.len() > 256 {
        return sign_in_form(true);
    }
    // Only the two kinds are checked (and counted): any other signs nobody in and costs nothing.
    let operator = match f.kind.as_str() {
        "key" => false,
        "operator" => true,
        _ => return sign_in_form(true),
    };
    let name = format!("{}:{}", f.kind, f.id);
    if let Err(seconds) = c.sign_ins.check(&name, now_ms()) {
        let text = format!("Too many failed sign-ins under this name: try again in {seconds} s.");
        let mut r = html(StatusCode::TOO_MANY_REQUESTS, pages::message("Sign-in refused", None, &text));
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return r;
    }
    let svc = c.svc.clone();
    let outcome = work(move || match operator {
        false => svc.console_sign_in_with_key(&f.id, &f.secret),
        true => svc.console_sign_in_operator(&f.id, &f.secret),
    })
    .await;
    match outcome {
        Ok(Some(NewSession { cookie, .. })) => {
            c.sign_ins.succeeded(&name);
            let mut r = see_other("/console/gateways");
            let set = format!(
                "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
                cookie.expose(),
                SESSION_TTL_MS / 1000
            );
            if let Ok(v) = HeaderValue::from_str(&set) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Ok(None) => {
            c.sign_ins.failed(&name, now_ms());
            sign_in_form(true)
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct TokenForm {
    csrf: String,
}

async fn sign_out(State(c): Shared, headers: HeaderMap, Form(f): Form<TokenForm>) -> Response {
    let s = match signed(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = s.check_form(&headers, &f.csrf) {
        return r;
    }
    let svc = c.svc.clone();
    let value = s.cookie.clone();
    match work(move || svc.console_sign_out(&value)).await {
        Ok(()) => {
            let mut r = see_other("/console/sign-in");
            let clear = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
            if let Ok(v) = HeaderValue::from_str(&clear) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct Fragment {
    fragment: Option<String>,
}

/// The gateways the principal may see, oldest first.
fn visible_gateways(svc: &Service, p: &ConsolePrincipal) -> openvgw_core::Result<Vec<VpnGateway>> {
    let mut all: Vec<VpnGateway> = svc.all_gateways()?.into_iter().filter(|g| may_see(p, &g.scope)).collect();
    all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(all)
}

async fn gateways(State(c): Shared, headers: HeaderMap, Query(q): Query<Fragment>) -> Response {
    let s = match signed(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (svc, principal) = (c.svc.clone(), s.session.principal.clone());
    match work(move || visible_gateways(&svc, &principal)).await {
        Ok(list) if q.fragment.is_some() => html(StatusCode::OK, pages::gateway_rows(&list, s.is_operator())),
        Ok(list) => html(StatusCode::OK, pages::gateways(&s.chrome(), &list)),
        Err(r) => r,
    }
}

async fn gateway(State(c): Shared, headers: HeaderMap, Path(id): Path<String>, Query(q): Query<Fragment>) -> Response {
    let s = match signed(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let svc = c.svc.clone();
    let gid = id.clone();
    let read = work(move || {
        let Some(tree) = svc.gateway_tree(&gid)? else { return Ok(None) };
        let mut certs: Vec<SslVpnClientCert> = Vec::new();
        for server in &tree.ssl_servers {
            let f = ClientCertFilter { server_id: Some(server.server.id.clone()), ..Default::default() };
            certs.extend(svc.list_client_certs(&tree.gateway.scope, &f, &PageRequest::numbered(1, 200))?.items);
        }
        Ok(Some((tree, certs)))
    })
    .await;
    let (tree, certs) = match read {
        Ok(Some(found)) if s.may_see(&found.0.gateway.scope) => found,
        Ok(_) => return s.not_found("gateway"),
        Err(r) => return r,
    };
    let scope = tree.gateway.scope.clone();
    let now = now_ms();
    // What only the data plane knows; a gateway whose daemons are not (yet) there shows none of it.
    let mut live = Vec::new();
    for (conn, _) in &tree.connections {
        let tunnels = c.svc.tunnel_traffic(&scope, &conn.id).await.unwrap_or_default();
        let log = c.svc.connection_logs(&scope, &conn.id, now / 1000 - 3600, now / 1000).await.unwrap_or_default();
        live.push(pages::ConnectionLive {
            connection_id: conn.id.clone(),
            tunnels: tunnels.into_iter().map(|(tunnel_id, sas)| pages::TunnelLive { tunnel_id, sas }).collect(),
            log: log.iter().skip(log.len().saturating_sub(LOG_LINES)).cloned().collect(),
        });
    }
    let sessions = if tree.ssl_servers.is_empty() {
        Vec::new()
    } else {
        c.svc.client_sessions(&scope, &tree.gateway.id).await.unwrap_or_default()
    };
    let tracks = c.history.of_gateway(&tree.gateway.id);
    let from = (now - history::WINDOW_MS).max(c.history.started_ms().unwrap_or(now));
    let page = pages::GatewayPage {
        tree: &tree,
        live: &live,
        sessions: &sessions,
        certs: &certs,
        chart: svg::state_chart(&tracks, from.min(now - 1000), now),
        now_ms: now,
    };
    if q.fragment.is_some() {
        html(StatusCode::OK, pages::gateway_live(&page))
    } else {
        html(StatusCode::OK, pages::gateway(&s.chrome(), &page))
    }
}

#[derive(Deserialize)]
struct DeleteForm {
    csrf: String,
    confirm: Option<String>,
}

async fn delete_gateway(
    State(c): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DeleteForm>,
) -> Response {
    let s = match signed(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = s.check_form(&headers, &f.csrf) {
        return r;
    }
    if f.confirm.as_deref() != Some("yes") {
        return html(
            StatusCode::BAD_REQUEST,
            pages::message("Not deleted", Some(&s.chrome()), "Confirm the deletion by ticking the box."),
        );
    }
    let svc = c.svc.clone();
    let gid = id.clone();
    let found = work(move || -> openvgw_core::Result<Option<(VpnGateway, String)>> {
        let Some(tree) = svc.gateway_tree(&gid)? else { return Ok(None) };
        let project = project_of(&svc, &tree.gateway.scope)?;
        Ok(Some((tree.gateway, project)))
    })
    .await;
    let (gw, project) = match found {
        Ok(Some(found)) if s.may_see(&found.0.scope) => found,
        Ok(_) => return s.not_found("gateway"),
        Err(r) => return r,
    };
    // Through the gateway's own API, as the tenant: the same operation and refusals (a gateway still being set
    // up, connections in the way…), shown with that API's code.
    let call = create::delete_gateway(&gw, &project);
    match c.apis.call(&s.acting_for(&gw.scope), call).await {
        Ok(a) if a.ok() => see_other("/console/gateways"),
        Ok(a) => html(
            status_of(a.status),
            pages::message("Not deleted", Some(&s.chrome()), &format!("Refused by the API: {}", a.refusal())),
        ),
        Err(e) => call_failed(&e),
    }
}

/// Whether `p` may see what lives in `scope` (for work that runs off the request's thread).
fn may_see(p: &ConsolePrincipal, scope: &Scope) -> bool {
    match p {
        ConsolePrincipal::Tenant { tenant_id, .. } => *tenant_id == scope.tenant_id,
        ConsolePrincipal::Operator { .. } => true,
    }
}

fn attachment(name: &str, content_type: &'static str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    ([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

async fn connection_config(
    State(c): Shared,
    headers: HeaderMap,
    Path((id, format)): Path<(String, String)>,
) -> Response {
    let s = match signed(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let format = match format.as_str() {
        "strongswan" => PeerFormat::Strongswan,
        "libreswan" => PeerFormat::Libreswan,
        "vendor" => return vendor_config(&c, &s, id).await.unwrap_or_else(|r| r),
        _ => return s.not_found("configuration format"),
    };
    let svc = c.svc.clone();
    let principal = s.session.principal.clone();
    let rendered = work(move || -> openvgw_core::Result<Option<Vec<(String, String)>>> {
        let Some(scope) = svc.scope_of::<VpnConnection>(&id)?.filter(|sc| may_see(&principal, sc)) else {
            return Ok(None);
        };
        let pc = svc.peer_config(&scope, &id)?;
        let files = pc.render(format, false).map_err(|e| openvgw_core::Error::internal(e.to_string()))?;
        Ok(Some(files.into_iter().map(|f| (f.name.to_string(), f.text)).collect()))
    })
    .await;
    match rendered {
        Ok(Some(files)) => {
            // One download: swanctl.conf, or ipsec.conf followed by ipsec.secrets, each file marked.
            let name = if format == PeerFormat::Strongswan { "swanctl.conf" } else { "ipsec.conf+secrets.txt" };
            let body = if files.len() == 1 {
                files.into_iter().map(|(_, text)| text).collect()
            } else {
                files.iter().map(|(n, text)| format!("# ---- {n} ----\n{text}")).collect::<Vec<_>>().join("\n")
            };
            attachment(name, "text/plain; charset=utf-8", body)
        }
        Ok(None) => s.not_found("connection"),
        Err(r) => r,
    }
}

async fn client_profile(State(c): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match signed(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let svc = c.svc.clone();
    let principal = s.session.principal.clone();
    let found = work(move || -> openvgw_core::Result<Option<(String, String)>> {
        let Some(scope) = svc.scope_of::<SslVpnClientCert>(&id)?.filter(|sc| may_see(&principal, sc)) else {
            return Ok(None);
        };
        let b = svc.client_bundle(&scope, &id)?;
        Ok(Some((b.cert.id, b.client_config)))
    })
    .await;
    match found {
        Ok(Some((cert, profile))) => attachment(&format!("{cert}.ovpn"), "application/x-openvpn-profile", profile),
        Ok(None) => s.not_found("client certificate"),
        Err(r) => r,
    }
}

async fn dataplane(State(c): Shared, headers: HeaderMap) -> Response {
    let s = match signed(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !s.is_operator() {
        return html(
            StatusCode::FORBIDDEN,
            pages::message("Operators only", Some(&s.chrome()), "The data plane's view is for operators."),
        );
    }
    let (svc, principal) = (c.svc.clone(), s.session.principal.clone());
    let (gateways, states) = match work(move || Ok((visible_gateways(&svc, &principal)?, svc.tunnel_states()?))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Tunnels per gateway: (up, all).
    let mut counts: std::collections::HashMap<&str, (usize, usize)> = std::collections::HashMap::new();
    for (gateway, _, _, state) in &states {
        let n = counts.entry(gateway.as_str()).or_default();
        n.0 += usize::from(*state == TunnelState::IpsecSaEstablished);
        n.1 += 1;
    }
    let mut rows = Vec::with_capacity(gateways.len());
    for gw in gateways {
        let ready = c.svc.observe_gateway(&gw.id).await.map(|o| o.ready).map_err(|e| e.to_string());
        let (tunnels_up, tunnels) = counts.get(gw.id.as_str()).copied().unwrap_or_default();
        let host = c.svc.driver().host_of(&gw.id);
        rows.push(pages::DataplaneRow { tunnels_up, tunnels, ready, host, gateway: gw });
    }
    html(StatusCode::OK, pages::dataplane(&s.chrome(), &rows, &c.svc.driver().hosts()))
}

/// A connection's configuration as its own API gives it (JSON), read through that API.
async fn vendor_config(c: &Arc<Console>, s: &Signed, id: String) -> Result<Response, Halt> {
    let svc = c.svc.clone();
    let viewer = s.session.principal.clone();
    let cid = id.clone();
    let found = work(move || -> openvgw_core::Result<Option<(Scope, String)>> {
        let Some(scope) = svc.scope_of::<VpnConnection>(&cid)?.filter(|sc| may_see(&viewer, sc)) else {
            return Ok(None);
        };
        let project = project_of(&svc, &scope)?;
        Ok(Some((scope, project)))
    })
    .await?;
    let (scope, project) = found.ok_or_else(|| s.not_found("connection"))?;
    let call = create::vendor_config(Api::of(&id), &scope.region, &project, &id);
    let a = c.apis.call(&s.acting_for(&scope), call).await.map_err(|e| call_failed(&e))?;
    if !a.ok() {
        let text = format!("Refused by the API: {}", a.refusal());
        return Err(html(status_of(a.status), pages::message("Not downloaded", Some(&s.chrome()), &text)));
    }
    let text = serde_json::to_string_pretty(&a.body).unwrap_or_default();
    Ok(attachment(&format!("{id}.json"), "application/json", text))
}

/// The tenant's Huawei project id of the scope's region (empty when the tenant has none there).
fn project_of(svc: &Service, scope: &Scope) -> openvgw_core::Result<String> {
    Ok(svc.tenant(&scope.tenant_id)?.and_then(|t| t.projects.get(&scope.region).cloned()).unwrap_or_default())
}

fn status_of(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn call_failed(e: &str) -> Response {
    tracing::warn!(error = %e, "console call of an API failed");
    failure()
}

impl Signed {
    /// The principal the console calls an API as for what lives in `scope`: the tenant's own key, or for an
    /// operator the tenant whose resource it is (named `operator:<name>` in the access log's key).
    fn acting_for(&self, scope: &Scope) -> openvgw_api::Principal {
        match &self.session.principal {
            ConsolePrincipal::Tenant { tenant_id, access_key_id } => create::principal(tenant_id, access_key_id),
            ConsolePrincipal::Operator { name } => create::principal(&scope.tenant_id, &format!("operator:{name}")),
        }
    }

    /// The principal a tenant's forms call the APIs as. Operators do not create: resources belong to a tenant.
    fn creator(&self) -> Result<openvgw_api::Principal, Halt> {
        match &self.session.principal {
            ConsolePrincipal::Tenant { tenant_id, access_key_id } => Ok(create::principal(tenant_id, access_key_id)),
            ConsolePrincipal::Operator { .. } => Err(html(
                StatusCode::FORBIDDEN,
                pages::message(
                    "Tenants only",
                    Some(&self.chrome()),
                    "Resources belong to a tenant: sign in with the tenant's access key pair to create them.",
                ),
            )),
        }
    }

    /// A form's values, once its token is checked.
    fn form_values(&self, headers: &HeaderMap, pairs: Vec<(String, String)>) -> Result<Values, Halt> {
        let Some(values) = Values::from_pairs(pairs) else {
            let text = format!("A value is longer than {} characters.", create::MAX_VALUE);
            return Err(html(StatusCode::BAD_REQUEST, pages::message("Not created", Some(&self.chrome()), &text)));
        };
        self.check_form(headers, values.get("csrf"))?;
        Ok(values)
    }
}

/// The form again, with the values as sent, a fresh token and the API's refusal, under the API's status.
fn refused(s: &Signed, form: &create::Form, mut values: Values, answer: &create::Answer) -> Response {
    create::fresh_token(&mut values);
    html(status_of(answer.status), create::page(&s.chrome(), form, &values, Some(&answer.refusal())))
}

/// Where a new gateway of `api` may go: Alibaba's regions, or the tenant's Huawei projects (id, label).
async fn places(c: &Arc<Console>, api: Api, tenant_id: &str) -> Result<Vec<(String, String)>, Halt> {
    let regions = &c.svc.config().regions;
    match api {
        Api::Aliyun => Ok(regions.aliyun.iter().map(|r| (r.clone(), r.clone())).collect()),
        Api::Huawei => {
            let (svc, tid) = (c.svc.clone(), tenant_id.to_string());
            let projects = work(move || svc.tenant(&tid)).await?.map(|t| t.projects).unwrap_or_default();
            Ok(regions
                .huawei
                .iter()
                .filter_map(|r| projects.get(r).map(|p| (p.clone(), format!("{r} (project {p})"))))
                .collect())
        }
    }
}

async fn gateway_form(
    c: &Arc<Console>,
    s: &Signed,
    api: &str,
) -> Result<(Api, openvgw_api::Principal, create::Form), Halt> {
    let Some(api) = Api::parse(api) else { return Err(s.not_found("API")) };
    let principal = s.creator()?;
    let places = places(c, api, &principal.tenant_id).await?;
    Ok((api, principal, create::gateway_form(api, &places)))
}

// The handlers below answer `Result<Response, Halt>`: both sides are responses, so `?` ends a request with its page.

async fn new_gateway(State(c): Shared, headers: HeaderMap, Path(api): Path<String>) -> Result<Response, Halt> {
    let s = signed(&c, &headers).await?;
    let (api, _, form) = gateway_form(&c, &s, &api).await?;
    Ok(html(StatusCode::OK, create::page(&s.chrome(), &form, &create::gateway_defaults(api), None)))
}

async fn create_gateway(
    State(c): Shared,
    headers: HeaderMap,
    Path(api): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Halt> {
    let s = signed(&c, &headers).await?;
    let (api, principal, form) = gateway_form(&c, &s, &api).await?;
    let values = s.form_values(&headers, pairs)?;
    let (call, id_at) = create::create_gateway(api, &values);
    let a = c.apis.call(&principal, call).await.map_err(|e| call_failed(&e))?;
    if !a.ok() {
        return Err(refused(&s, &form, values, &a));
    }
    let id = a.text(id_at).ok_or_else(|| call_failed("the answer names no gateway"))?;
    Ok(see_other(&format!("/console/gateways/{id}")))
}

/// The gateway a form on its page creates on, as the form needs it.
async fn target(c: &Arc<Console>, s: &Signed, gateway: String) -> Result<Target, Halt> {
    let svc = c.svc.clone();
    let viewer = s.session.principal.clone();
    let found = work(move || -> openvgw_core::Result<Option<Target>> {
        let Some(tree) = svc.gateway_tree(&gateway)?.filter(|t| may_see(&viewer, &t.gateway.scope)) else {
            return Ok(None);
        };
        let gw = &tree.gateway;
        let api = Api::of(&gw.id);
        let peers = svc
            .list_customer_gateways(&gw.scope, None, &PageRequest::numbered(1, 200))?
            .items
            .into_iter()
            .map(|t| t.item)
            .filter(|p| Api::of(&p.id) == api)
            .map(|p| {
                let at = p.identity.address().map(|a| a.to_string()).unwrap_or_else(|| "no fixed address".into());
                (p.id, format!("{} ({at})", p.name))
            })
            .collect();
        let local =
            if gw.local_subnets.is_empty() { tree.vpc_cidr.into_iter().collect() } else { gw.local_subnets.clone() };
        Ok(Some(Target {
            api,
            gateway_id: gw.id.clone(),
            gateway_name: gw.name.clone(),
            region: gw.scope.region.clone(),
            project: project_of(&svc, &gw.scope)?,
            addresses: gw.public_ips.iter().map(|p| (p.id.clone(), p.address.to_string())).collect(),
            peers,
            servers: tree.ssl_servers.iter().map(|t| (t.server.id.clone(), t.server.name.clone())).collect(),
            ssl: gw.ssl_enabled,
            site: gw.role != GatewayRole::Client,
            local_subnets: openvgw_core::model::join_nets(&local),
        }))
    })
    .await?;
    found.ok_or_else(|| s.not_found("gateway"))
}

/// What a form on a gateway's page creates, offered there, with the gateway.
async fn form_target(c: &Arc<Console>, s: &Signed, what: &str, gateway: String) -> Result<(What, Target), Halt> {
    let what = What::parse(what).ok_or_else(|| s.not_found("form"))?;
    let t = target(c, s, gateway).await?;
    if !what.offered(&t) {
        return Err(s.not_found("form for this gateway"));
    }
    Ok((what, t))
}

async fn new_on_gateway(
    State(c): Shared,
    headers: HeaderMap,
    Path((what, gateway)): Path<(String, String)>,
) -> Result<Response, Halt> {
    let s = signed(&c, &headers).await?;
    s.creator()?;
    let (what, t) = form_target(&c, &s, &what, gateway).await?;
    let (form, values) = create::form_on(what, &t);
    Ok(html(StatusCode::OK, create::page(&s.chrome(), &form, &values, None)))
}

async fn create_on_gateway(
    State(c): Shared,
    headers: HeaderMap,
    Path((what, gateway)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Halt> {
    let s = signed(&c, &headers).await?;
    let principal = s.creator()?;
    let (what, t) = form_target(&c, &s, &what, gateway).await?;
    let values = s.form_values(&headers, pairs)?;
    let (form, _) = create::form_on(what, &t);
    let back = see_other(&format!("/console/gateways/{}", t.gateway_id));
    if what != What::Connection {
        let (call, id_at) = create::create_ssl(what, &t, &values);
        let a = c.apis.call(&principal, call).await.map_err(|e| call_failed(&e))?;
        if !a.ok() {
            return Err(refused(&s, &form, values, &a));
        }
        a.text(id_at).ok_or_else(|| call_failed("the answer names nothing created"))?;
        return Ok(back);
    }
    // A customer gateway named by address is created first; if the connection is then refused it is taken back,
    // so a refused form leaves nothing behind.
    let (peer, created_peer) = match values.get("peer") {
        "" => {
            let (call, id_at) = create::create_peer(&t, &values);
            let a = c.apis.call(&principal, call).await.map_err(|e| call_failed(&e))?;
            if !a.ok() {
                return Err(refused(&s, &form, values, &a));
            }
            let id = a.text(id_at).ok_or_else(|| call_failed("the answer names no customer gateway"))?;
            (id.to_string(), true)
        }
        id => (id.to_string(), false),
    };
    let (call, id_at) = create::create_connection(&t, &values, &peer);
    let outcome = c.apis.call(&principal, call).await;
    if let Ok(a) = &outcome {
        if a.ok() && a.text(id_at).is_some() {
            return Ok(back);
        }
    }
    if created_peer {
        match c.apis.call(&principal, create::delete_peer(&t, &peer)).await {
            Ok(d) if d.ok() => {}
            Ok(d) => tracing::warn!(peer = %peer, refusal = %d.refusal(), "taking back a customer gateway failed"),
            Err(e) => tracing::warn!(peer = %peer, error = %e, "taking back a customer gateway failed"),
        }
    }
    match outcome {
        Ok(a) if !a.ok() => Err(refused(&s, &form, values, &a)),
        Ok(_) => Err(call_failed("the answer names no connection")),
        Err(e) => Err(call_failed(&e)),
    }
}
