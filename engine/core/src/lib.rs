//! ringcast-core: everything that decides, with no runtime, no clock and no sockets.
//!
//! The glommio shell in `engine/src` feeds bytes, time and cross-shard messages in (`handle_*`)
//! and takes frames, closes and cross-shard messages out (`poll_*`). Everything here is
//! deterministic and unit-testable.

pub mod app;
pub mod http;
pub mod limits;
pub mod link;
pub mod pusher;
pub mod shard;
pub mod webhook_config;
pub mod ws;
