//! The relay's messages: what a connection sends (`{"connect":"client"|"server"}`,
//! `{"data":{…}}`, the server's `{"client_id":N,"data":{…}}`), parsed into [`RelayMessage`],
//! and what the room sends, encoded (`{"client_id","server_data"}`, `{"client_id",
//! "client_data"}`, `{"server_data"}`, `{"server_disconnect":true}`, `{"client_disconnect"}`).
//! Data are JSON objects; an empty one is `{}` (the original's PHP arrays could come out `[]`).

use serde_json::{json, Map, Value};

/// A JSON object, as data are kept and merged.
pub type Data = Map<String, Value>;

/// Which side a connection takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One of the room's many clients.
    Client,
    /// The room's one server.
    Server,
}

/// Where the server's data go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No `client_id`: merged into the server data, to every client.
    Everyone,
    /// `"client_id":N`: to client N alone, not stored.
    Client(u64),
}

/// One message of a connection, as the room takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayMessage {
    /// `connect`, when present (it runs first).
    pub connect: Option<Role>,
    /// `data`, when present, and where the server sends it.
    pub data: Option<(Data, Target)>,
}

/// Why a message does nothing (the original ignored these silently; ringcast counts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Not a JSON object.
    NotJson,
    /// `connect` is neither `"client"` nor `"server"`, `data` not an object, `client_id` not a
    /// whole number, or neither `connect` nor `data` is there.
    Unusable,
}

/// Parses one text message.
pub fn parse(payload: &[u8]) -> Result<RelayMessage, Ignored> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| Ignored::NotJson)?;
    let Value::Object(mut object) = value else {
        return Err(Ignored::NotJson);
    };
    let connect = match object.remove("connect") {
        None => None,
        Some(Value::String(role)) if role == "client" => Some(Role::Client),
        Some(Value::String(role)) if role == "server" => Some(Role::Server),
        Some(_) => return Err(Ignored::Unusable),
    };
    let target = match object.get("client_id") {
        None => Target::Everyone,
        Some(id) => Target::Client(id.as_u64().ok_or(Ignored::Unusable)?),
    };
    let data = match object.remove("data") {
        None => None,
        Some(Value::Object(data)) => Some((data, target)),
        // The original merged nothing for a non-object (PHP would have warned).
        Some(_) => return Err(Ignored::Unusable),
    };
    if connect.is_none() && data.is_none() {
        return Err(Ignored::Unusable);
    }
    Ok(RelayMessage { connect, data })
}

/// Shallow merge, as the original's `array_merge`: each key of `update` replaces the one of
/// `into`.
pub fn merge(into: &mut Data, update: Data) {
    for (key, value) in update {
        into.insert(key, value);
    }
}

/// Bytes of an object's JSON text (for the bounds on what a room keeps).
pub fn encoded_len(data: &Data) -> usize {
    serde_json::to_vec(data).map_or(usize::MAX, |bytes| bytes.len())
}

/// To a client that connected: `{"client_id":id,"server_data":…}`.
pub fn welcome(client_id: u64, server_data: &Data) -> String {
    json!({"client_id": client_id, "server_data": server_data}).to_string()
}

/// To the server: `{"client_id":id,"client_data":…}`.
pub fn client_data(client_id: u64, data: &Data) -> String {
    json!({"client_id": client_id, "client_data": data}).to_string()
}

/// To a client: `{"server_data":…}`.
pub fn server_data(data: &Data) -> String {
    json!({ "server_data": data }).to_string()
}

/// To every client when the server left.
pub const SERVER_DISCONNECT: &str = r#"{"server_disconnect":true}"#;

/// To the server when a client left: `{"client_disconnect":id}`.
pub fn client_disconnect(client_id: u64) -> String {
    json!({ "client_disconnect": client_id }).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn data(value: Value) -> Data {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_seeds_messages_are_read() {
        assert_eq!(
            parse(br#"{"connect": "client"}"#).unwrap(),
            RelayMessage {
                connect: Some(Role::Client),
                data: None
            }
        );
        assert_eq!(
            parse(br#"{"connect":"server"}"#).unwrap().connect,
            Some(Role::Server)
        );
        let bob = parse(br#"{"data": {"name": "Bob", "x": 12, "y": 16}}"#).unwrap();
        assert_eq!(
            bob.data,
            Some((data(json!({"name":"Bob","x":12,"y":16})), Target::Everyone))
        );
        let direct = parse(br#"{"client_id": 11, "data": {"secret": 1}}"#).unwrap();
        assert_eq!(
            direct.data,
            Some((data(json!({"secret":1})), Target::Client(11)))
        );
    }

    #[test]
    fn what_the_original_ignored_or_crashed_on_is_ignored() {
        assert_eq!(parse(b"not json"), Err(Ignored::NotJson));
        assert_eq!(parse(b"[1]"), Err(Ignored::NotJson));
        for bad in [
            &br#"{"connect":"robot"}"#[..],
            br#"{"connect":1}"#,
            br#"{"data":[1,2]}"#,
            br#"{"data":"x"}"#,
            br#"{"client_id":"eleven","data":{}}"#,
            br#"{"client_id":-1,"data":{}}"#,
            br#"{"hello":1}"#,
            br#"{}"#,
        ] {
            assert_eq!(
                parse(bad),
                Err(Ignored::Unusable),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn merges_are_shallow_and_empty_objects_stay_objects() {
        let mut kept = data(json!({"a":1,"nested":{"x":1}}));
        merge(&mut kept, data(json!({"b":2,"nested":{"y":2}})));
        assert_eq!(
            Value::Object(kept.clone()),
            json!({"a":1,"b":2,"nested":{"y":2}})
        );
        assert_eq!(
            welcome(3, &Data::new()),
            r#"{"client_id":3,"server_data":{}}"#
        );
        assert_eq!(
            serde_json::from_str::<Value>(&client_data(3, &Data::new())).unwrap(),
            json!({"client_id":3,"client_data":{}})
        );
        assert_eq!(server_data(&Data::new()), r#"{"server_data":{}}"#);
        assert_eq!(client_disconnect(9), r#"{"client_disconnect":9}"#);
        assert_eq!(
            encoded_len(&kept),
            r#"{"a":1,"b":2,"nested":{"y":2}}"#.len()
        );
    }
}
