//! `openvgw-bench`: API throughput and latency of a real `openvgw serve` process.
//!
//! Starts the server on loopback with a fresh data directory, creates a tenant, and drives signed requests
//! (ACS3-HMAC-SHA256, as today's SDKs sign; every request signed anew with its own nonce) over keep-alive
//! connections:
//!   1. `CreateCustomerGateway` until the store holds `--resources` customer gateways (measured);
//!   2. a few VPN gateways;
//!   3. `DescribeVpnGateways` (measured) with all of that stored;
//!   4. the same through Huawei's REST dialect (SDK-HMAC-SHA256): `create_cgw` and `list_cgws` (100 per page),
//!      printed with their ratio to the Alibaba figures of the same run.
//!
//! Prints requests/s and p50/p90/p99 latency. Traffic goes only to 127.0.0.1.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser, Clone)]
struct Args {
    /// The openvgw binary to benchmark (build it with --release).
    #[arg(long, default_value = "target/release/openvgw")]
    bin: PathBuf,
    /// Customer gateways stored before DescribeVpnGateways is measured.
    #[arg(long, default_value_t = 10_000)]
    resources: u64,
    /// VPN gateways created (they are what DescribeVpnGateways returns).
    #[arg(long, default_value_t = 50)]
    gateways: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// DescribeVpnGateways requests measured.
    #[arg(long, default_value_t = 20_000)]
    describes: u64,
    #[arg(long, default_value_t = 18_765)]
    port: u16,
}

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn pct(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

struct Signer {
    ak: String,
    sk: String,
    host: String,
}

impl Signer {
    /// An ACS3-HMAC-SHA256 request, byte for byte what the tea SDK sends.
    fn request(&self, action: &str, params: &[(&str, String)]) -> String {
        let mut sorted: Vec<(String, String)> = params.iter().map(|(k, v)| (pct(k), pct(v))).collect();
        sorted.sort();
        let query: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query = query.join("&");
        let now = time::OffsetDateTime::now_utc();
        let date = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let body_hash = hex::encode(Sha256::digest(b""));
        let headers = [
            ("host", self.host.clone()),
            ("x-acs-action", action.to_string()),
            ("x-acs-content-sha256", body_hash.clone()),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-version", "2016-04-28".to_string()),
        ];
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
        let signed = signed.join(";");
        let canonical = format!("POST\n/\n{query}\n{canonical_headers}\n{signed}\n{body_hash}");
        let sts = format!("ACS3-HMAC-SHA256\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
        let mut mac = Hmac::<Sha256>::new_from_slice(self.sk.as_bytes()).expect("any key length works");
        mac.update(sts.as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        let mut req = format!("POST /?{query} HTTP/1.1\r\n");
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!(
            "authorization: ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed},Signature={sig}\r\ncontent-length: 0\r\n\r\n",
            self.ak
        ));
        req
    }
}

/// Signs Huawei REST requests the way huaweicloudsdkcore does (SDK-HMAC-SHA256).
struct HwSigner {
    ak: String,
    sk: String,
    host: String,
    project: String,
}

impl HwSigner {
    fn request(&self, method: &str, path: &str, query: &str, body: &str) -> String {
        let path = format!("/v5/{}{path}", self.project);
        let date = {
            let n = time::OffsetDateTime::now_utc();
            format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                n.year(),
                n.month() as u8,
                n.day(),
                n.hour(),
                n.minute(),
                n.second()
            )
        };
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("host".to_string(), self.host.clone()),
            ("x-project-id".to_string(), self.project.clone()),
            ("x-sdk-date".to_string(), date.clone()),
        ];
        let signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        let cred = openvgw_auth::huawei::Credential {
            access_key_id: self.ak.clone(),
            sdk_date: date,
            signed_headers: signed.clone(),
            signature: String::new(),
        };
        let parts = openvgw_auth::RequestParts {
            method,
            path: &path,
            raw_query: query,
            headers: &headers,
            body: body.as_bytes(),
        };
        let sts = openvgw_auth::huawei::string_to_sign(&parts, &cred).expect("a well-formed request");
        let sig = openvgw_auth::huawei::signature(&sts, &self.sk);
        let target = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
        let mut req = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!(
            "authorization: SDK-HMAC-SHA256 Access={}, SignedHeaders={}, Signature={sig}\r\ncontent-length: {}\r\n\r\n{body}",
            self.ak,
            signed.join(";"),
            body.len()
        ));
        req
    }
}

struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    async fn open(port: u16) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        Ok(Conn { stream: BufReader::new(s) })
    }

    /// Sends one request, returns (status, body).
    async fn send(&mut self, req: &str) -> anyhow::Result<(u16, String)> {
        self.stream.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line.split_whitespace().nth(1).context("bad status line")?.parse()?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

struct Figures {
    name: &'static str,
    latencies_us: Vec<u64>,
    elapsed: Duration,
    errors: u64,
}

impl Figures {
    fn print(&mut self) {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len().max(1);
        let q =
            |p: f64| self.latencies_us.get(((n as f64 * p) as usize).min(n - 1)).copied().unwrap_or(0) as f64 / 1000.0;
        println!(
            "{:<24} {:>8} req  {:>9.0} req/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
            self.name,
            self.latencies_us.len(),
            self.latencies_us.len() as f64 / self.elapsed.as_secs_f64(),
            q(0.50),
            q(0.90),
            q(0.99),
            self.errors
        );
    }
}

/// Runs `total` requests made by `make(i)` over `concurrency` connections.
async fn run(
    name: &'static str,
    port: u16,
    concurrency: u64,
    total: u64,
    make: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> anyhow::Result<Figures> {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, errors, make) = (next.clone(), errors.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(port).await?;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let req = make(i);
                let t = Instant::now();
                let (status, body) = conn.send(&req).await?;
                lat.push(t.elapsed().as_micros() as u64);
                if !(200..300).contains(&status) && errors.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("{name}: HTTP {status}: {body}");
                }
            }
            anyhow::Ok(lat)
        }));
    }
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await??);
    }
    Ok(Figures { name, latencies_us, elapsed: started.elapsed(), errors: errors.load(Ordering::Relaxed) })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.bin.exists() {
        bail!("{} not found: run `cargo build --release -p openvgw` first", args.bin.display());
    }
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[quotas]\nvpn_gateways_per_region = {}\ncustomer_gateways_per_region = {}\n\
             [dataplane]\neip_pool = \"203.0.113.0/24,198.51.100.0/24,192.0.2.0/24\"\n\
             [dataplane.simulated]\nprovision_delay_ms = 0\napply_delay_ms = 0\n\
             [rate_limit]\nenabled = false\n",
            args.gateways + 1,
            args.resources + 1
        ),
    )?;
    let data = dir.path().join("data");
    let tenant = std::process::Command::new(&args.bin)
        .args(["tenant", "create", "--name", "bench", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .output()?;
    if !tenant.status.success() {
        bail!("tenant create failed: {}", String::from_utf8_lossy(&tenant.stderr));
    }
    let t: serde_json::Value = serde_json::from_slice(&tenant.stdout)?;
    let mut server = tokio::process::Command::new(&args.bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", args.port), "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..100 {
        if Conn::open(args.port).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signer = Arc::new(Signer {
        ak: t["access_key_id"].as_str().context("no key")?.to_string(),
        sk: t["access_key_secret"].as_str().context("no secret")?.to_string(),
        host: format!("127.0.0.1:{}", args.port),
    });
    println!(
        "openvgw-bench: {} customer gateways, {} VPN gateways, {} connections, server {}",
        args.resources,
        args.gateways,
        args.concurrency,
        args.bin.display()
    );

    // The benchmarking range 198.18.0.0/15 gives enough distinct customer-gateway addresses; nothing is sent there.
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 1));
    let s = signer.clone();
    let mut create = run(
        "CreateCustomerGateway",
        args.port,
        args.concurrency,
        args.resources,
        Arc::new(move |i| {
            let ip = Ipv4Addr::from(base + i as u32).to_string();
            s.request("CreateCustomerGateway", &[("RegionId", "cn-hangzhou".into()), ("IpAddress", ip)])
        }),
    )
    .await?;
    let s = signer.clone();
    run(
        "CreateVpnGateway (setup)",
        args.port,
        4,
        args.gateways,
        Arc::new(move |_| {
            s.request(
                "CreateVpnGateway",
                &[("RegionId", "cn-hangzhou".into()), ("VpcId", "vpc-bench0001".into()), ("Bandwidth", "5".into())],
            )
        }),
    )
    .await?;
    let s = signer.clone();
    let mut describe = run(
        "DescribeVpnGateways",
        args.port,
        args.concurrency,
        args.describes,
        Arc::new(move |i| {
            let page = (i % 5 + 1).to_string();
            s.request("DescribeVpnGateways", &[("RegionId", "cn-hangzhou".into()), ("PageNumber", page)])
        }),
    )
    .await?;

    let hw = Arc::new(HwSigner {
        ak: signer.ak.clone(),
        sk: signer.sk.clone(),
        host: signer.host.clone(),
        project: t["projects"]["cn-north-4"].as_str().context("no cn-north-4 project")?.to_string(),
    });
    let h = hw.clone();
    let hw_base = u32::from(Ipv4Addr::new(198, 19, 0, 1));
    let mut hw_create = run(
        "create_cgw",
        args.port,
        args.concurrency,
        args.resources,
        Arc::new(move |i| {
            let ip = Ipv4Addr::from(hw_base + i as u32);
            h.request(
                "POST",
                "/customer-gateways",
                "",
                &format!("{{\"customer_gateway\": {{\"id_value\": \"{ip}\"}}}}"),
            )
        }),
    )
    .await?;
    let h = hw.clone();
    let mut hw_list = run(
        "list_cgws (100/page)",
        args.port,
        args.concurrency,
        args.describes,
        Arc::new(move |_| h.request("GET", "/customer-gateways", "limit=100", "")),
    )
    .await?;
    create.print();
    describe.print();
    hw_create.print();
    hw_list.print();
    let rate = |f: &Figures| f.latencies_us.len() as f64 / f.elapsed.as_secs_f64();
    println!(
        "ratio huawei/aliyun: create {:.2}, list {:.2} (list pages: 100 customer gateways vs 10 VPN gateways)",
        rate(&hw_create) / rate(&create),
        rate(&hw_list) / rate(&describe)
    );
    server.kill().await.ok();
    Ok(())
}
