//! The server under test: spawned by the bench (roomcast or the Node
//! reference) or attached to by URL and pid, plus its resource readings from
//! `/proc/<pid>` (RSS and CPU time).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Which server to run a scenario against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// `roomcast serve` (SQLite + in-process bus).
    Roomcast,
    /// The Node `socket.io@4` reference in `bench/reference`.
    Reference,
    /// A server someone else started.
    External {
        /// Base URL, e.g. `http://127.0.0.1:3000`.
        url: String,
        /// Its pid, for RSS and CPU readings.
        pid: u32,
    },
}

impl TargetKind {
    /// Short name for tables.
    pub fn name(&self) -> &str {
        match self {
            Self::Roomcast => "roomcast",
            Self::Reference => "reference",
            Self::External { .. } => "external",
        }
    }
}

/// Where to find the programs to spawn.
#[derive(Clone, Debug)]
pub struct Programs {
    /// The roomcast binary.
    pub roomcast_bin: PathBuf,
    /// The reference directory (with `server.mjs` and `node_modules`).
    pub reference_dir: PathBuf,
}

/// A running server.
pub struct Target {
    /// Base URL.
    pub url: String,
    /// Host:port for raw TCP connects.
    pub addr: std::net::SocketAddr,
    /// Pid for /proc readings.
    pub pid: u32,
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
}

impl Target {
    /// Start (or attach to) the server and wait until it listens.
    pub async fn start(kind: &TargetKind, programs: &Programs) -> anyhow::Result<Self> {
        let (mut cmd, data) = match kind {
            TargetKind::External { url, pid } => {
                let addr = addr_of(url)?;
                return Ok(Self {
                    url: url.clone(),
                    addr,
                    pid: *pid,
                    child: None,
                    _data: None,
                });
            }
            TargetKind::Roomcast => {
                if !programs.roomcast_bin.exists() {
                    bail!(
                        "{} not found: build it with `cargo build --release -p roomcast`",
                        programs.roomcast_bin.display()
                    );
                }
                let dir = tempfile::tempdir()?;
                let mut cmd = Command::new(&programs.roomcast_bin);
                cmd.arg("serve")
                    .arg("--listen")
                    .arg("127.0.0.1:0")
                    .arg("--database-url")
                    .arg(format!("sqlite://{}/bench.db", dir.path().display()))
                    .env("ROOMCAST_LOG", "warn");
                (cmd, Some(dir))
            }
            TargetKind::Reference => {
                let server = programs.reference_dir.join("server.mjs");
                if !programs.reference_dir.join("node_modules").exists() {
                    bail!(
                        "{} has no node_modules: run `npm ci` there first",
                        programs.reference_dir.display()
                    );
                }
                let mut cmd = Command::new("node");
                cmd.arg(server)
                    .arg("--host")
                    .arg("127.0.0.1")
                    .arg("--port")
                    .arg("0");
                (cmd, None)
            }
        };
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawning {kind:?}"))?;
        let pid = child.id().context("child pid")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(i) = line.find("listening on http://") {
                    let rest = &line[i + "listening on ".len()..];
                    let url = rest.split_whitespace().next().unwrap_or(rest).to_owned();
                    return Ok::<_, anyhow::Error>(url);
                }
            }
            bail!("server exited before printing 'listening on http://…'")
        })
        .await
        .context("server did not print 'listening on' within 60 s")??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr = addr_of(&url)?;
        Ok(Self {
            url,
            addr,
            pid,
            child: Some(child),
            _data: data,
        })
    }

    /// Current resident set size, bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_bytes(self.pid)
    }

    /// CPU time (user + system) consumed so far, seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid)
    }

    /// Stop a spawned server (SIGTERM, then kill after 10 s).
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                terminate(pid);
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

/// SIGTERM via kill(1), so the server shuts down as it would in production.
fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

fn addr_of(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    let hostport = url
        .strip_prefix("http://")
        .context("only http:// targets are supported")?
        .trim_end_matches('/');
    hostport
        .parse()
        .with_context(|| format!("{hostport} is not host:port (use an IP)"))
}

/// VmRSS of `pid`, bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kb * 1024)
}

/// utime + stime of `pid`, seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, i.e. the 12th and 13th after ")".
    let after = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

/// Linux reports /proc times in USER_HZ, which is 100 on every mainstream
/// architecture (it is fixed by the ABI, whatever the kernel's HZ).
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_readings_are_plausible() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 1024 * 1024);
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert_eq!(addr_of("http://127.0.0.1:3000").unwrap().port(), 3000);
        assert!(addr_of("https://x").is_err());
    }
}
