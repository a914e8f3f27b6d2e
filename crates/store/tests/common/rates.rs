//! Rate-limit buckets in the database (`Store::rate_take`): GCRA on the
//! caller's clock, so each case drives time itself.

use super::Db;

pub async fn a_bucket_allows_its_burst_then_refills_one_per_interval(db: Db) {
    let s = &*db.store;
    // Three at once, then one every second.
    for i in 0..3 {
        assert_eq!(
            s.rate_take("k", 10_000, 1000, 3).await.unwrap(),
            None,
            "take {i}"
        );
    }
    let wait = s.rate_take("k", 10_000, 1000, 3).await.unwrap();
    assert_eq!(wait, Some(1000), "the fourth waits one interval");
    assert_eq!(
        s.rate_take("k", 10_500, 1000, 3).await.unwrap(),
        Some(500),
        "a refusal counts nothing: still half an interval"
    );
    assert_eq!(s.rate_take("k", 11_000, 1000, 3).await.unwrap(), None);
    assert!(s.rate_take("k", 11_000, 1000, 3).await.unwrap().is_some());
    assert_eq!(
        s.rate_take("other", 11_000, 1000, 3).await.unwrap(),
        None,
        "keys are independent"
    );
}

pub async fn refilled_buckets_are_pruned_and_start_full(db: Db) {
    let s = &*db.store;
    for _ in 0..2 {
        s.rate_take("a", 0, 1000, 2).await.unwrap();
    }
    s.rate_take("b", 5_000, 1000, 2).await.unwrap();
    // "a" is full again from 2000 on, "b" from 6000.
    assert_eq!(s.rate_prune(3_000).await.unwrap(), 1);
    assert_eq!(s.rate_prune(3_000).await.unwrap(), 0);
    for _ in 0..2 {
        assert_eq!(s.rate_take("a", 3_000, 1000, 2).await.unwrap(), None);
    }
    assert!(s.rate_take("a", 3_000, 1000, 2).await.unwrap().is_some());
}
