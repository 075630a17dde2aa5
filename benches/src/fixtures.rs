//! Real wire bytes for the benches: masked client frames, the JSON frames pusher-js sends, a
//! server frame of an exact size, and a [`Shard`] with N subscribers of one channel driven the
//! way the engine's shell drives it (accept, upgrade bytes, subscribe frame, `take_output`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ringcast_core::app::{AppConfig, AppTable};
use ringcast_core::dialect::Published;
use ringcast_core::link::{self, LinkMessage, SlipOutcome};
use ringcast_core::shard::{OutputState, Shard, ShardSettings};
use ringcast_core::ws::frame;

/// App key of the fixture app (what pusher-js puts in `/app/{key}`).
pub const APP_KEY: &str = "bench-key";
/// App secret of the fixture app.
pub const APP_SECRET: &str = "bench-secret";
/// App id of the fixture app.
pub const APP_ID: &str = "1";

/// The masking key of [`masked_client_frame`]: any non-zero key exercises the XOR equally.
pub const MASK_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Frames exactly as pusher-js 8 sends them (`JSON.stringify` key order, no spaces).
pub mod pusher_js {
    /// `pusher:subscribe` to a public channel: pusher-js sends an empty `auth`.
    pub const SUBSCRIBE_PUBLIC: &str =
        r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}"#;
    /// `pusher:subscribe` to a private channel with the token from the auth endpoint.
    pub const SUBSCRIBE_PRIVATE: &str = r#"{"event":"pusher:subscribe","data":{"auth":"bench-key:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4","channel":"private-orders-42"}}"#;
    /// `pusher:subscribe` to a presence channel: `channel_data` is a JSON *string*.
    pub const SUBSCRIBE_PRESENCE: &str = r#"{"event":"pusher:subscribe","data":{"auth":"bench-key:3a3d3d5b8f08a8f9b5b4d6b1a7c3e0f2d9c1b7a5e3f1d9c7b5a3e1f0d2c4b6a8","channel_data":"{\"user_id\":\"1001\",\"user_info\":{\"name\":\"Ada Lovelace\",\"avatar\":\"https://example.com/a.png\"}}","channel":"presence-room-7"}}"#;
    /// A client event on a private channel (`channel.trigger('client-typing', {...})`).
    pub const CLIENT_EVENT: &str = r#"{"event":"client-typing","data":{"user_id":"1001","name":"Ada Lovelace","typing":true,"at":1732550000123},"channel":"private-chat-7"}"#;
    /// The keep-alive pusher-js sends after `activity_timeout` of silence.
    pub const PING: &str = r#"{"event":"pusher:ping","data":{}}"#;
}

/// A client→server frame (FIN set, masked with [`MASK_KEY`]) carrying `payload`.
pub fn masked_client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | (opcode & 0x0F));
    // Client frames use the same 7/16/64-bit length forms as server frames, plus the mask bit.
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK_KEY);
    let start = out.len();
    out.extend_from_slice(payload);
    frame::apply_mask(&mut out[start..], MASK_KEY);
    out
}

/// `len` bytes of printable ASCII shaped like a Pusher event body, so text frames built from
/// it pass UTF-8 validation exactly as real traffic does.
pub fn text_payload(len: usize) -> Vec<u8> {
    const PATTERN: &[u8] =
        br#"{"event":"price","channel":"ticker","data":"{\"sym\":\"ABC\",\"px\":101.25}"}"#;
    PATTERN.iter().copied().cycle().take(len).collect()
}

/// A server text frame whose *total* length (header included) is `total_len` bytes, e.g. the
/// 100-byte frame of the measurements in `docs/performance.md` (2-byte header + 98-byte
/// payload). The few totals no frame can have (128, 129 and 65,540–65,545: the header grows by
/// 2 or 6 bytes there) come out a few bytes longer.
pub fn server_frame_of_total_len(total_len: usize) -> Bytes {
    // The header grows at 126 and 65,536 payload bytes; pick the payload that lands exactly.
    let payload_len = [2usize, 4, 10]
        .into_iter()
        .map(|header| total_len.saturating_sub(header))
        .find(|&p| frame::frame_header_len(p) + p == total_len)
        .unwrap_or(total_len.saturating_sub(2));
    frame::encode_text(&text_payload(payload_len))
}

/// The Socket.IO (Ekko) client's upgrade request: `socket.io-client` 4 with
/// `transports: ["websocket"]`.
fn socketio_upgrade_request() -> String {
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost:6001\r\n\
     Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
     Sec-WebSocket-Version: 13\r\n\r\n"
        .to_owned()
}

/// The frames a Socket.IO client sends to join the app's namespace and subscribe to `channel`
/// (after the upgrade): CONNECT with an Ekko token signed with the app secret, then `subscribe`.
fn socketio_join_frames(channel: &str) -> Result<Vec<Vec<u8>>, String> {
    let claims = serde_json::json!({"appName": APP_ID, "admin": false, "iat": 1});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(APP_SECRET.as_bytes()),
    )
    .map_err(|e| format!("signing the join token: {e}"))?;
    let connect = format!(
        "40/{APP_ID},{}",
        serde_json::json!({"jwt": token, "uuid": "u"})
    );
    let subscribe = format!("42/{APP_ID},[\"subscribe\",{{\"channels\":[\"{channel}\"]}}]");
    Ok([connect, subscribe]
        .iter()
        .map(|text| masked_client_frame(frame::opcode::TEXT, text.as_bytes()))
        .collect())
}

/// A channels JSON client's upgrade request (`/channels/{key}`).
fn channels_json_upgrade_request() -> String {
    format!(
        "GET /channels/{APP_KEY} HTTP/1.1\r\nHost: localhost:6001\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Which wire protocol a fixture's subscribers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    /// pusher-js.
    Pusher,
    /// socket.io-client (Ekko).
    SocketIo,
    /// A plain WebSocket speaking the channels JSON protocol.
    ChannelsJson,
    /// A WebSocket-over-HTTP client, accepted and subscribed by its backend (whose answers the
    /// fixture plays through the shard's link).
    Slip,
}

/// The target URL of the fixture app's WebSocket-over-HTTP backend (never called: the fixture
/// answers the shard's calls itself).
const SLIP_TARGET: &str = "http://127.0.0.1:9/bench";

/// A WebSocket-over-HTTP client's upgrade request (`/slip/{key}`).
fn slip_upgrade_request() -> String {
    format!(
        "GET /slip/{APP_KEY} HTTP/1.1\r\nHost: localhost:6001\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// The upgrade request pusher-js's browser transport sends (reduced to the headers that
/// matter to the server).
fn upgrade_request() -> String {
    format!(
        "GET /app/{APP_KEY}?protocol=7&client=js&version=8.4.0&flash=false HTTP/1.1\r\n\
         Host: localhost:6001\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// One shard (the whole process on one core) with `subscribers` WebSocket connections all
/// subscribed to [`Fanout::CHANNEL`], set up through the real handshake and subscribe frames.
#[derive(Debug)]
pub struct Fanout {
    shard: Shard,
    subscribers: usize,
    now_ms: u64,
    wake: Vec<u32>,
    out: BytesMut,
}

impl Fanout {
    /// The channel every fixture connection is subscribed to.
    pub const CHANNEL: &'static str = "bench-broadcast";

    /// Largest chunk one `take_output` call hands out: the engine's shell writes at most this
    /// much per socket write.
    pub const TAKE_MAX_BYTES: usize = 64 * 1024;

    /// Builds the shard and its subscribers. Errors name the step that did not go as a real
    /// client would expect (a core change that breaks the fixture should say so, not hang).
    pub fn new(subscribers: usize) -> Result<Self, String> {
        Self::speaking(subscribers, Speaks::Pusher)
    }

    /// Like [`new`](Self::new), every subscriber speaking `speaks`.
    pub fn speaking(subscribers: usize, speaks: Speaks) -> Result<Self, String> {
        let mut app = AppConfig::with_credentials(APP_ID, APP_KEY, APP_SECRET);
        let slip = speaks == Speaks::Slip;
        if slip {
            app.slip_target_url = Some(SLIP_TARGET.to_owned());
        }
        // WebSocket-over-HTTP asks its backend through the bridge link.
        let shard = bench_shard(app, slip);
        let mut fanout = Fanout {
            shard,
            subscribers: 0,
            now_ms: 1_000,
            wake: Vec::with_capacity(subscribers),
            out: BytesMut::with_capacity(Self::TAKE_MAX_BYTES),
        };
        let (upgrade, join) = match speaks {
            Speaks::Pusher => {
                let subscribe = format!(
                    r#"{{"event":"pusher:subscribe","data":{{"auth":"","channel":"{}"}}}}"#,
                    Self::CHANNEL
                );
                let frame = masked_client_frame(frame::opcode::TEXT, subscribe.as_bytes());
                (upgrade_request(), vec![frame])
            }
            Speaks::SocketIo => (
                socketio_upgrade_request(),
                socketio_join_frames(Self::CHANNEL)?,
            ),
            Speaks::ChannelsJson => {
                let join = format!(r#"{{"type":"join","channelId":"{}"}}"#, Self::CHANNEL);
                let frame = masked_client_frame(frame::opcode::TEXT, join.as_bytes());
                (channels_json_upgrade_request(), vec![frame])
            }
            Speaks::Slip => (slip_upgrade_request(), Vec::new()),
        };
        if slip {
            fanout.shard.handle_link_up();
            fanout.link_calls()?;
        }
        for i in 0..subscribers {
            let key = fanout.shard.handle_accept(fanout.now_ms);
            fanout
                .shard
                .handle_bytes(key, upgrade.as_bytes(), fanout.now_ms);
            if slip {
                fanout.accept_slip_calls()?;
            }
            for frame in &join {
                fanout.shard.handle_bytes(key, frame, fanout.now_ms);
            }
            if !fanout.shard.has_output(key) {
                return Err(format!("connection {i}: no handshake reply"));
            }
        }
        // Throw away the handshake replies, `connection_established` and
        // `subscription_succeeded`, so the first measured publish starts from empty queues.
        fanout.drain();
        fanout.subscribers = subscribers;
        let delivered = fanout.publish_event_and_drain(Self::event());
        if delivered != subscribers {
            return Err(format!(
                "a publish reached {delivered} of {subscribers} {speaks:?} subscribers"
            ));
        }
        Ok(fanout)
    }

    /// What the shard sent its bridge, decoded.
    fn link_calls(&mut self) -> Result<Vec<LinkMessage>, String> {
        let mut bytes = BytesMut::new();
        self.shard.take_link_output(&mut bytes);
        let mut messages = Vec::new();
        while let Some(message) =
            link::decode(&mut bytes).map_err(|e| format!("the shard's link output: {e}"))?
        {
            messages.push(message);
        }
        Ok(messages)
    }

    /// Plays the backend: every open event is answered with an ACCEPT and a SUBSCRIBE to
    /// [`Fanout::CHANNEL`].
    fn accept_slip_calls(&mut self) -> Result<(), String> {
        for message in self.link_calls()? {
            let LinkMessage::SlipCall(call) = message else {
                continue;
            };
            let id = &call.connection_id;
            let events = serde_json::json!({"events": [
                {"type": "ACCEPT", "connectionId": id},
                {"type": "SUBSCRIBE", "connectionId": id, "channel": Self::CHANNEL},
            ]});
            let answer = LinkMessage::SlipAnswer {
                call_id: call.call_id,
                outcome: SlipOutcome::Answered {
                    status: 200,
                    body: Bytes::from(events.to_string()),
                },
            };
            self.shard
                .handle_link_message(answer, self.now_ms)
                .map_err(|e| format!("answering the open event: {e}"))?;
        }
        Ok(())
    }

    /// Number of subscribers of [`Fanout::CHANNEL`].
    pub fn subscribers(&self) -> usize {
        self.subscribers
    }

    /// The fan-out step of one publish on a shard: wrap `frame` in a dialect-neutral message
    /// (one allocation), queue it (a refcount bump) on every subscriber, then do what the shell does on the wakeups: take each connection's output
    /// into a write buffer. Returns how many connections had output.
    pub fn publish_and_drain(&mut self, frame: &Bytes) -> usize {
        self.shard.publish(
            0,
            Self::CHANNEL,
            Published::pusher_only(frame.clone()),
            None,
            self.now_ms,
        );
        self.drain()
    }

    /// A Pusher REST event of a ~100-byte frame, as `pusher.trigger` publishes it: every
    /// dialect present encodes its framing from it once.
    pub fn event() -> Published {
        Published::pusher_event(
            "price",
            Self::CHANNEL,
            r#""{\"sym\":\"ABC\",\"px\":101.25}""#,
            None,
        )
    }

    /// A Socket.IO `publish` of the same message, as Ekko's client sends it.
    pub fn socketio_publish() -> Published {
        let message = r#"{"sym":"ABC","px":101.25}"#;
        let args = format!(r#"{{"channel":"{}","message":{message}}}"#, Self::CHANNEL);
        Published::socketio_event("message", args, Some(message.to_owned()))
    }

    /// A WebSocket-over-HTTP `PUBLISH_TEXT` of the same message.
    pub fn slip_publish() -> Published {
        Published::slip_text(r#"{"sym":"ABC","px":101.25}"#)
    }

    /// A channels JSON `publish` of the same message.
    pub fn channels_json_publish() -> Published {
        Published::channels_json_event(
            "V1StGXR8_Z5jdHi6B-myT",
            r#"{"sym":"ABC","px":101.25}"#.into(),
        )
    }

    /// One publish of `message` (its framings encoded on first need), fanned out and drained
    /// like [`publish_and_drain`](Self::publish_and_drain).
    pub fn publish_event_and_drain(&mut self, message: Published) -> usize {
        self.shard
            .publish(0, Self::CHANNEL, message, None, self.now_ms);
        self.drain()
    }

    /// Takes every woken connection's output, as the shell's writers would, and throws the
    /// bytes away (the socket write is what `raw_send` measures).
    fn drain(&mut self) -> usize {
        self.shard.take_wakeups(&mut self.wake);
        let woken = self.wake.len();
        for key in self.wake.drain(..) {
            take_all_output(&mut self.shard, key, &mut self.out);
        }
        // Nothing in a one-shard process goes to another shard, but keep the outbox empty in
        // case a core change starts using it, so the fixture cannot grow without bound.
        let mut outbox = Vec::new();
        self.shard.take_outbox(&mut outbox);
        woken
    }
}

/// The one shard of a fixture, serving `app` (with a bridge link when `bridge_enabled`).
fn bench_shard(app: AppConfig, bridge_enabled: bool) -> Shard {
    Shard::new(
        ShardSettings {
            shard_index: 0,
            shard_count: 1,
            socket_id_base: 4242,
            max_message_size: 65_536,
            // Generous: the benches drain every queue after each step, as a shell whose
            // sockets keep up would, so no connection is ever a slow consumer.
            outbound_bytes_max: 1 << 20,
            handshake_timeout_s: 10,
            echo_path: None,
            metrics_port_separate: false,
            bridge_enabled,
            cluster_enabled: false,
            socketio: Default::default(),
            functions: Default::default(),
            channels_json: Default::default(),
            fault_trigger: false,
        },
        Arc::new(AppTable::new(vec![app])),
    )
}

/// Takes everything queued for `key`, in the shell's write-sized chunks, and throws it away.
fn take_all_output(shard: &mut Shard, key: u32, out: &mut BytesMut) {
    loop {
        out.clear();
        let state = shard.take_output(key, out, Fanout::TAKE_MAX_BYTES);
        if state != OutputState::Open || !shard.has_output(key) {
            break;
        }
    }
}

/// One shard with a relay room of `clients` clients and its server, set up through the real
/// handshake and `connect` frames: what a server's broadcast costs per client.
#[derive(Debug)]
pub struct RelayRoom {
    shard: Shard,
    server: u32,
    clients: usize,
    now_ms: u64,
    wake: Vec<u32>,
    out: BytesMut,
    broadcast: Vec<u8>,
}

impl RelayRoom {
    /// Builds the shard, the clients and the server.
    pub fn new(clients: usize) -> Result<Self, String> {
        let app = AppConfig::with_credentials(APP_ID, APP_KEY, APP_SECRET);
        let shard = bench_shard(app, false);
        let mut room = RelayRoom {
            shard,
            server: 0,
            clients: 0,
            now_ms: 1_000,
            wake: Vec::with_capacity(clients + 1),
            out: BytesMut::with_capacity(Fanout::TAKE_MAX_BYTES),
            broadcast: masked_client_frame(
                frame::opcode::TEXT,
                br#"{"data":{"tick":1,"map":{"sym":"ABC","px":101.25}}}"#,
            ),
        };
        let upgrade = format!(
            "GET /relay/{APP_KEY}?room=bench HTTP/1.1\r\nHost: localhost:6001\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let connect = |role: &str| {
            let text = format!(r#"{{"connect":"{role}"}}"#);
            masked_client_frame(frame::opcode::TEXT, text.as_bytes())
        };
        for role in std::iter::once("server").chain(std::iter::repeat_n("client", clients)) {
            let key = room.shard.handle_accept(room.now_ms);
            room.shard
                .handle_bytes(key, upgrade.as_bytes(), room.now_ms);
            room.shard.handle_bytes(key, &connect(role), room.now_ms);
            if role == "server" {
                room.server = key;
            }
        }
        room.drain();
        room.clients = clients;
        let reached = room.broadcast_and_drain();
        if reached != clients {
            return Err(format!(
                "a broadcast reached {reached} of {clients} clients"
            ));
        }
        Ok(room)
    }

    /// The server sends `{"data":{…}}`: merged, then its `server_data` frame (encoded once) is
    /// queued on every client and drained as the shell would. Returns the clients reached.
    pub fn broadcast_and_drain(&mut self) -> usize {
        self.shard
            .handle_bytes(self.server, &self.broadcast, self.now_ms);
        self.drain()
    }

    fn drain(&mut self) -> usize {
        self.shard.take_wakeups(&mut self.wake);
        let mut reached = 0;
        for key in self.wake.drain(..) {
            // The server's own output is taken too (else its input would wait for it to read).
            if key != self.server {
                reached += 1;
            }
            take_all_output(&mut self.shard, key, &mut self.out);
        }
        let mut outbox = Vec::new();
        self.shard.take_outbox(&mut outbox);
        reached
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ringcast_core::pusher::{parse_client_message, ClientMessage};
    use ringcast_core::ws::{Decoder, Message};

    #[test]
    fn every_dialect_fixture_reaches_every_subscriber() {
        for speaks in [
            Speaks::Pusher,
            Speaks::SocketIo,
            Speaks::ChannelsJson,
            Speaks::Slip,
        ] {
            let mut fixture = Fanout::speaking(50, speaks).unwrap();
            assert_eq!(
                fixture.publish_event_and_drain(Fanout::event()),
                50,
                "{speaks:?}"
            );
            let publish = Fanout::socketio_publish();
            assert_eq!(fixture.publish_event_and_drain(publish), 50, "{speaks:?}");
        }
    }

    #[test]
    fn a_relay_broadcast_reaches_every_client() {
        let mut room = RelayRoom::new(50).unwrap();
        assert_eq!(room.broadcast_and_drain(), 50);
    }

    #[test]
    fn server_frame_has_the_exact_total_length() {
        for total in [100, 127, 130, 1024, 16 * 1024 + 4, 70_000] {
            assert_eq!(server_frame_of_total_len(total).len(), total, "{total}");
        }
    }

    #[test]
    fn masked_frame_decodes_back_to_the_payload() {
        for len in [100, 1024, 16 * 1024, 70_000] {
            let payload = text_payload(len);
            let mut input = BytesMut::from(&masked_client_frame(frame::opcode::TEXT, &payload)[..]);
            let message = Decoder::new(1 << 20).poll_message(&mut input).unwrap();
            assert_eq!(message, Some(Message::Text(Bytes::from(payload))));
        }
    }

    #[test]
    fn pusher_js_frames_parse() {
        use pusher_js::*;
        assert!(matches!(
            parse_client_message(SUBSCRIBE_PUBLIC.as_bytes()).unwrap(),
            ClientMessage::Subscribe { .. }
        ));
        assert!(matches!(
            parse_client_message(SUBSCRIBE_PRIVATE.as_bytes()).unwrap(),
            ClientMessage::Subscribe { auth: Some(_), .. }
        ));
        assert!(matches!(
            parse_client_message(SUBSCRIBE_PRESENCE.as_bytes()).unwrap(),
            ClientMessage::Subscribe {
                channel_data: Some(_),
                ..
            }
        ));
        assert!(matches!(
            parse_client_message(CLIENT_EVENT.as_bytes()).unwrap(),
            ClientMessage::ClientEvent { .. }
        ));
        assert_eq!(
            parse_client_message(PING.as_bytes()).unwrap(),
            ClientMessage::Ping
        );
    }

    #[test]
    fn fanout_reaches_every_subscriber_every_time() {
        let mut fanout = Fanout::new(50).unwrap();
        let frame = server_frame_of_total_len(100);
        for _ in 0..3 {
            assert_eq!(fanout.publish_and_drain(&frame), 50);
        }
    }
}
