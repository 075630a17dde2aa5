//! [`RelayRooms`]: the relay rooms a shard owns (a room's owner is a fixed hash of its app and
//! name, so every connection of the room, on any shard, reaches the same state): each room's
//! server, its clients with their ids and data, and the server data. Every operation returns
//! the frames it sends, as [`Sends`]; the caller delivers them (here or over the rings).
//!
//! The ringcast rules where the original was silent or crashed: a connection has one role at a
//! time (connecting as the other leaves the first, as if it had gone); a direct message to a
//! client that is not there is dropped (the original broadcast it); data past their bound, and
//! connects past the room's or the shard's bound, are refused.

use ahash::AHashMap;
use bytes::Bytes;
use indexmap::IndexMap;
use std::sync::Arc;

use super::message::{AppIndex, ConnRef};
use crate::limits::{
    RELAY_CLIENTS_PER_ROOM_MAX, RELAY_CLIENT_DATA_BYTES_MAX, RELAY_ROOMS_PER_SHARD_MAX,
    RELAY_SERVER_DATA_BYTES_MAX,
};
use crate::relay::message::{self, Data, Role, Target};
use crate::ws::frame;

/// Frames for connections: `(to, frame)`, in the order they must go out.
pub type Sends = Vec<(ConnRef, Bytes)>;

/// Why a room did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The room has its most clients, or the shard its most rooms: the connection is closed.
    Full,
    /// Data that would pass their bound, data from a connection that has no role, a direct
    /// message to a client that is not there (ignored, counted).
    Ignored,
}

/// One client of a room.
#[derive(Debug)]
struct Client {
    conn: ConnRef,
    data: Data,
}

/// One room.
#[derive(Debug, Default)]
struct Room {
    server: Option<ConnRef>,
    server_data: Data,
    /// By client id, in the order they connected.
    clients: IndexMap<u64, Client>,
    /// Each client's id by connection.
    ids: AHashMap<ConnRef, u64>,
    /// The last id given (ids increase, never reused).
    last_id: u64,
}

impl Room {
    fn is_empty(&self) -> bool {
        self.server.is_none() && self.clients.is_empty()
    }

    fn role_of(&self, conn: ConnRef) -> Option<Role> {
        if self.server == Some(conn) {
            Some(Role::Server)
        } else {
            self.ids.contains_key(&conn).then_some(Role::Client)
        }
    }

    /// The client `conn` leaves: the server hears of it.
    fn drop_client(&mut self, conn: ConnRef, sends: &mut Sends) {
        let Some(id) = self.ids.remove(&conn) else {
            return;
        };
        self.clients.shift_remove(&id);
        if let Some(server) = self.server {
            sends.push((server, text(&message::client_disconnect(id))));
        }
    }

    /// The server leaves: its data reset, every client hears of it.
    fn drop_server(&mut self, sends: &mut Sends) {
        if self.server.take().is_none() {
            return;
        }
        self.server_data = Data::new();
        let notice = text(message::SERVER_DISCONNECT);
        for client in self.clients.values() {
            sends.push((client.conn, notice.clone()));
        }
    }
}

/// The rooms a shard owns, by app and name.
#[derive(Debug, Default)]
pub struct RelayRooms {
    rooms: AHashMap<(AppIndex, Arc<str>), Room>,
}

fn text(json: &str) -> Bytes {
    frame::encode_text(json.as_bytes())
}

impl RelayRooms {
    /// Rooms held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether no room is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// `{"connect":"client"}`: `conn` is a client of the room with fresh data (`{}`), keeping
    /// its id when it already was one; it gets its id and the server data, the server gets its
    /// (empty) data.
    pub fn connect_client(
        &mut self,
        app: AppIndex,
        room_name: &Arc<str>,
        conn: ConnRef,
    ) -> Result<Sends, Refused> {
        let room = self.room_for(app, room_name)?;
        let mut sends = Sends::new();
        if room.server == Some(conn) {
            room.drop_server(&mut sends);
        }
        let id = match room.ids.get(&conn) {
            Some(id) => *id,
            None => {
                if room.clients.len() >= RELAY_CLIENTS_PER_ROOM_MAX {
                    self.forget_if_empty(app, room_name);
                    return Err(Refused::Full);
                }
                room.last_id += 1;
                room.ids.insert(conn, room.last_id);
                room.last_id
            }
        };
        room.clients.insert(
            id,
            Client {
                conn,
                data: Data::new(),
            },
        );
        sends.push((conn, text(&message::welcome(id, &room.server_data))));
        if let Some(server) = room.server {
            sends.push((server, text(&message::client_data(id, &Data::new()))));
        }
        Ok(sends)
    }

    /// `{"connect":"server"}`: `conn` is the room's server (the previous one, if any, is no
    /// longer; the server data stay); it gets every client's data, every client the server
    /// data.
    pub fn connect_server(
        &mut self,
        app: AppIndex,
        room_name: &Arc<str>,
        conn: ConnRef,
    ) -> Result<Sends, Refused> {
        let room = self.room_for(app, room_name)?;
        let mut sends = Sends::new();
        room.drop_client(conn, &mut sends);
        room.server = Some(conn);
        let to_clients = text(&message::server_data(&room.server_data));
        for (id, client) in &room.clients {
            sends.push((conn, text(&message::client_data(*id, &client.data))));
            sends.push((client.conn, to_clients.clone()));
        }
        Ok(sends)
    }

    /// `{"data":{…}}` (with the server's `client_id`, `target`).
    pub fn data(
        &mut self,
        app: AppIndex,
        room_name: &Arc<str>,
        conn: ConnRef,
        update: Data,
        target: Target,
    ) -> Result<Sends, Refused> {
        let room = self
            .rooms
            .get_mut(&(app, room_name.clone()))
            .ok_or(Refused::Ignored)?;
        let mut sends = Sends::new();
        match (room.role_of(conn), target) {
            (None, _) => return Err(Refused::Ignored),
            (Some(Role::Client), _) => {
                // A client's `client_id` means nothing: its data are its own.
                let id = *room.ids.get(&conn).ok_or(Refused::Ignored)?;
                let client = room.clients.get_mut(&id).ok_or(Refused::Ignored)?;
                let mut merged = client.data.clone();
                message::merge(&mut merged, update);
                if message::encoded_len(&merged) > RELAY_CLIENT_DATA_BYTES_MAX {
                    return Err(Refused::Ignored);
                }
                client.data = merged;
                if let Some(server) = room.server {
                    sends.push((server, text(&message::client_data(id, &client.data))));
                }
            }
            (Some(Role::Server), Target::Everyone) => {
                let mut merged = room.server_data.clone();
                message::merge(&mut merged, update);
                if message::encoded_len(&merged) > RELAY_SERVER_DATA_BYTES_MAX {
                    return Err(Refused::Ignored);
                }
                room.server_data = merged;
                // One frame, shared by every client.
                let frame = text(&message::server_data(&room.server_data));
                for client in room.clients.values() {
                    sends.push((client.conn, frame.clone()));
                }
            }
            (Some(Role::Server), Target::Client(id)) => {
                let client = room.clients.get(&id).ok_or(Refused::Ignored)?;
                sends.push((client.conn, text(&message::server_data(&update))));
            }
        }
        Ok(sends)
    }

    /// `conn` is gone (or left the room): as a client the server hears of it, as the server
    /// every client does.
    pub fn leave(&mut self, app: AppIndex, room_name: &Arc<str>, conn: ConnRef) -> Sends {
        let mut sends = Sends::new();
        if let Some(room) = self.rooms.get_mut(&(app, room_name.clone())) {
            if room.server == Some(conn) {
                room.drop_server(&mut sends);
            } else {
                room.drop_client(conn, &mut sends);
            }
        }
        self.forget_if_empty(app, room_name);
        sends
    }

    /// The room, made when it is new and the shard has room for it.
    fn room_for(&mut self, app: AppIndex, room_name: &Arc<str>) -> Result<&mut Room, Refused> {
        let key = (app, room_name.clone());
        if !self.rooms.contains_key(&key) && self.rooms.len() >= RELAY_ROOMS_PER_SHARD_MAX {
            return Err(Refused::Full);
        }
        Ok(self.rooms.entry(key).or_default())
    }

    fn forget_if_empty(&mut self, app: AppIndex, room_name: &Arc<str>) {
        let key = (app, room_name.clone());
        if self.rooms.get(&key).is_some_and(Room::is_empty) {
            self.rooms.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn conn(key: u32) -> ConnRef {
        ConnRef {
            shard: 0,
            key,
            serial: u64::from(key) + 100,
        }
    }

    fn data(value: Value) -> Data {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// The sends as (key, JSON).
    fn read(sends: Sends) -> Vec<(u32, Value)> {
        sends
            .into_iter()
            .map(|(to, frame)| (to.key, serde_json::from_slice(&frame[2..]).unwrap()))
            .collect()
    }

    #[test]
    fn the_seeds_walkthrough() {
        let mut rooms = RelayRooms::default();
        let room: Arc<str> = Arc::from("");
        let (bob, server) = (conn(1), conn(2));
        assert_eq!(
            read(rooms.connect_client(0, &room, bob).unwrap()),
            [(1, json!({"client_id":1,"server_data":{}}))],
            "no server yet"
        );
        let update = data(json!({"name":"Bob","x":12,"y":16}));
        assert!(read(rooms.data(0, &room, bob, update, Target::Everyone).unwrap()).is_empty());
        assert_eq!(
            read(rooms.connect_server(0, &room, server).unwrap()),
            [
                (
                    2,
                    json!({"client_id":1,"client_data":{"name":"Bob","x":12,"y":16}})
                ),
                (1, json!({"server_data":{}})),
            ]
        );
        let map = data(json!({"map_id":"1"}));
        assert_eq!(
            read(rooms.data(0, &room, server, map, Target::Everyone).unwrap()),
            [(1, json!({"server_data":{"map_id":"1"}}))]
        );
        let secret = data(json!({"clients":[{"id":11}]}));
        assert_eq!(
            read(
                rooms
                    .data(0, &room, server, secret, Target::Client(1))
                    .unwrap()
            ),
            [(1, json!({"server_data":{"clients":[{"id":11}]}}))],
            "to that client only, not stored"
        );
        let moved = data(json!({"x":13}));
        assert_eq!(
            read(rooms.data(0, &room, bob, moved, Target::Everyone).unwrap()),
            [(
                2,
                json!({"client_id":1,"client_data":{"name":"Bob","x":13,"y":16}})
            )],
            "merged"
        );
        // A second client gets the next id and the server data as they are.
        let alice = conn(3);
        assert_eq!(
            read(rooms.connect_client(0, &room, alice).unwrap()),
            [
                (3, json!({"client_id":2,"server_data":{"map_id":"1"}})),
                (2, json!({"client_id":2,"client_data":{}})),
            ]
        );
        assert_eq!(
            read(rooms.leave(0, &room, bob)),
            [(2, json!({"client_disconnect":1}))]
        );
        assert_eq!(
            read(rooms.leave(0, &room, server)),
            [(3, json!({"server_disconnect":true}))]
        );
        // The server data went with the server.
        let again = conn(4);
        let sends = read(rooms.connect_server(0, &room, again).unwrap());
        assert_eq!(sends[1], (3, json!({"server_data":{}})));
        assert_eq!(rooms.len(), 1);
        rooms.leave(0, &room, again);
        rooms.leave(0, &room, alice);
        assert!(rooms.is_empty(), "an empty room is forgotten");
    }

    #[test]
    fn the_ringcast_rules() {
        let mut rooms = RelayRooms::default();
        let room: Arc<str> = Arc::from("r");
        let (a, server, stranger) = (conn(1), conn(2), conn(3));
        rooms.connect_client(0, &room, a).unwrap();
        rooms.connect_server(0, &room, server).unwrap();
        // To a client that is not there: dropped (the original broadcast it).
        let to_nobody = rooms.data(0, &room, server, Data::new(), Target::Client(99));
        assert_eq!(to_nobody, Err(Refused::Ignored));
        // From a connection that never connected.
        let lost = rooms.data(0, &room, stranger, Data::new(), Target::Everyone);
        assert_eq!(lost, Err(Refused::Ignored));
        // Data past their bound are refused and the old data kept.
        let big = data(json!({"blob": "x".repeat(RELAY_CLIENT_DATA_BYTES_MAX)}));
        assert_eq!(
            rooms.data(0, &room, a, big, Target::Everyone),
            Err(Refused::Ignored)
        );
        // Rooms of different apps or names are apart.
        let other: Arc<str> = Arc::from("other");
        assert!(read(rooms.connect_client(0, &other, conn(5)).unwrap()).len() == 1);
        assert!(read(rooms.connect_client(1, &room, conn(6)).unwrap()).len() == 1);
        // A client that becomes the server leaves the clients (the server it was told of hears
        // of it), and a server that reconnects as a client leaves the server seat.
        let sends = read(rooms.connect_server(0, &room, a).unwrap());
        assert_eq!(sends, [(2, json!({"client_disconnect":1}))]);
        let sends = read(rooms.connect_client(0, &room, a).unwrap());
        assert_eq!(sends, [(1, json!({"client_id":2,"server_data":{}}))]);
    }

    #[test]
    fn a_room_has_a_bounded_number_of_clients() {
        let mut rooms = RelayRooms::default();
        let room: Arc<str> = Arc::from("big");
        for key in 0..RELAY_CLIENTS_PER_ROOM_MAX as u32 {
            rooms.connect_client(0, &room, conn(key)).unwrap();
        }
        let one_more = rooms.connect_client(0, &room, conn(u32::MAX));
        assert_eq!(one_more, Err(Refused::Full));
        // A client already there may reconnect.
        assert!(rooms.connect_client(0, &room, conn(0)).is_ok());
    }
}
