//! The store's rules on a real PostgreSQL server: the shared suite
//! (`common`), plus what only a store shared by several processes must keep
//! (`posting`, `batching`, `relaying`), each test on a database of its own.
//!
//! The server is found at `ROOMCAST_TEST_POSTGRES_URL` (default
//! [`DEFAULT_ADMIN_URL`]), a URL of any database the role may
//! `CREATE DATABASE` from. Each test creates `roomcast_test_<random>`, runs,
//! and drops it `WITH (FORCE)`, also when the test fails. A server that
//! cannot be reached fails every test, naming PostgreSQL and how to start it:
//! these tests are never skipped.

mod batching;
#[path = "../common/mod.rs"]
mod common;
mod posting;
mod racing;
mod relaying;

use std::future::Future;
use std::sync::Arc;

use common::Db;
use roomcast_store::{PostgresStore, Store};
use sqlx::{Connection, Executor, PgConnection};

/// The variable naming the server to test against.
const URL_VAR: &str = "ROOMCAST_TEST_POSTGRES_URL";
/// The server when [`URL_VAR`] is unset.
const DEFAULT_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/postgres";
/// How to start the local server.
const START: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

fn admin_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

async fn admin() -> PgConnection {
    let url = admin_url();
    PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url}: {e}\n\
             The PostgreSQL store tests need a running server: start it with\n    {START}\n\
             or point {URL_VAR} at one."
        )
    })
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Run `case` with the URL of a new, empty database, and drop the database
/// afterwards, whether the case passed or panicked.
async fn with_database_url<F, Fut>(case: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = format!("roomcast_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = admin().await;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL: CREATE DATABASE {name} failed: {e}"));
    let url = with_database(&admin_url(), &name);
    // A task of its own, so that a panic in the case comes back here.
    let outcome = tokio::spawn(case(url)).await;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL: DROP DATABASE {name} failed: {e}"));
    let _ = conn.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

/// Open a [`PostgresStore`] on `url`: one per simulated API process.
async fn open(url: &str) -> PostgresStore {
    PostgresStore::open_with(url, &common::options())
        .await
        .unwrap_or_else(|e| panic!("PostgresStore::open({url}): {e}"))
}

/// Run a shared case on a fresh database, through [`roomcast_store::open`].
async fn run<F, Fut>(case: F)
where
    F: FnOnce(Db) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_database_url(|url| async move {
        let store: Arc<dyn Store> = roomcast_store::open_with(&url, &common::options())
            .await
            .unwrap();
        case(Db { store, url }).await;
    })
    .await;
}

common::store_suite!(run);

#[test]
fn the_database_is_replaced_in_the_admin_url() {
    assert_eq!(
        with_database("postgres://root@127.0.0.1:5432/postgres", "t"),
        "postgres://root@127.0.0.1:5432/t"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "t"),
        "postgresql://u:p@h/t?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "t"), "postgres://h/t");
}

#[tokio::test]
async fn both_schemes_open_postgres_and_the_pool_size_is_read_from_the_url() {
    with_database_url(|url| async move {
        let alt = url.replacen("postgres://", "postgresql://", 1);
        let a = roomcast_store::open(&alt).await.unwrap();
        a.create_user("alice", "h").await.unwrap();
        // A one-connection pool still runs a whole post.
        let b = open(&format!("{url}?max_connections=1")).await;
        let creds = b.credentials("ALICE").await.unwrap().unwrap();
        let room = b.create_room("r", creds.user.id, &[]).await.unwrap();
        let post = common::msg(room.id, creds.user.id, "k", "hi");
        assert!(matches!(
            b.post_message(post).await.unwrap(),
            roomcast_store::Posted::Created(_)
        ));
        let bad = PostgresStore::open(&format!("{url}?max_connections=0")).await;
        assert!(bad.unwrap_err().to_string().contains("max_connections"));
    })
    .await;
}

#[tokio::test]
async fn a_database_of_the_first_schema_is_upgraded_in_place() {
    with_database_url(|url| async move {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let first = common::upgrade::first_schema(sqlx::migrate!("./migrations/postgres"));
        first.run(&pool).await.unwrap();
        for stmt in common::upgrade::LEGACY_ROWS {
            pool.execute(*stmt).await.unwrap();
        }
        pool.close().await;
        let store = open(&url).await;
        common::upgrade::check_upgraded(&store).await;
    })
    .await;
}
