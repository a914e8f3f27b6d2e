//! The shared suite (`common`) on SQLite with the outbox held in memory
//! (`OutboxStorage::Memory`, as `roomcast serve` runs it): every rule,
//! including the outbox's order, claims and backlog, holds there too.

// The table-only cases and the upgrade helpers are not run here.
#[allow(dead_code)]
mod common;

use std::future::Future;
use std::sync::Arc;

use common::Db;
use roomcast_store::{OutboxStorage, SqliteStore, Store, StoreOptions};

/// The options of a store whose outbox is held in memory.
fn held() -> StoreOptions {
    StoreOptions {
        outbox: OutboxStorage::Memory,
        ..common::options()
    }
}

/// Run `case` on a fresh database file whose outbox is held in memory.
async fn run<F, Fut>(case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_with(&url, &held()).await.unwrap());
    case(Db { store, url }).await;
}

common::store_suite!(held_outbox run);

#[tokio::test]
async fn rows_left_in_the_table_move_to_memory_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let table = SqliteStore::open(&url).await.unwrap();
    let [alice, bob] = common::users(&table, ["alice", "bob"]).await;
    let room = table.create_room("r", alice, &[bob]).await.unwrap();
    let all = roomcast_store::outbox::Partitions::all(table.outbox_partitions());
    let queued: Vec<roomcast_core::EnvelopeId> = table
        .outbox_claim(&all, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.envelope.id)
        .collect();
    assert!(!queued.is_empty());
    drop(table);
    let held = SqliteStore::open_with(&url, &held()).await.unwrap();
    let moved: Vec<roomcast_core::EnvelopeId> = held
        .outbox_claim(&all, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.envelope.id)
        .collect();
    assert_eq!(moved, queued, "the same events, in order");
    drop(held);
    let table = SqliteStore::open(&url).await.unwrap();
    assert_eq!(
        table.outbox_backlog().await.unwrap().rows,
        0,
        "the table was emptied"
    );
    let _ = room;
}
