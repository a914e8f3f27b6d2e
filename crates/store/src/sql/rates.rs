//! Rate limits kept in the database, shared by every process on it: one
//! GCRA bucket per key, its "theoretical arrival time" (`tat`, Unix ms) in
//! `rate_limits`. See [`crate::Store::rate_take`].

use super::query::Sql;
use super::{Dialect, SqlStore};
use crate::StoreError;

/// Take one action from `key`'s bucket (one action every `interval_ms`,
/// `burst` at once) at `now` (Unix ms): `None` if allowed (and counted),
/// `Some(ms)` to wait if refused (nothing counted).
pub(super) async fn take<D: Dialect>(
    s: &SqlStore<D>,
    key: &str,
    now: i64,
    interval_ms: i64,
    burst: u32,
) -> Result<Option<i64>, StoreError> {
    let interval = interval_ms.max(1);
    let window = interval.saturating_mul(i64::from(burst.max(1)));
    // Allowed while the bucket's next arrival time, after this action,
    // is at most `window` ahead of now.
    let upsert = Sql::new(format!(
        "INSERT INTO rate_limits (key, tat) VALUES ($1, $2 + $3)
         ON CONFLICT (key) DO UPDATE SET tat = {max}(rate_limits.tat, $2) + $3
         WHERE {max}(rate_limits.tat, $2) + $3 - $2 <= $4
         RETURNING tat",
        max = D::GREATEST
    ))
    .text(key)
    .int(now)
    .int(interval)
    .int(window);
    let current = Sql::new("SELECT tat FROM rate_limits WHERE key = $1").text(key);
    s.write(move |tx| {
        Box::pin(async move {
            if upsert.opt::<D>(tx).await?.is_some() {
                return Ok(None);
            }
            let tat = match current.opt::<D>(tx).await? {
                Some(row) => row.int("tat")?,
                None => now,
            };
            Ok(Some((tat.max(now) + interval - now - window).max(1)))
        })
    })
    .await
}

/// Delete the buckets whose `tat` is before `before` (Unix ms): full again,
/// the same as no row. How many went.
pub(super) async fn prune<D: Dialect>(s: &SqlStore<D>, before: i64) -> Result<u64, StoreError> {
    let delete = Sql::new("DELETE FROM rate_limits WHERE tat < $1").int(before);
    s.write(move |tx| Box::pin(async move { delete.run::<D>(tx).await }))
        .await
}
