//! One run of a scenario against one target: start it, build the world,
//! connect and join every socket, then hold (idle) or post (fanout), and
//! collect the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::client::{self, Spec};
use crate::stats::{ConnTracker, Latency, Shared};
use crate::target::{Programs, Target, TargetKind};
use crate::world;

/// What a scenario does once every socket has joined.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Load {
    /// Hold the connections for a while, then read memory.
    Idle {
        /// Seconds to hold before reading RSS.
        hold_secs: u64,
    },
    /// Post messages and measure deliveries.
    Fanout {
        /// Messages per room.
        messages: usize,
        /// Posts per second in total (`None`: as fast as `concurrency` allows).
        rate: Option<u32>,
        /// Posts in flight at most.
        concurrency: usize,
    },
}

/// Sizes of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Params {
    /// Socket.IO connections.
    pub conns: usize,
    /// Rooms (connections spread round-robin).
    pub rooms: usize,
    /// Registered users per room (connections share them).
    pub users_per_room: usize,
    /// Connects in flight at most.
    pub connect_concurrency: usize,
    /// The load.
    pub load: Load,
    /// Longest wait for outstanding deliveries after the last post.
    pub drain_secs: u64,
}

/// Everything one run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// Target name.
    pub target: String,
    /// Scenario name.
    pub scenario: String,
    /// Sizes.
    pub params: Params,
    /// Server RSS before any socket connected, bytes.
    pub rss_before: u64,
    /// Server RSS with every socket joined (idle: after the hold), bytes.
    pub rss_loaded: u64,
    /// (rss_loaded - rss_before) / conns, KiB.
    pub rss_per_conn_kib: f64,
    /// Wall time to connect and join every socket, seconds.
    pub connect_secs: f64,
    /// Connect → join ACK per socket.
    pub connect_join: Latency,
    /// Deliveries expected.
    pub expected: u64,
    /// Distinct deliveries.
    pub delivered: u64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Deliveries received more than once.
    pub duplicates: u64,
    /// Connections that ended during the run.
    pub disconnects: u64,
    /// `receiveMessage` packets that were not bench messages of the socket's room.
    pub foreign: u64,
    /// Posts refused or failed.
    pub post_errors: u64,
    /// Seconds from the first post to the last delivery.
    pub load_secs: f64,
    /// Posts per second achieved.
    pub posts_per_sec: f64,
    /// Deliveries per second.
    pub deliveries_per_sec: f64,
    /// Server CPU seconds during the load.
    pub server_cpu_secs: f64,
    /// Server CPU seconds per million deliveries.
    pub cpu_secs_per_million: f64,
    /// CPU seconds per million deliveries of the process holding the
    /// sockets alone: for a split target the realtime node (bus consumer,
    /// fan-out, socket writes), without the API tier and its database work.
    /// Equal to `cpu_secs_per_million` for single-process targets.
    #[serde(default)]
    pub gateway_cpu_secs_per_million: f64,
    /// Post → receiveMessage latency.
    pub latency: Latency,
    /// Server CPU (every process) per post, microseconds.
    #[serde(default)]
    pub cpu_us_per_post: f64,
    /// CPU of the target's engines (PostgreSQL and the bus server) per
    /// post, microseconds; `None` for targets without engines. Not part of
    /// `cpu_us_per_post`.
    #[serde(default)]
    pub engine_cpu_us_per_post: Option<f64>,
    /// The largest outbox backlog `/healthz` reported during the load (rows,
    /// summed over API processes); `None` where the target reports none.
    #[serde(default)]
    pub backlog_max_rows: Option<i64>,
}

/// A progress line, rewritten in place on a terminal (silent otherwise, so
/// logs keep only the results).
fn progress(line: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprint!("\r\x1b[2K{line}");
    }
}

/// Run `params` against `kind`.
pub async fn run(
    kind: &TargetKind,
    programs: &Programs,
    scenario: &str,
    params: &Params,
) -> anyhow::Result<RunResult> {
    let target = Target::start(kind, programs).await?;
    let result = run_on(&target, &kind.name(), scenario, params).await;
    target.stop().await;
    result
}

async fn run_on(
    target: &Target,
    name: &str,
    scenario: &str,
    p: &Params,
) -> anyhow::Result<RunResult> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    progress(&format!(
        "[{name} {scenario}] registering {} users…",
        p.rooms * p.users_per_room
    ));
    let world = Arc::new(world::build(&http, &target.url, p.rooms, p.users_per_room, 16).await?);
    let messages = match p.load {
        Load::Fanout { messages, .. } => messages,
        Load::Idle { .. } => 0,
    };
    let per_room_conns = |r: usize| p.conns / p.rooms + usize::from(r < p.conns % p.rooms);
    let expected: u64 = (0..p.rooms)
        .map(|r| (per_room_conns(r) * messages) as u64)
        .sum();
    let shared = Arc::new(Shared::new(expected));
    let rss_before = target.rss_bytes()?;

    // Connect and join every socket.
    let stop = CancellationToken::new();
    let gate = Arc::new(Semaphore::new(p.connect_concurrency));
    let joined = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let join_lat = Arc::new(Shared::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(p.conns);
    for i in 0..p.conns {
        let (r, token) = world.assignment(i);
        let spec = Spec {
            server: target.addr,
            source: client::source_for(i),
            token,
            room_id: world.rooms[r].id.clone(),
        };
        let (gate, joined, failed, shared, stop, join_lat) = (
            gate.clone(),
            joined.clone(),
            failed.clone(),
            shared.clone(),
            stop.clone(),
            join_lat.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok()?;
            let res = client::connect_and_join(&spec).await;
            drop(permit);
            match res {
                Ok((ws, took)) => {
                    join_lat.record_raw(took);
                    joined.fetch_add(1, Ordering::Relaxed);
                    Some(
                        client::receive_loop(ws, ConnTracker::new(i, messages), shared, stop).await,
                    )
                }
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("\nconnection {i} failed: {e:#}");
                    }
                    None
                }
            }
        }));
    }
    let total = p.conns as u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while joined.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < total {
        if Instant::now() > deadline {
            bail!("connecting took over 300 s");
        }
        progress(&format!(
            "[{name} {scenario}] joined {}/{total} ({} failed)",
            joined.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    if failed.load(Ordering::Relaxed) > 0 {
        stop.cancel();
        bail!(
            "{} of {total} connections failed",
            failed.load(Ordering::Relaxed)
        );
    }

    let cpu_before = target.cpu_seconds()?;
    let engine_cpu_before = target.engine_cpu_seconds();
    let gateway_cpu_before = target.gateway_cpu_seconds()?;
    let load_started = Instant::now();
    let mut post_errors = 0;
    let mut rss_loaded = target.rss_bytes()?;
    let mut posts_per_sec = 0.0;
    let mut posts = 0;
    let mut backlog_max_rows = None;
    match &p.load {
        Load::Idle { hold_secs } => {
            for s in 0..*hold_secs {
                progress(&format!(
                    "[{name} {scenario}] holding {total} sockets {s}/{hold_secs} s"
                ));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            rss_loaded = target.rss_bytes()?;
        }
        Load::Fanout {
            messages,
            rate,
            concurrency,
        } => {
            let sampling = CancellationToken::new();
            let sampler = tokio::spawn(sample_backlog(
                http.clone(),
                target.api_urls.clone(),
                sampling.clone(),
            ));
            let posted = post_all(
                &http,
                &target.api_urls,
                &world,
                *messages,
                *rate,
                *concurrency,
                &shared,
                name,
                scenario,
            )
            .await;
            post_errors = posted.errors;
            posts = posted.count;
            posts_per_sec = posted.count as f64 / posted.secs.max(1e-9);
            let drain =
                tokio::time::timeout(Duration::from_secs(p.drain_secs), shared.all_delivered());
            tokio::pin!(drain);
            loop {
                tokio::select! {
                    _ = &mut drain => break,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => progress(&format!(
                        "[{name} {scenario}] delivered {}/{expected}", shared.delivered()
                    )),
                }
            }
            sampling.cancel();
            backlog_max_rows = sampler.await.unwrap_or(None);
        }
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    let server_cpu_secs = target.cpu_seconds()? - cpu_before;
    let engine_cpu_secs = target
        .engine_cpu_seconds()
        .zip(engine_cpu_before)
        .map(|(after, before)| (after - before).max(0.0));
    let gateway_cpu_secs = target.gateway_cpu_seconds()? - gateway_cpu_before;
    stop.cancel();
    let mut distinct = 0;
    for t in tasks {
        if let Some(tracker) = t.await.context("connection task")? {
            distinct += tracker.distinct();
        }
    }
    eprintln!();
    let delivered = shared.delivered();
    Ok(RunResult {
        target: name.to_owned(),
        scenario: scenario.to_owned(),
        params: p.clone(),
        rss_before,
        rss_loaded,
        rss_per_conn_kib: (rss_loaded.saturating_sub(rss_before)) as f64
            / 1024.0
            / p.conns.max(1) as f64,
        connect_secs,
        connect_join: join_lat.latency(),
        expected,
        delivered,
        lost: expected.saturating_sub(distinct),
        duplicates: shared.duplicates(),
        disconnects: shared.disconnects(),
        foreign: shared.foreign(),
        post_errors,
        load_secs,
        posts_per_sec,
        deliveries_per_sec: delivered as f64 / load_secs.max(1e-9),
        server_cpu_secs,
        cpu_secs_per_million: per_million(server_cpu_secs, delivered),
        gateway_cpu_secs_per_million: per_million(gateway_cpu_secs, delivered),
        latency: shared.latency(),
        cpu_us_per_post: if posts > 0 {
            server_cpu_secs * 1e6 / posts as f64
        } else {
            0.0
        },
        engine_cpu_us_per_post: engine_cpu_secs
            .filter(|_| posts > 0)
            .map(|secs| secs * 1e6 / posts as f64),
        backlog_max_rows,
    })
}

/// Poll every API process's `/healthz` each 100 ms until `stop`: the largest
/// summed `outbox.backlogRows` seen (`None` if no process reported one).
async fn sample_backlog(
    http: reqwest::Client,
    urls: Vec<String>,
    stop: CancellationToken,
) -> Option<i64> {
    let mut max = None;
    // Bounded: at most 10 minutes of samples.
    for _ in 0..6000 {
        let mut sum = None;
        for url in &urls {
            let reading = async {
                let v: serde_json::Value = http
                    .get(format!("{url}/healthz"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                v["outbox"]["backlogRows"].as_i64()
            };
            if let Some(rows) = reading.await {
                sum = Some(sum.unwrap_or(0) + rows);
            }
        }
        if let Some(rows) = sum {
            max = Some(max.map_or(rows, |m: i64| m.max(rows)));
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    max
}

fn per_million(cpu_secs: f64, delivered: u64) -> f64 {
    if delivered > 0 {
        cpu_secs * 1e6 / delivered as f64
    } else {
        0.0
    }
}

struct Posted {
    count: u64,
    errors: u64,
    secs: f64,
}

#[allow(clippy::too_many_arguments)]
async fn post_all(
    http: &reqwest::Client,
    bases: &[String],
    world: &Arc<world::World>,
    messages: usize,
    rate: Option<u32>,
    concurrency: usize,
    shared: &Arc<Shared>,
    name: &str,
    scenario: &str,
) -> Posted {
    let total = messages * world.rooms.len();
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut ticker = rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut handles = Vec::with_capacity(total);
    for n in 0..total {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        if n % 500 == 0 {
            progress(&format!(
                "[{name} {scenario}] posted {n}/{total}, delivered {}",
                shared.delivered()
            ));
        }
        let permit = gate.clone().acquire_owned().await.expect("semaphore open");
        let (http, base, world, shared, errors) = (
            http.clone(),
            bases[n % bases.len()].clone(),
            world.clone(),
            shared.clone(),
            errors.clone(),
        );
        let (r, k) = (n % world.rooms.len(), n / world.rooms.len());
        handles.push(tokio::spawn(async move {
            let body = client::bench_body(k, shared.now_us());
            if let Err(e) = world::post(&http, &base, &world.rooms[r], k, body).await
                && errors.fetch_add(1, Ordering::Relaxed) < 3
            {
                eprintln!("\npost failed: {e:#}");
            }
            drop(permit);
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    Posted {
        count: total as u64,
        errors: errors.load(Ordering::Relaxed),
        secs: started.elapsed().as_secs_f64(),
    }
}
