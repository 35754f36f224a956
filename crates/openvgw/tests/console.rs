//! The web console in process: sign-in with a tenant's key or an operator's password, what each may see, CSRF,
//! sign-out and revocation, downloads, and hostile input. The browser test (tests/console) drives the same pages in
//! Chromium.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Page {
    status: StatusCode,
    location: String,
    set_cookie: Vec<String>,
    csp: String,
    text: String,
}

async fn send(
    h: &Harness,
    method: &str,
    uri: &str,
    cookie: &str,
    form: Option<String>,
    extra: &[(&str, &str)],
) -> Page {
    let mut b = Request::builder().method(method).uri(uri).header("host", "127.0.0.1:8080");
    if !cookie.is_empty() {
        b = b.header("cookie", cookie);
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let body = match form {
        Some(f) => {
            b = b.header("content-type", "application/x-www-form-urlencoded");
            Body::from(f)
        }
        None => Body::empty(),
    };
    let resp = h.app.clone().oneshot(b.body(body).unwrap()).await.unwrap();
    let header = |n: &str| resp.headers().get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (status, location, csp) = (resp.status(), header("location"), header("content-security-policy"));
    let set_cookie = resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Page { status, location, set_cookie, csp, text }
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// `name=value` of the cookie a response set.
fn cookie_of(p: &Page, name: &str) -> String {
    p.set_cookie
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_default()
}

/// The value of a hidden input in a page.
fn hidden(text: &str, name: &str) -> String {
    let at = text.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {text}"));
    let rest = &text[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Signs in through the form; returns the session cookie (`name=value`) and the page's CSRF token.
async fn sign_in(h: &Harness, kind: &str, id: &str, secret: &str) -> (String, String) {
    let page = send(h, "GET", "/console/sign-in", "", None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let pre_cookie = cookie_of(&page, "ovgw_sign_in");
    let pre = hidden(&page.text, "pre");
    let done = send(
        h,
        "POST",
        "/console/sign-in",
        &pre_cookie,
        Some(form(&[("kind", kind), ("id", id), ("secret", secret), ("pre", &pre)])),
        &[],
    )
    .await;
    assert_eq!((done.status, done.location.as_str()), (StatusCode::SEE_OTHER, "/console/gateways"), "{}", done.text);
    let session = cookie_of(&done, "ovgw_session");
    assert!(
        done.set_cookie.iter().any(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict")),
        "{:?}",
        done.set_cookie
    );
    let list = send(h, "GET", "/console/gateways", &session, None, &[]).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let csrf = hidden(&list.text, "csrf");
    (session, csrf)
}

async fn gateway_of(h: &Harness, key: &Key, vpc: &str) -> String {
    let r = h
        .call_as(
            key,
            &[("Action", "CreateVpnGateway"), ("RegionId", "cn-hangzhou"), ("VpcId", vpc), ("Bandwidth", "5")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["VpnGatewayId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_tenant_signs_in_sees_its_own_gateways_and_signs_out() {
    let h = harness();
    let anonymous = send(&h, "GET", "/console/gateways", "", None, &[]).await;
    assert_eq!((anonymous.status, anonymous.location.as_str()), (StatusCode::SEE_OTHER, "/console/sign-in"));
    let a_gw = gateway_of(&h, &h.a, "vpc-console01").await;
    let b_gw = gateway_of(&h, &h.b, "vpc-console02").await;

    // Wrong secret, a sign-in token that is not this browser's, an unknown kind: the same refusal.
    let page = send(&h, "GET", "/console/sign-in", "", None, &[]).await;
    assert!(page.csp.contains("script-src 'self'") && page.csp.contains("frame-ancestors 'none'"), "{}", page.csp);
    let (pre_cookie, pre) = (cookie_of(&page, "ovgw_sign_in"), hidden(&page.text, "pre"));
    for (kind, secret, cookie) in [
        ("key", "wrong", pre_cookie.as_str()),
        ("key", h.a.secret.as_str(), "ovgw_sign_in=other"),
        ("root", h.a.secret.as_str(), pre_cookie.as_str()),
    ] {
        let r = send(
            &h,
            "POST",
            "/console/sign-in",
            cookie,
            Some(form(&[("kind", kind), ("id", &h.a.id), ("secret", secret), ("pre", &pre)])),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{kind} {cookie}");
        assert!(cookie_of(&r, "ovgw_session").is_empty());
    }

    let (session, csrf) = sign_in(&h, "key", &h.a.id, &h.a.secret).await;
    let list = send(&h, "GET", "/console/gateways", &session, None, &[]).await;
    assert!(list.text.contains(&a_gw) && !list.text.contains(&b_gw), "only the tenant's own gateways");
    let fragment = send(&h, "GET", "/console/gateways?fragment=1", &session, None, &[]).await;
    assert!(fragment.text.starts_with("<table") && fragment.text.contains(&a_gw), "{}", fragment.text);
    h.wait_status(&a_gw, "active").await;
    let detail = send(&h, "GET", &format!("/console/gateways/{a_gw}"), &session, None, &[]).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.text.contains("data-status=\"active\"") && detail.text.contains("<svg"), "{}", detail.text);
    for other in
        [format!("/console/gateways/{b_gw}"), "/console/gateways/%3Cscript%3E".into(), "/console/dataplane".into()]
    {
        let r = send(&h, "GET", &other, &session, None, &[]).await;
        assert!(matches!(r.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{other}: {}", r.status);
        assert!(!r.text.contains("<script>"), "nothing echoed unescaped");
    }

    // Changes need the session's token, from this site.
    let delete = format!("/console/gateways/{a_gw}/delete");
    for (token, extra) in [("", vec![]), ("forged", vec![]), (csrf.as_str(), vec![("sec-fetch-site", "cross-site")])] {
        let r = send(&h, "POST", &delete, &session, Some(form(&[("csrf", token), ("confirm", "yes")])), &extra).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "token {token:?} {extra:?}");
    }
    let unconfirmed = send(&h, "POST", &delete, &session, Some(form(&[("csrf", &csrf)])), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    let b_delete = format!("/console/gateways/{b_gw}/delete");
    let foreign = send(&h, "POST", &b_delete, &session, Some(form(&[("csrf", &csrf), ("confirm", "yes")])), &[]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "another tenant's gateway cannot be deleted");
    let deleted = send(&h, "POST", &delete, &session, Some(form(&[("csrf", &csrf), ("confirm", "yes")])), &[]).await;
    assert_eq!(
        (deleted.status, deleted.location.as_str()),
        (StatusCode::SEE_OTHER, "/console/gateways"),
        "{}",
        deleted.text
    );
    let gone = h.call("DescribeVpnGateway", &[("VpnGatewayId", &a_gw)]).await;
    assert!(gone.status == 404 || gone.body["Status"] == "deleting", "{}", gone.text);

    // Signing out ends the session everywhere it was used.
    let out = send(&h, "POST", "/console/sign-out", &session, Some(form(&[("csrf", &csrf)])), &[]).await;
    assert_eq!((out.status, out.location.as_str()), (StatusCode::SEE_OTHER, "/console/sign-in"));
    assert!(out.set_cookie.iter().any(|c| c.starts_with("ovgw_session=;") && c.contains("Max-Age=0")));
    let after = send(&h, "GET", "/console/gateways", &session, None, &[]).await;
    assert_eq!((after.status, after.location.as_str()), (StatusCode::SEE_OTHER, "/console/sign-in"));
}

#[tokio::test]
async fn a_disabled_tenant_or_a_deleted_key_ends_the_session() {
    let h = harness();
    let (session, _) = sign_in(&h, "key", &h.a.id, &h.a.secret).await;
    let tenant_id = h.store.read(|tx| tx.access_key(&h.a.id)).unwrap().unwrap().tenant_id;
    let mut tenant = h.store.read(|tx| tx.tenant(&tenant_id)).unwrap().unwrap();
    tenant.disabled = true;
    h.store.write(|tx| tx.update_tenant(&tenant)).unwrap();
    // The key cache answers for up to a second; the session check must see the change after that.
    tokio::time::sleep(openvgw_control::KEY_CACHE_TTL + std::time::Duration::from_millis(100)).await;
    let r = send(&h, "GET", "/console/gateways", &session, None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "a disabled tenant's session ends");
}

#[tokio::test]
async fn an_operator_sees_every_tenant_and_the_data_plane() {
    let h = harness();
    let a_gw = gateway_of(&h, &h.a, "vpc-console03").await;
    let b_gw = gateway_of(&h, &h.b, "vpc-console04").await;
    let password = openvgw_control::console::create_operator(&h.store, "ops").unwrap();
    let refused = send(&h, "GET", "/console/sign-in", "", None, &[]).await;
    let pre = (cookie_of(&refused, "ovgw_sign_in"), hidden(&refused.text, "pre"));
    let wrong = send(
        &h,
        "POST",
        "/console/sign-in",
        &pre.0,
        Some(form(&[("kind", "operator"), ("id", "ops"), ("secret", "nope"), ("pre", &pre.1)])),
        &[],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let (session, _) = sign_in(&h, "operator", "ops", password.expose()).await;
    let list = send(&h, "GET", "/console/gateways", &session, None, &[]).await;
    assert!(list.text.contains(&a_gw) && list.text.contains(&b_gw), "both tenants' gateways");
    let dp = send(&h, "GET", "/console/dataplane", &session, None, &[]).await;
    assert_eq!(dp.status, StatusCode::OK);
    assert!(dp.text.contains(&a_gw) && dp.text.contains("of"), "{}", dp.text);
    // Deleting the operator ends its sessions at once.
    assert!(h.store.write(|tx| tx.delete_operator("ops")).unwrap());
    let r = send(&h, "GET", "/console/gateways", &session, None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_connections_customer_side_downloads_for_its_own_tenant_only() {
    let h = harness();
    let gw = gateway_of(&h, &h.a, "vpc-console05").await;
    h.wait_status(&gw, "active").await;
    let cgw = h.ok("CreateCustomerGateway", &[("IpAddress", "198.51.100.77")]).await["CustomerGatewayId"]
        .as_str()
        .unwrap()
        .to_string();
    let vco = h
        .ok(
            "CreateVpnConnection",
            &[
                ("VpnGatewayId", &gw),
                ("CustomerGatewayId", &cgw),
                ("LocalSubnet", "10.0.0.0/8"),
                ("RemoteSubnet", "192.168.70.0/24"),
            ],
        )
        .await["VpnConnectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let (session, _) = sign_in(&h, "key", &h.a.id, &h.a.secret).await;
    let conf = send(&h, "GET", &format!("/console/connections/{vco}/config/strongswan"), &session, None, &[]).await;
    assert_eq!(conf.status, StatusCode::OK);
    assert!(conf.text.contains("connections {") && conf.text.contains("198.51.100.77"), "{}", conf.text);
    let lsw = send(&h, "GET", &format!("/console/connections/{vco}/config/libreswan"), &session, None, &[]).await;
    assert!(lsw.text.contains("conn ") && lsw.text.contains(": PSK"), "{}", lsw.text);
    let bad = send(&h, "GET", &format!("/console/connections/{vco}/config/cisco"), &session, None, &[]).await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    let (other, _) = sign_in(&h, "key", &h.b.id, &h.b.secret).await;
    let foreign = send(&h, "GET", &format!("/console/connections/{vco}/config/strongswan"), &other, None, &[]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(!foreign.text.contains("PSK") && !foreign.text.contains("secret"));
}

#[tokio::test]
async fn hostile_console_requests_get_a_clear_refusal() {
    let h = harness();
    let big = form(&[("kind", "key"), ("id", "x"), ("secret", &"s".repeat(64 * 1024)), ("pre", "p")]);
    let r = send(&h, "POST", "/console/sign-in", "ovgw_sign_in=p", Some(big), &[]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let garbage = send(&h, "POST", "/console/sign-in", "", Some("%%%".into()), &[]).await;
    assert!(garbage.status.is_client_error(), "{}", garbage.status);
    let long_id = form(&[("kind", "key"), ("id", &"i".repeat(200)), ("secret", "s"), ("pre", "p")]);
    let r = send(&h, "POST", "/console/sign-in", "ovgw_sign_in=p", Some(long_id), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let forged = send(&h, "GET", "/console/gateways", "ovgw_session=forged; other=1", None, &[]).await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    // Guessing is bounded: after five failures under one name even its right secret is refused for a while,
    // without being checked; other names are not held back.
    for (secret, want) in [("wrong", StatusCode::UNAUTHORIZED); 5]
        .into_iter()
        .chain([(h.a.secret.as_str(), StatusCode::TOO_MANY_REQUESTS)])
    {
        let page = send(&h, "GET", "/console/sign-in", "", None, &[]).await;
        let (pre_cookie, pre) = (cookie_of(&page, "ovgw_sign_in"), hidden(&page.text, "pre"));
        let attempt = form(&[("kind", "key"), ("id", &h.a.id), ("secret", secret), ("pre", &pre)]);
        let r = send(&h, "POST", "/console/sign-in", &pre_cookie, Some(attempt), &[]).await;
        assert_eq!(r.status, want, "{}", r.text);
        assert!(cookie_of(&r, "ovgw_session").is_empty());
    }
    // A kind that is neither is refused without being counted: the guard's memory stays bounded by real names.
    for _ in 0..6 {
        let page = send(&h, "GET", "/console/sign-in", "", None, &[]).await;
        let (pre_cookie, pre) = (cookie_of(&page, "ovgw_sign_in"), hidden(&page.text, "pre"));
        let attempt = form(&[("kind", "nobody"), ("id", &h.b.id), ("secret", "wrong"), ("pre", &pre)]);
        let r = send(&h, "POST", "/console/sign-in", &pre_cookie, Some(attempt), &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    sign_in(&h, "key", &h.b.id, &h.b.secret).await;
    for asset in ["/console/assets/console.css", "/console/assets/console.js"] {
        let r = send(&h, "GET", asset, "", None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{asset} is served without a session");
    }
}

/// Sends a console form.
async fn submit(h: &Harness, uri: &str, session: &str, pairs: &[(&str, &str)]) -> Page {
    send(h, "POST", uri, session, Some(form(pairs)), &[]).await
}

/// The value of the option a `<select>` of the page starts with.
fn first_option(text: &str, select: &str) -> String {
    let at = text.find(&format!("name=\"{select}\"")).unwrap_or_else(|| panic!("no {select} in {text}"));
    let rest = &text[at..];
    let rest = &rest[rest.find("<option value=\"").unwrap() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Waits until the console shows the gateway active (its live region, as the browser polls it).
async fn wait_active_in_console(h: &Harness, session: &str, gateway: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let p = send(h, "GET", &format!("/console/gateways/{gateway}?fragment=1"), session, None, &[]).await;
        if p.text.contains("data-status=\"active\"") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("gateway {gateway} never showed active");
}

#[tokio::test]
async fn the_console_creates_through_each_api_and_shows_its_refusals() {
    let h = harness();
    let (session, csrf) = sign_in(&h, "key", &h.a.id, &h.a.secret).await;

    // Alibaba: a refusal is the API's own code, with the values kept and a fresh token; then the gateway.
    let page = send(&h, "GET", "/console/create/gateway/aliyun", &session, None, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let token = hidden(&page.text, "token");
    let uri = "/console/create/gateway/aliyun";
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("place", "cn-hangzhou"),
        ("name", "from-the-console"),
        ("vpc", "vpc-console10"),
        ("bandwidth", "7"),
        ("ipsec", "on"),
    ];
    let bad = submit(&h, uri, &session, &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains("Refused by the API: InvalidBandwidth"), "{}", bad.text);
    assert!(bad.text.contains("value=\"vpc-console10\""), "the values are kept");
    let token = hidden(&bad.text, "token");
    fields[1].1 = token.as_str();
    fields[5].1 = "10";
    let good = submit(&h, uri, &session, &fields).await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.text);
    // The same form sent again creates nothing more (the API's ClientToken).
    let again = submit(&h, uri, &session, &fields).await;
    assert_eq!(again.location, good.location);
    let gw = good.location.strip_prefix("/console/gateways/").unwrap().to_string();
    let described = h.ok("DescribeVpnGateway", &[("VpnGatewayId", &gw)]).await;
    assert_eq!((described["Name"].as_str(), described["Spec"].as_str()), (Some("from-the-console"), Some("10M")));
    assert_eq!(h.ok("DescribeVpnGateways", &[]).await["TotalCount"], 1);
    h.wait_status(&gw, "active").await;

    // A connection to a new customer gateway: when the API refuses the connection, the customer gateway it made
    // first is taken back.
    let conn_uri = format!("/console/create/connection/{gw}");
    let page = send(&h, "GET", &conn_uri, &session, None, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let token = hidden(&page.text, "token");
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("name", "branch"),
        ("peer", ""),
        ("peer_ip", "198.51.100.61"),
        ("local", "10.0.0.0/8"),
        ("remote", "192.168.71.0/33"),
        ("ike", "ikev2"),
    ];
    let bad = submit(&h, &conn_uri, &session, &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains("Refused by the API: IllegalParam.RemoteSubnet"), "{}", bad.text);
    assert_eq!(h.ok("DescribeCustomerGateways", &[]).await["TotalCount"], 0, "nothing is left of a refused form");
    let token = hidden(&bad.text, "token");
    fields[1].1 = token.as_str();
    fields[6].1 = "192.168.71.0/24";
    let made = submit(&h, &conn_uri, &session, &fields).await;
    assert_eq!(
        (made.status, made.location.as_str()),
        (StatusCode::SEE_OTHER, format!("/console/gateways/{gw}").as_str())
    );
    let conns = h.ok("DescribeVpnConnections", &[("VpnGatewayId", &gw)]).await;
    let vco = conns["VpnConnections"]["VpnConnection"][0]["VpnConnectionId"].as_str().unwrap().to_string();
    let view = send(&h, "GET", &format!("/console/gateways/{gw}"), &session, None, &[]).await;
    assert!(view.text.contains(&format!("/console/connections/{vco}/config/vendor")), "{}", view.text);

    // The vendor's own JSON: what DownloadVpnConnectionConfig answers.
    let json = send(&h, "GET", &format!("/console/connections/{vco}/config/vendor"), &session, None, &[]).await;
    assert_eq!(json.status, StatusCode::OK, "{}", json.text);
    let v: serde_json::Value = serde_json::from_str(&json.text).unwrap();
    let config = &v["VpnConnectionConfig"];
    assert_eq!(
        (config["Remote"].as_str(), config["RemoteSubnet"].as_str()),
        (Some("198.51.100.61"), Some("192.168.71.0/24"))
    );
    assert_eq!(config["IkeConfig"]["IkeVersion"], "ikev2");
    let (other, other_csrf) = sign_in(&h, "key", &h.b.id, &h.b.secret).await;
    let foreign = send(&h, "GET", &format!("/console/connections/{vco}/config/vendor"), &other, None, &[]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let foreign =
        submit(&h, &conn_uri, &other, &[("csrf", &other_csrf), ("token", "t"), ("peer_ip", "198.51.100.9")]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "another tenant's gateway takes no connection");

    // Huawei: the tenant's project, Huawei's codes, the EIPs the gateway was given.
    let uri = "/console/create/gateway/huawei";
    let page = send(&h, "GET", uri, &session, None, &[]).await;
    let (project, token) = (first_option(&page.text, "place"), hidden(&page.text, "token"));
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("place", project.as_str()),
        ("name", "hw-from-the-console"),
        ("vpc", "7c2b6e0a-8d4f-4a43-9a8e-2f0c6f1f7a01"),
        ("subnet", "9d1c0e5b-6f3a-4b2e-8c7d-1a2b3c4d5e6f"),
        ("local", "10.40.0.0/16, not-a-cidr"),
        ("flavor", "Professional1"),
        ("bandwidth", "100"),
    ];
    let bad = submit(&h, uri, &session, &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains("Refused by the API: VPN.0001: invalid request: local_subnets"), "{}", bad.text);
    fields[6].1 = "10.40.0.0/16";
    let good = submit(&h, uri, &session, &fields).await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.text);
    let hw = good.location.strip_prefix("/console/gateways/").unwrap().to_string();
    assert_eq!(openvgw_core::IdStyle::of(&hw), openvgw_core::IdStyle::Uuid, "{hw}");
    wait_active_in_console(&h, &session, &hw).await;
    let conn_uri = format!("/console/create/connection/{hw}");
    let page = send(&h, "GET", &conn_uri, &session, None, &[]).await;
    let (address, token) = (first_option(&page.text, "address"), hidden(&page.text, "token"));
    let fields = [
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("name", "hw-branch"),
        ("peer", ""),
        ("peer_ip", "198.51.100.62"),
        ("peer_asn", "65010"),
        ("address", address.as_str()),
        ("remote", "172.20.1.0/24"),
        ("psk", "Abcdef12345!"),
    ];
    let made = submit(&h, &conn_uri, &session, &fields).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    let view = send(&h, "GET", &format!("/console/gateways/{hw}"), &session, None, &[]).await;
    let at = view.text.find("/config/vendor").expect("a connection with its downloads");
    let vendor = &view.text[view.text[..at].rfind("/console/connections/").unwrap()..at + 14];
    let json = send(&h, "GET", vendor, &session, None, &[]).await;
    assert_eq!(json.status, StatusCode::OK, "{}", json.text);
    let v: serde_json::Value = serde_json::from_str(&json.text).unwrap();
    assert_eq!(v["vpn_connection"]["peer_subnets"][0], "172.20.1.0/24", "{v}");
    assert_eq!(v["vpn_connection"]["vgw_ip"], address.as_str());

    // Operators do not create (resources belong to a tenant); a form without its token is refused; so is a value
    // longer than any field takes.
    let password = openvgw_control::console::create_operator(&h.store, "ops").unwrap();
    let (ops, ops_csrf) = sign_in(&h, "operator", "ops", password.expose()).await;
    let r = send(&h, "GET", "/console/create/gateway/aliyun", &ops, None, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = submit(&h, uri, &ops, &[("csrf", &ops_csrf), ("place", &project)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ops_json = send(&h, "GET", vendor, &ops, None, &[]).await;
    assert_eq!(ops_json.status, StatusCode::OK, "an operator reads any tenant's configuration");
    let r = submit(&h, "/console/create/gateway/aliyun", &session, &[("csrf", "forged"), ("vpc", "vpc-x")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let long = "v".repeat(4096);
    let r = submit(&h, "/console/create/gateway/aliyun", &session, &[("csrf", &csrf), ("vpc", &long)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(&h, "GET", "/console/create/gateway/azure", &session, None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.ok("DescribeVpnGateways", &[]).await["TotalCount"], 1, "only the one gateway in cn-hangzhou");

    // Deleting goes through the gateway's own API too (Huawei's DELETE, here).
    let delete = format!("/console/gateways/{hw}/delete");
    let deleted = submit(&h, &delete, &session, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(
        (deleted.status, deleted.location.as_str()),
        (StatusCode::SEE_OTHER, "/console/gateways"),
        "{}",
        deleted.text
    );
    let page = send(&h, "GET", &format!("/console/gateways/{hw}?fragment=1"), &session, None, &[]).await;
    assert!(page.status == StatusCode::NOT_FOUND || page.text.contains("data-status=\"deleting\""), "{}", page.text);
}

#[tokio::test]
async fn the_console_creates_ssl_vpn_servers_and_client_certificates() {
    let h = harness();
    let gw = h.active_gateway().await;
    let plain = gateway_of(&h, &h.a, "vpc-console20").await;
    let (session, csrf) = sign_in(&h, "key", &h.a.id, &h.a.secret).await;
    let page = send(&h, "GET", &format!("/console/gateways/{gw}"), &session, None, &[]).await;
    assert!(page.text.contains(&format!("/console/create/ssl-server/{gw}")), "{}", page.text);
    assert!(!page.text.contains("/console/create/client-cert/"), "no server yet, no certificate form");

    let uri = format!("/console/create/ssl-server/{gw}");
    let form_page = send(&h, "GET", &uri, &session, None, &[]).await;
    assert_eq!(form_page.status, StatusCode::OK, "{}", form_page.text);
    let token = hidden(&form_page.text, "token");
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("name", "laptops"),
        ("pool", "192.168.100.0/33"),
        ("local", "10.0.0.0/8"),
        ("proto", "UDP"),
        ("port", "1194"),
        ("cipher", "AES-128-CBC"),
    ];
    let bad = submit(&h, &uri, &session, &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains("Refused by the API: IllegalParam.ClientIpPool"), "{}", bad.text);
    let token = hidden(&bad.text, "token");
    fields[1].1 = token.as_str();
    fields[3].1 = "192.168.100.0/24";
    let made = submit(&h, &uri, &session, &fields).await;
    assert_eq!(
        (made.status, made.location.as_str()),
        (StatusCode::SEE_OTHER, format!("/console/gateways/{gw}").as_str())
    );
    let servers = h.ok("DescribeSslVpnServers", &[("VpnGatewayId", &gw)]).await;
    assert_eq!(servers["TotalCount"], 1, "{servers}");
    let server = servers["SslVpnServers"]["SslVpnServer"][0]["SslVpnServerId"].as_str().unwrap().to_string();
    // Alibaba's gateway refuses changes while it applies one (VpnGateway.Configuring), in the console too.
    h.wait_status(&gw, "active").await;

    let uri = format!("/console/create/client-cert/{gw}");
    let form_page = send(&h, "GET", &uri, &session, None, &[]).await;
    assert_eq!(first_option(&form_page.text, "server"), server);
    let token = hidden(&form_page.text, "token");
    let fields =
        [("csrf", csrf.as_str()), ("token", token.as_str()), ("server", server.as_str()), ("name", "laptop-1")];
    let made = submit(&h, &uri, &session, &fields).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    let certs = h.ok("DescribeSslVpnClientCerts", &[("SslVpnServerId", &server)]).await;
    let cert = &certs["SslVpnClientCertKeys"]["SslVpnClientCertKey"][0];
    assert_eq!(cert["Name"], "laptop-1", "{certs}");
    let cert_id = cert["SslVpnClientCertId"].as_str().unwrap();
    let profile = send(&h, "GET", &format!("/console/client-certs/{cert_id}/profile"), &session, None, &[]).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.text.contains("client") && profile.text.contains("<cert>"), "{}", profile.text);

    // Offered only where it applies: a gateway without SSL-VPN, an unknown form.
    for other in [format!("/console/create/ssl-server/{plain}"), format!("/console/create/client-cert/{plain}")] {
        let r = send(&h, "GET", &other, &session, None, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{other}");
    }
    let r = send(&h, "GET", &format!("/console/create/vpc/{gw}"), &session, None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
