// Compile-time check of clients/js/index.d.ts against the real socket.io-client
// types (`npm run typecheck`, run by scripts/test): the documented usage of
// docs/client.md must type-check under --strict.
import { io } from 'socket.io-client';
import { RoomcastClient, RoomcastError, login, refresh, type Logged, type Message } from '../../clients/js/index.js';

export async function documentedUsage(url: string): Promise<void> {
  const first = await login(url, 'alice', 'correct-horse-battery');
  const { token, user, refreshToken } = await refresh(url, first.refreshToken);
  console.log(refreshToken.length, first.expiresIn);
  const chat = new RoomcastClient({ io, url, token, socketOptions: { transports: ['websocket'] } });
  const stop = chat.on('receiveMessage', (m: Logged<Message>) => console.log(m.eventSeq, m.seq, m.body, user.id));
  chat.on('reload', ({ roomId, eventSeq }) => console.log(roomId, eventSeq));
  chat.on('roomUpdated', (view) => console.log(view.unreadCount, view.lastMessage?.body));
  chat.on('invitationReceived', (inv) => console.log(inv.roomId, inv.kind, inv.inviterId));
  chat.on('invitationRemoved', ({ roomId, reason }) => console.log(roomId, reason === 'accepted'));
  await chat.connect();
  const ack = await chat.joinRoom('room', { sinceEventSeq: 3 });
  const position: number | undefined = ack.recovered ? ack.eventSeq : chat.lastEventSeq('room');
  console.log(position);
  try {
    await chat.sendMessage('room', 'hello');
  } catch (e) {
    if (e instanceof RoomcastError) console.log(e.code);
  }
  stop();
  chat.close();
}
