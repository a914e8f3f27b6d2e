//! The store's rules on a real SQLite file: the shared suite (`common`), run
//! on a fresh temporary database per case, plus what is SQLite's own.

mod common;

use std::future::Future;
use std::sync::Arc;

use common::Db;
use roomcast_store::{SqliteStore, Store};

/// Run `case` on a fresh database file in a temporary directory.
async fn run<F, Fut>(case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_with(&url, &common::options())
            .await
            .unwrap(),
    );
    case(Db { store, url }).await;
}

common::store_suite!(run);

#[tokio::test]
async fn an_unsupported_url_is_a_clear_error() {
    let err = roomcast_store::open("mysql://x").await.err().unwrap();
    let text = err.to_string();
    assert!(
        text.contains("sqlite") && text.contains("postgres"),
        "{text}"
    );
}

#[tokio::test]
async fn open_dispatches_sqlite_urls_to_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = roomcast_store::open(&url).await.unwrap();
    store.create_user("alice", "h").await.unwrap();
    assert!(dir.path().join("t.db").exists());
}

#[tokio::test]
async fn a_database_of_the_first_schema_is_upgraded_in_place() {
    use sqlx::Executor;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    {
        let opts = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap()
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let first = common::upgrade::first_schema(sqlx::migrate!("./migrations/sqlite"));
        first.run(&pool).await.unwrap();
        for stmt in common::upgrade::LEGACY_ROWS {
            pool.execute(*stmt).await.unwrap();
        }
        pool.close().await;
    }
    let store = SqliteStore::open(&url).await.unwrap();
    common::upgrade::check_upgraded(&store).await;
}
