//! HMAC-SHA256 signatures of the Pusher protocol: channel auth tokens, sign-in tokens, and the
//! hex signatures of REST requests and webhooks (`docs/protocol-notes.md`: Channel auth and
//! sign-in, REST signing, Webhooks).
//!
//! Every check compares through [`ring::hmac::verify`], which is constant time, so a client
//! cannot learn a valid signature byte by byte from response timing.

use ring::hmac;

/// Length of a hex-encoded HMAC-SHA256 tag.
const HEX_TAG_LEN: usize = 64;

fn sign(secret: &[u8], message: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, message)
}

/// Lower-case hex of `HMAC_SHA256(secret, message)`.
pub fn hmac_sha256_hex(secret: &[u8], message: &[u8]) -> String {
    hex::encode(sign(secret, message).as_ref())
}

/// True when `signature_hex` is the lower- or upper-case hex of `HMAC_SHA256(secret, message)`.
/// Bad hex or a wrong length is false. Used for REST request signatures and webhook signatures.
pub fn verify_hmac_sha256_hex(secret: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let mut tag = [0u8; HEX_TAG_LEN / 2];
    // `decode_to_slice` insists on exactly 64 hex digits, so odd or short input is refused here
    // rather than compared.
    if hex::decode_to_slice(signature_hex, &mut tag).is_err() {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, message, &tag).is_ok()
}

/// The string a channel auth signs: `socket_id:channel` or, for presence,
/// `socket_id:channel:channel_data` (the exact `channel_data` text the client sent).
fn channel_to_sign(socket_id: &str, channel: &str, channel_data: Option<&str>) -> Vec<u8> {
    let extra = channel_data.map_or(0, |d| d.len() + 1);
    let mut out = Vec::with_capacity(socket_id.len() + 1 + channel.len() + extra);
    out.extend_from_slice(socket_id.as_bytes());
    out.push(b':');
    out.extend_from_slice(channel.as_bytes());
    if let Some(data) = channel_data {
        out.push(b':');
        out.extend_from_slice(data.as_bytes());
    }
    out
}

/// The string a sign-in signs: `socket_id::user::user_data`.
fn signin_to_sign(socket_id: &str, user_data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(socket_id.len() + 8 + user_data.len());
    out.extend_from_slice(socket_id.as_bytes());
    out.extend_from_slice(b"::user::");
    out.extend_from_slice(user_data.as_bytes());
    out
}

fn token(app_key: &str, secret: &str, to_sign: &[u8]) -> String {
    let mut out = String::with_capacity(app_key.len() + 1 + HEX_TAG_LEN);
    out.push_str(app_key);
    out.push(':');
    out.push_str(&hmac_sha256_hex(secret.as_bytes(), to_sign));
    out
}

/// Checks `auth` == `"<app_key>:<hex>"`; the key part is public, so a plain comparison is fine,
/// the hex part goes through the constant-time check.
fn verify_token(app_key: &str, secret: &str, to_sign: &[u8], auth: &str) -> bool {
    let Some(hex_part) = auth
        .strip_prefix(app_key)
        .and_then(|rest| rest.strip_prefix(':'))
    else {
        return false;
    };
    verify_hmac_sha256_hex(secret.as_bytes(), to_sign, hex_part)
}

/// The channel auth token an auth endpoint returns:
/// `"<app_key>:" + hex(HMAC_SHA256(secret, "socket_id:channel[:channel_data]"))`.
pub fn channel_auth_token(
    app_key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    token(
        app_key,
        secret,
        &channel_to_sign(socket_id, channel, channel_data),
    )
}

/// True when `auth` is `"<app_key>:<hex>"` and the hex is the HMAC of
/// `socket_id:channel[:channel_data]` under `secret` (constant-time). A wrong key part, bad hex
/// or a wrong length is false.
pub fn verify_channel_auth(
    app_key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> bool {
    verify_token(
        app_key,
        secret,
        &channel_to_sign(socket_id, channel, channel_data),
        auth,
    )
}

/// True when `auth` is the sign-in token for `user_data` on `socket_id`: `"<app_key>:<hex>"`
/// with the HMAC of `socket_id::user::user_data` (constant-time).
pub fn verify_signin(
    app_key: &str,
    secret: &str,
    socket_id: &str,
    user_data: &str,
    auth: &str,
) -> bool {
    verify_token(app_key, secret, &signin_to_sign(socket_id, user_data), auth)
}

/// The sign-in token a user-authentication endpoint returns for `user_data` on `socket_id`.
pub fn signin_token(app_key: &str, secret: &str, socket_id: &str, user_data: &str) -> String {
    token(app_key, secret, &signin_to_sign(socket_id, user_data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "app-key";
    const SECRET: &str = "app-secret";
    const SOCKET: &str = "1234.5678";
    const PRIVATE_TOKEN: &str =
        "app-key:d7d4254b75e2b60944b91bc92e916d56da84c4835011f5aa3c59a8e7f6e8b65d";
    const PRESENCE_DATA: &str = r#"{"user_id":"u1","user_info":{"name":"A"}}"#;
    const PRESENCE_TOKEN: &str =
        "app-key:6f9e70a787174dbba4940c126409f1558d01db88bc8d641417ac6a9349a6410c";

    #[test]
    fn private_channel_vector() {
        assert_eq!(
            channel_auth_token(KEY, SECRET, SOCKET, "private-foo", None),
            PRIVATE_TOKEN
        );
        assert!(verify_channel_auth(
            KEY,
            SECRET,
            SOCKET,
            "private-foo",
            None,
            PRIVATE_TOKEN
        ));
    }

    #[test]
    fn presence_channel_vector() {
        assert_eq!(
            channel_auth_token(KEY, SECRET, SOCKET, "presence-foo", Some(PRESENCE_DATA)),
            PRESENCE_TOKEN
        );
        assert!(verify_channel_auth(
            KEY,
            SECRET,
            SOCKET,
            "presence-foo",
            Some(PRESENCE_DATA),
            PRESENCE_TOKEN
        ));
        // The signature covers channel_data byte for byte.
        let reordered = r#"{"user_info":{"name":"A"},"user_id":"u1"}"#;
        assert!(!verify_channel_auth(
            KEY,
            SECRET,
            SOCKET,
            "presence-foo",
            Some(reordered),
            PRESENCE_TOKEN
        ));
        assert!(!verify_channel_auth(
            KEY,
            SECRET,
            SOCKET,
            "presence-foo",
            None,
            PRESENCE_TOKEN
        ));
    }

    #[test]
    fn rest_vector() {
        let to_sign = "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f";
        let want = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
        assert_eq!(
            hmac_sha256_hex(b"7ad3773142a6692b25b8", to_sign.as_bytes()),
            want
        );
        assert!(verify_hmac_sha256_hex(
            b"7ad3773142a6692b25b8",
            to_sign.as_bytes(),
            want
        ));
        assert!(verify_hmac_sha256_hex(
            b"7ad3773142a6692b25b8",
            to_sign.as_bytes(),
            &want.to_uppercase()
        ));
        assert!(!verify_hmac_sha256_hex(b"wrong", to_sign.as_bytes(), want));
        assert!(!verify_hmac_sha256_hex(
            b"7ad3773142a6692b25b8",
            to_sign.as_bytes(),
            ""
        ));
    }

    #[test]
    fn rejects_tampered_and_malformed_tokens() {
        let verify =
            |auth: &str| verify_channel_auth(KEY, SECRET, SOCKET, "private-foo", None, auth);
        let hex_part = &PRIVATE_TOKEN[KEY.len() + 1..];

        // One flipped hex digit.
        let mut tampered = PRIVATE_TOKEN.to_string();
        tampered.pop();
        tampered.push('e');
        assert!(!verify(&tampered));
        // Wrong key part with the right signature.
        assert!(!verify(&format!("other-key:{hex_part}")));
        assert!(!verify(&format!("app-ke:{hex_part}")));
        assert!(!verify(&format!("app-key-x:{hex_part}")));
        assert!(!verify(hex_part));
        // Odd length, truncated, extended, not hex, empty, separators.
        assert!(!verify(&PRIVATE_TOKEN[..PRIVATE_TOKEN.len() - 1]));
        assert!(!verify(&PRIVATE_TOKEN[..PRIVATE_TOKEN.len() - 2]));
        assert!(!verify(&format!("{PRIVATE_TOKEN}00")));
        assert!(!verify(&format!("{PRIVATE_TOKEN}0")));
        assert!(!verify(&format!("app-key:{}", "z".repeat(64))));
        assert!(!verify(""));
        assert!(!verify("app-key:"));
        assert!(!verify("app-key"));
        assert!(!verify(&format!("app-key::{hex_part}")));
        assert!(!verify(&format!("app-key: {hex_part}")));
        // Multi-byte characters where hex digits are expected must not panic.
        assert!(!verify(&format!("app-key:{}", "é".repeat(32))));
        // Right token, other socket or channel.
        assert!(!verify_channel_auth(
            KEY,
            SECRET,
            "1234.5679",
            "private-foo",
            None,
            PRIVATE_TOKEN
        ));
        assert!(!verify_channel_auth(
            KEY,
            SECRET,
            SOCKET,
            "private-bar",
            None,
            PRIVATE_TOKEN
        ));
        assert!(!verify_channel_auth(
            KEY,
            "other",
            SOCKET,
            "private-foo",
            None,
            PRIVATE_TOKEN
        ));
    }

    #[test]
    fn signin_round_trip() {
        let user_data = r#"{"id":"u1","user_info":{"name":"A"},"watchlist":["u2"]}"#;
        let token = signin_token(KEY, SECRET, SOCKET, user_data);
        let expected_hex = hmac_sha256_hex(
            SECRET.as_bytes(),
            format!("{SOCKET}::user::{user_data}").as_bytes(),
        );
        assert_eq!(token, format!("{KEY}:{expected_hex}"));
        assert!(verify_signin(KEY, SECRET, SOCKET, user_data, &token));
        assert!(!verify_signin(
            KEY,
            SECRET,
            SOCKET,
            r#"{"id":"u2"}"#,
            &token
        ));
        assert!(!verify_signin(KEY, SECRET, "1.1", user_data, &token));
        assert!(!verify_signin("k", SECRET, SOCKET, user_data, &token));
        // A channel token is not a sign-in token.
        assert!(!verify_signin(
            KEY,
            SECRET,
            SOCKET,
            "private-foo",
            PRIVATE_TOKEN
        ));
    }
}
