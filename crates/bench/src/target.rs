//! The server under test: spawned by the bench (roomcast `serve`, roomcast's
//! split deployment, or the Node reference) or attached to by URL and pid,
//! plus its resource readings from `/proc/<pid>` (RSS and CPU time).

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
    /// `roomcast api` + `roomcast realtime` on PostgreSQL and a bus
    /// (`nats`, `redis` or `gcp`, whose engine must be running).
    Split {
        /// The bus kind.
        bus: String,
        /// API processes (1 or more).
        api_nodes: usize,
    },
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
    pub fn name(&self) -> String {
        match self {
            Self::Roomcast => "roomcast".into(),
            Self::Split { bus, api_nodes: 1 } => format!("roomcast-split-{bus}"),
            Self::Split { bus, api_nodes } => format!("roomcast-split-{bus}-{api_nodes}api"),
            Self::Reference => "reference".into(),
            Self::External { .. } => "external".into(),
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
    /// PostgreSQL server URL for split targets (a fresh database is created per run).
    pub postgres_url: String,
}

/// A running server (one process, or an API and a realtime process).
pub struct Target {
    /// Base URL for HTTP (the API; the first one of several).
    pub url: String,
    /// Every API process's base URL (posts go round-robin).
    pub api_urls: Vec<String>,
    /// Host:port for Socket.IO connects.
    pub addr: std::net::SocketAddr,
    /// Pid holding the sockets (its RSS is the per-connection figure).
    pub pid: u32,
    /// Every server pid (CPU is summed over them).
    pub pids: Vec<u32>,
    children: Vec<Child>,
    database: Option<(String, String)>,
    /// Process names of the engines a split target uses (PostgreSQL and
    /// its bus server), whose CPU is reported apart.
    engines: Vec<&'static str>,
    _data: Option<tempfile::TempDir>,
}

/// Spawn `cmd` and wait for its "listening on http://…" line.
async fn spawn_listening(cmd: Command, what: &str) -> anyhow::Result<(Child, String)> {
    let (child, url, _) = spawn_listening_internal(cmd, what).await?;
    Ok((child, url))
}

/// [`spawn_listening`], also returning the internal listener's URL a
/// `roomcast api` prints before its "listening on" line.
async fn spawn_listening_internal(
    mut cmd: Command,
    what: &str,
) -> anyhow::Result<(Child, String, Option<String>)> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("spawning {what}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut internal = None;
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(i) = line.find("internal routes on http://") {
                internal = Some(line[i + "internal routes on ".len()..].trim().to_owned());
            }
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on ".len()..];
                let url = rest.split_whitespace().next().unwrap_or(rest).to_owned();
                return Ok::<_, anyhow::Error>(url);
            }
        }
        bail!("{what} exited before printing 'listening on http://…'")
    })
    .await
    .with_context(|| format!("{what} did not print 'listening on' within 60 s"))??;
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, url, internal))
}

fn roomcast(programs: &Programs, args: &[&str]) -> anyhow::Result<Command> {
    if !programs.roomcast_bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p roomcast`",
            programs.roomcast_bin.display()
        );
    }
    let mut cmd = Command::new(&programs.roomcast_bin);
    // A load test is an abuse pattern by design: every cap and rate limit
    // off (the HTTP head bounds stay on). Its rooms are made with their
    // members in them: users let anyone add them (no invitations).
    cmd.args(args)
        .env("ROOMCAST_LOG", "warn")
        .env("ROOMCAST_LIMITS__ENABLED", "false")
        .env("ROOMCAST_ROOMS__DEFAULT_ADD_POLICY", "anyone");
    Ok(cmd)
}

async fn psql(server: &str, sql: &str) -> anyhow::Result<()> {
    // psql knows no `max_connections` parameter: the server part only.
    let server = server.split_once('?').map_or(server, |(url, _)| url);
    let out = Command::new("psql")
        .arg(server)
        .arg("-qc")
        .arg(sql)
        .output()
        .await
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Target {
    /// Start (or attach to) the server and wait until it listens.
    pub async fn start(kind: &TargetKind, programs: &Programs) -> anyhow::Result<Self> {
        let one = |child: Child, url: String, data| -> anyhow::Result<Self> {
            let pid = child.id().context("child pid")?;
            Ok(Self {
                addr: addr_of(&url)?,
                api_urls: vec![url.clone()],
                url,
                pid,
                pids: vec![pid],
                children: vec![child],
                database: None,
                engines: Vec::new(),
                _data: data,
            })
        };
        match kind {
            TargetKind::External { url, pid } => Ok(Self {
                url: url.clone(),
                api_urls: vec![url.clone()],
                addr: addr_of(url)?,
                pid: *pid,
                pids: vec![*pid],
                children: Vec::new(),
                database: None,
                engines: Vec::new(),
                _data: None,
            }),
            TargetKind::Roomcast => {
                let dir = tempfile::tempdir()?;
                let db = format!("sqlite://{}/bench.db", dir.path().display());
                let cmd = roomcast(
                    programs,
                    &["serve", "--listen", "127.0.0.1:0", "--database-url", &db],
                )?;
                let (child, url) = spawn_listening(cmd, "roomcast serve").await?;
                one(child, url, Some(dir))
            }
            TargetKind::Reference => {
                if !programs.reference_dir.join("node_modules").exists() {
                    bail!(
                        "{} has no node_modules: run `npm ci` there first",
                        programs.reference_dir.display()
                    );
                }
                let mut cmd = Command::new("node");
                cmd.arg(programs.reference_dir.join("server.mjs")).args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                ]);
                let (child, url) = spawn_listening(cmd, "the reference server").await?;
                one(child, url, None)
            }
            TargetKind::Split { bus, api_nodes } => {
                let name = format!("roomcast_bench_{}", std::process::id());
                psql(
                    &programs.postgres_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await?;
                psql(&programs.postgres_url, &format!("CREATE DATABASE {name}")).await?;
                // The URL's parameters (e.g. `?max_connections=4`) carry over.
                let (url, params) = match programs.postgres_url.split_once('?') {
                    Some((url, params)) => (url, format!("?{params}")),
                    None => (programs.postgres_url.as_str(), String::new()),
                };
                let db = match url.rsplit_once('/') {
                    Some((server, _)) => format!("{server}/{name}{params}"),
                    None => bail!("--postgres-url must end with /<database>"),
                };
                let env = [
                    ("ROOMCAST_AUTH__JWT_SECRET", "bench-secret".to_owned()),
                    (
                        "ROOMCAST_INTERNAL__SECRET",
                        "bench-internal-secret".to_owned(),
                    ),
                    ("ROOMCAST_BUS__KIND", bus.clone()),
                    ("ROOMCAST_BUS__CHAT_OUT", format!("bench.out.{name}")),
                    ("ROOMCAST_BUS__CHAT_IN", format!("bench.in.{name}")),
                ];
                let mut apis = Vec::new();
                for _ in 0..*api_nodes {
                    let mut api = roomcast(
                        programs,
                        &[
                            "api",
                            "--listen",
                            "127.0.0.1:0",
                            "--internal-listen",
                            "127.0.0.1:0",
                            "--database-url",
                            &db,
                        ],
                    )?;
                    api.envs(env.iter().map(|(k, v)| (k, v)));
                    apis.push(spawn_listening_internal(api, "roomcast api").await?);
                }
                let api_urls: Vec<String> = apis.iter().map(|(_, u, _)| u.clone()).collect();
                let internal = apis[0]
                    .2
                    .clone()
                    .context("roomcast api printed no internal listener")?;
                let mut rt = roomcast(programs, &["realtime", "--listen", "127.0.0.1:0"])?;
                rt.envs(env.iter().map(|(k, v)| (k, v)))
                    .env("ROOMCAST_REALTIME__API_URL", &internal)
                    .env("ROOMCAST_REALTIME__NODE_ID", "bench-rt");
                let (rt_child, rt_url) = spawn_listening(rt, "roomcast realtime").await?;
                let rt_pid = rt_child.id().context("child pid")?;
                let mut pids = vec![rt_pid];
                let mut children = vec![rt_child];
                for (child, _, _) in apis {
                    pids.push(child.id().context("child pid")?);
                    children.push(child);
                }
                Ok(Self {
                    url: api_urls[0].clone(),
                    api_urls,
                    addr: addr_of(&rt_url)?,
                    pid: rt_pid,
                    pids,
                    children,
                    database: Some((programs.postgres_url.clone(), name)),
                    engines: engine_processes(bus),
                    _data: None,
                })
            }
        }
    }

    /// Current resident set size of the socket-holding process, bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_bytes(self.pid)
    }

    /// CPU time (user + system) consumed so far by every server process, seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        self.pids.iter().map(|p| cpu_seconds(*p)).sum()
    }

    /// CPU seconds (user + system) of every process on this machine named
    /// as one of the target's engines (PostgreSQL's backends, the bus
    /// server); `None` for targets without engines. Other users of the same
    /// engines count too: run nothing else on them during a benchmark.
    pub fn engine_cpu_seconds(&self) -> Option<f64> {
        if self.engines.is_empty() {
            return None;
        }
        let mut total = 0.0;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue; // not a process, or it just ended
            };
            let comm = stat
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map(|(comm, _)| comm);
            if comm.is_some_and(|c| self.engines.contains(&c)) {
                total += cpu_from_stat(&stat).unwrap_or(0.0);
            }
        }
        Some(total)
    }

    /// CPU seconds (user + system) of the process holding the sockets.
    pub fn gateway_cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid)
    }

    /// Stop spawned servers (SIGTERM, then kill after 10 s) and drop a split
    /// target's database.
    pub async fn stop(mut self) {
        for mut child in self.children.drain(..) {
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
        if let Some((server, name)) = self.database.take()
            && let Err(e) = psql(
                &server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await
        {
            eprintln!("could not drop the bench database: {e:#}");
        }
    }
}

/// The process names of PostgreSQL and of `bus`'s server.
fn engine_processes(bus: &str) -> Vec<&'static str> {
    let server = match bus {
        "nats" => "nats-server",
        "redis" => "redis-server",
        // The Pub/Sub emulator runs on the JVM.
        "gcp" => "java",
        _ => return vec!["postgres"],
    };
    vec!["postgres", server]
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
    cpu_from_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// utime + stime, in seconds, from a `/proc/…/stat` line.
pub fn cpu_from_stat(stat: &str) -> anyhow::Result<f64> {
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
