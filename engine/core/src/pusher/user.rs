//! Users: presence `channel_data` (who a presence member is) and sign-in `user_data` (who a
//! connection is); see `docs/protocol-notes.md`, Channel auth and sign-in.
//!
//! Both documents arrive from the client as strings whose exact bytes are covered by an auth
//! signature; these functions run *after* the signature check and extract what the server
//! tracks, bounding every size on the way.

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::client_message::{encode_value, parse_json, MessageError};

/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = crate::limits::USER_ID_BYTES_MAX;
/// Longest accepted sign-in `user_data` document, in bytes.
pub const MAX_USER_DATA_BYTES: usize = crate::limits::USER_DATA_BYTES_MAX;
/// Watchlist entries kept from a sign-in; the rest are dropped and the client is told with
/// [`super::close::WATCHLIST_OVER_LIMIT`].
pub const MAX_WATCHLIST: usize = crate::limits::WATCHLIST_IDS_MAX;

/// A presence channel member, from the subscriber's `channel_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceMember {
    /// The user id; a numeric `user_id` is normalised to its decimal string.
    pub user_id: String,
    /// `user_info` as JSON text; `null` if absent.
    pub user_info: String,
}

/// A signed-in user, from the sign-in `user_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigninUser {
    /// The user id (non-empty).
    pub id: String,
    /// `user_info` as JSON text, if present.
    pub user_info: Option<String>,
    /// The ids whose online/offline status this user watches (at most [`MAX_WATCHLIST`]).
    pub watchlist: Vec<String>,
    /// True when the client sent more than [`MAX_WATCHLIST`] ids and the rest were dropped.
    pub watchlist_truncated: bool,
}

fn check_user_id(id: String) -> Result<String, MessageError> {
    if id.is_empty() {
        return Err(MessageError::new("user_id must not be empty"));
    }
    if id.len() > MAX_USER_ID_BYTES {
        return Err(MessageError::new(format!(
            "user_id must be at most {MAX_USER_ID_BYTES} bytes"
        )));
    }
    Ok(id)
}

/// A presence `user_id`: a string, or a number turned into the string a JavaScript server would
/// use (`1` → `"1"`, `1.0` → `"1"`, `1.5` → `"1.5"`).
fn presence_user_id(value: Value<'_, '_>) -> Result<String, MessageError> {
    if let Some(s) = value.as_str() {
        return check_user_id(s.to_owned());
    }
    if let Some(f) = value.as_f64() {
        if !f.is_finite() {
            return Err(MessageError::new("user_id must be a finite number"));
        }
        // Display prints integral floats without a fraction, like JavaScript's String().
        return check_user_id(f.to_string());
    }
    if let Some(i) = value.as_i64() {
        return check_user_id(i.to_string());
    }
    if let Some(u) = value.as_u64() {
        return check_user_id(u.to_string());
    }
    Err(MessageError::new("user_id must be a string or a number"))
}

/// Parses presence `channel_data`: `{"user_id": string|number, "user_info"?: any}`.
///
/// `user_id` is required, non-empty and at most [`MAX_USER_ID_BYTES`] bytes once normalised;
/// the whole `channel_data` must be at most `member_size_max_bytes` (the app's
/// `max_presence_member_size_in_kb` × 1024) or the error says so.
pub fn parse_presence_member(
    channel_data: &str,
    member_size_max_bytes: usize,
) -> Result<PresenceMember, MessageError> {
    if channel_data.len() > member_size_max_bytes {
        return Err(MessageError::new(format!(
            "Presence member data is over the limit of {member_size_max_bytes} bytes"
        )));
    }
    let mut buf = channel_data.as_bytes().to_vec();
    let tape = parse_json(&mut buf)?;
    let obj = tape
        .as_value()
        .as_object()
        .ok_or_else(|| MessageError::new("channel_data must be a JSON object"))?;
    let user_id = match obj.get("user_id") {
        Some(v) if !v.is_null() => presence_user_id(v)?,
        _ => return Err(MessageError::new("channel_data must contain a user_id")),
    };
    let user_info = obj
        .get("user_info")
        .map_or_else(|| "null".to_owned(), encode_value);
    Ok(PresenceMember { user_id, user_info })
}

/// Parses sign-in `user_data`: a JSON object with a non-empty string `id` (at most
/// [`MAX_USER_ID_BYTES`]), optional `user_info`, optional `watchlist` (an array of strings, of
/// which the first [`MAX_WATCHLIST`] are kept; `watchlist_truncated` tells whether there were
/// more). `user_data` itself must be at most [`MAX_USER_DATA_BYTES`].
pub fn parse_signin_user(user_data: &str) -> Result<SigninUser, MessageError> {
    if user_data.len() > MAX_USER_DATA_BYTES {
        return Err(MessageError::new(format!(
            "user_data is over the limit of {MAX_USER_DATA_BYTES} bytes"
        )));
    }
    let mut buf = user_data.as_bytes().to_vec();
    let tape = parse_json(&mut buf)?;
    let obj = tape
        .as_value()
        .as_object()
        .ok_or_else(|| MessageError::new("user_data must be a JSON object"))?;
    // pusher-js itself refuses a sign-in whose id is not a non-empty string, so numbers are
    // refused here too rather than normalised.
    let id = obj
        .get("id")
        .and_then(|v| v.into_string())
        .ok_or_else(|| MessageError::new("user_data must contain a string id"))?;
    let id = check_user_id(id.to_owned())?;
    let user_info = obj
        .get("user_info")
        .filter(|v| !v.is_null())
        .map(encode_value);

    let mut watchlist = Vec::new();
    let mut watchlist_truncated = false;
    match obj.get("watchlist") {
        None => {}
        Some(v) if v.is_null() => {}
        Some(v) => {
            let items = v
                .as_array()
                .ok_or_else(|| MessageError::new("watchlist must be an array of user ids"))?;
            watchlist_truncated = items.len() > MAX_WATCHLIST;
            watchlist.reserve(items.len().min(MAX_WATCHLIST));
            // Entries past the limit are dropped unread: the client is told about the
            // truncation, not about what it would have found there.
            for item in items.iter().take(MAX_WATCHLIST) {
                let wid = item
                    .as_str()
                    .ok_or_else(|| MessageError::new("watchlist must be an array of user ids"))?;
                watchlist.push(check_user_id(wid.to_owned())?);
            }
        }
    }
    Ok(SigninUser {
        id,
        user_info,
        watchlist,
        watchlist_truncated,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const LIMIT: usize = 10 * 1024;

    fn member(s: &str) -> Result<PresenceMember, MessageError> {
        parse_presence_member(s, LIMIT)
    }

    #[test]
    fn presence_member_with_info() {
        let m = member(r#"{"user_id":"u1","user_info":{"name":"A"}}"#).unwrap();
        assert_eq!(m.user_id, "u1");
        assert_eq!(m.user_info, r#"{"name":"A"}"#);
    }

    /// `user_info` is relayed to every member: an object of more than 32 members keeps the order
    /// it was sent in (it was relayed in hash order; see the `client_message` test
    /// `relayed_objects_keep_their_member_order`).
    #[test]
    fn user_info_keeps_its_member_order() {
        let members: Vec<String> = (0..40).map(|i| format!(r#""n{i}":{i}"#)).collect();
        let info = format!("{{{}}}", members.join(","));
        let m = member(&format!(r#"{{"user_id":"u1","user_info":{info}}}"#)).unwrap();
        assert_eq!(m.user_info, info);
        let user = parse_signin_user(&format!(r#"{{"id":"u1","user_info":{info}}}"#)).unwrap();
        assert_eq!(user.user_info.as_deref(), Some(info.as_str()));
    }

    #[test]
    fn presence_member_numeric_ids_are_normalised() {
        assert_eq!(member(r#"{"user_id":42}"#).unwrap().user_id, "42");
        assert_eq!(member(r#"{"user_id":-7}"#).unwrap().user_id, "-7");
        assert_eq!(
            member(r#"{"user_id":18446744073709551615}"#)
                .unwrap()
                .user_id,
            "18446744073709551615"
        );
        assert_eq!(member(r#"{"user_id":1.0}"#).unwrap().user_id, "1");
        assert_eq!(member(r#"{"user_id":1.5}"#).unwrap().user_id, "1.5");
        assert_eq!(member(r#"{"user_id":42}"#).unwrap().user_info, "null");
    }

    #[test]
    fn presence_member_errors() {
        let bad = [
            r#"{"user_info":{}}"#,
            r#"{"user_id":null}"#,
            r#"{"user_id":""}"#,
            r#"{"user_id":true}"#,
            r#"{"user_id":[1]}"#,
            r#"{"user_id":{}}"#,
            r#"["u1"]"#,
            r#""u1""#,
            "not json",
            "",
        ];
        for s in bad {
            assert!(member(s).is_err(), "{s}");
        }
        let long = format!(r#"{{"user_id":"{}"}}"#, "x".repeat(MAX_USER_ID_BYTES + 1));
        assert!(member(&long).unwrap_err().message.contains("128"));
        let ok = format!(r#"{{"user_id":"{}"}}"#, "x".repeat(MAX_USER_ID_BYTES));
        assert!(member(&ok).is_ok());
        // The size limit applies to the whole channel_data and names the limit.
        let big = format!(r#"{{"user_id":"u","user_info":"{}"}}"#, "x".repeat(100));
        let e = parse_presence_member(&big, 64).unwrap_err();
        assert!(e.message.contains("over the limit of 64 bytes"), "{e}");
        assert!(parse_presence_member(&big, big.len()).is_ok());
    }

    #[test]
    fn signin_user_full() {
        let u =
            parse_signin_user(r#"{"id":"u1","user_info":{"name":"A"},"watchlist":["u2","u3"]}"#)
                .unwrap();
        assert_eq!(
            u,
            SigninUser {
                id: "u1".into(),
                user_info: Some(r#"{"name":"A"}"#.into()),
                watchlist: vec!["u2".into(), "u3".into()],
                watchlist_truncated: false,
            }
        );
        let u = parse_signin_user(r#"{"id":"u1"}"#).unwrap();
        assert_eq!(u.user_info, None);
        assert!(u.watchlist.is_empty() && !u.watchlist_truncated);
    }

    #[test]
    fn signin_watchlist_is_truncated_to_100() {
        let ids: Vec<String> = (0..150).map(|i| format!("\"w{i}\"")).collect();
        let data = format!(r#"{{"id":"u","watchlist":[{}]}}"#, ids.join(","));
        let u = parse_signin_user(&data).unwrap();
        assert_eq!(u.watchlist.len(), MAX_WATCHLIST);
        assert_eq!(u.watchlist[99], "w99");
        assert!(u.watchlist_truncated);

        let ids: Vec<String> = (0..100).map(|i| format!("\"w{i}\"")).collect();
        let data = format!(r#"{{"id":"u","watchlist":[{}]}}"#, ids.join(","));
        assert!(!parse_signin_user(&data).unwrap().watchlist_truncated);
    }

    #[test]
    fn signin_user_errors() {
        for s in [
            r#"{}"#,
            r#"{"id":""}"#,
            r#"{"id":1}"#,
            r#"{"id":null}"#,
            r#"{"id":"u","watchlist":"u2"}"#,
            r#"{"id":"u","watchlist":[1]}"#,
            r#"{"id":"u","watchlist":[""]}"#,
            "[]",
            "{",
        ] {
            assert!(parse_signin_user(s).is_err(), "{s}");
        }
        let big = format!(
            r#"{{"id":"u","user_info":"{}"}}"#,
            "x".repeat(MAX_USER_DATA_BYTES)
        );
        assert!(parse_signin_user(&big)
            .unwrap_err()
            .message
            .contains("over the limit"));
        let deep = format!(
            r#"{{"id":"u","user_info":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert_eq!(
            parse_signin_user(&deep).unwrap_err().message,
            "JSON nested too deeply"
        );
    }
}
