//! In-process harness: a real store in a temp dir, the simulated data plane with short delays, the reconciler,
//! and the HTTP router driven with `oneshot` — no ports. Requests are signed here independently of the server's
//! verifier (HMAC-SHA1 v1.0), so a verifier bug cannot hide itself.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use openvgw::metrics::Metrics;
use openvgw::server::{app, driver_for};
use openvgw_control::tenants::create_tenant;
use openvgw_control::Service;
use openvgw_core::config::Config;
use openvgw_reconciler::Reconciler;
use openvgw_store::Store;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use tower::ServiceExt;

pub struct Key {
    pub id: String,
    pub secret: String,
}

pub struct Harness {
    pub app: Router,
    pub svc: Arc<Service>,
    pub store: Arc<Store>,
    pub a: Key,
    pub b: Key,
    /// The data directory, removed with the harness unless the test owns it.
    pub dir: std::path::PathBuf,
    _owned: Option<tempfile::TempDir>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub fn pct(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

pub fn test_config(tweak: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    config.dataplane.simulated.provision_delay_ms = 30;
    config.dataplane.simulated.apply_delay_ms = 10;
    tweak(&mut config);
    config
}

/// A harness on the data directory `dir` (reopening it finds the same tenants and resources).
pub fn harness_at(config: Config, dir: &std::path::Path) -> Harness {
    let store = Arc::new(Store::open(&dir.join("openvgw.db")).unwrap());
    let config = Arc::new(config);
    let driver = driver_for(&config).unwrap();
    let svc = Arc::new(Service::new(store.clone(), config.clone(), driver));
    let tenants = store.read(|tx| tx.tenants()).unwrap();
    let (a, b) = if tenants.len() >= 2 {
        let keys: Vec<Key> = std::fs::read_to_string(dir.join("keys"))
            .unwrap()
            .lines()
            .map(|l| {
                let (i, s) = l.split_once(' ').unwrap();
                Key { id: i.into(), secret: s.into() }
            })
            .collect();
        let mut it = keys.into_iter();
        (it.next().unwrap(), it.next().unwrap())
    } else {
        let a = create_tenant(&store, &config, "a").unwrap();
        let b = create_tenant(&store, &config, "b").unwrap();
        let keys = format!(
            "{} {}\n{} {}\n",
            a.access_key.id,
            a.access_key.secret.expose(),
            b.access_key.id,
            b.access_key.secret.expose()
        );
        std::fs::write(dir.join("keys"), keys).unwrap();
        (
            Key { id: a.access_key.id, secret: a.access_key.secret.expose().to_string() },
            Key { id: b.access_key.id, secret: b.access_key.secret.expose().to_string() },
        )
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(Reconciler::new(svc.clone(), Duration::from_millis(50)).run(stop_rx));
    let app = app(svc.clone(), Arc::new(Metrics::default()));
    Harness { app, svc, store, a, b, dir: dir.to_path_buf(), _owned: None, stop }
}

pub fn harness_with(config: Config) -> Harness {
    let owned = tempfile::tempdir().unwrap();
    let mut h = harness_at(config, owned.path());
    h._owned = Some(owned);
    h
}

pub fn harness() -> Harness {
    harness_with(test_config(|_| {}))
}

pub fn timestamp(offset_s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_s);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Builds a signed HMAC-SHA1 v1.0 query string for `params`.
pub fn signed_query(key: &Key, params: &[(&str, &str)], nonce: &str, ts: &str) -> String {
    let mut all: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (k, v) in [
        ("Version", "2016-04-28"),
        ("AccessKeyId", key.id.as_str()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", ts),
    ] {
        if !all.iter().any(|(n, _)| n == k) {
            all.push((k.to_string(), v.to_string()));
        }
    }
    all.sort();
    let canonical: Vec<String> = all.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect();
    let canonical = canonical.join("&");
    let sts = format!("POST&%2F&{}", pct(&canonical));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{}&", key.secret).as_bytes()).unwrap();
    mac.update(sts.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("{canonical}&Signature={}", pct(&sig))
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub content_type: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["Code"].as_str().unwrap_or("")
    }
}

impl Harness {
    pub async fn raw(&self, method: &str, uri: &str) -> Reply {
        let req =
            Request::builder().method(method).uri(uri).header("host", "127.0.0.1:8080").body(Body::empty()).unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text, content_type }
    }

    pub async fn call_as(&self, key: &Key, params: &[(&str, &str)]) -> Reply {
        let nonce = uuid::Uuid::new_v4().to_string();
        let q = signed_query(key, params, &nonce, &timestamp(0));
        self.raw("POST", &format!("/?{q}")).await
    }

    /// Calls as tenant A in cn-hangzhou unless the params say otherwise.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Reply {
        let mut all = vec![("Action", action)];
        if !params.iter().any(|(k, _)| *k == "RegionId") {
            all.push(("RegionId", "cn-hangzhou"));
        }
        all.extend_from_slice(params);
        self.call_as(&self.a, &all).await
    }

    pub async fn ok(&self, action: &str, params: &[(&str, &str)]) -> Value {
        let r = self.call(action, params).await;
        assert_eq!(r.status, 200, "{action} failed: {}", r.text);
        r.body
    }

    /// Waits for the reconciler; the 30 s deadline only bounds a broken run (CI machines schedule late).
    pub async fn wait_status(&self, gateway: &str, want: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let b = self.ok("DescribeVpnGateway", &[("VpnGatewayId", gateway)]).await;
            if b["Status"] == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("gateway {gateway} never became {want}");
    }

    pub async fn wait_gone(&self, gateway: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let r = self.call("DescribeVpnGateway", &[("VpnGatewayId", gateway)]).await;
            if r.status == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("gateway {gateway} was never deleted");
    }

    /// An active gateway with SSL enabled.
    pub async fn active_gateway(&self) -> String {
        let b =
            self.ok("CreateVpnGateway", &[("VpcId", "vpc-test0001"), ("Bandwidth", "5"), ("EnableSsl", "true")]).await;
        let id = b["VpnGatewayId"].as_str().unwrap().to_string();
        self.wait_status(&id, "active").await;
        id
    }
}
