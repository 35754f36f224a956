//! `openvgw-bench`: API throughput, latency, scaling and memory of a real `openvgw serve` process.
//!
//! Starts the server on loopback with a fresh data directory (or a PostgreSQL database given by `--store`), creates
//! a tenant, and drives requests over keep-alive connections; every API request is signed anew with its own nonce,
//! as the SDKs sign (ACS3-HMAC-SHA256 for Alibaba, SDK-HMAC-SHA256 for Huawei). In order:
//!   1. `GET /healthz`, a constant route of the same server: the baseline every figure is divided by, so that the
//!      ratios mean the same on any machine;
//!   2. page costs with `--small` customer gateways stored (the "1k" side of the scaling figure); a second tenant
//!      gets as many;
//!   3. `CreateCustomerGateway` (durable, group-committed) until `--resources` are stored, then Huawei's
//!      `create_cgw` for as many;
//!   4. the same page costs again, now with `--resources` stored: the ratio is how a page's cost grows with data
//!      (and with everything that grew meanwhile, such as the nonce table); then the second tenant's pages against
//!      the first's in alternating rounds, so that both meet the same store and load: the page's own cost;
//!   5. `DescribeVpnGateways` with `PageSize=50` (`--gateways` VPN gateways stored), every answer read from the
//!      store; then the server is restarted with its cache of list answers on (`server.read_cache`, the default;
//!      phases 1–4 run with it off, so that they measure the store) and the same list is measured again, then
//!      Huawei's `list_cgws`;
//!   6. `--sustained` more `DescribeVpnGateways` calls (10 per page) with the server's resident memory before and
//!      after and the range of its heap over each half (the second half's peak must not exceed the first's by
//!      more than noise), and the sizes of the store's files after.
//!
//! One access key signs everything, so the per-key cap on remembered nonces (`server.max_nonces_per_key`, 100,000
//! by default: one key's requests within twice the signature window) is raised for the run.
//!
//! Prints requests/s, p50/p90/p99 latency, ratios and the store's writes per commit. `--quick` runs every phase with
//! small numbers in seconds (CI runs it to prove the benchmark works; nothing is asserted about speed, but any
//! failed request fails the run). Traffic goes only to 127.0.0.1.

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
    /// Small numbers everywhere: proves every phase works, in seconds.
    #[arg(long)]
    quick: bool,
    /// A PostgreSQL store (`postgres://…`) instead of SQLite in the temporary data directory.
    #[arg(long)]
    store: Option<String>,
    /// Customer gateways stored when page costs are measured the first time.
    #[arg(long, default_value_t = 1_000)]
    small: u64,
    /// Customer gateways stored (per dialect) when they are measured again and for the other phases.
    #[arg(long, default_value_t = 100_000)]
    resources: u64,
    /// VPN gateways created (they are what DescribeVpnGateways returns).
    #[arg(long, default_value_t = 50)]
    gateways: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// Requests per measured read phase.
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Requests of the sustained phase (resident memory before and after, the heap's range over each half).
    #[arg(long, default_value_t = 1_000_000)]
    sustained: u64,
    /// The server's port (0: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

impl Args {
    fn effective(mut self) -> Args {
        if self.quick {
            self.small = self.small.min(100);
            self.resources = self.resources.min(400);
            self.gateways = self.gateways.min(10);
            self.requests = self.requests.min(300);
            self.sustained = self.sustained.min(1_000);
        }
        self
    }
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

fn get(path: &str, port: u16) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n")
}

/// The server's resident memory in kB: (all, anonymous). The rest is file pages it maps (SQLite's memory-mapped
/// reads of the database), which the kernel may drop at any time; the anonymous part is the heap.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()))
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

/// A counter from the server's /metrics.
async fn metric(port: u16, name: &str) -> anyhow::Result<f64> {
    let (_, body) = Conn::open(port).await?.send(&get("/metrics", port)).await?;
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .with_context(|| format!("no {name} in /metrics"))
}

/// Samples the server's heap (anonymous resident memory) until stopped: a single reading moves by tens of MB as
/// SQLite's page caches are dropped and refilled, so only the range over a phase says whether memory grows.
struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let (mut low, mut high) = (u64::MAX, 0);
            loop {
                let heap = rss_kb(pid).1;
                (low, high) = (low.min(heap), high.max(heap));
                tokio::select! {
                    _ = &mut stopped => return (low, high),
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        Sampler { stop, task }
    }

    /// The lowest and highest heap seen, in kB.
    async fn stop(self) -> (u64, u64) {
        let _ = self.stop.send(());
        self.task.await.unwrap_or((0, 0))
    }
}

/// The used nonces a SQLite store remembers in memory (`None` on PostgreSQL).
async fn replay_records(port: u16, sqlite: bool) -> anyhow::Result<Option<f64>> {
    if !sqlite {
        return Ok(None);
    }
    Ok(Some(metric(port, "openvgw_replay_records").await?))
}

/// SQLite's commits and the writes they carried, as the server reports them (`None` for PostgreSQL).
async fn commit_stats(port: u16, sqlite: bool) -> anyhow::Result<Option<(f64, f64)>> {
    if !sqlite {
        return Ok(None);
    }
    Ok(Some((metric(port, "openvgw_store_commits_total").await?, metric(port, "openvgw_store_writes_total").await?)))
}

/// The Alibaba and Huawei signers of a tenant printed by `openvgw tenant create`.
fn signers(t: &serde_json::Value, host: &str) -> anyhow::Result<(Arc<Signer>, Arc<HwSigner>)> {
    let ak = t["access_key_id"].as_str().context("no key")?.to_string();
    let sk = t["access_key_secret"].as_str().context("no secret")?.to_string();
    let project = t["projects"]["cn-north-4"].as_str().context("no cn-north-4 project")?.to_string();
    Ok((
        Arc::new(Signer { ak: ak.clone(), sk: sk.clone(), host: host.to_string() }),
        Arc::new(HwSigner { ak, sk, host: host.to_string(), project }),
    ))
}

/// The marker the service hands out after the first `count` Huawei customer gateways (pages of at most 200).
async fn marker_after(port: u16, hw: &HwSigner, count: u64) -> anyhow::Result<String> {
    let mut c = Conn::open(port).await?;
    let (mut seen, mut next, count) = (0, String::new(), count.max(1));
    while seen < count {
        let limit = (count - seen).min(200);
        let query = if next.is_empty() { format!("limit={limit}") } else { format!("limit={limit}&marker={next}") };
        let (_, body) = c.send(&hw.request("GET", "/customer-gateways", &query, "")).await?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        next = v["page_info"]["next_marker"].as_str().with_context(|| format!("no next_marker in {body}"))?.into();
        seen += limit;
    }
    Ok(next)
}

/// How much slower the larger store's pages are: `[alibaba_small, alibaba_big, huawei_small, huawei_big]`.
fn print_page_ratio(what: &str, [a_small, a_big, h_small, h_big]: [&Figures; 4]) {
    println!(
        "page cost, {what}: DescribeCustomerGateways {:.2} (p99 {:.2}), list_cgws {:.2} (p99 {:.2})",
        a_small.rate() / a_big.rate(),
        a_big.p99_ms() / a_small.p99_ms().max(0.001),
        h_small.rate() / h_big.rate(),
        h_big.p99_ms() / h_small.p99_ms().max(0.001),
    );
}

/// Adds a round of (Alibaba page, Huawei page) figures to what earlier rounds measured.
fn absorb(acc: &mut Option<(Figures, Figures)>, (a, h): (Figures, Figures)) {
    match acc {
        Some((x, y)) => {
            x.absorb(a);
            y.absorb(h);
        }
        None => *acc = Some((a, h)),
    }
}

struct Figures {
    name: String,
    latencies_us: Vec<u64>,
    elapsed: Duration,
    errors: u64,
}

impl Figures {
    /// Adds another run of the same requests (alternating rounds).
    fn absorb(&mut self, other: Figures) {
        self.latencies_us.extend(other.latencies_us);
        self.elapsed += other.elapsed;
        self.errors += other.errors;
    }

    fn rate(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn p99_ms(&self) -> f64 {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        l.get(((l.len() as f64 * 0.99) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1000.0
    }

    fn print(&mut self, baseline: Option<f64>) {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len().max(1);
        let q =
            |p: f64| self.latencies_us.get(((n as f64 * p) as usize).min(n - 1)).copied().unwrap_or(0) as f64 / 1000.0;
        let ratio = baseline.map(|b| format!("  {:.3} of /healthz", self.rate() / b)).unwrap_or_default();
        println!(
            "{:<46} {:>8} req {:>8.0} req/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  errors {}{ratio}",
            self.name,
            self.latencies_us.len(),
            self.rate(),
            q(0.50),
            q(0.90),
            q(0.99),
            self.errors
        );
    }
}

/// Runs `total` requests made by `make(i)` over `concurrency` connections.
async fn run(
    name: impl Into<String>,
    port: u16,
    concurrency: u64,
    total: u64,
    make: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> anyhow::Result<Figures> {
    let name: Arc<str> = name.into().into();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, errors, make, name) = (next.clone(), errors.clone(), make.clone(), name.clone());
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
    Ok(Figures {
        name: name.to_string(),
        latencies_us,
        elapsed: started.elapsed(),
        errors: errors.load(Ordering::Relaxed),
    })
}

/// Starts `openvgw serve` on `args.port` and waits until it answers `/healthz`.
async fn start_server(
    args: &Args,
    data: &std::path::Path,
    config: &std::path::Path,
    store_args: &[String],
) -> anyhow::Result<tokio::process::Child> {
    let mut server = tokio::process::Command::new(&args.bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", args.port), "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(store_args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..200 {
        if let Some(status) = server.try_wait()? {
            bail!("the server exited ({status}); is port {} taken?", args.port);
        }
        if let Ok(mut c) = Conn::open(args.port).await {
            if c.send(&get("/healthz", args.port)).await.map(|(s, _)| s == 200).unwrap_or(false) {
                return Ok(server);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server did not answer /healthz")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse().effective();
    if args.port == 0 {
        args.port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    }
    if !args.bin.exists() {
        bail!("{} not found: run `cargo build --release -p openvgw` first", args.bin.display());
    }
    let dir = tempfile::tempdir()?;
    let per_dialect = args.resources.max(args.small);
    // The store's own costs are measured with the server's cache of list answers off (every page is read); the
    // lists of phase 5 are measured both ways, and phase 6 runs as deployed (cache on).
    let config_with = |read_cache: bool| {
        format!(
            "[server]\nmax_nonces_per_key = 10000000\nread_cache = {read_cache}\n\
             [quotas]\nvpn_gateways_per_region = {}\ncustomer_gateways_per_region = {}\n\
             [dataplane]\neip_pool = \"203.0.113.0/24,198.51.100.0/24,192.0.2.0/24\"\n\
             [dataplane.simulated]\nprovision_delay_ms = 0\napply_delay_ms = 0\n\
             [rate_limit]\nenabled = false\n",
            args.gateways + 1,
            2 * per_dialect + 1
        )
    };
    let config = dir.path().join("bench.toml");
    std::fs::write(&config, config_with(false))?;
    let data = dir.path().join("data");
    let store_args: Vec<String> = args.store.iter().flat_map(|s| ["--store".to_string(), s.clone()]).collect();
    // The tenant everything is measured with, and a second one that keeps `small` customer gateways for the
    // same-window page comparison (phase 4).
    let create_tenant = |name: &str| -> anyhow::Result<serde_json::Value> {
        let out = std::process::Command::new(&args.bin)
            .args(["tenant", "create", "--name", name, "--data-dir"])
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(&store_args)
            .output()?;
        if !out.status.success() {
            bail!("tenant create failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let t = create_tenant("bench")?;
    let t_small = create_tenant("bench-small")?;
    let mut server = start_server(&args, &data, &config, &store_args).await?;
    let host = format!("127.0.0.1:{}", args.port);
    let (signer, hw) = signers(&t, &host)?;
    let (small_signer, small_hw) = signers(&t_small, &host)?;
    println!(
        "openvgw-bench{}: store {}, {} then {} customer gateways per dialect, {} VPN gateways, {} connections, {}",
        if args.quick { " (quick)" } else { "" },
        args.store.as_deref().map_or("sqlite", |_| "postgres"),
        args.small,
        per_dialect,
        args.gateways,
        args.concurrency,
        args.bin.display()
    );
    let (port, conc, n) = (args.port, args.concurrency, args.requests);
    let failed = std::cell::Cell::new(0u64);
    let report = |f: &mut Figures, base: Option<f64>| {
        failed.set(failed.get() + f.errors);
        f.print(base);
    };

    // 1. The baseline.
    let mut health = run("GET /healthz (baseline)", port, conc, n, Arc::new(move |_| get("/healthz", port))).await?;
    report(&mut health, None);
    let base = Some(health.rate());

    // Customer gateways: Alibaba's from 198.18.0.0/16, Huawei's from 198.19.0.0/16 (the benchmarking range; nothing
    // is sent there). `from..to` creates the next ones for the tenant that `s` / `h` sign for.
    let create_aliyun = |s: Arc<Signer>, from: u64, to: u64| {
        let first = u32::from(Ipv4Addr::new(198, 18, 0, 1));
        run(
            "CreateCustomerGateway",
            port,
            conc,
            to.saturating_sub(from),
            Arc::new(move |i| {
                let ip = Ipv4Addr::from(first + (from + i) as u32).to_string();
                s.request("CreateCustomerGateway", &[("RegionId", "cn-hangzhou".into()), ("IpAddress", ip)])
            }),
        )
    };
    let create_huawei = |h: Arc<HwSigner>, from: u64, to: u64| {
        let first = u32::from(Ipv4Addr::new(198, 19, 0, 1));
        run(
            "create_cgw",
            port,
            conc,
            to.saturating_sub(from),
            Arc::new(move |i| {
                let ip = Ipv4Addr::from(first + (from + i) as u32);
                h.request(
                    "POST",
                    "/customer-gateways",
                    "",
                    &format!("{{\"customer_gateway\": {{\"id_value\": \"{ip}\"}}}}"),
                )
            }),
        )
    };
    // The page whose cost must not grow with the data: Alibaba's first page of 50 (offset paging, with its
    // TotalCount) and a Huawei page of 50 from a marker (keyset paging) in the middle of the first `small`.
    let pages = |s: Arc<Signer>, h: Arc<HwSigner>, marker: String, label: String, requests: u64| async move {
        let a = run(
            format!("DescribeCustomerGateways p1/50 {label}"),
            port,
            conc,
            requests,
            Arc::new(move |_| {
                s.request("DescribeCustomerGateways", &[("RegionId", "cn-hangzhou".into()), ("PageSize", "50".into())])
            }),
        )
        .await?;
        let b = run(
            format!("list_cgws 50 from a marker {label}"),
            port,
            conc,
            requests,
            Arc::new(move |_| h.request("GET", "/customer-gateways", &format!("limit=50&marker={marker}"), "")),
        )
        .await?;
        anyhow::Ok((a, b))
    };

    // 2. Pages with `small` stored; the second tenant gets as many.
    let mut c1 = create_aliyun(signer.clone(), 0, args.small).await?;
    let mut c2 = create_huawei(hw.clone(), 0, args.small).await?;
    let marker = marker_after(port, &hw, args.small / 2).await?;
    let (mut a_small, mut h_small) =
        pages(signer.clone(), hw.clone(), marker.clone(), format!("@{}", args.small), n).await?;
    let small_marker = {
        let a = create_aliyun(small_signer.clone(), 0, args.small).await?;
        let h = create_huawei(small_hw.clone(), 0, args.small).await?;
        failed.set(failed.get() + a.errors + h.errors);
        marker_after(port, &small_hw, args.small / 2).await?
    };

    // 3. Durable creates up to `resources`.
    let mut c3 = create_aliyun(signer.clone(), args.small, per_dialect).await?;
    let mut c4 = create_huawei(hw.clone(), args.small, per_dialect).await?;
    for f in [&mut c1, &mut c2, &mut c3, &mut c4] {
        f.name = format!("{} ({} req)", f.name, f.latencies_us.len());
    }
    report(&mut c3, base);
    report(&mut c4, base);
    failed.set(failed.get() + c1.errors + c2.errors);

    // 4. The same pages with everything stored: the same tenant now (what a tenant sees as it grows, including
    // what grew beside it: nonces, the database's size), and — in alternating rounds, so both meet the same store,
    // nonce table and machine load — the tenant of `small` against the tenant of `resources` (the page's own cost).
    let (mut a_big, mut h_big) =
        pages(signer.clone(), hw.clone(), marker.clone(), format!("@{per_dialect}"), n).await?;
    for f in [&mut a_small, &mut a_big, &mut h_small, &mut h_big] {
        report(f, base);
    }
    print_page_ratio(
        &format!("same tenant @{per_dialect} later / @{} earlier", args.small),
        [&a_small, &a_big, &h_small, &h_big],
    );
    const ROUNDS: u64 = 4;
    let (mut small_pages, mut big_pages) = (None, None);
    for _ in 0..ROUNDS {
        let small = pages(small_signer.clone(), small_hw.clone(), small_marker.clone(), String::new(), n / ROUNDS);
        absorb(&mut small_pages, small.await?);
        let big = pages(signer.clone(), hw.clone(), marker.clone(), String::new(), n / ROUNDS);
        absorb(&mut big_pages, big.await?);
    }
    let ((mut a1, mut h1), (mut a2, mut h2)) = (small_pages.context("no rounds")?, big_pages.context("no rounds")?);
    a1.name = format!("DescribeCustomerGateways p1/50 tenant@{}", args.small);
    a2.name = format!("DescribeCustomerGateways p1/50 tenant@{per_dialect}");
    h1.name = format!("list_cgws 50 from a marker tenant@{}", args.small);
    h2.name = format!("list_cgws 50 from a marker tenant@{per_dialect}");
    for f in [&mut a1, &mut a2, &mut h1, &mut h2] {
        report(f, base);
    }
    print_page_ratio(
        &format!("same window, tenant @{per_dialect} / tenant @{} ({ROUNDS} alternating rounds)", args.small),
        [&a1, &a2, &h1, &h2],
    );

    // 5. Lists of VPN gateways.
    let s = signer.clone();
    let mut setup = run(
        "CreateVpnGateway (setup)",
        port,
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
    failed.set(failed.get() + setup.errors);
    setup.latencies_us.clear();
    let describe = |how: &str| {
        let s = signer.clone();
        run(
            format!("DescribeVpnGateways 50/page ({} stored) {how}", args.gateways),
            port,
            conc,
            n,
            Arc::new(move |_| {
                s.request("DescribeVpnGateways", &[("RegionId", "cn-hangzhou".into()), ("PageSize", "50".into())])
            }),
        )
    };
    let mut read = describe("read").await?;
    report(&mut read, base);

    // The same server on the same data with its cache of list answers on, as deployed.
    let first_commits = commit_stats(port, args.store.is_none()).await?;
    server.kill().await.ok();
    server.wait().await.ok();
    std::fs::write(&config, config_with(true))?;
    let mut server = start_server(&args, &data, &config, &store_args).await?;
    let pid = server.id().context("server pid")?;
    let mut d = describe("kept").await?;
    report(&mut d, base);
    let h = hw.clone();
    let mut l = run(
        "list_cgws 100/page",
        port,
        conc,
        n,
        Arc::new(move |_| h.request("GET", "/customer-gateways", "limit=100", "")),
    )
    .await?;
    report(&mut l, base);

    // 6. Memory under sustained load, in two halves: the first warms what fills up to a bound (SQLite's page caches
    // of the replay file's growing tables), the second shows whether anything keeps growing.
    // The default page (10) keeps a million calls to minutes; every call still signs, checks a nonce and lists.
    let sustained = |from: u64, count: u64| {
        let s = signer.clone();
        run(
            "DescribeVpnGateways 10/page sustained",
            port,
            conc,
            count,
            Arc::new(move |i| {
                let page = ((from + i) % 5 + 1).to_string();
                s.request("DescribeVpnGateways", &[("RegionId", "cn-hangzhou".into()), ("PageNumber", page)])
            }),
        )
    };
    let half = args.sustained / 2;
    let nonces_before = replay_records(port, args.store.is_none()).await?;
    let before = rss_kb(pid);
    let sampler = Sampler::start(pid);
    let mut sus = sustained(0, half).await?;
    let first = sampler.stop().await;
    let sampler = Sampler::start(pid);
    sus.absorb(sustained(half, args.sustained - half).await?);
    let second = sampler.stop().await;
    let after = rss_kb(pid);
    report(&mut sus, base);
    println!(
        "resident memory (kB): {} before, {} after {} more requests; of it anonymous (the heap): {} before, {} after; \
         heap sampled every 100 ms, first half {} to {}, second half {} to {} (the second's peak {:+} on the first's)",
        before.0,
        after.0,
        args.sustained,
        before.1,
        after.1,
        first.0,
        first.1,
        second.0,
        second.1,
        second.1 as i64 - first.1 as i64
    );
    if let (Some(n0), Some(n1)) = (nonces_before, replay_records(port, args.store.is_none()).await?) {
        // SQLite keeps the used nonces of two signature windows in memory: the heap grows with them until the
        // first expire (a run shorter than the window never sees that), by design.
        let added = n1 - n0;
        println!(
            "used nonces remembered in memory: {n0:.0} before, {n1:.0} after; the heap grew {:.0} bytes per \
             nonce added",
            (after.1 as f64 - before.1 as f64) * 1024.0 / added.max(1.0)
        );
    }
    if args.store.is_none() {
        // The WALs must not grow with the load: passive checkpoints alone let them grow without end.
        let sizes: Vec<String> = ["openvgw.db", "openvgw.db-wal", "openvgw.db-replay", "openvgw.db-replay-wal"]
            .iter()
            .map(|f| {
                let kb = std::fs::metadata(data.join(f)).map(|m| m.len() / 1024).unwrap_or(0);
                format!("{f} {kb} kB")
            })
            .collect();
        println!("files after the sustained load: {}", sizes.join(", "));
    }
    let (hits, misses) = (
        metric(port, "openvgw_read_cache_total{result=\"hit\"}").await?,
        metric(port, "openvgw_read_cache_total{result=\"miss\"}").await?,
    );
    println!("kept list answers since the restart: {hits:.0} served from memory, {misses:.0} read");
    if let (Some((c1, w1)), Some((c2, w2))) = (first_commits, commit_stats(port, args.store.is_none()).await?) {
        let (commits, writes) = (c1 + c2, w1 + w2);
        println!(
            "store: {writes:.0} writes in {commits:.0} commits ({:.2} writes per commit)",
            writes / commits.max(1.0)
        );
    }
    server.kill().await.ok();
    if failed.get() > 0 {
        bail!("{} requests failed", failed.get());
    }
    Ok(())
}
