//! A namespace's sockets and rooms on this node.
//!
//! Rooms are a map from room name to socket keys, and each member records
//! its rooms, all under one lock per namespace, so a socket leaving (or a
//! whole room being moved) is consistent. Room names are `Arc<str>`: a
//! room joined by many sockets stores its name once. Broadcasts take the
//! member list under the lock and queue outside it (queueing may close a
//! slow consumer, which takes this lock again).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::server::ServerOps;
use crate::socket::Socket;

struct Member<D> {
    socket: Arc<Socket<D>>,
    rooms: Vec<Arc<str>>,
}

struct State<D> {
    sockets: HashMap<u64, Member<D>>,
    rooms: HashMap<Arc<str>, HashSet<u64>>,
}

/// One namespace.
pub(crate) struct Namespace<D> {
    /// Its name (`/`, `/custom`).
    pub name: Arc<str>,
    /// The server, for closing slow consumers and reading the settings.
    pub server: Weak<dyn ServerOps<D>>,
    state: Mutex<State<D>>,
}

impl<D> Namespace<D> {
    pub fn new(name: &str, server: Weak<dyn ServerOps<D>>) -> Self {
        let state = State {
            sockets: HashMap::new(),
            rooms: HashMap::new(),
        };
        Self {
            name: Arc::from(name),
            server,
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<D>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a connected socket.
    pub fn add(&self, socket: Arc<Socket<D>>) {
        let key = socket.key;
        self.lock().sockets.insert(
            key,
            Member {
                socket,
                rooms: Vec::new(),
            },
        );
    }

    /// Remove a socket and its room memberships; `false` if it was not here.
    pub fn remove(&self, key: u64) -> bool {
        let mut st = self.lock();
        let Some(member) = st.sockets.remove(&key) else {
            return false;
        };
        for room in member.rooms {
            remove_from_room(&mut st.rooms, &room, key);
        }
        true
    }

    /// Number of connected sockets.
    pub fn len(&self) -> usize {
        self.lock().sockets.len()
    }

    /// Put a socket in a room (no-op if not connected or already in it).
    pub fn join(&self, key: u64, room: Arc<str>) {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(member) = st.sockets.get_mut(&key) else {
            return;
        };
        if member.rooms.contains(&room) {
            return;
        }
        let room = match st.rooms.get_key_value(&room) {
            Some((shared, _)) => shared.clone(),
            None => room,
        };
        member.rooms.push(room.clone());
        st.rooms.entry(room).or_default().insert(key);
    }

    /// Take a socket out of a room.
    pub fn leave(&self, key: u64, room: &str) {
        let mut st = self.lock();
        let Some(member) = st.sockets.get_mut(&key) else {
            return;
        };
        let before = member.rooms.len();
        member.rooms.retain(|r| &**r != room);
        if member.rooms.len() != before {
            remove_from_room(&mut st.rooms, room, key);
        }
    }

    /// The rooms a socket is in.
    pub fn rooms_of(&self, key: u64) -> Vec<Arc<str>> {
        self.lock()
            .sockets
            .get(&key)
            .map(|m| m.rooms.clone())
            .unwrap_or_default()
    }

    /// The sockets in `room` (every socket when `None`) that are not in `except`.
    pub fn members(&self, room: Option<&str>, except: Option<&str>) -> Vec<Arc<Socket<D>>> {
        let st = self.lock();
        let excluded = except.and_then(|e| st.rooms.get(e));
        let keep = |key: &u64| excluded.is_none_or(|ex| !ex.contains(key));
        match room {
            Some(room) => st
                .rooms
                .get(room)
                .into_iter()
                .flatten()
                .filter(|k| keep(k))
                .filter_map(|k| st.sockets.get(k).map(|m| m.socket.clone()))
                .collect(),
            None => st
                .sockets
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(_, m)| m.socket.clone())
                .collect(),
        }
    }

    /// Every socket in `src` joins `dst`.
    pub fn room_join(&self, src: &str, dst: &str) {
        for key in self.keys_in(src) {
            self.join(key, Arc::from(dst));
        }
    }

    /// Every socket in `src` leaves `dst`.
    pub fn room_leave(&self, src: &str, dst: &str) {
        for key in self.keys_in(src) {
            self.leave(key, dst);
        }
    }

    /// How many sockets are in `room`.
    pub fn room_len(&self, room: &str) -> usize {
        self.lock().rooms.get(room).map_or(0, HashSet::len)
    }

    fn keys_in(&self, room: &str) -> Vec<u64> {
        self.lock()
            .rooms
            .get(room)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

fn remove_from_room(rooms: &mut HashMap<Arc<str>, HashSet<u64>>, room: &str, key: u64) {
    if let Some(set) = rooms.get_mut(room) {
        set.remove(&key);
        if set.is_empty() {
            rooms.remove(room);
        }
    }
}
