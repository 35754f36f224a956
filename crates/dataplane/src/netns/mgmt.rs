//! The driver's one long-lived connection to each OpenVPN server's management interface.
//!
//! OpenVPN serves one management client at a time and, with `management-client-auth`, leaves every new client
//! pending until that client answers. So the driver keeps exactly one connection per server (a tokio task that
//! reconnects whenever OpenVPN restarts or the socket goes away) and routes every management command through it:
//! `status 3` for sessions and counts, `client-kill`, and the `client-auth` / `client-deny` answers of password
//! servers. A client that connects while no manager is attached is never announced to anyone and so never let in
//! (OpenVPN drops it at the end of its handshake window).
//!
//! Passwords: OpenVPN hands the clear password over in `>CLIENT:ENV,password=`; it lives only in memory (as a
//! [`Secret`]) until argon2 has checked it against the user's hash, and is never logged or written anywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

use super::sys::failed;
use crate::{ClientSession, DataplaneError, Secret, SslServerIntent, UserIntent};

/// How long a caller waits for a management answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts to (re)connect to the management socket.
const RECONNECT_EVERY: Duration = Duration::from_millis(200);
/// argon2 is memory- and CPU-hard: at most this many checks run at once in the whole driver, so a burst of sign-ins
/// cannot starve the host.
static VERIFY_SLOTS: Semaphore = Semaphore::const_new(2);

/// Who may sign in to a password server, and what each gets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PasswordAuth {
    pub netmask: Ipv4Addr,
    /// Routes every client gets from the server config; a user's other allowed networks are pushed per user.
    pub server_routes: Vec<Ipv4Net>,
    pub users: BTreeMap<String, UserIntent>,
}

impl PasswordAuth {
    /// The password settings of a server; `None` for certificate servers.
    pub(crate) fn of(s: &SslServerIntent) -> Option<PasswordAuth> {
        match &s.clients {
            crate::ClientAuthIntent::Password { users } => Some(PasswordAuth {
                netmask: s.client_ip_pool.netmask(),
                server_routes: s.local_subnets.clone(),
                users: users.iter().map(|u| (u.name.clone(), u.clone())).collect(),
            }),
            crate::ClientAuthIntent::Certificate { .. } => None,
        }
    }

    /// Users of `self` whose live sessions must end under `new`: gone, given another address, or needing other
    /// routes pushed. Other changes of what a user may reach need no reconnect: the firewall checks every packet.
    fn revoked_by(&self, new: &PasswordAuth) -> BTreeSet<String> {
        self.users
            .iter()
            .filter(|(name, old)| {
                let kept = new.users.get(*name);
                !matches!(kept, Some(u) if u.address == old.address
                    && new.pushed_routes(u) == self.pushed_routes(old))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The routes a user's session was given beyond the server's own: its allowed networks outside them.
    fn pushed_routes(&self, user: &UserIntent) -> BTreeSet<Ipv4Net> {
        Ipv4Net::aggregate(&nets(&user.allowed).into_iter().collect())
            .into_iter()
            .filter(|net| !self.server_routes.iter().any(|r| r.contains(net)))
            .collect()
    }

    /// The `client-auth` config block of a user: its fixed address and the routes to its networks the server does
    /// not push to everyone anyway.
    fn client_config(&self, user: &UserIntent) -> Vec<String> {
        let mut lines = vec![format!("ifconfig-push {} {}", user.address, self.netmask)];
        for net in self.pushed_routes(user) {
            lines.push(format!("push \"route {} {}\"", net.network(), net.netmask()));
        }
        lines
    }
}

fn nets(list: &[Ipv4Net]) -> BTreeSet<Ipv4Net> {
    list.iter().map(Ipv4Net::trunc).collect()
}

/// One request for the management connection; `reply` gets the answer's lines (without `END`).
struct Request {
    command: String,
    multi_line: bool,
    reply: Option<oneshot::Sender<Result<Vec<String>, DataplaneError>>>,
}

/// State shared between the driver's handle and the connection task.
struct Shared {
    gateway: String,
    server: String,
    socket: PathBuf,
    auth: Mutex<Option<PasswordAuth>>,
    /// 0 while detached; the serial number of the connection OpenVPN has greeted otherwise (so a caller can wait
    /// for a connection to a restarted OpenVPN rather than see the old one).
    attached: watch::Sender<u64>,
}

impl Shared {
    fn auth(&self) -> Option<PasswordAuth> {
        self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The driver's handle on one server's management connection; dropping it ends the connection.
pub(crate) struct Manager {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
    attached: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Manager {
    /// Starts the connection task (it waits for the socket to appear). Must run inside a tokio runtime.
    pub(crate) fn start(gateway: &str, server: &str, socket: PathBuf, auth: Option<PasswordAuth>) -> Manager {
        let (attached_tx, attached) = watch::channel(0);
        let shared = Arc::new(Shared {
            gateway: gateway.to_string(),
            server: server.to_string(),
            socket,
            auth: Mutex::new(auth),
            attached: attached_tx,
        });
        let (requests, rx) = mpsc::channel(64);
        let task = tokio::spawn(run(shared.clone(), rx));
        Manager { shared, requests, attached, task }
    }

    pub(crate) fn socket(&self) -> &std::path::Path {
        &self.shared.socket
    }

    /// Replaces who may sign in; returns the users whose live sessions the change revokes.
    pub(crate) fn set_auth(&self, auth: Option<PasswordAuth>) -> BTreeSet<String> {
        let mut slot = self.shared.auth.lock().unwrap_or_else(|p| p.into_inner());
        let revoked = match (slot.as_ref(), auth.as_ref()) {
            (Some(old), Some(new)) => old.revoked_by(new),
            _ => BTreeSet::new(),
        };
        *slot = auth;
        revoked
    }

    pub(crate) fn is_attached(&self) -> bool {
        self.connection() != 0
    }

    /// The attached connection's serial number; 0 while detached.
    pub(crate) fn connection(&self) -> u64 {
        *self.attached.borrow()
    }

    /// Waits until OpenVPN has greeted the manager (at most `within`).
    pub(crate) async fn wait_attached(&self, within: Duration) -> bool {
        self.wait_attached_other_than(0, within).await
    }

    /// Waits for an attached connection other than `previous` (one to a restarted OpenVPN).
    pub(crate) async fn wait_attached_other_than(&self, previous: u64, within: Duration) -> bool {
        let mut rx = self.attached.clone();
        tokio::time::timeout(within, rx.wait_for(|c| *c != 0 && *c != previous)).await.is_ok_and(|r| r.is_ok())
    }

    async fn command(&self, command: String, multi_line: bool) -> Result<Vec<String>, DataplaneError> {
        // Right after a restart of openvgw or OpenVPN the connection may be a moment away.
        self.wait_attached(Duration::from_secs(2)).await;
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request { command, multi_line, reply: Some(tx) })
            .await
            .map_err(|_| failed("OpenVPN management connection is gone"))?;
        tokio::time::timeout(COMMAND_TIMEOUT, rx)
            .await
            .map_err(|_| failed("OpenVPN management interface did not answer"))?
            .map_err(|_| failed("OpenVPN management connection closed"))?
    }

    /// Live sessions (`status 3`); ids are `<server id>:<client id>`.
    pub(crate) async fn sessions(&self) -> Result<Vec<ClientSession>, DataplaneError> {
        let lines = self.command("status 3".into(), true).await?;
        Ok(parse_status(&self.shared.server, &lines))
    }

    /// Ends a session by OpenVPN client id, telling the client to stop (not to reconnect); false if unknown.
    pub(crate) async fn kill(&self, client_id: u64) -> Result<bool, DataplaneError> {
        match self.command(format!("client-kill {client_id} HALT"), false).await {
            Ok(_) => Ok(true),
            Err(DataplaneError::Failed(e)) if e.contains("ERROR:") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Ends the sessions of `users` (user names) and any session a password server would no longer grant: a user
    /// not listed, or at an address that is not the user's.
    pub(crate) async fn enforce(&self, revoked: &BTreeSet<String>) -> Result<usize, DataplaneError> {
        let Some(auth) = self.shared.auth() else {
            return Ok(0);
        };
        self.end_sessions(|s| {
            let granted = auth.users.get(&s.user).is_some_and(|u| s.virtual_ip == Some(u.address));
            !granted || revoked.contains(&s.user)
        })
        .await
    }

    /// Ends the sessions of revoked certificates (`common_names`) of a certificate server.
    pub(crate) async fn end_revoked(&self, common_names: &[String]) -> Result<usize, DataplaneError> {
        if common_names.is_empty() {
            return Ok(0);
        }
        let revoked: BTreeSet<&str> = common_names.iter().map(String::as_str).collect();
        self.end_sessions(|s| revoked.contains(s.user.as_str())).await
    }

    async fn end_sessions(&self, end: impl Fn(&ClientSession) -> bool) -> Result<usize, DataplaneError> {
        let mut killed = 0;
        for s in self.sessions().await? {
            if !end(&s) {
                continue;
            }
            let Some(cid) = s.id.rsplit_once(':').and_then(|(_, c)| c.parse().ok()) else {
                continue;
            };
            if self.kill(cid).await? {
                tracing::info!(gateway = %self.shared.gateway, server = %self.shared.server, user = %printable(&s.user),
                    "ended a session that is no longer granted");
                killed += 1;
            }
        }
        Ok(killed)
    }
}

/// Connects, serves, and reconnects for as long as the manager lives. While not attached, requests fail at once.
async fn run(shared: Arc<Shared>, mut requests: mpsc::Receiver<Request>) {
    let mut serial = 0u64;
    loop {
        if let Ok(stream) = UnixStream::connect(&shared.socket).await {
            serial += 1;
            serve(&shared, serial, stream, &mut requests).await;
            shared.attached.send_replace(0);
            tracing::debug!(gateway = %shared.gateway, server = %shared.server, "management connection closed");
        }
        let pause = tokio::time::sleep(RECONNECT_EVERY);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                req = requests.recv() => match req {
                    Some(req) => answer(req, Err(failed("OpenVPN management interface is not attached"))),
                    None => return,
                },
            }
        }
    }
}

fn answer(req: Request, result: Result<Vec<String>, DataplaneError>) {
    if let Some(tx) = req.reply {
        let _ = tx.send(result);
    }
}

/// A `>CLIENT:` notification whose `>CLIENT:ENV` lines are being collected.
struct Announced {
    kind: String,
    cid: u64,
    kid: u64,
    username: Option<String>,
    password: Option<Secret>,
    from: Option<String>,
}

/// One connection: writes requests in order and matches the answers to them in order; handles `>CLIENT:`
/// notifications. Returns when the connection ends.
async fn serve(shared: &Arc<Shared>, serial: u64, stream: UnixStream, requests: &mut mpsc::Receiver<Request>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // Auth verdicts come back here: a verdict for this connection must never reach a later one (client ids start
    // again in a restarted OpenVPN).
    let (verdict_tx, mut verdicts) = mpsc::channel::<String>(64);
    let mut pending: VecDeque<(Request, Vec<String>)> = VecDeque::new();
    let mut announced: Option<Announced> = None;
    loop {
        let outgoing = tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                let line = line.trim_end_matches('\r');
                if line.starts_with(">INFO:") {
                    if *shared.attached.borrow() != serial {
                        tracing::info!(gateway = %shared.gateway, server = %shared.server, "management connection attached");
                    }
                    shared.attached.send_replace(serial);
                } else if let Some(rest) = line.strip_prefix(">CLIENT:") {
                    on_client_line(shared, rest, &mut announced, &verdict_tx);
                } else if !line.starts_with('>') {
                    on_answer_line(line, &mut pending);
                }
                continue;
            }
            req = requests.recv() => match req {
                Some(req) => req,
                None => break,
            },
            Some(command) = verdicts.recv() => Request { command, multi_line: false, reply: None },
        };
        let text = format!("{}\n", outgoing.command);
        if write.write_all(text.as_bytes()).await.is_err() {
            answer(outgoing, Err(failed("OpenVPN management write failed")));
            break;
        }
        pending.push_back((outgoing, Vec::new()));
    }
    for (req, _) in pending {
        answer(req, Err(failed("OpenVPN management connection closed")));
    }
}

/// A line of a command's answer (anything not starting with `>`): single-line answers are `SUCCESS:` or `ERROR:`,
/// multi-line ones end with `END` (or are a single `ERROR:`).
fn on_answer_line(line: &str, pending: &mut VecDeque<(Request, Vec<String>)>) {
    let Some((req, collected)) = pending.front_mut() else {
        return;
    };
    let done = if line.starts_with("ERROR:") && collected.is_empty() {
        Some(Err(failed(format!("OpenVPN management: {line}"))))
    } else if req.multi_line {
        if line == "END" {
            Some(Ok(std::mem::take(collected)))
        } else {
            collected.push(line.to_string());
            None
        }
    } else {
        Some(Ok(vec![line.to_string()]))
    };
    if let Some(result) = done {
        if let Some((req, _)) = pending.pop_front() {
            if let Err(e) = &result {
                if req.reply.is_none() {
                    tracing::warn!(error = %e, "OpenVPN refused a client-auth answer");
                }
            }
            answer(req, result);
        }
    }
}

fn on_client_line(
    shared: &Arc<Shared>,
    rest: &str,
    announced: &mut Option<Announced>,
    verdicts: &mpsc::Sender<String>,
) {
    if let Some(env) = rest.strip_prefix("ENV,") {
        let Some(a) = announced.as_mut() else {
            return;
        };
        if env == "END" {
            if let Some(a) = announced.take() {
                if a.kind == "CONNECT" || a.kind == "REAUTH" {
                    tokio::spawn(decide(shared.clone(), a, verdicts.clone()));
                }
            }
        } else if let Some(v) = env.strip_prefix("username=") {
            a.username = Some(v.to_string());
        } else if let Some(v) = env.strip_prefix("password=") {
            a.password = Some(Secret::new(v.to_string()));
        } else if let Some(v) = env.strip_prefix("untrusted_ip=") {
            a.from = Some(v.to_string());
        }
        return;
    }
    // `>CLIENT:<KIND>,<cid>[,<kid>]`; ADDRESS has no ENV block.
    let mut parts = rest.split(',');
    let kind = parts.next().unwrap_or_default().to_string();
    if kind == "ADDRESS" {
        return;
    }
    let cid = parts.next().and_then(|c| c.parse().ok()).unwrap_or(u64::MAX);
    let kid = parts.next().and_then(|k| k.parse().ok()).unwrap_or(0);
    *announced = Some(Announced { kind, cid, kid, username: None, password: None, from: None });
}

/// A dummy hash for unknown users, so that the answer takes as long as for a known user with a wrong password.
fn dummy_hash() -> &'static Secret {
    static DUMMY: OnceLock<Secret> = OnceLock::new();
    DUMMY.get_or_init(|| openvgw_core::password::hash("openvgw-unknown-user").unwrap_or_else(|_| Secret::new("")))
}

/// Checks a sign-in off the runtime's threads and sends `client-auth` (with the user's address) or `client-deny`.
async fn decide(shared: Arc<Shared>, a: Announced, verdicts: mpsc::Sender<String>) {
    let name = a.username.clone().unwrap_or_default();
    let known = shared.auth().and_then(|auth| auth.users.get(&name).map(|u| u.password_hash.clone()));
    let password = a.password.unwrap_or_else(|| Secret::new(""));
    let verified = match VERIFY_SLOTS.acquire().await {
        Ok(_slot) => {
            let hash = known.clone();
            tokio::task::spawn_blocking(move || {
                let ok = match &hash {
                    Some(h) => openvgw_core::password::verify(h, password.expose()),
                    None => {
                        let _ = openvgw_core::password::verify(dummy_hash(), password.expose());
                        false
                    }
                };
                ok && !password.expose().is_empty()
            })
            .await
            .unwrap_or(false)
        }
        Err(_) => false,
    };
    // The user list may have changed while argon2 ran: grant only what the current list still says.
    let granted = shared.auth().and_then(|auth| {
        let u = auth.users.get(&name)?;
        (verified && known.as_ref().map(Secret::expose) == Some(u.password_hash.expose()))
            .then(|| auth.client_config(u))
    });
    let (cid, kid, ok) = (a.cid, a.kid, granted.is_some());
    let command = match granted {
        Some(config) if a.kind == "CONNECT" => format!("client-auth {cid} {kid}\n{}\nEND", config.join("\n")),
        Some(_) => format!("client-auth-nt {cid} {kid}"),
        None => format!("client-deny {cid} {kid} \"authentication failed\""),
    };
    tracing::info!(gateway = %shared.gateway, server = %shared.server, user = %printable(&name),
        from = %a.from.as_deref().map(printable).unwrap_or_default(), kind = %a.kind,
        granted = ok, "SSL-VPN sign-in");
    let _ = verdicts.send(command).await;
}

/// A client-supplied string as it may appear in a log line: printable ASCII only, bounded.
fn printable(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(64).collect()
}

/// Sessions from a `status 3` answer: columns by the `HEADER CLIENT_LIST` row; clients without a tunnel address are
/// still negotiating and not sessions yet.
pub(crate) fn parse_status(server_id: &str, lines: &[String]) -> Vec<ClientSession> {
    let mut columns: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.first() {
            Some(&"HEADER") if fields.get(1) == Some(&"CLIENT_LIST") => {
                columns = fields.iter().enumerate().skip(1).map(|(i, f)| (*f, i - 1)).collect();
            }
            Some(&"CLIENT_LIST") => {
                let get = |name: &str| columns.get(name).and_then(|&i| fields.get(i)).copied().unwrap_or_default();
                let Ok(virtual_ip) = get("Virtual Address").parse::<Ipv4Addr>() else {
                    continue;
                };
                let Ok(cid) = get("Client ID").parse::<u64>() else {
                    continue;
                };
                let user = match get("Username") {
                    "" | "UNDEF" => get("Common Name"),
                    u => u,
                };
                out.push(ClientSession {
                    server_id: server_id.to_string(),
                    id: format!("{server_id}:{cid}"),
                    user: user.to_string(),
                    virtual_ip: Some(virtual_ip),
                    real_address: get("Real Address").to_string(),
                    bytes_in: get("Bytes Received").parse().unwrap_or(0),
                    bytes_out: get("Bytes Sent").parse().unwrap_or(0),
                    connected_since: get("Connected Since (time_t)").parse().unwrap_or(0),
                });
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, address: &str, allowed: &[&str]) -> UserIntent {
        UserIntent {
            name: name.into(),
            password_hash: Secret::new("$argon2id$placeholder"),
            address: address.parse().expect("ip"),
            allowed: allowed.iter().map(|n| n.parse().expect("net")).collect(),
        }
    }

    fn auth(users: Vec<UserIntent>) -> PasswordAuth {
        PasswordAuth {
            netmask: "255.255.255.0".parse().expect("mask"),
            server_routes: vec!["10.1.0.0/24".parse().expect("net")],
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
        }
    }

    #[test]
    fn parses_status_3() {
        let lines: Vec<String> = [
            "TITLE\tOpenVPN 2.6.14",
            "TIME\t2026-12-02 06:00:00\t1796191200",
            "HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher",
            "CLIENT_LIST\talice\t203.0.113.10:40000\t10.9.0.10\t\t3000\t4000\t2026-12-02 05:59:00\t1796191140\talice\t7\t0\tAES-128-GCM",
            "CLIENT_LIST\tUNDEF\t203.0.113.11:40001\t\t\t100\t200\t2026-12-02 05:59:59\t1796191199\tUNDEF\t8\t1\tnone",
            "CLIENT_LIST\tcarol\t203.0.113.12:40002\t10.9.0.30\t\t1\t2\t2026-12-02 05:59:30\t1796191170\tUNDEF\t9\t2\tAES-128-GCM",
            "HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name",
            "ROUTING_TABLE\t10.9.0.10\talice",
            "GLOBAL_STATS\tMax bcast/mcast queue length\t0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = parse_status("vss-1", &lines);
        assert_eq!(s.len(), 2, "the client still negotiating is no session: {s:?}");
        assert_eq!(s[0].id, "vss-1:7");
        assert_eq!(s[0].user, "alice");
        assert_eq!(s[0].virtual_ip, Some("10.9.0.10".parse().expect("ip")));
        assert_eq!((s[0].bytes_in, s[0].bytes_out, s[0].connected_since), (3000, 4000, 1796191140));
        assert_eq!(s[0].real_address, "203.0.113.10:40000");
        assert_eq!(s[1].user, "carol", "certificate clients are named by their CN");
    }

    #[test]
    fn revocation_covers_removed_moved_and_rerouted_users() {
        let old = auth(vec![
            user("alice", "10.9.0.10", &["10.1.0.0/24"]),
            user("bob", "10.9.0.20", &["10.2.0.0/24"]),
            user("carol", "10.9.0.30", &["10.1.0.0/24"]),
            user("dave", "10.9.0.40", &["10.1.0.0/24", "10.2.0.0/24"]),
        ]);
        let mut new_bob = user("bob", "10.9.0.21", &["10.2.0.0/24"]);
        new_bob.password_hash = Secret::new("$argon2id$other");
        let new = auth(vec![
            new_bob,
            user("carol", "10.9.0.30", &["10.1.0.0/24"]),
            // Same networks in another order (and spelling) are no change.
            user("dave", "10.9.0.40", &["10.2.0.7/24", "10.1.0.0/24"]),
        ]);
        assert_eq!(old.revoked_by(&new), BTreeSet::from(["alice".to_string(), "bob".to_string()]));
        // Narrowed or widened inside the server's routes: the firewall applies it to the live session.
        let mut narrowed = new.clone();
        narrowed.users.insert("carol".into(), user("carol", "10.9.0.30", &[]));
        assert!(new.revoked_by(&narrowed).is_empty());
        // A network outside them needs a route the session was not given: it reconnects.
        let mut rerouted = new.clone();
        rerouted.users.insert("carol".into(), user("carol", "10.9.0.30", &["10.1.0.0/24", "10.7.0.0/16"]));
        assert_eq!(new.revoked_by(&rerouted), BTreeSet::from(["carol".to_string()]));
    }

    #[test]
    fn client_config_pushes_address_and_only_extra_routes() {
        let a = auth(vec![]);
        let u = user("alice", "10.9.0.10", &["10.1.0.0/25", "10.5.0.0/16", "10.5.1.0/24"]);
        assert_eq!(
            a.client_config(&u),
            ["ifconfig-push 10.9.0.10 255.255.255.0", "push \"route 10.5.0.0 255.255.0.0\""],
            "10.1.0.0/25 is inside a server route; 10.5.1.0/24 inside 10.5.0.0/16"
        );
    }

    #[test]
    fn answers_are_matched_in_order() {
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        let mut pending = VecDeque::from([
            (Request { command: "status 3".into(), multi_line: true, reply: Some(tx1) }, Vec::new()),
            (Request { command: "client-kill 9".into(), multi_line: false, reply: Some(tx2) }, Vec::new()),
        ]);
        for line in ["TITLE\tx", "CLIENT_LIST\ta", "END", "ERROR: client-kill command failed"] {
            on_answer_line(line, &mut pending);
        }
        assert!(pending.is_empty());
        assert_eq!(rx1.try_recv().expect("answered").expect("ok"), ["TITLE\tx", "CLIENT_LIST\ta"]);
        let err = rx2.try_recv().expect("answered").expect_err("error");
        assert!(err.to_string().contains("ERROR: client-kill"), "{err}");
    }

    #[tokio::test]
    async fn signs_in_with_the_right_password_only() {
        let hash = openvgw_core::password::hash("Right-Pass-1").expect("hash");
        let mut alice = user("alice", "10.9.0.10", &["10.1.0.0/24"]);
        alice.password_hash = hash;
        let (attached, _) = watch::channel(1);
        let shared = Arc::new(Shared {
            gateway: "gw".into(),
            server: "vss".into(),
            socket: PathBuf::from("/nonexistent"),
            auth: Mutex::new(Some(auth(vec![alice]))),
            attached,
        });
        let (tx, mut rx) = mpsc::channel(4);
        let attempt = |kind: &str, user: &str, pw: &str| Announced {
            kind: kind.into(),
            cid: 3,
            kid: 1,
            username: Some(user.into()),
            password: Some(Secret::new(pw.to_string())),
            from: None,
        };
        decide(shared.clone(), attempt("CONNECT", "alice", "Right-Pass-1"), tx.clone()).await;
        assert_eq!(rx.recv().await.expect("verdict"), "client-auth 3 1\nifconfig-push 10.9.0.10 255.255.255.0\nEND");
        decide(shared.clone(), attempt("REAUTH", "alice", "Right-Pass-1"), tx.clone()).await;
        assert_eq!(rx.recv().await.expect("verdict"), "client-auth-nt 3 1");
        for (u, pw) in [("alice", "wrong"), ("mallory", "Right-Pass-1"), ("alice", "")] {
            decide(shared.clone(), attempt("CONNECT", u, pw), tx.clone()).await;
            let verdict = rx.recv().await.expect("verdict");
            assert_eq!(verdict, "client-deny 3 1 \"authentication failed\"", "{u}");
            assert!(!verdict.contains(pw) || pw.is_empty());
        }
    }
}
