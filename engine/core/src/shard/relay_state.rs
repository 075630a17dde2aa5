//! [`RelaySession`]: a relay connection's state on its own shard: the room it named at the
//! upgrade. Its role and data live with the room, on the room's owner shard
//! (`relay_rooms.rs`).

use std::sync::Arc;

/// One relay connection.
#[derive(Debug)]
pub struct RelaySession {
    /// The room (`?room=`; `""` is the app's default room).
    pub room: Arc<str>,
}
