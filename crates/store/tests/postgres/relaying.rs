//! Relaying from several processes (several [`PostgresStore`]s) on one
//! database: the partitions are spread over the live relays, never held by
//! two at once, and a dead relay's partitions are taken over.

use std::time::{Duration, Instant};

use roomcast_store::{OutboxLease, PostgresStore, Store};

use crate::{open, with_database_url};

/// Renew every lease in turn until `done` holds of them (bounded).
async fn renew_until(
    leases: &mut [&mut Box<dyn OutboxLease>],
    what: &str,
    done: impl Fn(&[&mut Box<dyn OutboxLease>]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for lease in leases.iter_mut() {
            lease.renew().await.unwrap();
        }
        if done(leases) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        // Let the server end sessions whose sockets were closed.
        tokio::task::yield_now().await;
    }
}

fn owned(lease: &dyn OutboxLease) -> Vec<u32> {
    lease.partitions().owned.clone()
}

/// No partition held twice, and together they are all of them.
fn disjoint_cover(leases: &[&mut Box<dyn OutboxLease>], count: u32) -> bool {
    let mut all: Vec<u32> = leases.iter().flat_map(|l| owned(&***l)).collect();
    all.sort_unstable();
    all == (0..count).collect::<Vec<_>>()
}

async fn stores(url: &str, n: usize) -> Vec<PostgresStore> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(open(url).await);
    }
    out
}

#[tokio::test]
async fn partitions_spread_over_the_live_relays_and_a_dead_ones_are_taken_over() {
    with_database_url(|url| async move {
        let s = stores(&url, 3).await;
        let count = s[0].outbox_partitions();
        let mut a = s[0].outbox_lease("a").await.unwrap();
        assert!(a.partitions().is_all(), "alone, it holds every partition");

        let mut b = s[1].outbox_lease("b").await.unwrap();
        renew_until(&mut [&mut a, &mut b], "two relays share", |l| {
            disjoint_cover(l, count) && l.iter().all(|x| owned(&***x).len() == count as usize / 2)
        })
        .await;

        let mut c = s[2].outbox_lease("c").await.unwrap();
        let fair = (count as usize).div_ceil(3);
        renew_until(&mut [&mut a, &mut b, &mut c], "three relays share", |l| {
            disjoint_cover(l, count) && l.iter().all(|x| owned(&***x).len() <= fair)
        })
        .await;

        // `b`'s process dies: its connection closes without a word.
        drop(b);
        renew_until(&mut [&mut a, &mut c], "the survivors take b's share", |l| {
            disjoint_cover(l, count)
        })
        .await;

        // A stopping relay gives its partitions up at once.
        c.release().await;
        assert!(c.partitions().owned.is_empty());
        renew_until(&mut [&mut a], "the last relay holds all", |l| {
            owned(&**l[0]).len() == count as usize
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_write_on_one_process_wakes_the_other_processes_relay() {
    with_database_url(|url| async move {
        let s = stores(&url, 2).await;
        let mut a = s[0].outbox_lease("a").await.unwrap();
        let mut b = s[1].outbox_lease("b").await.unwrap();
        // Both must know of each other before `a` announces.
        renew_until(&mut [&mut a, &mut b], "two relays share", |l| {
            disjoint_cover(l, s[0].outbox_partitions())
                && l.iter().all(|x| !owned(&***x).is_empty())
        })
        .await;
        a.announce().await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), b.remote_write())
            .await
            .expect("b hears of a's write");
    })
    .await;
}

#[tokio::test]
async fn relays_of_different_databases_do_not_see_each_other() {
    with_database_url(|url| async move {
        with_database_url(|other| async move {
            let (x, y) = (open(&url).await, open(&other).await);
            let mut a = x.outbox_lease("a").await.unwrap();
            let mut b = y.outbox_lease("b").await.unwrap();
            a.renew().await.unwrap();
            b.renew().await.unwrap();
            assert!(a.partitions().is_all());
            assert!(b.partitions().is_all());
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn an_older_single_relay_stands_down_and_its_rows_get_their_partition() {
    with_database_url(|url| async move {
        use sqlx::{Connection, PgConnection};
        let s = open(&url).await;
        let alice = s.create_user("alice", "h").await.unwrap().id;
        let room = s.create_room("r", alice, &[]).await.unwrap();
        let mut old = PgConnection::connect(&url).await.unwrap();
        // What an older API process does: an outbox row without `okey`.
        let env = roomcast_core::Envelope::to_room(
            roomcast_core::Kind::ReceiveMessage,
            room.id,
            serde_json::json!({ "body": "from the old version" }),
        );
        let json = String::from_utf8(env.encode().bytes.to_vec()).unwrap();
        sqlx::query("INSERT INTO outbox (topic, envelope, created_at) VALUES ('chat.out', $1, 0)")
            .bind(&json)
            .execute(&mut old)
            .await
            .unwrap();
        assert!(old_pass(&mut old).await, "alone, the old relay relays");

        let mut lease = s.outbox_lease("new").await.unwrap();
        assert!(
            !old_pass(&mut old).await,
            "with a partitioned relay live, it stands down"
        );
        let okey: i64 = sqlx::query_scalar("SELECT okey FROM outbox WHERE envelope = $1")
            .bind(&json)
            .fetch_one(&mut old)
            .await
            .unwrap();
        assert_eq!(
            okey,
            env.ordering_hash(),
            "the old row has its room's partition"
        );

        lease.release().await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !old_pass(&mut old).await {
            assert!(
                Instant::now() < deadline,
                "the old relay relays again once the new one is gone"
            );
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// One pass of an older API process's relay: whether it got its lock.
async fn old_pass(conn: &mut sqlx::PgConnection) -> bool {
    use sqlx::Connection;
    let mut tx = conn.begin().await.unwrap();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(roomcast_store::postgres::lease::SINGLE_RELAY_KEY)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    got
}
