//! Pusher Channels protocol v7 (the facts relied on are in `docs/protocol-notes.md`): the pure,
//! stateless pieces every connection and the REST API share.
//!
//! - [`close`]: the close / `pusher:error` codes and what clients do with them.
//! - [`channel`]: channel-name validation and classification by prefix.
//! - [`auth`]: HMAC-SHA256 signatures for channel auth, sign-in and request signing.
//! - [`client_message`]: parsing of client → server text frames (untrusted input).
//! - [`server_message`]: the JSON text of server → client events.
//! - [`json_escape`]: JSON string literals, the escaping both message directions use.
//! - [`user`]: presence `channel_data` and sign-in `user_data` parsing.
//! - [`rest`]: the HTTP REST API's request signing and request bodies.
//!
//! Nothing here keeps state; the connection state machine and the registry decide what to do
//! with the values these functions return.

pub mod auth;
pub mod channel;
pub mod client_message;
pub mod close;
pub mod json_escape;
pub mod rest;
pub mod server_message;
pub mod user;

pub use channel::{classify, ChannelClass, ChannelKind, ChannelNameError};
pub use client_message::{parse_client_message, ClientMessage, MessageError};
pub use user::{parse_presence_member, parse_signin_user, PresenceMember, SigninUser};
