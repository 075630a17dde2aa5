//! Channel names: validation and classification by prefix (`docs/protocol-notes.md`, Channels).
//!
//! The class decides everything a subscribe needs: whether an auth signature is required,
//! whether the signature covers `channel_data` (presence), whether client events are allowed,
//! and whether the last event is cached.

/// What kind of channel a name denotes, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// No prefix (or `cache-`): anyone may subscribe.
    Public,
    /// `private-`: subscription needs an auth signature over `socket_id:channel`.
    Private,
    /// `private-encrypted-`: signed like a private channel; payloads are end-to-end encrypted,
    /// so the server relays them untouched and refuses client events.
    PrivateEncrypted,
    /// `presence-`: signed over `socket_id:channel:channel_data`; members are tracked.
    Presence,
}

/// A classified channel name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelClass {
    /// The kind, from the prefix.
    pub kind: ChannelKind,
    /// A cache channel (`cache-`, `private-cache-`, `private-encrypted-cache-`,
    /// `presence-cache-`): the last published event is replayed to new subscribers.
    pub cache: bool,
}

impl ChannelClass {
    /// True when subscribing needs an `auth` signature (every kind but public).
    pub fn needs_auth(&self) -> bool {
        self.kind != ChannelKind::Public
    }

    /// True when `client-*` events may be sent on the channel: private and presence channels.
    /// Public channels have no authenticated sender, and encrypted channels would let a client
    /// inject plaintext that other clients then fail to decrypt.
    pub fn allows_client_events(&self) -> bool {
        matches!(self.kind, ChannelKind::Private | ChannelKind::Presence)
    }

    /// True for presence channels (member tracking, `channel_data` in the signature).
    pub fn is_presence(&self) -> bool {
        self.kind == ChannelKind::Presence
    }
}

/// Why a channel name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelNameError {
    /// The name is empty.
    Empty,
    /// The name is longer than the app's maximum channel-name length.
    TooLong,
    /// The name contains a character outside `[A-Za-z0-9_\-=@,.;]`.
    InvalidCharacter,
}

impl ChannelNameError {
    /// A human-readable message for a `pusher:subscription_error` or an HTTP 400/413 body.
    pub fn message(&self) -> &'static str {
        match self {
            Self::Empty => "Channel name is empty",
            Self::TooLong => "Channel name is too long",
            Self::InvalidCharacter => {
                "Channel name contains an invalid character (allowed: A-Z a-z 0-9 _ - = @ , . ;)"
            }
        }
    }
}

impl core::fmt::Display for ChannelNameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

/// The prefix of the per-user channel pusher-js subscribes to after a sign-in. `#` is outside
/// the channel-name alphabet, so [`classify`] rejects these names; see [`server_to_user_id`].
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

// Longest prefix first: "private-encrypted-cache-" also starts with "private-".
const PREFIXES: [(&str, ChannelKind, bool); 7] = [
    (
        "private-encrypted-cache-",
        ChannelKind::PrivateEncrypted,
        true,
    ),
    ("private-encrypted-", ChannelKind::PrivateEncrypted, false),
    ("private-cache-", ChannelKind::Private, true),
    ("private-", ChannelKind::Private, false),
    ("presence-cache-", ChannelKind::Presence, true),
    ("presence-", ChannelKind::Presence, false),
    ("cache-", ChannelKind::Public, true),
];

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'@' | b',' | b'.' | b';')
}

/// Validates a channel name (non-empty, at most `max_len` bytes, only `[A-Za-z0-9_\-=@,.;]`)
/// and classifies it by prefix: `private-encrypted-cache-`, `private-encrypted-`,
/// `private-cache-`, `private-`, `presence-cache-`, `presence-`, `cache-` (public cache),
/// anything else public.
///
/// `#` is rejected: it is reserved for `#server-to-user-{id}`, which is not a channel anyone
/// can subscribe to (see [`server_to_user_id`]).
pub fn classify(name: &str, max_len: usize) -> Result<ChannelClass, ChannelNameError> {
    if name.is_empty() {
        return Err(ChannelNameError::Empty);
    }
    if name.len() > max_len {
        return Err(ChannelNameError::TooLong);
    }
    if !name.bytes().all(is_name_byte) {
        return Err(ChannelNameError::InvalidCharacter);
    }
    for (prefix, kind, cache) in PREFIXES {
        if name.starts_with(prefix) {
            return Ok(ChannelClass { kind, cache });
        }
    }
    Ok(ChannelClass {
        kind: ChannelKind::Public,
        cache: false,
    })
}

/// The user id of a `#server-to-user-{id}` name, if `name` is one (and the id is non-empty).
///
/// pusher-js subscribes to this name after a successful sign-in. Its events are delivered
/// through the signed-in user's sockets, never through channel subscribers, so the connection
/// logic answers the subscribe only when the id equals the connection's signed-in user.
pub fn server_to_user_id(name: &str) -> Option<&str> {
    name.strip_prefix(SERVER_TO_USER_PREFIX)
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(kind: ChannelKind, cache: bool) -> ChannelClass {
        ChannelClass { kind, cache }
    }

    #[test]
    fn classifies_every_prefix() {
        use ChannelKind::*;
        let cases = [
            ("my-channel", class(Public, false)),
            ("cache-foo", class(Public, true)),
            ("private-foo", class(Private, false)),
            ("private-cache-foo", class(Private, true)),
            ("private-encrypted-foo", class(PrivateEncrypted, false)),
            ("private-encrypted-cache-foo", class(PrivateEncrypted, true)),
            ("presence-foo", class(Presence, false)),
            ("presence-cache-foo", class(Presence, true)),
            // A prefix must be followed by the dash to count.
            ("privatefoo", class(Public, false)),
            ("presence", class(Public, false)),
            ("cache", class(Public, false)),
            // Bare prefixes are valid names of their class.
            ("private-", class(Private, false)),
            ("private-encrypted-", class(PrivateEncrypted, false)),
            ("Private-foo", class(Public, false)),
            ("a_b-c=d@e,f.g;h09", class(Public, false)),
        ];
        for (name, want) in cases {
            assert_eq!(classify(name, 200), Ok(want), "{name}");
        }
    }

    #[test]
    fn class_predicates() {
        let private = classify("private-a", 200).unwrap_or_else(|e| panic!("{e}"));
        assert!(private.needs_auth() && private.allows_client_events() && !private.is_presence());
        let presence = classify("presence-cache-a", 200).unwrap_or_else(|e| panic!("{e}"));
        assert!(presence.needs_auth() && presence.allows_client_events() && presence.is_presence());
        let enc = classify("private-encrypted-a", 200).unwrap_or_else(|e| panic!("{e}"));
        assert!(enc.needs_auth() && !enc.allows_client_events());
        let public = classify("cache-a", 200).unwrap_or_else(|e| panic!("{e}"));
        assert!(!public.needs_auth() && !public.allows_client_events() && public.cache);
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(classify("", 200), Err(ChannelNameError::Empty));
        assert_eq!(
            classify(&"a".repeat(201), 200),
            Err(ChannelNameError::TooLong)
        );
        assert!(classify(&"a".repeat(200), 200).is_ok());
        for bad in [
            "#server-to-user-1",
            "a b",
            "a/b",
            "a:b",
            "a*",
            "é",
            "a\0",
            "a\n",
            "private-foo\"",
            "a%20",
        ] {
            assert_eq!(
                classify(bad, 200),
                Err(ChannelNameError::InvalidCharacter),
                "{bad:?}"
            );
        }
        for e in [
            ChannelNameError::Empty,
            ChannelNameError::TooLong,
            ChannelNameError::InvalidCharacter,
        ] {
            assert!(!e.message().is_empty());
            assert_eq!(e.to_string(), e.message());
        }
    }

    #[test]
    fn server_to_user_names() {
        assert_eq!(server_to_user_id("#server-to-user-42"), Some("42"));
        assert_eq!(server_to_user_id("#server-to-user-"), None);
        assert_eq!(server_to_user_id("server-to-user-42"), None);
    }
}
