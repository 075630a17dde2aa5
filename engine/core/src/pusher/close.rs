//! Pusher close and error codes (`docs/protocol-notes.md`, Close and error codes).
//!
//! The same number is used as the `code` of a `pusher:error` event and as the WebSocket close
//! code. pusher-js picks its reaction from the range alone:
//!
//! | range     | pusher-js reaction        |
//! |-----------|---------------------------|
//! | 4000–4099 | do not reconnect          |
//! | 4100–4199 | reconnect after back-off  |
//! | 4200–4299 | reconnect immediately     |
//! | 4300–4399 | error only, no close      |
//!
//! Malformed client JSON is not in the table: ringcast answers it with a `pusher:error` whose
//! `code` is `null` (see [`INVALID_MESSAGE`]). pusher-js only looks at the code of an error
//! during the handshake and when the socket closes, so a `null` code is reported to the app's
//! `error` handler and otherwise ignored; the connection stays open.

/// Only TLS connections are accepted (4000; the client switches to TLS and retries).
pub const SSL_ONLY: u16 = 4000;
/// No application with the key of the connection URL (4001; do not reconnect).
pub const APP_NOT_FOUND: u16 = 4001;
/// The application exists but is disabled (4003; do not reconnect).
pub const APP_DISABLED: u16 = 4003;
/// The application is over its connection quota (4004; do not reconnect).
pub const OVER_CONNECTION_QUOTA: u16 = 4004;
/// The WebSocket path is not `/app/{key}` (4005; do not reconnect).
pub const PATH_NOT_FOUND: u16 = 4005;
/// The `version` query parameter is not acceptable (4006; do not reconnect).
pub const INVALID_VERSION: u16 = 4006;
/// The `protocol` query parameter is outside the supported range 5..=7 (4007; do not reconnect).
pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
/// The client did not say which protocol it speaks (4008; do not reconnect). ringcast treats a
/// missing `protocol` as 7 and so never sends this; it exists for completeness.
pub const NO_PROTOCOL: u16 = 4008;
/// Unauthorized: Origin not allowed, bad sign-in, terminated user, or no authorization within
/// the timeout of an app that requires it (4009; do not reconnect).
pub const UNAUTHORIZED: u16 = 4009;
/// The server is over capacity, or this client is a slow consumer (4100; reconnect after back-off).
/// Also the status used when a presence channel is full.
pub const OVER_CAPACITY: u16 = 4100;
/// Generic "reconnect now", used for graceful shutdown and drain (4200).
pub const RECONNECT: u16 = 4200;
/// The client did not answer the server's `pusher:ping` in time (4201; reconnect now).
pub const PONG_NOT_RECEIVED: u16 = 4201;
/// The connection was closed after a period of inactivity (4202; reconnect now).
pub const CLOSED_AFTER_INACTIVITY: u16 = 4202;
/// A client event (or another client message) was rejected: rate limit, size, name, channel,
/// reserved event, binary frame (4301; error only, the connection stays open).
pub const CLIENT_EVENT_REJECTED: u16 = 4301;
/// A sign-in watchlist had more than 100 ids; the first 100 were kept (4302; error only).
pub const WATCHLIST_OVER_LIMIT: u16 = 4302;

/// The `pusher:error` code for a frame that is not valid JSON or not a Pusher envelope: `null`.
///
/// Pusher itself sends no close code for this; a `null` code keeps pusher-js from treating it as
/// a close reason, and the connection stays open.
pub const INVALID_MESSAGE: Option<u16> = None;

/// What pusher-js does when it sees a code (by its range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientReaction {
    /// 4000–4099: give up, do not reconnect (4000 itself: retry over TLS).
    Refused,
    /// 4100–4199: reconnect after a back-off of at least a second.
    Backoff,
    /// 4200–4299: reconnect immediately.
    Retry,
    /// 4300–4399: an error event only; the connection is not closed by the code.
    ErrorOnly,
    /// Anything else (not a Pusher code).
    Other,
}

/// The pusher-js reaction to `code`, by range (see the module table).
pub fn reaction(code: u16) -> ClientReaction {
    match code {
        4000..=4099 => ClientReaction::Refused,
        4100..=4199 => ClientReaction::Backoff,
        4200..=4299 => ClientReaction::Retry,
        4300..=4399 => ClientReaction::ErrorOnly,
        _ => ClientReaction::Other,
    }
}

/// A short human-readable reason for `code`, suitable for a `pusher:error` message or a
/// WebSocket close reason (all shorter than the 123-byte close-reason limit).
pub fn reason(code: u16) -> &'static str {
    match code {
        SSL_ONLY => "Only TLS connections are accepted",
        APP_NOT_FOUND => "Application does not exist",
        APP_DISABLED => "Application disabled",
        OVER_CONNECTION_QUOTA => "Application is over its connection quota",
        PATH_NOT_FOUND => "Path not found",
        INVALID_VERSION => "Invalid version string format",
        UNSUPPORTED_PROTOCOL => "Unsupported protocol version",
        NO_PROTOCOL => "No protocol version supplied",
        UNAUTHORIZED => "Unauthorized",
        OVER_CAPACITY => "Over capacity",
        RECONNECT => "Server is restarting, please reconnect",
        PONG_NOT_RECEIVED => "Pong reply not received",
        CLOSED_AFTER_INACTIVITY => "Closed after inactivity",
        CLIENT_EVENT_REJECTED => "Client event rejected",
        WATCHLIST_OVER_LIMIT => "Watchlist over limit, only the first 100 ids are kept",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [u16; 15] = [
        SSL_ONLY,
        APP_NOT_FOUND,
        APP_DISABLED,
        OVER_CONNECTION_QUOTA,
        PATH_NOT_FOUND,
        INVALID_VERSION,
        UNSUPPORTED_PROTOCOL,
        NO_PROTOCOL,
        UNAUTHORIZED,
        OVER_CAPACITY,
        RECONNECT,
        PONG_NOT_RECEIVED,
        CLOSED_AFTER_INACTIVITY,
        CLIENT_EVENT_REJECTED,
        WATCHLIST_OVER_LIMIT,
    ];

    #[test]
    fn codes_match_the_spec_table() {
        assert_eq!(
            ALL,
            [
                4000, 4001, 4003, 4004, 4005, 4006, 4007, 4008, 4009, 4100, 4200, 4201, 4202, 4301,
                4302
            ]
        );
    }

    #[test]
    fn every_code_has_a_short_specific_reason() {
        for code in ALL {
            let r = reason(code);
            assert_ne!(r, "Error", "{code}");
            assert!(r.len() <= 123, "{code}");
        }
        assert_eq!(reason(1000), "Error");
    }

    #[test]
    fn reactions_follow_the_ranges() {
        assert_eq!(reaction(APP_NOT_FOUND), ClientReaction::Refused);
        assert_eq!(reaction(OVER_CAPACITY), ClientReaction::Backoff);
        assert_eq!(reaction(RECONNECT), ClientReaction::Retry);
        assert_eq!(reaction(PONG_NOT_RECEIVED), ClientReaction::Retry);
        assert_eq!(reaction(CLIENT_EVENT_REJECTED), ClientReaction::ErrorOnly);
        assert_eq!(reaction(1000), ClientReaction::Other);
        assert_eq!(INVALID_MESSAGE, None);
    }
}
