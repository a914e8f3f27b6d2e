// A client's local view, built only from the events it received, for the
// final-state check of the delivery scenarios (issue #7): after a scenario,
// every client's view must equal that of a control client that never
// disconnected, and what REST says.
//
// - `RoomModel`: one room's messages (edits and deletions applied) and
//   reactions, from receiveMessage / messageUpdated / messageDeleted /
//   reactionAdded / reactionRemoved (a deletion drops the message's
//   reactions), plus read receipts (messageReadUpdate).
//   Events must come exactly once, in eventSeq order, with no gap (the client
//   library's promise): anything else is recorded in `violations`.
// - `RoomListModel`: the user's RoomViews (unread counts) from `roomUpdated`
//   and `GET /v1/rooms`; a view older than the one held (lower lastSeq or
//   readSeq, both only grow) is ignored.
// - `restView(messages, me)`: the same normalised shape from REST history.

/** The events a RoomModel applies. */
export const MODEL_EVENTS = ['receiveMessage', 'messageUpdated', 'messageDeleted', 'reactionAdded', 'reactionRemoved', 'messageReadUpdate'];

/** The fields of a message that a view compares. */
function fields(m) {
  return {
    id: m.id,
    seq: m.seq,
    senderId: m.senderId,
    clientMsgId: m.clientMsgId,
    body: m.body,
    replyTo: m.replyTo ?? null,
    editedAt: m.editedAt ?? null,
    deletedAt: m.deletedAt ?? null,
  };
}

/** Reactions as `[emoji, count, me]`, sorted by emoji. */
function reactionList(byEmoji, me) {
  return [...byEmoji]
    .filter(([, users]) => users.size > 0)
    .map(([emoji, users]) => [emoji, users.size, users.has(me)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export class RoomModel {
  /** `roomId`; `eventSeq`: the position the client starts from (its first joinRoom ACK). */
  constructor(roomId, eventSeq = 0) {
    this.roomId = roomId;
    this.eventSeq = eventSeq;
    this.messages = new Map(); // id → fields
    this.reactions = new Map(); // message id → Map emoji → Set userId
    this.reads = new Map(); // userId → seq (read receipts)
    this.violations = [];
    this.applied = 0;
  }

  /** Apply one logged room event (others, and other rooms, are ignored). */
  apply(event, p) {
    if (!MODEL_EVENTS.includes(event) || p?.roomId !== this.roomId) return;
    if (p.eventSeq !== this.eventSeq + 1) {
      this.violations.push(`${event} eventSeq ${p.eventSeq} after ${this.eventSeq}`);
      if (p.eventSeq <= this.eventSeq) return; // a duplicate: not applied twice
    }
    this.eventSeq = p.eventSeq;
    this.applied++;
    switch (event) {
      case 'receiveMessage':
      case 'messageUpdated':
      case 'messageDeleted':
        if (event !== 'receiveMessage' && !this.messages.has(p.id)) {
          this.violations.push(`${event} of unknown message ${p.id}`);
        }
        this.messages.set(p.id, fields(p));
        // A deleted message loses its reactions (no reactionRemoved for them).
        if (event === 'messageDeleted') this.reactions.delete(p.id);
        break;
      case 'reactionAdded':
      case 'reactionRemoved': {
        if (!this.reactions.has(p.messageId)) this.reactions.set(p.messageId, new Map());
        const byEmoji = this.reactions.get(p.messageId);
        if (!byEmoji.has(p.emoji)) byEmoji.set(p.emoji, new Set());
        if (event === 'reactionAdded') byEmoji.get(p.emoji).add(p.userId);
        else byEmoji.get(p.emoji).delete(p.userId);
        break;
      }
      case 'messageReadUpdate':
        this.reads.set(p.userId, Math.max(this.reads.get(p.userId) ?? 0, p.seq));
        break;
    }
  }

  /** Listen to every model event of a RoomcastClient (or anything with `on(event, fn)`). */
  follow(client) {
    for (const e of MODEL_EVENTS) client.on(e, (p) => this.apply(e, p));
    return this;
  }

  /** The messages by seq, each with its reactions as `me` sees them. */
  view(me) {
    return [...this.messages.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((m) => ({ ...m, reactions: reactionList(this.reactions.get(m.id) ?? new Map(), me) }));
  }

  /** Read receipts as sorted `[userId, seq]`. */
  receipts() {
    return [...this.reads].sort(([a], [b]) => (a < b ? -1 : 1));
  }
}

/** REST history (`GET …/messages`) in the shape of `RoomModel.view`. */
export function restView(messages) {
  return messages.map((m) => ({
    ...fields(m),
    reactions: m.reactions
      .map((r) => [r.emoji, r.count, r.me])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  }));
}

export class RoomListModel {
  constructor() {
    this.rooms = new Map(); // roomId → {lastSeq, readSeq, unreadCount}
  }

  /** Apply a RoomView (from `roomUpdated` or `GET /v1/rooms`) unless an newer one is held. */
  apply(view) {
    const cur = this.rooms.get(view.id);
    if (cur && (view.lastSeq < cur.lastSeq || view.readSeq < cur.readSeq)) return;
    this.rooms.set(view.id, { lastSeq: view.lastSeq, readSeq: view.readSeq, unreadCount: view.unreadCount });
  }

  /** Listen to `roomUpdated` on a client. */
  follow(client) {
    client.on('roomUpdated', (v) => this.apply(v));
    return this;
  }

  /** `{lastSeq, readSeq, unreadCount}` of a room, or undefined. */
  get(roomId) {
    return this.rooms.get(roomId);
  }
}
