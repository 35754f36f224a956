//! Thin wrappers around the system tools the driver drives (`ip`, `ping`, daemons) and around processes.
//!
//! Every command gets explicit arguments (never a shell string), a timeout, and an error that names the command
//! and carries its stderr.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::DataplaneError;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn failed(what: impl std::fmt::Display) -> DataplaneError {
    DataplaneError::Failed(what.to_string())
}

/// Runs `program args...`; returns stdout, or an error with stderr when it exits non-zero.
pub(crate) async fn run(program: &str, args: &[&str]) -> Result<String, DataplaneError> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .map_err(|_| failed(format!("{program} {} timed out", args.join(" "))))?
        .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
    stdout_or_error(program, args, out)
}

/// stdout of a finished command, or an error carrying its stderr.
fn stdout_or_error(program: &str, args: &[&str], out: std::process::Output) -> Result<String, DataplaneError> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failed(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Blocking variant of [`run`] for the driver's constructor (start-up only).
pub(crate) fn run_blocking(program: &str, args: &[&str]) -> Result<String, DataplaneError> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
    stdout_or_error(program, args, out)
}

/// `ip args...`
pub(crate) async fn ip(args: &[&str]) -> Result<String, DataplaneError> {
    run("ip", args).await
}

/// `ip -j args...` parsed; an empty answer is an empty array.
pub(crate) async fn ip_json(args: &[&str]) -> Result<Vec<serde_json::Value>, DataplaneError> {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let out = ip(&full).await?;
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(&out).map_err(|e| failed(format!("ip {}: unparsable JSON: {e}", args.join(" "))))
}

/// `ip -n <ns> args...`
pub(crate) async fn ip_ns(ns: &str, args: &[&str]) -> Result<String, DataplaneError> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full).await
}

pub(crate) async fn ip_ns_json(ns: &str, args: &[&str]) -> Result<Vec<serde_json::Value>, DataplaneError> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip_json(&full).await
}

/// Does interface `name` exist (in `ns`, or in the root namespace)?
pub(crate) async fn link_exists(ns: Option<&str>, name: &str) -> bool {
    let r = match ns {
        Some(ns) => ip_ns(ns, &["link", "show", "dev", name]).await,
        None => ip(&["link", "show", "dev", name]).await,
    };
    r.is_ok()
}

pub(crate) fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Names of all network namespaces (`ip netns add` keeps them as files in /run/netns).
pub(crate) fn netns_list() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

/// PIDs of all processes whose network namespace is `ns`.
pub(crate) async fn netns_pids(ns: &str) -> Vec<i32> {
    run("ip", &["netns", "pids", ns])
        .await
        .map(|out| out.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// Writes a file atomically (temp file + rename) with the given mode; the mode is set before any content lands.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), DataplaneError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| failed(format!("cannot create {}: {e}", tmp.display())))?;
    f.write_all(contents).map_err(|e| failed(format!("cannot write {}: {e}", tmp.display())))?;
    f.sync_all().map_err(|e| failed(format!("cannot sync {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| failed(format!("cannot rename to {}: {e}", path.display())))
}

/// Writes `contents` unless the file already holds exactly that; true when it changed.
pub(crate) fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> Result<bool, DataplaneError> {
    if std::fs::read(path).map(|old| old == contents).unwrap_or(false) {
        return Ok(false);
    }
    write_file(path, contents, mode)?;
    Ok(true)
}

pub(crate) fn create_private_dir(path: &Path) -> Result<(), DataplaneError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| failed(format!("cannot create {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| failed(format!("cannot chmod {}: {e}", path.display())))
}

// ---- processes ----------------------------------------------------------------------------------------------

/// How the driver recognises one of its daemons: the PID from its pid file must still be a live process whose
/// command line or environment contains `marker` (the daemon's config path), so a recycled PID is never mistaken
/// for (or killed as) ours.
pub(crate) struct DaemonId<'a> {
    pub pid_file: &'a Path,
    pub marker: &'a str,
}

impl DaemonId<'_> {
    pub(crate) fn recorded_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pid_file).ok()?.trim().parse().ok()
    }

    /// The PID of the running daemon, if it runs.
    pub(crate) fn running(&self) -> Option<i32> {
        self.recorded_pid().filter(|&pid| process_matches(pid, self.marker))
    }

    pub(crate) fn record(&self, pid: i32) -> Result<(), DataplaneError> {
        write_file(self.pid_file, format!("{pid}\n").as_bytes(), 0o600)
    }

    /// Stops the daemon if it runs and forgets its PID.
    pub(crate) async fn stop(&self) {
        if let Some(pid) = self.running() {
            stop_pid(pid).await;
        }
        let _ = std::fs::remove_file(self.pid_file);
    }
}

/// Is `pid` alive (not a zombie) and does its command line or environment mention `marker`?
pub(crate) fn process_matches(pid: i32, marker: &str) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // Field 3, after the parenthesised command name (which may itself contain spaces or parentheses).
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z" | "X") | None) {
        return false;
    }
    let contains = |file: &str| {
        std::fs::read(proc_dir.join(file))
            .map(|raw| raw.split(|&b| b == 0).any(|part| String::from_utf8_lossy(part).contains(marker)))
            .unwrap_or(false)
    };
    contains("cmdline") || contains("environ")
}

fn alive(pid: i32) -> bool {
    process_matches(pid, "")
}

fn signal(pid: i32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// SIGTERM, up to 3 s grace, then SIGKILL.
pub(crate) async fn stop_pid(pid: i32) {
    if pid <= 1 {
        return;
    }
    signal(pid, rustix::process::Signal::TERM);
    for _ in 0..30 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(pid, "daemon ignored SIGTERM; killing it");
    signal(pid, rustix::process::Signal::KILL);
    for _ in 0..20 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `program args...` inside namespace `ns` (via `ip netns exec`, which execs, so the PID is the daemon's),
/// in its own process group so that a signal aimed at openvgw's terminal does not take the data plane down.
/// stdout/stderr go to `output`. The child is not awaited: tokio reaps it when it exits.
pub(crate) fn spawn_in_netns(
    ns: &str,
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    output: &Path,
) -> Result<i32, DataplaneError> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)
        .map_err(|e| failed(format!("cannot open {}: {e}", output.display())))?;
    let err = out.try_clone().map_err(|e| failed(format!("cannot open {}: {e}", output.display())))?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program])
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false);
    let child = cmd.spawn().map_err(|e| failed(format!("cannot start {program} in {ns}: {e}")))?;
    let pid = child.id().ok_or_else(|| failed(format!("{program} in {ns} exited immediately")))?;
    i32::try_from(pid).map_err(|_| failed(format!("pid {pid} out of range")))
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub(crate) async fn wait_until<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
