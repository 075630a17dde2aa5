//! RFC 6455 WebSocket over byte buffers: the opening handshake ([`handshake`]), the frame
//! codec ([`frame`]) and incremental UTF-8 validation for fragmented text ([`utf8`]).
//!
//! Sans-IO: the shell owns the socket and the read buffer; this module only inspects and
//! splits bytes, so a connection carries no codec buffers while it is idle.

pub mod frame;
pub mod handshake;
pub mod utf8;

pub use frame::{Decoder, Message, ProtocolError};
pub use handshake::{accept_response, is_upgrade_request, validate_upgrade};
pub use utf8::Utf8Validator;
