//! WebSocket-over-HTTP (SLIP Sockets, `docs/slip.md`): the server holds the sockets on
//! `/slip/{app_key}` and the app's backend decides everything over plain HTTP. Every socket
//! event (open, text, close) is POSTed to the app's target URL by the bridge; the backend's
//! answer is a list of commands (accept, text, subscribe, publish, close, …) that the shard
//! runs in order. The backend may also send commands out of band to the control API,
//! `POST /slip/{app_key}/control`. Stateless pieces only; the connection's session lives in
//! the shard (`shard/slip.rs`).
//!
//! # Layout
//! - `event`: the socket events' request bodies, the backend's commands parsed from its
//!   answers and from control requests.
//! - `token`: the JWTs: the one signing each event request, the one a control request carries.

pub mod event;
pub mod token;

/// Where the dialect is mounted: `GET /slip/{app_key}` + upgrade.
pub const MOUNT: &str = "/slip/";

/// The control API's last path segment: `POST /slip/{app_key}/control`.
const CONTROL_SEGMENT: &str = "/control";

/// The app key of a socket path on the mount (`/slip/{app_key}`), if it is one.
pub fn app_key_of(path: &str) -> Option<&str> {
    path.strip_prefix(MOUNT)
        .filter(|key| !key.is_empty() && !key.contains('/'))
}

/// The app key of a control API path (`/slip/{app_key}/control`), if it is one.
pub fn control_app_key_of(path: &str) -> Option<&str> {
    path.strip_prefix(MOUNT)?
        .strip_suffix(CONTROL_SEGMENT)
        .filter(|key| !key.is_empty() && !key.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_names_one_app_key_and_its_control_api() {
        assert_eq!(app_key_of("/slip/k1"), Some("k1"));
        assert_eq!(app_key_of("/slip/"), None);
        assert_eq!(app_key_of("/slip/k1/control"), None);
        assert_eq!(control_app_key_of("/slip/k1/control"), Some("k1"));
        assert_eq!(control_app_key_of("/slip//control"), None);
        assert_eq!(control_app_key_of("/slip/a/b/control"), None);
        assert_eq!(control_app_key_of("/slip/k1"), None);
    }
}
