//! Setting up native subscribers: one tokio task per connection on a worker's connect thread
//! owns connecting (bound to a source address), the TLS handshake for `wss://`
//! ([`crate::tls`]), the HTTP upgrade, the Pusher handshake and subscriptions, then hands the
//! subscribed socket to the receive loop ([`crate::rx`]) and ends. The wire pieces both sides share (frame header parser, masked client frames, markers,
//! stamp parser) are in [`crate::wire`].

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use crate::profile::{ChannelType, Plan};
use crate::rx::{Handoff, Inbox};
use crate::tls::{wrap, Stream};
use crate::wire::{masked_frame, parse_frame_header, FrameParse, MESSAGE_MAX};

/// Largest upgrade response header block accepted, bytes.
const UPGRADE_RESPONSE_MAX: usize = 16 * 1024;
/// Read buffer headroom kept before each read, bytes.
const READ_RESERVE: usize = 4096;

/// What all connection tasks of one worker's connect thread share.
pub struct Shared {
    /// The run's plan.
    pub plan: Plan,
    /// Bounds connection attempts in flight.
    pub connect_slots: Semaphore,
    /// Time one connection gets to connect, upgrade and subscribe.
    pub connect_timeout: Duration,
    /// The receive loop's inbox.
    pub inbox: Sender<Inbox>,
    /// Wakes the receive loop after something was put in its inbox.
    pub waker: Arc<mio::Waker>,
}

impl Shared {
    fn tell(&self, msg: Inbox) {
        // Both fail only once the receive loop has ended (the worker is stopping), when the
        // outcome has nobody to count it.
        if self.inbox.send(msg).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Sets up connection `index` (global index) and hands it to the receive loop, or reports
/// why it failed.
pub async fn run_connection(shared: Rc<Shared>, index: u64) {
    let established = {
        let _permit = shared.connect_slots.acquire().await;
        tokio::time::timeout(shared.connect_timeout, establish(&shared.plan, index)).await
    };
    let msg = match established {
        Ok(Ok(conn)) => match conn.into_handoff() {
            Ok(handoff) => Inbox::Subscribed(Box::new(handoff)),
            Err(kind) => Inbox::Failed(kind),
        },
        Ok(Err(kind)) => Inbox::Failed(kind),
        Err(_) => Inbox::Failed("timeout".into()),
    };
    shared.tell(msg);
}

/// One open connection being set up.
pub struct Conn {
    stream: Stream,
    buf: BytesMut,
    fragments: Option<(u8, Vec<u8>)>,
    mask_seed: u32,
}

/// A complete WebSocket message from the server.
pub enum Message {
    /// A text message.
    Text(Vec<u8>),
    /// A ping (answered inside `next_message`).
    Ping(Vec<u8>),
    /// The server's close frame.
    Close,
    /// Anything else.
    Other,
}

/// Connects connection `index` (bound to its source address), upgrades and waits for
/// `pusher:connection_established`; returns the connection and its socket id.
pub async fn open(plan: &Plan, index: u64) -> Result<(Conn, String), String> {
    let tcp = connect_tcp(plan.ws_addr, plan.source_ip(index).map(IpAddr::V4)).await?;
    let stream = wrap(plan.ws_tls.as_ref(), tcp).await?;
    let mut conn = Conn {
        stream,
        buf: BytesMut::with_capacity(READ_RESERVE),
        fragments: None,
        mask_seed: (index as u32).wrapping_mul(0x9E37_79B9) | 1,
    };
    conn.upgrade(plan).await?;
    let socket_id = conn.await_established().await?;
    Ok((conn, socket_id))
}

async fn establish(plan: &Plan, index: u64) -> Result<Conn, String> {
    let (mut conn, socket_id) = open(plan, index).await?;
    let channels = plan.channels_of(index);
    for channel in &channels {
        let msg = subscribe_message(plan, channel, &socket_id, index);
        conn.send_text(msg.as_bytes())
            .await
            .map_err(|e| format!("subscribe write: {}", e.kind()))?;
    }
    conn.await_subscribed(channels.len()).await?;
    Ok(conn)
}

async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {}", e.kind()))?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {}", e.kind()))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {}", e.kind()))?;
    Ok(stream)
}

/// The `pusher:subscribe` message for `channel` (auth computed for private and presence;
/// presence user id `u{index}`).
pub fn subscribe_message(plan: &Plan, channel: &str, socket_id: &str, index: u64) -> String {
    use ringcast_core::pusher::auth::channel_auth_token;
    let data = match plan.channel_type {
        ChannelType::Public => serde_json::json!({ "channel": channel }),
        ChannelType::Private => serde_json::json!({
            "channel": channel,
            "auth": channel_auth_token(&plan.key, &plan.secret, socket_id, channel, None),
        }),
        ChannelType::Presence => {
            let channel_data = serde_json::json!({
                "user_id": format!("u{index}"),
                "user_info": {},
            })
            .to_string();
            serde_json::json!({
                "channel": channel,
                "auth": channel_auth_token(
                    &plan.key, &plan.secret, socket_id, channel, Some(&channel_data)),
                "channel_data": channel_data,
            })
        }
    };
    serde_json::json!({ "event": "pusher:subscribe", "data": data }).to_string()
}

/// A Pusher envelope, for everything but the fast path.
#[derive(serde::Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    data: serde_json::Value,
}

impl Envelope {
    /// `data` as a string (Pusher sends most `data` fields as JSON in a string).
    fn data_text(&self) -> String {
        match &self.data {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl Conn {
    async fn upgrade(&mut self, plan: &Plan) -> Result<(), String> {
        let key = tungstenite::handshake::client::generate_key();
        let request = format!(
            "GET /app/{}?protocol=7&client=ringcast-loadtest&version=0.1 HTTP/1.1\r\n\
             Host: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            plan.key, plan.ws_host
        );
        self.stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("upgrade write: {}", e.kind()))?;
        self.stream
            .flush()
            .await
            .map_err(|e| format!("upgrade write: {}", e.kind()))?;
        let expected_accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    if response.code != Some(101) {
                        return Err(format!("upgrade: HTTP {}", response.code.unwrap_or(0)));
                    }
                    let accept_ok = response.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case("sec-websocket-accept")
                            && h.value == expected_accept.as_bytes()
                    });
                    if !accept_ok {
                        return Err("upgrade: bad Sec-WebSocket-Accept".into());
                    }
                    self.buf.advance(len);
                    return Ok(());
                }
                Ok(httparse::Status::Partial) if self.buf.len() < UPGRADE_RESPONSE_MAX => {}
                Ok(httparse::Status::Partial) => return Err("upgrade: response too long".into()),
                Err(e) => return Err(format!("upgrade: {e}")),
            }
            self.fill()
                .await
                .map_err(|e| format!("upgrade read: {e}"))?;
        }
    }

    /// Reads Pusher messages until `pusher:connection_established`; returns the socket id.
    async fn await_established(&mut self) -> Result<String, String> {
        loop {
            let Message::Text(text) = self.next_message().await? else {
                continue;
            };
            let env: Envelope =
                serde_json::from_slice(&text).map_err(|_| "bad JSON before established")?;
            match env.event.as_str() {
                "pusher:connection_established" => {
                    let data: serde_json::Value = serde_json::from_str(&env.data_text())
                        .map_err(|_| "bad connection_established data")?;
                    return data
                        .get("socket_id")
                        .and_then(|s| s.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| "connection_established without socket_id".into());
                }
                "pusher:error" => {
                    return Err(format!("pusher:error {}", short(&env.data_text())));
                }
                _ => {}
            }
        }
    }

    async fn await_subscribed(&mut self, mut pending: usize) -> Result<(), String> {
        while pending > 0 {
            let Message::Text(text) = self.next_message().await? else {
                continue;
            };
            let env: Envelope =
                serde_json::from_slice(&text).map_err(|_| "bad JSON while subscribing")?;
            match env.event.as_str() {
                "pusher_internal:subscription_succeeded" => pending -= 1,
                "pusher:subscription_error" => {
                    return Err(format!("subscription_error {}", short(&env.data_text())));
                }
                "pusher:error" => {
                    return Err(format!("pusher:error {}", short(&env.data_text())));
                }
                "pusher:ping" => self.pusher_pong().await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Gives up the tokio side: the socket as a non-blocking std socket, plus what was read
    /// past the subscription replies.
    fn into_handoff(self) -> Result<Handoff, String> {
        let (tcp, tls) = self.stream.into_parts();
        let stream = tcp
            .into_std()
            .map_err(|e| format!("handoff: {}", e.kind()))?;
        Ok(Handoff {
            stream,
            tls,
            carry: self.buf.to_vec(),
            fragments: self.fragments,
            mask_seed: self.mask_seed,
        })
    }

    async fn pusher_pong(&mut self) -> Result<(), String> {
        self.send_text(br#"{"event":"pusher:pong","data":{}}"#)
            .await
            .map_err(|e| format!("pong write: {}", e.kind()))
    }

    /// Sends a close frame (status 1000) and shuts the write side down.
    pub async fn close(&mut self) -> std::io::Result<()> {
        self.send_frame(0x8, &1000u16.to_be_bytes()).await?;
        self.stream.shutdown().await
    }

    /// The next complete message; pings are answered here. `Err` on EOF or the server's close.
    pub async fn next_message(&mut self) -> Result<Message, String> {
        loop {
            if let Some(msg) = self.poll_message()? {
                match msg {
                    Message::Ping(p) => {
                        self.send_frame(0xA, &p)
                            .await
                            .map_err(|e| format!("pong write: {}", e.kind()))?;
                    }
                    Message::Close => return Err("closed by server".into()),
                    other => return Ok(other),
                }
                continue;
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes into the buffer; `Err` on EOF or a socket error.
    async fn fill(&mut self) -> Result<(), String> {
        if self.buf.capacity() - self.buf.len() < READ_RESERVE / 4 {
            self.buf.reserve(READ_RESERVE);
        }
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err("eof".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read: {}", e.kind())),
        }
    }

    /// Takes the next complete message out of the buffer, joining fragments.
    fn poll_message(&mut self) -> Result<Option<Message>, String> {
        loop {
            let FrameParse::Frame {
                fin,
                opcode,
                header_len,
                payload_len,
            } = parse_frame_header(&self.buf)?
            else {
                return Ok(None);
            };
            self.buf.advance(header_len);
            let payload = self.buf.split_to(payload_len);
            match opcode {
                0x0 => {
                    let Some((first, mut data)) = self.fragments.take() else {
                        return Err("continuation without a first frame".into());
                    };
                    if data.len() + payload.len() > MESSAGE_MAX {
                        return Err("message too large".into());
                    }
                    data.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some(complete(first, data)));
                    }
                    self.fragments = Some((first, data));
                }
                0x1 | 0x2 => {
                    if fin {
                        return Ok(Some(complete(opcode, payload.to_vec())));
                    }
                    self.fragments = Some((opcode, payload.to_vec()));
                }
                0x8 => return Ok(Some(Message::Close)),
                0x9 => return Ok(Some(Message::Ping(payload.to_vec()))),
                _ => return Ok(Some(Message::Other)),
            }
        }
    }

    /// Sends one masked text frame.
    pub async fn send_text(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.send_frame(0x1, payload).await
    }

    /// Writes one masked client frame.
    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let frame = masked_frame(opcode, payload, &mut self.mask_seed);
        self.stream.write_all(&frame).await?;
        // TLS: records the socket did not take wait in rustls until flushed.
        self.stream.flush().await
    }
}

fn complete(opcode: u8, data: Vec<u8>) -> Message {
    if opcode == 0x1 {
        Message::Text(data)
    } else {
        Message::Other
    }
}

fn short(text: &str) -> String {
    text.chars().take(120).collect()
}
