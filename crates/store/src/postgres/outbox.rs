//! The PostgreSQL outbox: writing rows, and relaying them one process at a time.
//!
//! # One relay pass
//! [`PostgresStore`](super::PostgresStore) implements
//! [`Store::outbox_relay`](crate::Store::outbox_relay) with `relay`. One
//! pass is one READ COMMITTED transaction on one pooled connection:
//! 1. `SELECT pg_try_advisory_xact_lock(`[`RELAY_LOCK_KEY`]`)`. If another
//!    session holds it, the transaction is rolled back and the pass returns
//!    [`RelayPass::default()`] (nothing published, no failure) at once: another
//!    process is relaying. It keeps passing while it finds full batches, so it
//!    picks up this process's rows too; at worst they wait for this process's
//!    own next pass (the relay's wake-up or poll interval).
//! 2. A *separate* statement selects the oldest `limit` rows in id order. Its
//!    snapshot is taken after the lock was granted, and the previous holder's
//!    lock was released only after its commit, so it sees that holder's deletes.
//! 3. The sink is called for each row in id order, stopping at the first error.
//! 4. The rows published are deleted (`DELETE … WHERE id IN (…)`), the failed
//!    row and those after it are kept, and the transaction commits, which
//!    releases the lock. The pass reports the count and the sink's error.
//!
//! # What is guaranteed while processes are healthy
//! Passes never overlap, whichever process makes them, so each row is
//! published exactly once. Rows go out in id order among those committed:
//! within a room that is `seq` order, because a room's posts are serialised
//! by its row lock and each commits before the next takes an id. (Across rooms,
//! a transaction that took a lower id but commits later is published later.)
//!
//! # A crash mid-pass
//! The deletes are not committed until the end of the pass, so if the relaying
//! process dies after publishing some rows, the server rolls its transaction
//! back: every row of the pass, published or not, is still in the outbox, and
//! the advisory lock is freed with the session. The session ends at once when
//! the process exits and the kernel closes its socket; if the whole host
//! vanishes, only when the server notices the dead connection (its TCP
//! keepalive settings), and until then no process relays. The same holds when
//! the pass is cancelled (its future dropped: the pool rolls the connection back
//! before reusing it) or when the delete or commit fails (the pass returns the
//! error).
//!
//! Whoever relays next starts again from the oldest row left, so the rows the
//! dead pass had published are published **again**, in the same order and
//! followed by the rest: consumers see e.g. 1, 2, (crash), 1, 2, 3, 4. Delivery
//! is at-least-once across crashes, and consumers drop the duplicates by
//! envelope id. Because the lock is held while the sink runs, a sink that never
//! returns stalls relaying for every process: the sink must time out.
//!
//! [`Store::outbox_pending`](crate::Store::outbox_pending) and
//! [`Store::outbox_done`](crate::Store::outbox_done) do not take the lock: they
//! are for tests and tools, not for a relay running beside other relays.

use sqlx::{PgPool, Postgres};

use crate::sql::{delete_outbox, oldest_outbox};
use crate::{OutboxSink, RelayPass, StoreError, publish_in_order};

/// The advisory-lock key the relay takes (`"roomcast"` in ASCII). Nothing
/// else on the same database may use this key.
pub const RELAY_LOCK_KEY: i64 = 0x726f_6f6d_6361_7374;

/// One relay pass over `pool`; see the module docs.
pub(super) async fn relay(
    pool: &PgPool,
    limit: i64,
    sink: &dyn OutboxSink,
) -> Result<RelayPass, StoreError> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(RELAY_LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        tx.rollback().await?;
        return Ok(RelayPass::default());
    }
    // A new statement, so a new snapshot: it sees the previous holder's deletes.
    let items = oldest_outbox::<Postgres>(&mut tx, limit).await?;
    let (done, failure) = publish_in_order(&items, sink).await;
    if !done.is_empty() {
        delete_outbox::<Postgres>(&mut tx, &done).await?;
    }
    tx.commit().await?;
    Ok(RelayPass {
        published: done.len(),
        failure,
    })
}
