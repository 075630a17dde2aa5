//! Engine.IO 4 and Socket.IO 5 packets as they travel in WebSocket text frames
//! (`docs/socketio.md`): parsing what a client sends, encoding what the server sends.
//!
//! Over WebSocket, one text frame is one Engine.IO packet: a type digit, then its data. A
//! Socket.IO packet is the data of an Engine.IO `4` (message):
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`, the namespace omitted for `/`.
//! Parsing borrows from the frame and never allocates; the JSON payload is handed on as text,
//! parsed later with the depth guard every client JSON goes through.

use core::fmt::Write as _;

use crate::pusher::json_escape::push_json_string;

/// Longest namespace accepted (`/` included): namespaces name apps, whose ids are short.
pub use crate::limits::SOCKETIO_NAMESPACE_BYTES_MAX as NAMESPACE_BYTES_MAX;

/// An Engine.IO packet from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    /// `1`: the client closes the session.
    Close,
    /// `2`: a ping from the client (Engine.IO 3 clients; answered with a pong).
    Ping,
    /// `3`: the answer to the server's ping.
    Pong,
    /// `4…`: a Socket.IO packet.
    Message(&'a str),
    /// `5` (upgrade) or `6` (noop): polling-transport packets, meaningless on a WebSocket.
    Ignored,
}

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Empty frame, unknown Engine.IO or Socket.IO type, or a malformed header.
    Malformed,
    /// `5`/`6` Socket.IO packets: binary attachments, which this server does not take.
    Binary,
    /// A namespace longer than [`NAMESPACE_BYTES_MAX`].
    NamespaceTooLong,
}

/// Parses one Engine.IO packet (one WebSocket text frame).
pub fn parse_engine(text: &str) -> Result<EnginePacket<'_>, PacketError> {
    let Some(kind) = text.chars().next() else {
        return Err(PacketError::Malformed);
    };
    let rest = &text[kind.len_utf8()..];
    match kind {
        '1' => Ok(EnginePacket::Close),
        '2' => Ok(EnginePacket::Ping),
        '3' => Ok(EnginePacket::Pong),
        '4' => Ok(EnginePacket::Message(rest)),
        '5' | '6' => Ok(EnginePacket::Ignored),
        _ => Err(PacketError::Malformed),
    }
}

/// Socket.IO packet types (protocol 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioKind {
    /// `0`: join a namespace (payload: the auth object).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event, `["name", args…]`.
    Event,
    /// `3`: the answer to a server event that asked for one (the server never asks).
    Ack,
    /// `4`: only the server sends it.
    ConnectError,
}

/// A Socket.IO packet from the client, borrowing from its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SioPacket<'a> {
    /// The packet type.
    pub kind: SioKind,
    /// The namespace, `/` when omitted.
    pub namespace: &'a str,
    /// The acknowledgement id the client asked for, if any.
    pub ack_id: Option<u64>,
    /// The JSON payload as text, if any (not yet parsed).
    pub payload: Option<&'a str>,
}

/// Parses the Socket.IO packet inside an Engine.IO message.
pub fn parse_socketio(text: &str) -> Result<SioPacket<'_>, PacketError> {
    let bytes = text.as_bytes();
    let kind = match bytes.first() {
        Some(b'0') => SioKind::Connect,
        Some(b'1') => SioKind::Disconnect,
        Some(b'2') => SioKind::Event,
        Some(b'3') => SioKind::Ack,
        Some(b'4') => SioKind::ConnectError,
        Some(b'5' | b'6') => return Err(PacketError::Binary),
        _ => return Err(PacketError::Malformed),
    };
    let mut at = 1;
    let namespace = if bytes.get(at) == Some(&b'/') {
        let end = bytes[at..]
            .iter()
            .position(|&b| b == b',')
            .map_or(bytes.len(), |i| at + i);
        let namespace = &text[at..end];
        if namespace.len() > NAMESPACE_BYTES_MAX {
            return Err(PacketError::NamespaceTooLong);
        }
        at = (end + 1).min(bytes.len());
        namespace
    } else {
        "/"
    };
    let digits = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let ack_id = if digits == 0 {
        None
    } else {
        // At most 20 digits fit a u64; longer is not an id any client makes.
        let id = text[at..at + digits]
            .parse::<u64>()
            .map_err(|_| PacketError::Malformed)?;
        at += digits;
        Some(id)
    };
    let payload = (at < bytes.len()).then(|| &text[at..]);
    Ok(SioPacket {
        kind,
        namespace,
        ack_id,
        payload,
    })
}

/// The Engine.IO open packet: the session id and the heartbeat the client must keep.
pub fn open(sid: &str, ping_interval_ms: u32, ping_timeout_ms: u32, max_payload: usize) -> String {
    let mut out = String::with_capacity(96 + sid.len());
    out.push_str("0{\"sid\":");
    push_json_string(&mut out, sid);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        ",\"upgrades\":[],\"pingInterval\":{ping_interval_ms},\"pingTimeout\":{ping_timeout_ms},\"maxPayload\":{max_payload}}}"
    );
    out
}

/// The Engine.IO ping the server sends on its heartbeat.
pub const PING: &str = "2";
/// The Engine.IO pong answering a client's ping.
pub const PONG: &str = "3";

/// `4<type><namespace>,`: the head every Socket.IO packet to the client starts with.
fn head(out: &mut String, kind: u8, namespace: &str) {
    out.push('4');
    out.push(char::from(b'0' + kind));
    if namespace != "/" {
        out.push_str(namespace);
        out.push(',');
    }
}

/// CONNECT accepted: `40/<ns>,{"sid":…}`.
pub fn connect_ok(namespace: &str, sid: &str) -> String {
    let mut out = String::with_capacity(16 + namespace.len() + sid.len());
    head(&mut out, 0, namespace);
    out.push_str("{\"sid\":");
    push_json_string(&mut out, sid);
    out.push('}');
    out
}

/// CONNECT refused: `44/<ns>,{"message":…}`.
pub fn connect_error(namespace: &str, message: &str) -> String {
    let mut out = String::with_capacity(20 + namespace.len() + message.len());
    head(&mut out, 4, namespace);
    out.push_str("{\"message\":");
    push_json_string(&mut out, message);
    out.push('}');
    out
}

/// The server leaves a namespace: `41/<ns>,`.
pub fn disconnect(namespace: &str) -> String {
    let mut out = String::with_capacity(4 + namespace.len());
    head(&mut out, 1, namespace);
    out
}

/// An event: `42/<ns>,["<name>",<args_json>]`, `args_json` one JSON value already encoded.
pub fn event(namespace: &str, name: &str, args_json: &str) -> String {
    let mut out = String::with_capacity(12 + namespace.len() + name.len() + args_json.len());
    head(&mut out, 2, namespace);
    out.push('[');
    push_json_string(&mut out, name);
    out.push(',');
    out.push_str(args_json);
    out.push(']');
    out
}

/// The answer to a client's event that asked for one: `43/<ns>,<id>[<args_json>]`.
pub fn ack(namespace: &str, id: u64, args_json: &str) -> String {
    let mut out = String::with_capacity(28 + namespace.len() + args_json.len());
    head(&mut out, 3, namespace);
    let _ = write!(out, "{id}[{args_json}]");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sio(text: &str) -> SioPacket<'_> {
        parse_socketio(text).unwrap()
    }

    #[test]
    fn engine_packets() {
        assert_eq!(parse_engine("3"), Ok(EnginePacket::Pong));
        assert_eq!(parse_engine("2probe"), Ok(EnginePacket::Ping));
        assert_eq!(parse_engine("1"), Ok(EnginePacket::Close));
        assert_eq!(parse_engine("40"), Ok(EnginePacket::Message("0")));
        assert_eq!(parse_engine("4"), Ok(EnginePacket::Message("")));
        assert_eq!(parse_engine("6"), Ok(EnginePacket::Ignored));
        assert_eq!(parse_engine(""), Err(PacketError::Malformed));
        assert_eq!(parse_engine("9"), Err(PacketError::Malformed));
        assert_eq!(parse_engine("é"), Err(PacketError::Malformed));
    }

    #[test]
    fn socketio_packets_as_socket_io_client_sends_them() {
        let connect = sio(r#"0/app-1,{"jwt":"a.b.c","uuid":"u"}"#);
        assert_eq!(connect.kind, SioKind::Connect);
        assert_eq!(connect.namespace, "/app-1");
        assert_eq!(connect.ack_id, None);
        assert_eq!(connect.payload, Some(r#"{"jwt":"a.b.c","uuid":"u"}"#));

        let main = sio("0");
        assert_eq!((main.namespace, main.payload), ("/", None));

        let event = sio(r#"2/app-1,17["publish",{"channel":"c"}]"#);
        assert_eq!(event.kind, SioKind::Event);
        assert_eq!(event.ack_id, Some(17));
        assert_eq!(event.payload, Some(r#"["publish",{"channel":"c"}]"#));

        let main_event = sio(r#"2["x"]"#);
        assert_eq!((main_event.namespace, main_event.ack_id), ("/", None));

        let leave = sio("1/app-1,");
        assert_eq!(
            (leave.kind, leave.namespace, leave.payload),
            (SioKind::Disconnect, "/app-1", None)
        );
        // A namespace without the comma runs to the end, as socket.io-parser reads it.
        assert_eq!(sio("1/app-1").namespace, "/app-1");
    }

    #[test]
    fn refused_packets() {
        assert_eq!(parse_socketio(""), Err(PacketError::Malformed));
        assert_eq!(parse_socketio("7"), Err(PacketError::Malformed));
        assert_eq!(
            parse_socketio(r#"51-["x",{"_placeholder":true,"num":0}]"#),
            Err(PacketError::Binary)
        );
        let long = format!("0/{},{{}}", "a".repeat(NAMESPACE_BYTES_MAX));
        assert_eq!(parse_socketio(&long), Err(PacketError::NamespaceTooLong));
        assert_eq!(
            parse_socketio("2/a,99999999999999999999999[\"x\"]"),
            Err(PacketError::Malformed)
        );
    }

    #[test]
    fn server_packets() {
        assert_eq!(
            open("s1", 25000, 20000, 1_000_000),
            r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(connect_ok("/app-1", "x"), r#"40/app-1,{"sid":"x"}"#);
        assert_eq!(connect_ok("/", "x"), r#"40{"sid":"x"}"#);
        assert_eq!(
            connect_error("/app-1", "Authorization error"),
            r#"44/app-1,{"message":"Authorization error"}"#
        );
        assert_eq!(disconnect("/app-1"), "41/app-1,");
        assert_eq!(
            event("/a", "message", r#"{"k":1}"#),
            r#"42/a,["message",{"k":1}]"#
        );
        assert_eq!(ack("/a", 3, r#"{"ok":true}"#), r#"43/a,3[{"ok":true}]"#);
        // What the server encodes, the parser reads back.
        let sent = event("/a", "m", "1");
        let back = sio(&sent[1..]);
        assert_eq!((back.namespace, back.payload), ("/a", Some(r#"["m",1]"#)));
    }
}
