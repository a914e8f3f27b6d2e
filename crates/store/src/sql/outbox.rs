//! Outbox rows: queued by every write inside its transaction, read oldest
//! first, deleted once published. (How they are relayed is a
//! [`Dialect`](super::Dialect) hook.)

use roomcast_core::{Envelope, now_ms, topics};

use super::Dialect;
use super::query::{Sql, placeholders, value_rows};
use crate::{OutboxItem, StoreError};

/// Rows per `INSERT` / `DELETE` statement (three arguments a row).
const CHUNK: usize = 200;

/// Queue `envs` on `chat.out`, in order (their row ids increase in order),
/// the logged ones with their room event log positions (see
/// [`super::events::log`]).
pub(super) async fn queue<D: Dialect>(
    conn: &mut D::Connection,
    envs: &[Envelope],
) -> Result<(), StoreError> {
    let envs = super::events::log::<D>(conn, envs).await?;
    let now = now_ms();
    for chunk in envs.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO outbox (topic, envelope, created_at) VALUES {}",
            value_rows(chunk.len(), 3)
        );
        let sql = chunk.iter().fold(Sql::new(sql), |q, env| {
            q.text(topics::CHAT_OUT)
                .text(String::from_utf8(env.to_bytes()).expect("JSON is UTF-8"))
                .int(now)
        });
        sql.run::<D>(conn).await?;
    }
    Ok(())
}

/// The oldest `limit` rows, in id order.
pub(crate) async fn oldest<D: Dialect>(
    conn: &mut D::Connection,
    limit: i64,
) -> Result<Vec<OutboxItem>, StoreError> {
    let rows = Sql::new("SELECT id, topic, envelope FROM outbox ORDER BY id LIMIT $1")
        .int(limit)
        .all::<D>(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxItem {
                id: r.int("id")?,
                topic: r.text("topic")?,
                envelope: Envelope::from_bytes(r.text("envelope")?.as_bytes())
                    .map_err(|e| StoreError::Corrupt(format!("outbox envelope: {e}")))?,
            })
        })
        .collect()
}

/// Delete the rows `ids`.
pub(crate) async fn delete<D: Dialect>(
    conn: &mut D::Connection,
    ids: &[i64],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM outbox WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let sql = chunk.iter().fold(Sql::new(sql), |q, id| q.int(*id));
        sql.run::<D>(conn).await?;
    }
    Ok(())
}
