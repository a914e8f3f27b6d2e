//! Many posts in one PostgreSQL transaction (group commit), in two
//! statements however many posts and rooms it holds.
//!
//! [`post_all`] takes the posts that queued up while the previous batch was
//! written (see [`crate::postgres::posts`]) and:
//! 1. locks every room among them (`SELECT … FOR UPDATE`, in room id order,
//!    so that two batches never wait for each other in a cycle) and reads,
//!    in the same statement, each room's head, its member count and its
//!    members (all of them in rooms small enough for per-member views, else
//!    only the senders);
//! 2. decides each post in Rust as [`super::messages`] decides one: no such
//!    room, not a member, or the next `seq` and event position of its room,
//!    in arrival order; builds its `receiveMessage` and `roomUpdatedMany`
//!    events and encodes each once;
//! 3. writes everything in one statement (a data-modifying `WITH` over
//!    `unnest` of arrays): the messages, the rooms' heads, the senders' read
//!    markers, the event log rows and the outbox rows, in order;
//! 4. commits, and only then answers each caller.
//!
//! Everything a single post guarantees holds: the room locks are held to
//! commit, so `seq` and `eventSeq` are gap-free and outbox rows of a room
//! get ids in `seq` order; each caller is answered after its own commit.
//! What the batch does not decide itself it leaves to the one-post path
//! (`messages::post_in`, a transaction each), after the batch: a
//! `clientMsgId` posted twice in one batch (the second then finds the
//! first), and, if the write inserted fewer messages than it decided (a
//! `clientMsgId` already stored, a `replyTo` not in the room) or failed in
//! any way, every post of the batch: the batch is rolled back and nothing of
//! it was written.
//!
//! PostgreSQL only: it binds arrays ([`Arg::Texts`], [`Arg::Ints`]).

use std::collections::{BTreeMap, HashMap};

use roomcast_core::{
    ChatOut, Encoded, Envelope, Message, MessageId, RoomId, UserId, now_ms, rfc3339_ms, topics,
};
use sqlx::{PgPool, Postgres};
use tokio::sync::oneshot;

use super::events::{self, Queued};
use super::messages::{Post, post_in};
use super::query::{Arg, Sql};
use super::{load, outbox};
use crate::domain::RoomState;
use crate::{Posted, StoreError, UNREAD_FANOUT_MAX_MEMBERS};

/// A post waiting for its batch, and where its outcome goes.
#[derive(Debug)]
pub(crate) struct Job {
    /// The post.
    pub post: Post,
    /// Its outcome, sent after its commit (or its refusal).
    pub answer: oneshot::Sender<Result<Posted, StoreError>>,
}

/// Post every one of `jobs` and answer each: in one transaction if it can,
/// else each alone (see the module docs).
///
/// `intake` (held by the caller while it took `jobs` from the queue) is let
/// go as soon as the batch's write is done, before its `COMMIT`: the next
/// writer then takes the next batch while this one commits.
pub(crate) async fn post_all<G: Send>(pool: &PgPool, jobs: Vec<Job>, mut intake: Option<G>) {
    let (mut batch, mut alone) = (Vec::with_capacity(jobs.len()), Vec::new());
    for job in jobs {
        if batch.iter().any(|b: &Job| same_key(&b.post, &job.post)) {
            alone.push(job);
        } else {
            batch.push(job);
        }
    }
    match in_one(pool, &batch, &mut intake).await {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.answer.send(Ok(outcome));
            }
        }
        Err(why) => {
            tracing::debug!(posts = batch.len(), %why, "batch of posts retried one by one");
            alone.splice(0..0, batch);
        }
    }
    drop(intake);
    for job in alone {
        let _ = job.answer.send(one(pool, job.post).await);
    }
}

/// Whether `a` and `b` name the same message.
fn same_key(a: &Post, b: &Post) -> bool {
    a.room == b.room && a.sender == b.sender && a.client_msg_id == b.client_msg_id
}

/// One post in its own transaction.
async fn one(pool: &PgPool, post: Post) -> Result<Posted, StoreError> {
    let mut tx = pool.begin().await?;
    let posted = post_in::<Postgres>(&mut tx, post).await?;
    tx.commit().await?;
    Ok(posted)
}

/// Why a batch was not written as one.
#[derive(Debug, thiserror::Error)]
enum Unbatched {
    /// The write inserted fewer messages than decided.
    #[error("{inserted} of {decided} messages inserted")]
    Short { inserted: i64, decided: usize },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for Unbatched {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A locked room as the batch moves it on.
struct Head {
    state: RoomState,
    last_event_seq: i64,
    /// Whether its members get `roomUpdated` (see
    /// [`UNREAD_FANOUT_MAX_MEMBERS`]); then `state` holds all of them.
    views: bool,
}

/// Lock the rooms, read their heads and the members wanted: one row per
/// member (or one of nulls), ordered by room id, so locked in that order.
const LOCK: &str = "
    CROSS JOIN LATERAL (SELECT count(*) AS n FROM room_members WHERE room_id = r.id) c
    LEFT JOIN room_members m ON m.room_id = r.id AND (c.n <= $2 OR m.user_id = ANY($3))
    WHERE r.id = ANY($1)
    ORDER BY r.id, m.position
    FOR UPDATE OF r";

/// Write a batch, everything created at `$7`: messages `$1…$6`, `$8`, room
/// heads `$9…$12`, read markers `$13…$15`, event log rows `$16…$19`,
/// outbox rows `$21…$22` (topic `$20`, in array order). Returns how many
/// messages went in.
const WRITE: &str = "
WITH ins AS (
    INSERT INTO messages (id, room_id, seq, sender_id, body, client_msg_id, created_at, reply_to)
    SELECT v.id, v.room_id, v.seq, v.sender_id, v.body, v.client_msg_id, $7, v.reply_to
    FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[],
                $8::text[])
        AS v(id, room_id, seq, sender_id, body, client_msg_id, reply_to)
    WHERE v.reply_to IS NULL
       OR EXISTS (SELECT 1 FROM messages x WHERE x.id = v.reply_to AND x.room_id = v.room_id)
    ON CONFLICT (room_id, sender_id, client_msg_id) DO NOTHING
    RETURNING 1
), moved AS (
    UPDATE rooms r SET last_seq = v.seq, last_event_seq = v.event_seq,
        last_activity_at = GREATEST(r.last_activity_at, v.at)
    FROM unnest($9::text[], $10::int8[], $11::int8[], $12::int8[]) AS v(id, seq, event_seq, at)
    WHERE r.id = v.id
), marked AS (
    UPDATE room_members m SET read_seq = v.seq
    FROM unnest($13::text[], $14::text[], $15::int8[]) AS v(room_id, user_id, seq)
    WHERE m.room_id = v.room_id AND m.user_id = v.user_id AND m.read_seq < v.seq
), logged AS (
    INSERT INTO room_events (room_id, event_seq, kind, payload, created_at)
    SELECT v.room_id, v.event_seq, v.kind, v.payload, $7
    FROM unnest($16::text[], $17::int8[], $18::text[], $19::text[])
        AS v(room_id, event_seq, kind, payload)
), queued AS (
    INSERT INTO outbox (topic, envelope, created_at, okey)
    SELECT $20, v.envelope, $7, v.okey
    FROM unnest($21::text[], $22::int8[]) WITH ORDINALITY AS v(envelope, okey, ord)
    ORDER BY v.ord
)
SELECT count(*) AS inserted FROM ins";

/// The batch in one transaction: each post's outcome, in order.
async fn in_one<G>(
    pool: &PgPool,
    batch: &[Job],
    intake: &mut Option<G>,
) -> Result<Vec<Posted>, Unbatched> {
    let mut tx = pool.begin().await?;
    let mut heads = lock(&mut tx, batch).await?;
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut messages: Vec<Message> = Vec::new();
    let mut events: Vec<Queued> = Vec::new();
    for Job { post, .. } in batch {
        let Some(head) = heads.get_mut(&post.room) else {
            outcomes.push(Posted::NoRoom);
            continue;
        };
        if head.state.role(post.sender).is_none() {
            outcomes.push(Posted::NotMember);
            continue;
        }
        let message = head.post(post, now);
        events.push(Queued {
            event: ChatOut::ReceiveMessage(message.clone()),
            event_seq: Some(head.last_event_seq),
        });
        if head.views {
            events.push(head.state.updated_to_all().into());
        }
        outcomes.push(Posted::Created(message.clone()));
        messages.push(message);
    }
    if messages.is_empty() {
        return Ok(outcomes);
    }
    let decided = messages.len();
    let inserted = write(&mut tx, &messages, &heads, &events, now)
        .await?
        .int("inserted")?;
    if inserted != decided as i64 {
        return Err(Unbatched::Short { inserted, decided });
    }
    // The rooms stay locked until the commit: a next batch may start, and
    // waits only for rooms it shares with this one.
    drop(intake.take());
    tx.commit().await?;
    Ok(outcomes)
}

impl Head {
    /// Take the next `seq` and event position for `post`, and move the
    /// room's state on as the write will.
    fn post(&mut self, post: &Post, now: i64) -> Message {
        let seq = self.state.room.last_seq + 1;
        self.last_event_seq += 1;
        let message = Message {
            id: MessageId::new(),
            room_id: post.room,
            seq,
            sender_id: post.sender,
            body: post.body.clone(),
            client_msg_id: post.client_msg_id.clone(),
            created_at: rfc3339_ms(now),
            reply_to: post.reply_to,
            edited_at: None,
            deleted_at: None,
            reactions: Vec::new(),
        };
        let state = &mut self.state;
        state.room.last_seq = seq;
        state.activity_ms = state.activity_ms.max(now);
        state.room.last_activity_at = rfc3339_ms(state.activity_ms);
        let read = state.read.entry(post.sender).or_default();
        *read = (*read).max(seq);
        if self.views {
            state.last_message = Some(message.clone());
        }
        message
    }
}

/// Lock the batch's rooms and read their heads (see [`LOCK`]).
async fn lock(
    tx: &mut sqlx::PgConnection,
    batch: &[Job],
) -> Result<HashMap<RoomId, Head>, StoreError> {
    let mut rooms: Vec<RoomId> = batch.iter().map(|j| j.post.room).collect();
    rooms.sort_unstable();
    rooms.dedup();
    let mut senders: Vec<UserId> = batch.iter().map(|j| j.post.sender).collect();
    senders.sort_unstable();
    senders.dedup();
    let rows = Sql::new(format!(
        "{}{LOCK}",
        load::room_head_select(
            ", r.last_event_seq, c.n AS member_count, m.user_id, m.role, m.read_seq"
        )
    ))
    .arg(texts(rooms))
    .int(UNREAD_FANOUT_MAX_MEMBERS)
    .arg(texts(senders))
    .all::<Postgres>(tx)
    .await?;
    let mut heads: HashMap<RoomId, Head> = HashMap::new();
    for row in &rows {
        let id: RoomId = row.id("id")?;
        let head = match heads.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Head {
                state: load::room_from(row)?,
                last_event_seq: row.int("last_event_seq")?,
                views: row.int("member_count")? <= UNREAD_FANOUT_MAX_MEMBERS,
            }),
        };
        load::add_member(&mut head.state, row)?;
    }
    Ok(heads)
}

/// Write the batch (see [`WRITE`]).
async fn write(
    tx: &mut sqlx::PgConnection,
    messages: &[Message],
    heads: &HashMap<RoomId, Head>,
    events: &[Queued],
    now: i64,
) -> Result<super::query::Rec<Postgres>, StoreError> {
    let envs: Vec<Envelope> = events
        .iter()
        .map(|q| q.event.envelope(q.event_seq))
        .collect();
    let logged: Vec<_> = events::logged(&envs).collect();
    let encoded: Vec<Encoded> = envs.iter().map(Envelope::encode).collect();
    // Each sender's marker moves to their last message in the room (seqs
    // rise in batch order), each room posted to to its head as decided.
    let mut reads: BTreeMap<(RoomId, UserId), i64> = BTreeMap::new();
    for m in messages {
        reads.insert((m.room_id, m.sender_id), m.seq);
    }
    let mut moved: Vec<(RoomId, &Head)> = reads
        .keys()
        .filter_map(|(room, _)| Some((*room, heads.get(room)?)))
        .collect();
    moved.dedup_by_key(|(room, _)| *room);
    Sql::new(WRITE)
        .arg(texts(messages.iter().map(|m| m.id)))
        .arg(texts(messages.iter().map(|m| m.room_id)))
        .arg(Arg::Ints(messages.iter().map(|m| m.seq).collect()))
        .arg(texts(messages.iter().map(|m| m.sender_id)))
        .arg(texts(messages.iter().map(|m| &m.body)))
        .arg(texts(messages.iter().map(|m| &m.client_msg_id)))
        .int(now)
        .arg(Arg::Texts(
            messages
                .iter()
                .map(|m| m.reply_to.map(|r| r.to_string()))
                .collect(),
        ))
        .arg(texts(moved.iter().map(|(room, _)| room)))
        .arg(Arg::Ints(
            moved.iter().map(|(_, h)| h.state.room.last_seq).collect(),
        ))
        .arg(Arg::Ints(
            moved.iter().map(|(_, h)| h.last_event_seq).collect(),
        ))
        .arg(Arg::Ints(
            moved.iter().map(|(_, h)| h.state.activity_ms).collect(),
        ))
        .arg(texts(reads.keys().map(|(room, _)| room)))
        .arg(texts(reads.keys().map(|(_, user)| user)))
        .arg(Arg::Ints(reads.values().copied().collect()))
        .arg(texts(logged.iter().map(|e| e.0)))
        .arg(Arg::Ints(logged.iter().map(|e| e.1).collect()))
        .arg(texts(logged.iter().map(|e| e.2)))
        .arg(texts(logged.iter().map(|e| e.3)))
        .text(topics::CHAT_OUT)
        .arg(Arg::Texts(
            encoded.iter().map(|e| Some(outbox::row_text(e))).collect(),
        ))
        .arg(Arg::Ints(
            encoded.iter().map(Encoded::ordering_hash).collect(),
        ))
        .one::<Postgres>(tx)
        .await
}

/// A `TEXT[]` argument of `vs`.
fn texts<T: ToString>(vs: impl IntoIterator<Item = T>) -> Arg {
    Arg::Texts(vs.into_iter().map(|v| Some(v.to_string())).collect())
}
