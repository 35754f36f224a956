//! The client against two real charons (charon-systemd) in two network namespaces joined by a veth
//! (203.0.113.1 <-> 203.0.113.2, documentation addresses; nothing leaves the namespaces).
//! Skipped with a message when not root or when charon-systemd is not installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openvgw_vici::{Client, Message, ViciError};

const CHARON: &str = "/usr/sbin/charon-systemd";

struct World {
    dir: PathBuf,
    namespaces: Vec<String>,
    daemons: Vec<Child>,
}

impl Drop for World {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var("KEEP").as_deref() != Ok("1") {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "ip {} failed", args.join(" "));
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn start_charon(world: &mut World, ns: &str) -> PathBuf {
    let dir = world.dir.join(ns);
    std::fs::create_dir_all(&dir).expect("dir");
    let socket = dir.join("charon.vici");
    let conf = format!(
        "charon-systemd {{\n  journal {{\n    default = -1\n  }}\n  filelog {{\n    main {{\n      path = {log}\n      flush_line = yes\n      default = 1\n    }}\n  }}\n}}\n\
         charon {{\n  load_modular = no\n  load = random nonce openssl aes sha1 sha2 hmac gmp kdf kernel-libipsec kernel-netlink socket-default vici\n  plugins {{\n    vici {{\n      socket = unix://{sock}\n    }}\n  }}\n}}\n",
        log = dir.join("charon.log").display(),
        sock = socket.display()
    );
    let conf_path = dir.join("strongswan.conf");
    std::fs::write(&conf_path, conf).expect("conf");
    let child = Command::new("ip")
        .args(["netns", "exec", ns, CHARON])
        .env("STRONGSWAN_CONF", &conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("charon");
    world.daemons.push(child);
    socket
}

async fn connect(socket: &Path) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::connect(socket).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("charon's VICI socket never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn conn(local: &str, remote: &str, local_ts: &str, remote_ts: &str) -> Message {
    let child = Message::new()
        .with_list("local_ts", [local_ts])
        .with_list("remote_ts", [remote_ts])
        .with_list("esp_proposals", ["aes128-sha256"]);
    Message::new().with_section(
        "t",
        Message::new()
            .with("version", "2")
            .with_list("local_addrs", [local])
            .with_list("remote_addrs", [remote])
            .with_list("proposals", ["aes128-sha256-modp2048"])
            .with_section("local", Message::new().with("auth", "psk").with("id", local))
            .with_section("remote", Message::new().with("auth", "psk").with("id", remote))
            .with_section("children", Message::new().with_section("c", child)),
    )
}

fn psk(a: &str, b: &str) -> Message {
    Message::new()
        .with("id", "t")
        .with("type", "IKE")
        .with("data", "vici-test-psk-0123456789")
        .with_list("owners", [a, b])
}

async fn child_states(c: &mut Client) -> Vec<String> {
    let (sas, _) = c.collect("list-sas", "list-sa", &Message::new()).await.expect("list-sas");
    sas.iter()
        .flat_map(|ev| ev.sections().map(|(_, ike)| ike.clone()).collect::<Vec<_>>())
        .flat_map(|ike| {
            ike.get_section("child-sas")
                .map(|c| c.sections().filter_map(|(_, ch)| ch.get_str("state").map(str::to_string)).collect())
                .unwrap_or_else(Vec::new)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talks_to_a_real_charon() {
    if !is_root() || !Path::new(CHARON).exists() {
        eprintln!("SKIP talks_to_a_real_charon: needs root and {CHARON} (apt-get install charon-systemd libcharon-extra-plugins)");
        return;
    }
    let tag = std::process::id();
    let mut world = World {
        dir: std::env::temp_dir().join(format!("openvgw-vici-it-{tag}")),
        namespaces: vec![format!("ovgwvici{tag}a"), format!("ovgwvici{tag}b")],
        daemons: Vec::new(),
    };
    let (a, b) = (world.namespaces[0].clone(), world.namespaces[1].clone());
    for ns in [&a, &b] {
        ip(&["netns", "add", ns]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    ip(&["-n", &a, "link", "add", "e0", "type", "veth", "peer", "name", "e0", "netns", &b]);
    ip(&["-n", &a, "addr", "add", "203.0.113.1/24", "dev", "e0"]);
    ip(&["-n", &b, "addr", "add", "203.0.113.2/24", "dev", "e0"]);
    // charon installs a route into the tunnel with a source address from the local selector: give each side one.
    ip(&["-n", &a, "addr", "add", "10.0.1.1/24", "dev", "lo"]);
    ip(&["-n", &b, "addr", "add", "10.0.2.1/24", "dev", "lo"]);
    ip(&["-n", &a, "link", "set", "e0", "up"]);
    ip(&["-n", &b, "link", "set", "e0", "up"]);
    let sock_a = start_charon(&mut world, &a);
    let sock_b = start_charon(&mut world, &b);
    let mut ca = connect(&sock_a).await;
    let mut cb = connect(&sock_b).await;

    let version = ca.request("version", &Message::new()).await.expect("version");
    assert_eq!(version.get_str("daemon"), Some("charon-systemd"));
    assert!(matches!(ca.request("no-such-command", &Message::new()).await, Err(ViciError::UnknownCommand(_))));
    assert!(matches!(ca.register("no-such-event").await, Err(ViciError::UnknownEvent(_))));
    let bad = ca
        .command(
            "load-conn",
            &Message::new().with_section("x", Message::new().with_list("proposals", ["no-such-algorithm"])),
        )
        .await;
    assert!(matches!(bad, Err(ViciError::CommandFailed { .. })), "{bad:?}");

    ca.command("load-shared", &psk("203.0.113.1", "203.0.113.2")).await.expect("psk a");
    cb.command("load-shared", &psk("203.0.113.2", "203.0.113.1")).await.expect("psk b");
    ca.command("load-conn", &conn("203.0.113.1", "203.0.113.2", "10.0.1.0/24", "10.0.2.0/24")).await.expect("conn a");
    cb.command("load-conn", &conn("203.0.113.2", "203.0.113.1", "10.0.2.0/24", "10.0.1.0/24")).await.expect("conn b");
    let (conns, _) = ca.collect("list-conns", "list-conn", &Message::new()).await.expect("list-conns");
    let names: Vec<&str> = conns.iter().flat_map(|m| m.sections().map(|(n, _)| n)).collect();
    assert_eq!(names, ["t"]);

    // Events on their own connection, while another one drives charon.
    let mut events = connect(&sock_a).await;
    events.register("ike-updown").await.expect("register ike-updown");
    events.register("child-updown").await.expect("register child-updown");

    let started = Instant::now();
    let mut log_lines = 0;
    let reply = ca
        .streamed(
            "initiate",
            "control-log",
            &Message::new().with("child", "c").with("ike", "t").with("timeout", "5000"),
            |_| log_lines += 1,
        )
        .await
        .expect("initiate");
    assert_eq!(reply.get_str("success"), Some("yes"), "{reply:?}");
    assert!(log_lines > 0, "initiate streams control-log events");
    eprintln!("initiate over VICI: {} ms, {log_lines} control-log events", started.elapsed().as_millis());

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.next_event()).await.expect("event").expect("ok");
        assert_eq!(ev.message.get_str("up"), Some("yes"), "{ev:?}");
        seen.push(ev.name);
    }
    seen.sort();
    assert_eq!(seen, ["child-updown", "ike-updown"]);
    assert_eq!(child_states(&mut ca).await, ["INSTALLED"]);

    // A negative timeout returns at once and lets charon work in the background.
    ca.request("terminate", &Message::new().with("ike", "t").with("timeout", "5000")).await.expect("terminate");
    let quick = Instant::now();
    ca.request("initiate", &Message::new().with("child", "c").with("ike", "t").with("timeout", "-1"))
        .await
        .expect("async initiate");
    assert!(quick.elapsed() < Duration::from_millis(500), "timeout -1 does not wait");
    let deadline = Instant::now() + Duration::from_secs(5);
    while child_states(&mut ca).await != ["INSTALLED"] {
        assert!(Instant::now() < deadline, "background initiate did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    ca.command("unload-conn", &Message::new().with("name", "t")).await.expect("unload-conn");
    let (conns, _) = ca.collect("list-conns", "list-conn", &Message::new()).await.expect("list-conns");
    assert!(conns.iter().all(|m| m.is_empty()), "{conns:?}");
}
