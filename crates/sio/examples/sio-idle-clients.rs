//! Measures a Socket.IO server's memory per idle connection: opens `--conns`
//! websocket clients to `--url`, connects each to `/`, answers pings, and
//! prints the server's RSS growth per connection (read from
//! `/proc/<pid>/status` of `--pid`) after holding them `--hold-secs`.
//!
//! ```sh
//! cargo build --release -p roomcast-sio --examples
//! target/release/examples/sio-conformance --port 3100 --ping-interval-ms 25000 --ping-timeout-ms 20000 &
//! target/release/examples/sio-idle-clients --url ws://127.0.0.1:3100 --pid $! --conns 15000
//! ```
//!
//! Raise `ulimit -n` above `--conns` in both shells. Run against loopback only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser)]
struct Args {
    /// Server base URL (ws://host:port).
    #[arg(long, default_value = "ws://127.0.0.1:3000")]
    url: String,
    /// The server's pid, to read its RSS.
    #[arg(long)]
    pid: u32,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    conns: usize,
    /// Connects in flight at most.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Seconds to hold the connections before reading RSS.
    #[arg(long, default_value_t = 10)]
    hold_secs: u64,
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn client(url: String, joined: Arc<AtomicUsize>) -> Result<(), String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    let mut connected = false;
    while let Some(msg) = ws.next().await {
        let Ok(Message::Text(text)) = msg else {
            continue;
        };
        match text.as_str() {
            "2" => ws
                .send(Message::text("3"))
                .await
                .map_err(|e| e.to_string())?,
            t if t.starts_with('0') => ws
                .send(Message::text("40"))
                .await
                .map_err(|e| e.to_string())?,
            t if t.starts_with("40") && !connected => {
                connected = true;
                joined.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    Err("closed".into())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", args.url);
    let before = rss_kib(args.pid);
    let joined = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    for _ in 0..args.conns {
        let permit = gate.clone().acquire_owned().await.ok();
        let (url, joined) = (url.clone(), joined.clone());
        let before = joined.load(Ordering::Relaxed);
        tokio::spawn(async move {
            let counter = joined.clone();
            let task = tokio::spawn(client(url, joined));
            // Release the permit once this client joined (or failed).
            while counter.load(Ordering::Relaxed) == before && !task.is_finished() {
                tokio::task::yield_now().await;
            }
            drop(permit);
            if let Ok(Err(e)) = task.await {
                eprintln!("client: {e}");
            }
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while joined.load(Ordering::Relaxed) < args.conns && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = joined.load(Ordering::Relaxed);
    eprintln!("{n} connected; holding {} s", args.hold_secs);
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let after = rss_kib(args.pid);
    let per = (after.saturating_sub(before)) as f64 / n.max(1) as f64;
    println!(
        "connections {n}  server RSS before {before} KiB  after {after} KiB  per connection {per:.2} KiB"
    );
}
