//! [`Dialect`]: which wire protocol a connection speaks, and its position in per-dialect
//! tables (framings of a message, subscribers of a channel, metrics).

/// A wire protocol a connection speaks. The channel space is one: a subscriber of any dialect
/// receives every dialect's publishes on its channel, each in its own framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Pusher Channels protocol v7 (`/app/{key}`).
    Pusher,
    /// Engine.IO 4 / Socket.IO 5, as the Ekko server spoke it (`/socket.io/`).
    SocketIo,
    /// The Lambda channel server's JSON protocol (`/channels/{key}`).
    ChannelsJson,
    /// WebSocket-over-HTTP, as SLIP Sockets spoke it (`/slip/{key}`): raw text messages.
    Slip,
    /// The relay of the PHP connection layer (`/relay/{key}`): rooms of their own, outside the
    /// channel space, so no published message has a framing in it.
    Relay,
}

impl Dialect {
    /// How many dialects there are (the length of per-dialect tables).
    pub const COUNT: usize = 5;
    /// Every dialect, in [`Dialect::index`] order.
    pub const ALL: [Dialect; Dialect::COUNT] = [
        Dialect::Pusher,
        Dialect::SocketIo,
        Dialect::ChannelsJson,
        Dialect::Slip,
        Dialect::Relay,
    ];

    /// Position in per-dialect tables.
    pub const fn index(self) -> usize {
        match self {
            Dialect::Pusher => 0,
            Dialect::SocketIo => 1,
            Dialect::ChannelsJson => 2,
            Dialect::Slip => 3,
            Dialect::Relay => 4,
        }
    }

    /// The `dialect` label of metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Dialect::Pusher => "pusher",
            Dialect::SocketIo => "socketio",
            Dialect::ChannelsJson => "channels",
            Dialect::Slip => "slip",
            Dialect::Relay => "relay",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_the_table_of_every_dialect() {
        for (position, dialect) in Dialect::ALL.iter().enumerate() {
            assert_eq!(dialect.index(), position);
        }
        assert_eq!(Dialect::ALL.len(), Dialect::COUNT);
    }
}
