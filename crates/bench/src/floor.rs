//! The kernel's floor under "CPU-s per million deliveries": the sender's
//! CPU for one small `send` over loopback TCP to each of N sockets in turn,
//! with no server code at all. A fan-out that writes each delivery with its
//! own `send` (one frame per socket per write, which is what a chat fan-out
//! is unless writes are delayed to batch them) cannot cost less than this
//! on the same machine: on loopback the sender's CPU also pays the
//! receiver's TCP processing.
//!
//! The sender is one thread writing blocking `std` sockets; the readers are
//! tokio tasks on other threads (each connection from its own source
//! address, as in the other scenarios) whose CPU is not counted. CPU is the
//! sender thread's utime + stime from `/proc/thread-self/stat`.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;

use crate::client::source_for;

/// Sockets at most (two descriptors each, under the machine's 20,000 open
/// files per process).
pub const MAX_CONNS: usize = 9_500;

/// One measurement.
pub struct Floor {
    /// Sender CPU seconds per million sends.
    pub cpu_secs_per_million: f64,
    /// Sends per second achieved.
    pub sends_per_sec: f64,
}

/// `rounds` rounds of one `bytes`-byte send to each of `conns` sockets.
pub fn measure(conns: usize, rounds: usize, bytes: usize) -> anyhow::Result<Floor> {
    if conns == 0 || rounds == 0 || bytes == 0 {
        bail!("--conns, --rounds and --bytes must be at least 1");
    }
    if conns > MAX_CONNS {
        bail!(
            "--conns is at most {MAX_CONNS}: both ends of every socket are in this process, and a process may open 20,000 files here"
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let per_conn = rounds * bytes;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let readers = rt.spawn(read_all(addr, conns, per_conn));
    let mut socks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (s, _) = listener.accept().context("accepting a reader")?;
        s.set_nodelay(true)?;
        socks.push(s);
    }
    let msg = vec![b'x'; bytes];
    let cpu_before = thread_cpu_seconds()?;
    let started = Instant::now();
    for _ in 0..rounds {
        for s in &mut socks {
            s.write_all(&msg).context("sending")?;
        }
    }
    let cpu = thread_cpu_seconds()? - cpu_before;
    let secs = started.elapsed().as_secs_f64();
    rt.block_on(readers)??;
    let sends = (conns * rounds) as f64;
    Ok(Floor {
        cpu_secs_per_million: cpu * 1e6 / sends,
        sends_per_sec: sends / secs.max(1e-9),
    })
}

/// Connect `conns` readers to `addr`, each reading `per_conn` bytes.
async fn read_all(addr: SocketAddr, conns: usize, per_conn: usize) -> anyhow::Result<()> {
    let mut tasks = Vec::with_capacity(conns);
    for i in 0..conns {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(source_for(i), 0))?;
        let mut stream = sock.connect(addr).await.context("connecting a reader")?;
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut left = per_conn;
            while left > 0 {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    bail!("sender closed early");
                }
                left = left.saturating_sub(n);
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The calling thread's CPU seconds (user + system).
fn thread_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    crate::target::cpu_from_stat(&stat)
}
