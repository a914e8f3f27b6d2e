#!/usr/bin/env bash
# The full benchmark runs recorded in BENCHMARKS.md. Manual: takes ~18 minutes
# and uses the whole machine. Results go to bench/results/*.json, charts to bench/plots/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p roomcast -p roomcast-bench
(cd bench/reference && npm ci --no-audit --no-fund --loglevel=error)
B=target/release/roomcast-bench
mkdir -p bench/results
AB="--targets roomcast,reference --rounds 3"

# Idle: 15,000 sockets in rooms of 100, held 5 s.
$B idle $AB --conns 15000 --rooms 150 --hold-secs 5 --json bench/results/idle-15k.json | tee bench/results/idle-15k.txt
# Fan-out as fast as the API takes posts: 1,000 sockets in rooms of 100 (500 messages per room).
$B fanout $AB --conns 1000 --rooms 10 --messages 500 --json bench/results/fanout-1k.json | tee bench/results/fanout-1k.txt
# Fan-out, 10,000 sockets in rooms of 100 (50 messages per room).
$B fanout $AB --conns 10000 --rooms 100 --messages 50 --json bench/results/fanout-10k.json | tee bench/results/fanout-10k.txt
# Latency at a fixed 200 posts/s into rooms of 100, 10,000 sockets connected (30 s of posts).
$B fanout $AB --conns 10000 --rooms 100 --messages 60 --rate 200 --json bench/results/latency-10k-200rps.json | tee bench/results/latency-10k-200rps.txt

# The split deployment (api + realtime on PostgreSQL and NATS) beside serve.
$B fanout --targets roomcast,split-nats --rounds 3 --conns 1000 --rooms 10 --messages 500 --json bench/results/split-fanout-1k.json | tee bench/results/split-fanout-1k.txt
$B fanout --targets roomcast,split-nats --rounds 3 --conns 10000 --rooms 100 --messages 30 --rate 200 --json bench/results/split-latency-10k-200rps.json | tee bench/results/split-latency-10k-200rps.txt

# The gateway alone (the realtime node of the split deployment), and the
# kernel's floor: one loopback send per delivery with no server code.
$B fanout --targets split-nats --rounds 3 --conns 1000 --rooms 10 --messages 500 --json bench/results/gateway-fanout-1k.json | tee bench/results/gateway-fanout-1k.txt
$B fanout --targets split-nats --rounds 3 --conns 10000 --rooms 100 --messages 50 --json bench/results/gateway-fanout-10k.json | tee bench/results/gateway-fanout-10k.txt
$B sendfloor --conns 1000 --rounds 1000 | tee bench/results/sendfloor-1k.txt
$B sendfloor --conns 9000 --rounds 100 | tee bench/results/sendfloor-9k.txt

$B plot bench/results/{idle-15k,fanout-1k,fanout-10k,latency-10k-200rps}.json --out-dir bench/plots
