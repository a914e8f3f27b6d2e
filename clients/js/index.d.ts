// Types of @roomcast/client. The wire objects are those of docs/protocol.md.
// socket.io-client is the application's (passed in as `io`), so its types are
// not imported here: `SocketIoFactory` and `RoomcastSocket` describe what the
// library needs of it.

/** `io` from socket.io-client (≥ 4.6). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SocketIoFactory = (url: string, options?: any) => any;

/** The socket.io-client socket under a client (see socket.io-client's `Socket`). */
export interface RoomcastSocket {
  readonly connected: boolean;
  readonly id: string | undefined;
  /** Whether the last reconnect continued the session (connection state recovery). */
  readonly recovered: boolean;
  /** The Manager: `socket.io.engine`, reconnection settings, … */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly io: any;
  connect(): this;
  disconnect(): this;
  on(event: string, listener: (...args: any[]) => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
  off(event?: string, listener?: (...args: any[]) => void): this;
}

export interface User {
  id: string;
  username: string;
}

export interface ReactionCount {
  emoji: string;
  count: number;
  me: boolean;
}

export interface Message {
  id: string;
  roomId: string;
  seq: number;
  senderId: string;
  body: string;
  clientMsgId: string;
  createdAt: string;
  replyTo?: string | null;
  editedAt?: string | null;
  deletedAt?: string | null;
  reactions: ReactionCount[];
}

/** A logged room event's payload carries its position in the room's log. */
export type Logged<T> = T & { eventSeq: number };

export interface ReactionEvent {
  roomId: string;
  messageId: string;
  seq: number;
  userId: string;
  emoji: string;
}

export interface ReadUpdate {
  roomId: string;
  userId: string;
  seq: number;
}

export interface Room {
  id: string;
  kind: 'group' | 'dm';
  name: string;
  members: string[];
  roles: Record<string, 'owner' | 'admin' | 'member'>;
  lastSeq: number;
  createdAt: string;
  lastActivityAt: string;
}

export interface RoomView extends Room {
  readSeq: number;
  unreadCount: number;
  lastMessage: Message | null;
}

export interface Typing {
  roomId: string;
  userId: string;
  typing: boolean;
}

export interface Presence {
  userId: string;
  online: boolean;
  lastSeenAt?: string | null;
}

/** An invitation to a room (the invitee chose `addPolicy: "invite"`); accept or decline it over HTTP. */
export interface Invitation {
  roomId: string;
  kind: 'group' | 'dm';
  name: string;
  inviterId: string;
  userId: string;
  createdAt: string;
}

export interface RoomcastEvents {
  receiveMessage: Logged<Message>;
  messageUpdated: Logged<Message>;
  messageDeleted: Logged<Message>;
  reactionAdded: Logged<ReactionEvent>;
  reactionRemoved: Logged<ReactionEvent>;
  messageReadUpdate: Logged<ReadUpdate>;
  roomUpdated: RoomView;
  roomRemoved: { roomId: string; userId: string };
  typing: Typing;
  presence: Presence;
  /** Someone added this user to a room, or opened a DM with them: `POST /v1/invitations/{roomId}/accept` or `…/decline`. */
  invitationReceived: Invitation;
  /** The invitation was accepted (a `roomUpdated` follows) or declined, on any of the user's devices. */
  invitationRemoved: { roomId: string; userId: string; reason: 'accepted' | 'declined' };
  /** One of this user's login sessions ended (logout, password change, reused refresh token); its sockets are disconnected. */
  sessionRevoked: { userId: string; sessionId: string };
  /** The gap could not be replayed: refetch the room through REST, then continue from `eventSeq`. */
  reload: { roomId: string; eventSeq: number };
  /** The room list (first page, latest activity first) as of a connect that was not recovered. */
  rooms: RoomList;
  /** `recovered`: the server continued the session by itself (connection state recovery). */
  connect: { recovered: boolean };
  /** New tokens from a refresh (keep `refreshToken`: the old one is used up). */
  tokens: Session;
  disconnect: string;
  error: Error;
}

/** One page of the room list; `next` is the `GET /v1/rooms?before=` cursor of the next. */
export interface RoomList {
  rooms: RoomView[];
  next: string | null;
}

export interface JoinAck {
  ok: true;
  seq: number;
  eventSeq?: number;
  recovered?: boolean;
}

export declare const LOGGED_EVENTS: readonly (keyof RoomcastEvents)[];
export declare const OTHER_EVENTS: readonly (keyof RoomcastEvents)[];

export declare class RoomcastError extends Error {
  code: string;
  constructor(code: string, message: string);
}

export interface Session {
  /** The access token (valid `expiresIn` seconds). */
  token: string;
  /** Renews the session once: `refresh(baseUrl, refreshToken)`. */
  refreshToken: string;
  expiresIn: number;
  user: User;
}

export declare function refresh(
  baseUrl: string,
  refreshToken: string,
  options?: { fetch?: typeof fetch },
): Promise<Session>;

export declare function login(
  baseUrl: string,
  username: string,
  password: string,
  options?: { fetch?: typeof fetch },
): Promise<Session>;

export declare function register(
  baseUrl: string,
  username: string,
  password: string,
  options?: { fetch?: typeof fetch },
): Promise<Session>;

export interface ClientOptions {
  /** `io` from socket.io-client. */
  io: SocketIoFactory;
  url: string;
  /** The access token. */
  token: string;
  /** The session's refresh token: the client refreshes the access token by itself. */
  refreshToken?: string;
  /** Seconds the access token lives (`expiresIn` of login/register/refresh). */
  expiresIn?: number;
  /** Also join the user channel (room list, presence) on every connect. Default true. */
  joinUser?: boolean;
  /** More socket.io-client options (`transports`, reconnection delays, …); `auth` is set by the client. */
  socketOptions?: Record<string, unknown>;
}

export declare class RoomcastClient {
  constructor(options: ClientOptions);
  readonly socket: RoomcastSocket;
  /** The current access token (it changes at each refresh). */
  readonly token: string;
  /** Refresh the tokens now (one refresh at a time). */
  refreshNow(): Promise<Session>;
  connect(): Promise<this>;
  close(): void;
  on<E extends keyof RoomcastEvents>(event: E, handler: (payload: RoomcastEvents[E]) => void): () => void;
  lastEventSeq(roomId: string): number | undefined;
  joinRoom(roomId: string, options?: { sinceEventSeq?: number }): Promise<JoinAck>;
  leaveRoom(roomId: string): Promise<{ ok: true }>;
  sendMessage(roomId: string, body: string, clientMsgId?: string, replyTo?: string): Promise<{ ok: true; clientMsgId: string }>;
  markRead(roomId: string, seq: number): Promise<{ ok: true }>;
  typing(roomId: string, typing?: boolean): Promise<{ ok: true }>;
}
