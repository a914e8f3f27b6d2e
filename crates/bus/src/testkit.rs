//! Helpers the bus backends' integration tests share (NATS, Redis, Pub/Sub):
//! bounded waits that fail naming what they waited for, and reading the next
//! envelope of a subscription through outage reports. Every wait ends at
//! [`DEADLINE`]; none of them sleeps to synchronise (`eventually` probes a
//! condition only the engine's state can show).

use std::future::Future;
use std::time::Duration;

use roomcast_core::{Encoded, Envelope};

use crate::Subscription;

/// How long any wait of a backend test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// `fut`, or a panic naming `what` once [`DEADLINE`] has passed.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next envelope of `sub` (acked), skipping outage reports.
pub async fn next_envelope(sub: &mut Subscription, what: &str) -> Envelope {
    within(what, async {
        loop {
            match sub.next().await.expect("subscription ended") {
                Ok(d) => {
                    let env = d.envelope.clone();
                    d.ack().await.expect("ack");
                    return env;
                }
                Err(e) => eprintln!("{what}: outage reported: {e}"),
            }
        }
    })
    .await
}

/// Wait until `probe` returns true, probing every 20 ms, failing at
/// [`DEADLINE`]. For conditions only the engine's state can show.
pub async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !probe().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Each of `envelopes`, encoded (what [`crate::Bus::publish_run`] takes).
pub fn encoded(envelopes: &[Envelope]) -> Vec<Encoded> {
    envelopes.iter().map(Envelope::encode).collect()
}
