//! `roomcast-bench`: the load generator and the side-by-side benchmark of
//! roomcast against a Node `socket.io@4` reference server.
//!
//! # Layout
//! - [`target`]: spawning (or attaching to) the server under test; RSS and CPU
//!   readings from `/proc`.
//! - [`world`]: users, rooms and posts through the real HTTP API.
//! - [`client`]: a minimal Socket.IO websocket client, one task per connection.
//! - [`stats`]: delivery accounting (loss, duplicates) and latency histograms.
//! - [`run`]: one scenario run against one target.
//! - [`report`]: tables, A/B summaries and JSON.
//! - [`plot`]: PNG charts from a JSON results file.
//! - [`floor`]: the kernel's cost of one small loopback `send` per socket,
//!   with no server: the floor under CPU per delivery.
//!
//! Every loop is bounded (sizes and deadlines) and every address is loopback.

mod client;
mod floor;
mod plot;
mod report;
mod run;
mod stats;
mod target;
mod world;

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use crate::run::{Load, Params};
use crate::target::{Programs, TargetKind};

/// Load generator for roomcast and the Socket.IO reference.
#[derive(Parser)]
#[command(name = "roomcast-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N sockets joined to rooms and held: server memory per connection, connect+join time.
    Idle {
        #[command(flatten)]
        common: Common,
        /// Seconds to hold the connections before reading memory.
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
    },
    /// N sockets in R rooms, messages posted through the API: deliveries/s, latency, loss, CPU.
    Fanout {
        #[command(flatten)]
        common: Common,
        /// Messages posted to each room.
        #[arg(long, default_value_t = 100)]
        messages: usize,
        /// Total posts per second (default: as fast as --post-concurrency allows).
        #[arg(long)]
        rate: Option<u32>,
        /// Posts in flight at most.
        #[arg(long, default_value_t = 32)]
        post_concurrency: usize,
    },
    /// The write path: one socket per room (`--conns` is `--rooms`), posts
    /// as fast as --post-concurrency allows: posts/s, server CPU per post,
    /// post → receive latency, the outbox backlog.
    Posts {
        #[command(flatten)]
        common: Common,
        /// Messages posted to each room.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Posts in flight at most.
        #[arg(long, default_value_t = 32)]
        post_concurrency: usize,
    },
    /// The floor under CPU per delivery on this machine: sender CPU per small
    /// loopback `send`, one per socket in turn, with no server code.
    Sendfloor {
        /// Sockets.
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        /// Sends to each socket.
        #[arg(long, default_value_t = 1000)]
        rounds: usize,
        /// Bytes per send (a `receiveMessage` frame is about 300).
        #[arg(long, default_value_t = 300)]
        bytes: usize,
        /// Measurements (the median is reported).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Draw PNG charts from a results file written with --json.
    Plot {
        /// Results JSON (one or more files).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Directory for the PNG files.
        #[arg(long, default_value = "bench/plots")]
        out_dir: PathBuf,
    },
}

#[derive(Args)]
struct Common {
    /// Targets, comma-separated: roomcast (serve), reference, split-nats,
    /// split-redis, split-gcp (api + realtime on PostgreSQL and that bus).
    /// Alternated A B A B … per round.
    #[arg(long, default_value = "roomcast", value_delimiter = ',')]
    targets: Vec<String>,
    /// Rounds (each round runs every target once, in order).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Socket.IO connections.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Rooms; connections are spread round-robin.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// API processes of a split target (posts are spread over them
    /// round-robin; the realtime node asks the first).
    #[arg(long, default_value_t = 1)]
    api_nodes: usize,
    /// Registered users per room (connections of a room share them).
    #[arg(long, default_value_t = 4)]
    users_per_room: usize,
    /// Connects in flight at most.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Longest wait for outstanding deliveries after the last post, seconds.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    /// The roomcast binary to spawn.
    #[arg(long, default_value = "target/release/roomcast")]
    roomcast_bin: PathBuf,
    /// The reference server's directory (after `npm ci`).
    #[arg(long, default_value = "bench/reference")]
    reference_dir: PathBuf,
    /// PostgreSQL for split targets (a fresh database is created per run;
    /// URL parameters such as `?max_connections=20` go to the API nodes).
    #[arg(long, default_value = "postgres://root@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Attach to an already running server instead of spawning (needs --pid).
    #[arg(long, requires = "pid")]
    url: Option<String>,
    /// Pid of the server given with --url.
    #[arg(long)]
    pid: Option<u32>,
    /// Write every run's results here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit non-zero if any delivery was lost or duplicated, or any post failed.
    #[arg(long)]
    strict: bool,
}

impl Common {
    fn kinds(&self) -> anyhow::Result<Vec<TargetKind>> {
        if let (Some(url), Some(pid)) = (&self.url, self.pid) {
            return Ok(vec![TargetKind::External {
                url: url.clone(),
                pid,
            }]);
        }
        self.targets
            .iter()
            .map(|t| match t.as_str() {
                "roomcast" => Ok(TargetKind::Roomcast),
                "reference" => Ok(TargetKind::Reference),
                split if split.starts_with("split-") => Ok(TargetKind::Split {
                    bus: split["split-".len()..].to_owned(),
                    api_nodes: self.api_nodes.clamp(1, 8),
                }),
                other => bail!("unknown target {other:?} (roomcast, reference, split-nats, split-redis, split-gcp)"),
            })
            .collect()
    }

    fn params(&self, load: Load) -> anyhow::Result<Params> {
        if self.rooms == 0 || self.conns == 0 || self.users_per_room == 0 {
            bail!("--conns, --rooms and --users-per-room must be at least 1");
        }
        if self.conns > 100_000 {
            bail!("--conns is capped at 100000");
        }
        Ok(Params {
            conns: self.conns,
            rooms: self.rooms,
            users_per_room: self.users_per_room,
            connect_concurrency: self.connect_concurrency.max(1),
            load,
            drain_secs: self.drain_secs,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (common, scenario, load) = match cli.command {
        Command::Plot { inputs, out_dir } => return plot::draw(&inputs, &out_dir),
        Command::Sendfloor {
            conns,
            rounds,
            bytes,
            repeat,
        } => return send_floor(conns, rounds, bytes, repeat),
        Command::Idle { common, hold_secs } => (common, "idle", Load::Idle { hold_secs }),
        Command::Posts {
            mut common,
            messages,
            post_concurrency,
        } => {
            common.conns = common.rooms;
            (
                common,
                "posts",
                Load::Fanout {
                    messages,
                    rate: None,
                    concurrency: post_concurrency,
                },
            )
        }
        Command::Fanout {
            common,
            messages,
            rate,
            post_concurrency,
        } => (
            common,
            "fanout",
            Load::Fanout {
                messages,
                rate,
                concurrency: post_concurrency,
            },
        ),
    };
    let params = common.params(load)?;
    let kinds = common.kinds()?;
    let programs = Programs {
        roomcast_bin: common.roomcast_bin.clone(),
        reference_dir: common.reference_dir.clone(),
        postgres_url: common.postgres_url.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(async {
        let mut results = Vec::new();
        for round in 0..common.rounds.max(1) {
            for kind in &kinds {
                eprintln!(
                    "round {}/{}: {} {scenario}",
                    round + 1,
                    common.rounds.max(1),
                    kind.name()
                );
                let r = run::run(kind, &programs, scenario, &params).await?;
                report::print_run(&r);
                results.push(r);
            }
        }
        Ok::<_, anyhow::Error>(results)
    })?;
    report::print_summary(&results);
    if let Some(path) = &common.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
        eprintln!("results written to {}", path.display());
    }
    let bad: u64 = results
        .iter()
        .map(|r| r.lost + r.duplicates + r.post_errors + r.disconnects)
        .sum();
    if common.strict && bad > 0 {
        bail!("{bad} lost/duplicated deliveries, failed posts or dropped connections");
    }
    Ok(())
}

fn send_floor(conns: usize, rounds: usize, bytes: usize, repeat: usize) -> anyhow::Result<()> {
    let mut cpu = Vec::new();
    for i in 0..repeat.clamp(1, 20) {
        let f = floor::measure(conns, rounds, bytes)?;
        println!(
            "run {}: {conns} sockets, {bytes}-byte sends: {:.2} sender CPU-s per million sends, {:.0} sends/s",
            i + 1,
            f.cpu_secs_per_million,
            f.sends_per_sec
        );
        cpu.push(f.cpu_secs_per_million);
    }
    cpu.sort_by(f64::total_cmp);
    println!(
        "median: {:.2} sender CPU-s per million sends ({conns} sockets, {bytes} bytes)",
        cpu[cpu.len() / 2]
    );
    Ok(())
}
