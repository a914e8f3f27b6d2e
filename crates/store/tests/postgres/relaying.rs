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
